"""``paths``: every file the pipeline reads or writes; dvc.yaml refers to these with ${paths.*}."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from natfeed.params.base import Section


def sibling_name(path: str, suffix: str) -> str:
    """``data/x.parquet`` + ``rejected.parquet`` -> ``data/x.rejected.parquet`` (the file's stem + suffix)."""
    p = Path(path)
    return str(p.with_name(f"{p.name.split('.')[0]}.{suffix}"))


SIBLINGS = {"conversations_rejected": ("conversations", "rejected.parquet"),
            "conversations_filtered": ("conversations", "filtered.parquet"),
            "feedback_rejected": ("feedback", "rejected.parquet"),
            "feedback_report": ("feedback", "report.json")}
"""Outputs written beside another one, named after its stem (listed so that dvc.yaml can name them)."""


class PathsParams(Section):
    """Every file the pipeline reads or writes; dvc.yaml refers to these with ${paths.*}."""

    raw_dir: str = Field("data/raw", description="Folder tracked by data.dvc")
    raw_input: str = Field("data/raw/conversations.jsonl", description="File, folder or glob that ingest reads")
    gold_labels: str = Field("data/raw/gold_labels.csv", description="Gold labels per user turn")
    conversations: str = Field("data/interim/conversations.parquet", description="Ingest output")
    conversations_rejected: str = Field("data/interim/conversations.rejected.parquet",
                                        description="Malformed input rows with their reason (beside conversations)")
    conversations_filtered: str = Field("data/interim/conversations.filtered.parquet",
                                        description="Valid rows a filter removed, with its name (beside conversations)")
    feedback: str = Field("data/processed/feedback.parquet", description="Extract output")
    feedback_rejected: str = Field("data/processed/feedback.rejected.parquet",
                                   description="Raw rows extract could not read (beside feedback)")
    feedback_report: str = Field("data/processed/feedback.report.json", description="Extract's report (beside "
                                 "feedback)")
    natural_feedback_csv: str = Field("data/processed/natural_feedback.csv", description="Paper's format")
    kto_dir: str = Field("data/processed/kto", description="KTO/SFT train/test parquet files")
    dataset_card: str = Field("data/processed/README.md", description="Hugging Face dataset card of the "
                              "extracted data (stage dataset_card); its `configs` point at the parquet files")
    figures_dir: str = Field("data/processed/figures", description="The card's PNG figures")
    reports_dir: str = Field("reports", description="Each stage's full report (JSON) and plot data")
    metrics_dir: str = Field("reports/metrics", description="The DVC metrics: a few numeric headline keys per "
                             "stage (natfeed.report.headline), so that `dvc metrics show` stays readable")
    data_docs_dir: str = Field("reports/data_docs", description="great-expectations Data Docs HTML")
    expectations_baseline: str = Field(
        "reports/expectations_baseline.json", description="Profile of the last accepted dataset (drift)"
    )
    base_model_dir: str = Field("models/base", description="Embedded default base model (stage base_model)")
    sft_model_dir: str = Field("models/sft", description="SFT model (stage train)")
    policy_dir: str = Field("models/policy", description="KTO policy, the trained model (stage train)")
    register_record: str = Field("mlruns/register_record.json", description="What the register stage put in "
                                 "the local MLflow store (not in git, like the store): a clone without the store "
                                 "lacks it, so `dvc repro` registers the model there too")

    @model_validator(mode="after")
    def _siblings(self) -> PathsParams:
        for key, (main, suffix) in SIBLINGS.items():
            want = sibling_name(getattr(self, main), suffix)
            if Path(getattr(self, key)) != Path(want):
                raise ValueError(f"paths.{key} must be {want!r}: it is written beside paths.{main} under its "
                                 "name (change both together)")
        return self
