"""The embedded sample (data/raw, built by scripts/make_sample.py): real development conversations of
../shared/corpora and nothing else from there, a small marked synthetic part, the gold labels and the
licences. The stored sample is pulled from the in-repo remote where a clone lacks it, so every clone checks
it; only the builder (which reads ../shared/corpora) needs the corpora."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import CORPORA

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "make_sample.py"
RAW = REPO / "data" / "raw"
CATEGORIES = {"repeat_or_rephrase", "make_aware_with_correction", "make_aware_without_correction",
              "ask_for_clarification", "positive_feedback", "none"}


def _rows(folder: Path) -> tuple[list[dict], int]:
    rows, bad = [], 0
    for line in (folder / "conversations.jsonl").read_bytes().splitlines():
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            bad += 1
            continue
        rows.append(obj)
    return rows, bad


@pytest.fixture(scope="module")
def stored(sample_raw: Path) -> Path:
    return sample_raw


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (CORPORA / "dev_ids.txt").exists():
        pytest.skip("../shared/corpora is not available")
    out = tmp_path_factory.mktemp("raw")
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--corpora", str(CORPORA), "--labels",
                    str(REPO / "data" / "labels")], check=True, capture_output=True, text=True, timeout=120)
    return out


def _real(rows: list[dict]) -> list[dict]:
    return [r for r in rows if isinstance(r, dict) and r.get("source") in ("wildchat-1m", "oasst1")]


def test_mostly_real_conversations_with_marked_synthetic_cases(stored):
    rows, undecodable = _rows(stored)
    real = _real(rows)
    synthetic = [r for r in rows if isinstance(r, dict) and r.get("source") == "synthetic"]
    assert len(real) >= 150 and undecodable >= 1
    assert len({r["conversation_id"] for r in real}) == len(real)
    assert any(r.get("redacted") for r in synthetic)
    assert any(any(m.get("flagged") for m in r.get("openai_moderation") or [] if isinstance(m, dict))
               for r in synthetic)
    ids = [r.get("conversation_id") for r in rows if isinstance(r, dict)]
    assert any(n > 1 for n in Counter(ids).values())  # one duplicate for ingest to drop
    for r in real:  # the LMSYS row shape
        assert {"conversation_id", "model", "conversation", "turn", "language", "openai_moderation",
                "redacted"} <= set(r)
        assert r["turn"] == sum(m["role"] == "user" for m in r["conversation"])


def test_gold_labels_cover_the_real_conversations_only(stored):
    rows, _ = _rows(stored)
    real_ids = {r["conversation_id"] for r in _real(rows)}
    with open(stored / "gold_labels.csv", newline="", encoding="utf-8") as fh:
        gold = list(csv.DictReader(fh))
    assert len(gold) >= 500 and {g["category"] for g in gold} <= CATEGORIES
    assert {g["conversation_id"] for g in gold} <= real_ids
    assert all(g["part"].startswith("dev_part") for g in gold)


def test_licences_are_honoured(stored):
    notice = (stored / "NOTICE.md").read_text(encoding="utf-8")
    assert "ODC-BY 1.0" in notice and "2405.01470" in notice and "Apache-2.0" in notice


def test_only_development_rows_are_included(stored):
    """The real rows are exactly the labelled ones (data/labels, labelled only from dev_ids.txt) and, where
    ../shared is beside the clone, exactly dev_ids.txt."""
    rows, _ = _rows(stored)
    real = {r["conversation_id"] for r in _real(rows)}
    labelled = {g["conversation_id"] for part in sorted((REPO / "data" / "labels").glob("dev_part*.csv"))
                for g in csv.DictReader(part.open(newline="", encoding="utf-8"))}
    assert real == labelled
    if (CORPORA / "dev_ids.txt").exists():
        dev = {line.strip() for line in (CORPORA / "dev_ids.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
        assert real == dev


def test_the_builder_reproduces_the_stored_sample(built, stored):
    for name in ("conversations.jsonl", "gold_labels.csv", "NOTICE.md"):
        assert (built / name).read_bytes() == (stored / name).read_bytes(), name


def test_ingest_keeps_most_of_it(stored, tmp_path):
    from natfeed.data.ingest import run_ingest
    from natfeed.params import IngestParams

    report = run_ingest(stored / "conversations.jsonl", tmp_path / "c.parquet", IngestParams(detect_language=False))
    rows, _ = _rows(stored)
    assert report["rows_kept"] >= 0.6 * report["rows_read"] and report["rows_kept"] >= len(_real(rows)) - 5
    assert report["rows_read"] == report["rows_kept"] + report["rows_rejected"] + report["rows_filtered"]
    assert report["rows_duplicate"] == 1 and report["rows_rejected"] >= 8
