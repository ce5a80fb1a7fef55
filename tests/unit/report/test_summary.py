"""The run summary: short, readable, honest about stages that did not run."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from natfeed.params.paths import PathsParams
from natfeed.report.summary import MAX_LINES, WIDTH, build_summary, fmt

CATS = {"repeat_or_rephrase": 5, "make_aware_with_correction": 2, "make_aware_without_correction": 1,
        "ask_for_clarification": 1, "positive_feedback": 1}
REPORTS = {
    "ingest": {"rows_read": 12, "rows_kept": 10, "rows_rejected": 1, "rows_filtered": 1, "rows_duplicate": 0},
    "extract": {"conversations": 10, "rows": 10, "user_turns": 30, "extractor": "heuristic-1.0.0",
                "rows_per_category": CATS},
    "extract_quality": {"n_turns": 30, "detection": {"f1": 0.6}, "micro": {"f1": 0.5},
                        "never_tuned": {"n_turns": 20, "detection": {"f1": 0.5412}, "micro": {"f1": 0.4656}},
                        "tuned": {"n_turns": 10, "detection": {"f1": 0.7}, "micro": {"f1": 0.6}}},
    "validate": {"passed": False, "failed_checks": 1, "feedback_rows": 10,
                 "failures": [{"message": "positive:negative ratio 1:9 = 0.111 outside [0.2, 5]"}]},
    "build_kto": {"kto_train_rows": 4, "kto_test_rows": 2, "desirable": 3, "undesirable": 3, "sft_train_rows": 2,
                  "sft_test_rows": 1},
    "train": {"base_model": "models/base", "seconds": 12.5, "sft": {"steps": 3, "loss_first": 2.0, "loss_last": 1.5},
              "kto": {"steps": 2, "loss_first": 0.5, "loss_last": 0.49}},
    "evaluate": {"primary_metric": {"name": "kto_reward_accuracy", "value": 0.6739130434782609, "ci_low": 0.4,
                                    "ci_high": 0.9, "comparison": "policy_vs_sft"},
                 "kto_reward": {"policy_vs_sft": {"n": 6}}, "sanity": {"policy": {"right": 4, "n": 4}}},
    "register": {"model_name": "natfeed-policy", "version": 3, "aliases": ["challenger"], "champion_version": 2,
                 "decision": {"action": "keep", "passed": False, "failures": ["kto_reward_accuracy 0.67 < 0.7"]}},
}


def _paths(tmp_path: Path, reports: dict) -> PathsParams:
    (tmp_path / "reports").mkdir()
    for name, body in reports.items():
        (tmp_path / "reports" / f"{name}.json").write_text(json.dumps(body))
    feedback = tmp_path / "feedback.parquet"
    pd.DataFrame({"conversation_id": ["a", "a", "b", "c"]}).to_parquet(feedback)
    return PathsParams(reports_dir=str(tmp_path / "reports"), feedback=str(feedback),
                       feedback_rejected=str(tmp_path / "feedback.rejected.parquet"),
                       feedback_report=str(tmp_path / "feedback.report.json"))


def test_summary_says_what_happened_in_few_short_lines(tmp_path: Path) -> None:
    lines = build_summary(_paths(tmp_path, REPORTS), "sqlite:///mlruns/mlflow.db", "abc12345")
    text = "\n".join(lines)
    assert len(lines) <= MAX_LINES and max(map(len, lines)) <= WIDTH
    assert "12 rows read: 10 kept, 1 rejected, 1 filtered" in text
    assert "30.0% of 10 conversations have feedback" in text  # 3 distinct conversations in the table
    assert "detection F1 0.541" in text and "category F1 0.466" in text and "validation gold" in text
    assert "FAILED" in text and "ratio 1:9" in text
    assert "0.674 (95% CI 0.4–0.9" in text and "0.6739130434782609" not in text
    assert "v3" in text and "champion v2" in text and "gate failed" in text
    assert "mlflow ui --backend-store-uri sqlite:///mlruns/mlflow.db" in text


def test_stages_that_did_not_run_are_named(tmp_path: Path) -> None:
    lines = build_summary(_paths(tmp_path, {"ingest": REPORTS["ingest"]}), "sqlite:///x.db")
    text = "\n".join(lines)
    assert "not run (no reports/train.json" in text and "not run (no reports/register.json" in text
    assert max(map(len, lines)) <= WIDTH


def test_fmt() -> None:
    assert fmt(0.6739130434782609) == "0.674" and fmt(12345) == "12,345" and fmt(None) == "-" and fmt(True) == "yes"


def test_lines_older_than_an_upstream_rerun_are_marked_with_their_commit(tmp_path: Path) -> None:
    paths = _paths(tmp_path, REPORTS)
    for name in REPORTS:  # run facts as write_report leaves them: ingest and extract reran after the rest
        when = "2026-12-07T10:00:00+00:00" if name in ("ingest", "extract") else "2026-12-06T09:00:00+00:00"
        (tmp_path / "reports" / f"{name}.timings.json").write_text(
            json.dumps({"written_at": when, "git_commit": f"{len(name):03d}4567890abc", "git_dirty": False}))
    lines = build_summary(paths, "sqlite:///x.db")
    marked = [line for line in lines if "[stale" in line]
    assert len(marked) == 6 and all("before extract reran" in line for line in marked)
    assert any(line.startswith("train      [stale: from 0054567, before extract reran] SFT 3 steps") for line in lines)
    assert not any("[stale" in line for line in lines if line.startswith(("data ", "feedback ")))
    assert max(map(len, lines)) <= WIDTH


def test_evaluate_shows_policy_vs_base_beside_the_primary_comparison(tmp_path: Path) -> None:
    reports = {**REPORTS, "evaluate": {**REPORTS["evaluate"], "kto_reward": {
        "policy_vs_sft": {"n": 6}, "policy_vs_base": {"accuracy": 0.8333, "ci_low": 0.44, "ci_high": 0.97, "n": 6}}}}
    text = "\n".join(build_summary(_paths(tmp_path, reports), "sqlite:///x.db"))
    assert "policy_vs_base 0.833 (CI 0.44–0.97)" in text


def test_an_llm_extraction_shows_its_cache_hits_and_cost(tmp_path: Path) -> None:
    llm = {**REPORTS["extract"], "extractor": "openai-turn:m", "requests": 6, "cache_hits": 30,
           "prompt_tokens": 12000, "generated_tokens": 40, "estimated_cost": 0.0244, "cost_currency": "USD"}
    text = "\n".join(build_summary(_paths(tmp_path, {**REPORTS, "extract": llm}), "sqlite:///m.db", "abc"))
    assert "6 requests sent, 30 answered from the cache" in text and "~0.0244 USD" in text
    (tmp_path / "h").mkdir()
    heuristic = "\n".join(build_summary(_paths(tmp_path / "h", REPORTS), "sqlite:///m.db", "abc"))
    assert "answered from the cache" not in heuristic


def test_the_summary_says_what_was_redacted_or_that_redaction_is_off(tmp_path: Path) -> None:
    ingest = {**REPORTS["ingest"], "redaction": "presidio", "redacted": {"EMAIL_ADDRESS": 14, "PHONE_NUMBER": 9},
              "conversations_redacted": 12}
    text = "\n".join(build_summary(_paths(tmp_path, {**REPORTS, "ingest": ingest}), "sqlite:///m.db", "abc"))
    assert "23 personal data / secrets replaced in 12 conversations: EMAIL_ADDRESS 14, PHONE_NUMBER 9" in text
    (tmp_path / "off").mkdir()
    off = {**REPORTS["ingest"], "redaction": "off", "redacted": {}}
    text = "\n".join(build_summary(_paths(tmp_path / "off", {**REPORTS, "ingest": off}), "sqlite:///m.db", "abc"))
    assert "redaction OFF" in text
