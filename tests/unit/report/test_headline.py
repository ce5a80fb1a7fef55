"""Headline metrics: few numeric keys per stage, read from the full reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from natfeed.report.headline import HEADLINES, headline, lookup, rounded, write_headline


def test_lookup_follows_dotted_paths_and_misses_cleanly() -> None:
    report = {"a": {"b": {"c": 3}}, "x": None}
    assert lookup(report, "a.b.c") == 3
    assert lookup(report, "a.b.missing") is None and lookup(report, "x.y") is None


@pytest.mark.parametrize(("value", "expected"), [(0.67391304, 0.674), (1234.5678, 1230.0), (0.0012345, 0.00123),
                                                 (0, 0), (7, 7), (-0.98765, -0.988)])
def test_rounded_keeps_three_significant_digits(value: float, expected: float) -> None:
    assert rounded(value) == expected


def test_headline_is_numbers_only_and_drops_missing_keys() -> None:
    report = {"primary_metric": {"value": 0.8333333, "ci_low": 0.4366, "ci_high": None},
              "sanity": {"policy": {"rate": 1.0}}}
    assert headline("evaluate", report) == {"acc": 0.833, "ci_low": 0.437, "sanity": 1.0}
    reg = headline("register", {"version": "7", "champion_version": 7, "promoted": True, "model_name": "m"})
    assert reg == {"version": 7, "champion": 7, "promoted": 1}


def test_about_twenty_keys_in_all() -> None:
    assert 15 <= sum(len(keys) for keys in HEADLINES.values()) <= 25
    assert all(len(key) <= 9 for keys in HEADLINES.values() for key in keys)  # short columns


def test_write_headline(tmp_path) -> None:
    path = write_headline(str(tmp_path / "metrics"), "ingest", {"rows_read": 5, "rows_kept": 4, "rows_rejected": 1,
                                                                 "rejected_by_reason": {"x": 1}})
    assert json.loads(Path(path).read_text()) == {"rows_in": 5, "kept": 4, "rejected": 1}
