"""Distribution checks (great-expectations): bounds, drift vs a baseline, Data Docs, the profile.

GX is slow to import (~5 s once), so the frames are tiny and each test makes at most two runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from natfeed.data.expectations import (
    ExpectationsParams,
    load_baseline,
    profile,
    run_expectations,
    save_baseline,
)
from tests.support.helpers import conversations_frame, feedback_frame

LANGS = ["English"] * 12 + ["Chinese"] * 5 + ["German"] * 2 + ["unknown"]
CATS = ["repeat_or_rephrase"] * 4 + ["make_aware_with_correction"] * 3 + ["positive_feedback"] * 3


def _frames(cats: list[str] = CATS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """20 conversations of 3 user turns in 4 languages; one feedback row on each of the first len(cats)."""
    conv = conversations_frame({f"c{i}": 3 for i in range(len(LANGS))}).assign(language=LANGS)
    return conv, feedback_frame([(f"c{i}", 1, cat) for i, cat in enumerate(cats)])


def _columns(failures: list[dict]) -> set[str]:
    return {f["column"] for f in failures}


@pytest.mark.slow
def test_passing_case_builds_data_docs_and_leaves_no_gx_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    conv, fb = _frames()
    result = run_expectations(conv, fb, ExpectationsParams(), None, tmp_path / "docs")
    assert result.success, result.failures
    assert result.failures == []
    assert result.docs_index == (tmp_path / "docs" / "index.html").resolve()
    html = result.docs_index.read_text(encoding="utf-8")
    assert "conversations" in html and "feedback" in html
    assert result.evaluated["conversations"] >= 6 and result.evaluated["feedback"] >= 3
    assert result.statistics["feedback_rate"] == 0.5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs"]  # no gx/ folder


def test_null_languages_fail_naming_the_column(tmp_path: Path) -> None:
    conv, fb = _frames()
    conv.loc[:4, "language"] = None  # 5 of 20 rows
    result = run_expectations(conv, fb, ExpectationsParams(max_null_rate=0.05), None, tmp_path)
    assert not result.success
    nulls = [f for f in result.failures if f["expectation"] == "expect_column_values_to_not_be_null"]
    assert len(nulls) == 1
    assert nulls[0]["suite"] == "conversations" and nulls[0]["column"] == "language"
    assert nulls[0]["observed"] == pytest.approx(0.25)
    assert nulls[0]["bounds"] == [None, 0.05]
    assert "'language'" in nulls[0]["message"] and "0.25" in nulls[0]["message"]
    json.dumps(result.failures)  # readable and serialisable


def test_feedback_rate_out_of_bounds_fails(tmp_path: Path) -> None:
    conv, fb = _frames()
    result = run_expectations(conv, fb, ExpectationsParams(feedback_rate=(0.6, 2.0)), None, tmp_path)
    assert not result.success
    assert _columns(result.failures) == {"feedback_rows"}
    assert result.failures[0]["observed"] == pytest.approx(0.5)
    assert result.failures[0]["bounds"] == [0.6, 2.0]


def test_drift_beyond_tolerance_fails_and_within_passes(tmp_path: Path) -> None:
    conv, fb = _frames()
    baseline = profile(conv, fb)
    near = CATS[:-1] + ["repeat_or_rephrase"]  # one row moves: shares change by 0.1
    params = ExpectationsParams(drift_tolerance=0.15)
    ok = run_expectations(conv, _frames(near)[1], params, baseline, tmp_path / "near")
    assert ok.success, ok.failures
    assert ok.evaluated == {"conversations": 8 + 2 + 4, "feedback": 3 + 5}  # + drift: turns, rate, 4 languages, 5 shares
    far = run_expectations(conv, _frames(["positive_feedback"] * 10)[1], params, baseline, tmp_path / "far")
    assert not far.success
    assert _columns(far.failures) == {"category=repeat_or_rephrase", "category=make_aware_with_correction",
                                      "category=positive_feedback"}
    positive = next(f for f in far.failures if f["column"] == "category=positive_feedback")
    assert positive["observed"] == 1.0 and positive["bounds"] == [pytest.approx(0.15), pytest.approx(0.45)]


def test_empty_feedback_is_a_clear_failure(tmp_path: Path) -> None:
    conv, fb = _frames()
    result = run_expectations(conv, fb.iloc[:0], ExpectationsParams(), None, tmp_path)
    assert not result.success
    rows = [f for f in result.failures if f["suite"] == "feedback"]
    assert [(f["expectation"], f["observed"]) for f in rows] == [("expect_table_row_count_to_be_between", 0)]
    assert "feedback_rows" in _columns(result.failures)  # the rate per conversation is 0 too
    assert result.statistics["category_share"]["positive_feedback"] is None
    assert result.docs_index.exists()


def test_profile_on_a_hand_computed_example() -> None:
    conv = conversations_frame({"a": 1, "b": 2, "c": 3, "d": 6}).assign(
        language=["English", "English", "Chinese", None], flagged=[True, False, False, False])
    fb = feedback_frame([("a", 1, "repeat_or_rephrase"), ("b", 1, "repeat_or_rephrase"),
                         ("b", 2, "positive_feedback")]).assign(confidence=[0.5, 0.7, 0.9])
    p = profile(conv, fb)
    assert p["conversations"] == 4 and p["feedback_rows"] == 3
    assert p["null_rate"]["conversations.language"] == 0.25 and p["null_rate"]["feedback.model"] == 0.0
    assert p["languages"] == 2
    assert p["language_share"] == {"English": 0.5, "Chinese": 0.25}
    assert p["user_turns"] == {"mean": 3.0, "p50": 2.5, "p90": 5.1, "p99": 5.91, "max": 6.0}
    assert p["feedback_rate"] == 0.75 and p["conversations_with_feedback"] == 0.5
    assert p["category_share"] == {"repeat_or_rephrase": 0.666667, "make_aware_with_correction": 0.0,
                                   "make_aware_without_correction": 0.0, "ask_for_clarification": 0.0,
                                   "positive_feedback": 0.333333}
    assert p["mean_confidence"] == 0.7 and p["mean_feedback_turn"] == pytest.approx(4 / 3, abs=1e-6)
    assert p["flagged_share"] == 0.25 and p["redacted_share"] == 0.0
    json.dumps(p)


def test_baseline_round_trip_and_errors(tmp_path: Path) -> None:
    assert load_baseline(tmp_path / "missing.json") is None
    p = profile(*_frames())
    path = save_baseline(p, tmp_path / "reports" / "baseline.json")
    assert load_baseline(path) == p
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_baseline(path)


def test_params_reject_unknown_keys_and_bad_bounds() -> None:
    with pytest.raises(ValidationError, match="max_nul_rate"):
        ExpectationsParams.model_validate({"max_nul_rate": 0.1})
    with pytest.raises(ValidationError, match="not \\[min, max\\]"):
        ExpectationsParams(feedback_rate=(2.0, 0.5))
    with pytest.raises(ValidationError, match="unknown categories"):
        ExpectationsParams(category_share={"praise": (0.1, 0.5)})
    assert ExpectationsParams.model_validate({"category_share": {"positive_feedback": [0.1, 0.5]}}).category_share == {
        "positive_feedback": (0.1, 0.5)}
