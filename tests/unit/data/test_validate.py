import pandas as pd
import pytest

from natfeed.data.validate import summary, validate_tables
from natfeed.params import BalanceParams, ValidateParams
from tests.support.helpers import conversations_frame, feedback_frame

CATS = ["repeat_or_rephrase", "make_aware_with_correction", "make_aware_without_correction",
        "ask_for_clarification", "positive_feedback"]
LOOSE = ValidateParams(balance=BalanceParams(min_rows=5, min_category_share=0.0, max_category_share=1.0,
                                             min_pos_neg_ratio=0.0, max_pos_neg_ratio=100))


def _ok():
    spec = [(f"c{i}", 1 + i % 2, CATS[i % 5]) for i in range(20)]
    return conversations_frame({f"c{i}": 3 for i in range(20)}), feedback_frame(spec)


def _checks(report):
    return {(f["table"], f["column"], f["check"]) for f in report["failures"]}


def test_valid_tables_pass():
    conv, fb = _ok()
    report = validate_tables(conv, fb, LOOSE)
    assert report["passed"], summary(report)
    assert report["balance"]["positive"] == 4 and report["balance"]["negative"] == 16


def test_corrupted_feedback_fails_naming_each_check_column_and_example():
    conv, fb = _ok()
    fb.loc[0, "category"] = "praise"
    fb.loc[1, "label"] = 1          # label inconsistent with a negative category
    fb.loc[2, "feedback_text"] = "   "
    fb.loc[3, "confidence"] = 1.7
    fb.loc[4, "feedback_turn"] = 9  # beyond the conversation's 3 user turns
    fb = pd.concat([fb, fb.iloc[[5]]], ignore_index=True)  # duplicate (conversation_id, feedback_turn)
    report = validate_tables(conv, fb, LOOSE)
    assert not report["passed"]
    checks = _checks(report)
    assert ("feedback", "category", "isin(['repeat_or_rephrase', 'make_aware_with_correction', "
            "'make_aware_without_correction', 'ask_for_clarification', 'positive_feedback'])") in checks
    names = {c[2] for c in checks}
    assert {"label_matches_category", "non_blank", "less_than_or_equal_to(1.0)",
            "feedback_turn_inside_conversation"} <= names
    assert any("unique" in n or "duplicate" in n.lower() for n in names), names
    text = summary(report)
    assert "praise" in text and "confidence" in text and "FAILED" in text


def test_balance_checks_from_params():
    conv, fb = _ok()
    strict = ValidateParams(balance=BalanceParams(min_rows=100, max_category_share=0.1, min_pos_neg_ratio=0.5))
    report = validate_tables(conv, fb, strict)
    names = {f["check"] for f in report["failures"]}
    assert {"min_rows", "max_category_share", "pos_neg_ratio"} <= names
    assert "min_category_share" not in names


def test_conversation_schema_catches_bad_rows():
    conv, fb = _ok()
    conv.at[0, "turn"] = 7
    conv.at[1, "conversation"] = [{"role": "assistant", "content": "x"}]
    conv.loc[2, "conversation_id"] = "c3"   # duplicate id
    report = validate_tables(conv, fb, LOOSE)
    names = {(f["table"], f["check"]) for f in report["failures"]}
    assert ("conversations", "turn_equals_user_messages") in names
    assert ("conversations", "roles_alternate_and_contents_non_empty") in names
    assert any(t == "conversations" and "unique" in c for t, c in names)


@pytest.mark.parametrize("with_conversations", [True, False])
def test_cli_validate_exit_codes(tmp_path, with_conversations):
    from typer.testing import CliRunner

    from natfeed.cli import app

    conv, fb = _ok()
    fb.to_parquet(tmp_path / "fb.parquet")
    conv.to_parquet(tmp_path / "conv.parquet")
    params = tmp_path / "params.yaml"
    params.write_text("validate:\n  balance: {min_rows: 5, min_category_share: 0.0}\n"
                      "  expectations: {enabled: false}\n")
    args = ["validate", "--input", str(tmp_path / "fb.parquet"), "--params", str(params)]
    if with_conversations:
        args += ["--conversations", str(tmp_path / "conv.parquet")]
    assert CliRunner().invoke(app, args).exit_code == 0
    fb.loc[0, "category"] = "praise"
    fb.to_parquet(tmp_path / "bad.parquet")
    args[2] = str(tmp_path / "bad.parquet")
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1
    assert "category" in res.output and "praise" in res.output
