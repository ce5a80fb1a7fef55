"""Typed, validated pipeline parameters (``params.yaml``), one module per domain.

Every section is a frozen pydantic model with ``extra="forbid"`` (:class:`natfeed.params.base.Section`):
an unknown or misspelt key anywhere is an error naming the dotted key, the file and the closest valid key.
Choices are ``Literal`` types. This package imports no stage code: the stages import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from natfeed.params.base import ParamsError, Section, format_errors
from natfeed.params.data import (
    BalanceParams,
    BuildKtoParams,
    ExpectationsParams,
    ExtractQualityParams,
    IngestParams,
    ValidateParams,
)
from natfeed.params.evaluate import EvaluateParams, LlmJudgeParams, RmJudgeParams
from natfeed.params.extract import ExtractParams, LLMParams, OpenAIParams, TransformersParams, VLLMParams
from natfeed.params.heuristic import HeuristicParams
from natfeed.params.model import BaseModelParams, LoraParams, ScratchParams, TrainParams
from natfeed.params.paths import PathsParams
from natfeed.params.registry import GateParams, RegisterParams
from natfeed.params.report import DatasetCardParams
from natfeed.params.tracking import TrackingParams

__all__ = [
    "BalanceParams", "BaseModelParams", "BuildKtoParams", "DatasetCardParams", "EvaluateParams", "ExpectationsParams", "ExtractParams",
    "ExtractQualityParams",
    "GateParams", "HeuristicParams", "IngestParams", "LLMParams", "LlmJudgeParams", "LoraParams", "OpenAIParams",
    "Params", "ParamsError", "PathsParams", "RegisterParams", "RmJudgeParams", "ScratchParams", "TrackingParams", "TrainParams",
    "TransformersParams", "VLLMParams", "ValidateParams", "load_params", "parse_params",
]


class Params(Section):
    """The whole params.yaml."""

    paths: PathsParams = Field(default_factory=PathsParams)
    ingest: IngestParams = Field(default_factory=IngestParams)
    extract: ExtractParams = Field(default_factory=ExtractParams)
    extract_quality: ExtractQualityParams = Field(default_factory=ExtractQualityParams)
    validate_: ValidateParams = Field(default_factory=ValidateParams, alias="validate")
    build_kto: BuildKtoParams = Field(default_factory=BuildKtoParams)
    dataset_card: DatasetCardParams = Field(default_factory=DatasetCardParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    base_model: BaseModelParams = Field(default_factory=BaseModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    register_: RegisterParams = Field(default_factory=RegisterParams, alias="register")


def parse_params(data: dict[str, Any] | None, source: str = "params.yaml") -> Params:
    """Validate a params mapping; raise ParamsError naming every bad key of ``source``."""
    if data is not None and not isinstance(data, dict):
        raise ParamsError(f"invalid {source}: the top level must be a mapping of sections, not "
                          f"{type(data).__name__}")
    try:
        return Params.model_validate(data or {})
    except ValidationError as err:
        raise ParamsError(format_errors(Params, err, source)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the repository root or pass --params")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    return parse_params(data, source=str(path))
