"""Tests of the turn-level extraction metrics."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from natfeed.core.categories import CATEGORIES, NONE
from natfeed.data.extract_quality import LABELS, extraction_quality, prf

GOLD = {
    ("a", 2): "positive_feedback",
    ("a", 3): "make_aware_with_correction",
    ("b", 2): "none",
    ("b", 3): "repeat_or_rephrase",
    ("c", 2): "none",
}
PRED = {
    ("a", 2): "positive_feedback",  # right
    ("a", 3): "make_aware_without_correction",  # detected, wrong category
    ("b", 2): "ask_for_clarification",  # false alarm
    ("b", 3): "none",  # missed
    ("c", 2): "none",
}


def test_hand_computed_example() -> None:
    q = extraction_quality(GOLD, PRED)
    assert q["n_turns"] == 5 and q["n_gold_feedback"] == 3 and q["n_pred_feedback"] == 3
    # detection: 2 of 3 predicted feedback turns are gold feedback; 2 of 3 gold feedback found
    assert q["detection"] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3})
    # micro: only ("a", 2) has the right category
    assert q["micro"] == pytest.approx({"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3})
    pos = q["per_category"]["positive_feedback"]
    assert (pos["precision"], pos["recall"], pos["f1"], pos["support"]) == (1.0, 1.0, 1.0, 1)
    corr = q["per_category"]["make_aware_with_correction"]
    assert (corr["precision"], corr["recall"], corr["support"]) == (0.0, 0.0, 1)
    assert q["per_category"]["ask_for_clarification"]["support"] == 0
    assert q["macro_f1"] == pytest.approx(1 / 3)  # mean over the 3 categories with support
    assert q["confusion"]["make_aware_with_correction"]["make_aware_without_correction"] == 1
    assert q["confusion"][NONE][NONE] == 1
    assert {"actual": "repeat_or_rephrase", "predicted": NONE, "count": 1} in q["confusion_rows"]
    assert sum(r["count"] for r in q["confusion_rows"]) == 5
    json.dumps(q)  # serialisable


def test_confusion_has_every_label() -> None:
    q = extraction_quality(GOLD, PRED)
    assert list(q["confusion"]) == list(LABELS) == [*CATEGORIES, NONE]
    assert all(list(row) == list(LABELS) for row in q["confusion"].values())


def test_mismatched_turns_and_unknown_labels_raise() -> None:
    with pytest.raises(ValueError, match="same turns"):
        extraction_quality(GOLD, {k: v for k, v in PRED.items() if k != ("c", 2)})
    with pytest.raises(ValueError, match="unknown labels"):
        extraction_quality({("a", 2): "praise"}, {("a", 2): "none"})


def test_no_feedback_anywhere_gives_zero_not_error() -> None:
    q = extraction_quality({("a", 2): NONE}, {("a", 2): NONE})
    assert q["micro"]["f1"] == 0.0 and q["detection"]["precision"] == 0.0


def test_prf_zero_denominators() -> None:
    assert prf(0, 0, 0) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert prf(1, 2, 4)["f1"] == pytest.approx(2 * 0.5 * 0.25 / 0.75)


labels = st.sampled_from(LABELS)


@given(st.dictionaries(st.integers(0, 50), st.tuples(labels, labels), min_size=1))
def test_scores_are_in_unit_interval(pairs: dict[int, tuple[str, str]]) -> None:
    gold = {k: g for k, (g, _) in pairs.items()}
    pred = {k: p for k, (_, p) in pairs.items()}
    q = extraction_quality(gold, pred)
    for block in (q["detection"], q["micro"], *q["per_category"].values()):
        assert (
            0.0 <= block["precision"] <= 1.0 and 0.0 <= block["recall"] <= 1.0 and 0.0 <= block["f1"] <= 1.0
        )
    assert q["micro"]["f1"] <= q["detection"]["f1"] + 1e-12


@given(st.dictionaries(st.integers(0, 50), labels, min_size=1))
def test_perfect_prediction_scores_one(gold: dict[int, str]) -> None:
    q = extraction_quality(gold, dict(gold))
    if any(v != NONE for v in gold.values()):
        assert q["micro"]["f1"] == 1.0 and q["detection"]["f1"] == 1.0 and q["macro_f1"] == 1.0
    assert sum(q["confusion"][v][v] for v in LABELS) == len(gold)


def test_without_gold_quality_is_unknown_not_zero() -> None:
    """Own logs without gold: no 0 F1 in the report, the DVC metrics, the summary or the dataset card."""
    import pandas as pd

    from natfeed.data.extract_quality import split_quality
    from natfeed.report.card import _quality_lines
    from natfeed.report.headline import headline
    from natfeed.report.summary import _quality

    feedback = pd.DataFrame({"conversation_id": ["c1"], "feedback_turn": [2], "category": ["positive_feedback"]})
    result = split_quality(feedback, {}, {}, ["dev_part1"], {"c1": "English"})
    report = result["report"]
    assert report["measured"] is False and report["detection"] is None and report["macro_f1"] is None
    assert headline("extract_quality", report) == {}  # no det_f1 0 in `dvc metrics show`
    assert "unknown" in _quality(report)[0] and " 0" not in _quality(report)[0]
    card = " ".join(_quality_lines(report))
    assert card.startswith("Unknown") and "| 0 |" not in card
    measured = split_quality(feedback, {("c1", 2): "positive_feedback"}, {}, [], {"c1": "English"})["report"]
    assert measured["measured"] is True and isinstance(measured["detection"]["f1"], float)
