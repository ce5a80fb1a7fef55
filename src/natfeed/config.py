"""Typed, validated pipeline parameters (``params.yaml``).

Every section is a frozen pydantic model with ``extra="forbid"``: an unknown or misspelt key is an
error that names the key, not a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from natfeed.categories import CATEGORIES
from natfeed.expectations import ExpectationsParams
from natfeed.extract.heuristic import HeuristicParams


class ParamsError(ValueError):
    """params.yaml is missing, malformed or has an unknown/invalid key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsParams(_Section):
    """Every file the pipeline reads or writes; dvc.yaml refers to these with ${paths.*}."""

    raw_dir: str = Field("data/raw", description="Folder tracked by data.dvc")
    raw_input: str = Field("data/raw/conversations.jsonl", description="File, folder or glob that ingest reads")
    gold_labels: str = Field("data/raw/gold_labels.csv", description="Gold labels per user turn")
    conversations: str = Field("data/interim/conversations.parquet", description="Ingest output")
    feedback: str = Field("data/processed/feedback.parquet", description="Extract output")
    natural_feedback_csv: str = Field("data/processed/natural_feedback.csv", description="Paper's format")
    kto_dir: str = Field("data/processed/kto", description="KTO/SFT train/test parquet files")
    reports_dir: str = Field("reports", description="Metrics JSON and plots")
    data_docs_dir: str = Field("reports/data_docs", description="great-expectations Data Docs HTML")
    expectations_baseline: str = Field(
        "reports/expectations_baseline.json", description="Profile of the last accepted dataset (drift)"
    )


class IngestParams(_Section):
    """Reading, normalising and filtering conversations."""

    batch_size: int = Field(2000, gt=0, description="Rows per streamed batch (memory stays flat)")
    min_user_turns: int = Field(2, ge=1, description="Conversations with fewer user turns are filtered")
    languages: list[str] = Field(default_factory=list, description="Keep only these (LMSYS names); [] = all")
    max_chars: int = Field(200_000, gt=0, description="Conversations longer than this (all messages) are filtered")
    detect_language: bool = Field(True, description="Detect the language offline (lingua) where it is missing")


class ExtractParams(_Section):
    """Feedback extraction."""

    backend: str = Field("heuristic", description="Extractor backend: heuristic (CPU default)")
    batch_size: int = Field(500, gt=0, description="Conversations per batch handed to the extractor")
    workers: int = Field(0, ge=0, description="Processes for per-turn backends (heuristic): 0 = one per CPU "
                         "core, 1 = in-process")
    detect_language: bool = Field(True, description="When extracting raw logs, detect missing languages (lingua)")
    heuristic: HeuristicParams = Field(default_factory=HeuristicParams)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from natfeed.extract.base import available_backends

        if value not in available_backends():
            raise ValueError(f"unknown backend {value!r}; available: {sorted(available_backends())}")
        return value


class BalanceParams(_Section):
    """Balance checks on the feedback set (the CI gate)."""

    min_rows: int = Field(50, ge=0, description="Fewest feedback rows accepted")
    min_category_share: float = Field(0.02, ge=0, le=1, description="Each category's share must be at least")
    max_category_share: float = Field(0.8, ge=0, le=1, description="No category may exceed this share")
    min_pos_neg_ratio: float = Field(0.05, ge=0, description="positive:negative rows at least")
    max_pos_neg_ratio: float = Field(5.0, gt=0, description="positive:negative rows at most")


class ValidateParams(_Section):
    balance: BalanceParams = Field(default_factory=BalanceParams)
    expectations: ExpectationsParams = Field(default_factory=ExpectationsParams)


class BuildKtoParams(_Section):
    """KTO/SFT dataset construction."""

    undesirable_categories: list[str] = Field(
        default_factory=lambda: ["make_aware_with_correction", "make_aware_without_correction"],
        description="Categories whose replies are undesirable (paper: both make_aware categories)",
    )
    exclude_flagged: bool = Field(True, description="Drop conversations flagged by openai_moderation")
    desirable_weight: float = Field(1.0, gt=0, description="KTO desirable_weight used in the ratio")
    undesirable_weight: float = Field(1.0, gt=0, description="KTO undesirable_weight used in the ratio")
    ratio_min: float = Field(1.0, gt=0, description="Lower bound of wd*n_d/(wu*n_u) (KTO guidance: 1)")
    ratio_max: float = Field(4 / 3, gt=0, description="Upper bound of wd*n_d/(wu*n_u) (KTO guidance: 4/3)")
    test_size: float = Field(0.2, gt=0, lt=1, description="Share of conversations in the test split")
    seed: int = Field(42, description="Seed for downsampling and the split")

    @field_validator("undesirable_categories")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if c not in CATEGORIES or c == "positive_feedback"]
        if bad:
            raise ValueError(f"not negative feedback categories: {bad}; choose from {CATEGORIES[:4]}")
        return value

    @model_validator(mode="after")
    def _ratio_order(self) -> BuildKtoParams:
        if self.ratio_min > self.ratio_max:
            raise ValueError(f"ratio_min {self.ratio_min} > ratio_max {self.ratio_max}")
        return self


class TrackingParams(_Section):
    """MLflow; MLFLOW_TRACKING_URI in the environment overrides tracking_uri."""

    enabled: bool = Field(True, description="Log stages to MLflow")
    tracking_uri: str = Field("sqlite:///mlruns/mlflow.db", description="Local store (not in git)")
    artifact_location: str = Field("mlruns/artifacts", description="Artifacts folder of the local store")
    experiment: str = Field("natfeed", description="MLflow experiment name")


class Params(_Section):
    """The whole params.yaml."""

    paths: PathsParams = Field(default_factory=PathsParams)
    ingest: IngestParams = Field(default_factory=IngestParams)
    extract: ExtractParams = Field(default_factory=ExtractParams)
    validate_: ValidateParams = Field(default_factory=ValidateParams, alias="validate")
    build_kto: BuildKtoParams = Field(default_factory=BuildKtoParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def parse_params(data: dict[str, Any] | None) -> Params:
    """Validate a params mapping; raise ParamsError naming every bad key."""
    try:
        return Params.model_validate(data or {})
    except ValidationError as err:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ParamsError("invalid params.yaml:\n" + "\n".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the repository root or pass --params")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    return parse_params(data)
