"""``tracking``: the MLflow store and experiment."""

from __future__ import annotations

from pydantic import Field

from natfeed.params.base import Section


class TrackingParams(Section):
    """MLflow; MLFLOW_TRACKING_URI in the environment overrides tracking_uri."""

    enabled: bool = Field(True, description="Log stages to MLflow")
    tracking_uri: str = Field("sqlite:///mlruns/mlflow.db", description="Local store (not in git)")
    artifact_location: str = Field("mlruns/artifacts", description="Artifacts folder of the local store")
    experiment: str = Field("natfeed", description="MLflow experiment name")
