"""The dataset card: a Hugging Face header whose configs load, honest quality, the figures it embeds."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from natfeed.core.categories import CATEGORIES
from natfeed.params import DatasetCardParams, PathsParams
from natfeed.report.card import iso_code, size_category, write_card
from natfeed.report.figures import FIGURES, prevalence

QUALITY = {"n_turns": 30, "never_tuned": {
    "n_turns": 20, "detection": {"precision": 0.6, "recall": 0.5, "f1": 0.5454},
    "micro": {"precision": 0.5, "recall": 0.4, "f1": 0.444},
    "per_category": {c: {"f1": 0.3, "support": 4} for c in CATEGORIES}}}


@pytest.fixture
def project(tmp_path: Path) -> PathsParams:
    processed, reports = tmp_path / "data" / "processed", tmp_path / "reports"
    (processed / "kto").mkdir(parents=True)
    reports.mkdir()
    conv = pd.DataFrame({"conversation_id": [f"c{i}" for i in range(10)],
                         "language": ["English"] * 6 + ["Chinese"] * 3 + [None],
                         "model": ["gpt-4"] * 5 + ["gpt-3.5-turbo"] * 5})
    conv.to_parquet(tmp_path / "conversations.parquet")
    fb = pd.DataFrame({"conversation_id": ["c0", "c0", "c1", "c6"], "feedback_turn": [1, 2, 3, 12],
                       "category": ["repeat_or_rephrase", "positive_feedback", "make_aware_with_correction",
                                    "repeat_or_rephrase"],
                       "language": ["English", "English", "English", "Chinese"], "model": ["gpt-4"] * 4})
    fb.to_parquet(processed / "feedback.parquet")
    for name in ("kto_train", "kto_test", "sft_train", "sft_test"):
        pd.DataFrame({"prompt": ["p"], "completion": ["c"], "label": [True]}).to_parquet(processed / "kto" / f"{name}.parquet")
    (reports / "extract_quality.json").write_text(json.dumps(QUALITY))
    (reports / "extract.json").write_text(json.dumps({"extractor": "heuristic-1.0.0", "user_turns": 25}))
    (reports / "build_kto.json").write_text(json.dumps({"desirable": 1, "undesirable": 1}))
    return PathsParams(conversations=str(tmp_path / "conversations.parquet"),
                       conversations_rejected=str(tmp_path / "conversations.rejected.parquet"),
                       conversations_filtered=str(tmp_path / "conversations.filtered.parquet"),
                       feedback=str(processed / "feedback.parquet"),
                       feedback_rejected=str(processed / "feedback.rejected.parquet"),
                       feedback_report=str(processed / "feedback.report.json"), kto_dir=str(processed / "kto"),
                       reports_dir=str(reports), dataset_card=str(processed / "README.md"),
                       figures_dir=str(processed / "figures"))


def _header(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_card_header_follows_the_hub_format(project: PathsParams) -> None:
    write_card(DatasetCardParams(), project, ["make_aware_with_correction"])
    card = Path(project.dataset_card).read_text()
    meta = _header(card)
    assert {"license", "language", "task_categories", "size_categories", "configs"} <= set(meta)
    assert meta["language"] == ["en", "zh"] and meta["size_categories"] == ["n<1K"]
    assert {c["config_name"] for c in meta["configs"]} == {"feedback", "kto", "sft"}
    assert "3 of 10 conversations (30.0%)" in card and "**validation** parts" in card and "0.545" in card
    assert "Don-Yehiya" in card and "zhao2024wildchat" in card


def test_every_file_the_card_lists_loads_with_datasets(project: PathsParams) -> None:
    from datasets import load_dataset

    write_card(DatasetCardParams(), project, ["make_aware_with_correction"])
    card_dir = Path(project.dataset_card).parent
    meta = _header(Path(project.dataset_card).read_text())
    for config in meta["configs"]:
        files = {f["split"]: str(card_dir / f["path"]) for f in config["data_files"]}
        ds = load_dataset("parquet", data_files=files, cache_dir=str(card_dir.parent / "hf_cache"))
        assert set(ds) == set(files) and all(len(ds[s]) > 0 for s in ds)


def test_figures_are_written_and_embedded(project: PathsParams) -> None:
    result = write_card(DatasetCardParams(), project, ["make_aware_with_correction"])
    card = Path(project.dataset_card).read_text()
    assert set(result["figures"]) == set(FIGURES)
    for name, path in result["figures"].items():
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(figures/{name}.png)" in card
    prev = json.loads((Path(project.reports_dir) / "prevalence.json").read_text())
    assert prev["with_feedback"] == 3 and prev["feedback_turn"] == {"1": 1, "2": 1, "3": 1, "12": 1}


def test_prevalence_groups_rare_values_and_unknowns() -> None:
    conv = pd.DataFrame({"conversation_id": [str(i) for i in range(12)], "language": [f"L{i}" for i in range(11)] + [None]})
    table = prevalence(conv, pd.DataFrame({"conversation_id": ["0", "11"]}), "language")
    assert len(table) == 9 and table.loc["other", "conversations"] == 4 and table["conversations"].sum() == 12


def test_helpers() -> None:
    assert iso_code("English") == "en" and iso_code("Chinese") == "zh" and iso_code("Klingon") is None
    assert size_category(999) == "n<1K" and size_category(170_000) == "100K<n<1M"
