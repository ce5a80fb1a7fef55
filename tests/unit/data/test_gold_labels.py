import pytest

from natfeed.data.extract_quality import GoldError, compare, load_gold, predictions
from tests.support.helpers import feedback_frame


def _gold(tmp_path, text):
    f = tmp_path / "g.csv"
    f.write_text(text)
    return f


def test_load_and_compare(tmp_path):
    g = load_gold(_gold(tmp_path, "conversation_id,user_turn,category\n"
                                   "a,2,positive_feedback\na,3,none\nb,2,make_aware_with_correction\nb,3,none\n"))
    # extracted: a turn 2 right (feedback_turn 1), b turn 3 spurious; b turn 2 missed
    fb = feedback_frame([("a", 1, "positive_feedback"), ("b", 2, "repeat_or_rephrase")])
    pred = predictions(fb, g)
    assert pred == {("a", 2): "positive_feedback", ("a", 3): "none", ("b", 2): "none",
                    ("b", 3): "repeat_or_rephrase"}
    q = compare(fb, g)
    assert q["micro"]["precision"] == pytest.approx(0.5)
    assert q["micro"]["recall"] == pytest.approx(0.5)
    assert q["detection"]["f1"] == pytest.approx(0.5)


@pytest.mark.parametrize(("body", "msg"), [
    ("a,1,none\n", "user_turn 1"),
    ("a,2,praise\n", "unknown category"),
    ("a,2,none\na,2,none\n", "duplicate"),
])
def test_bad_gold_files(tmp_path, body, msg):
    with pytest.raises(GoldError, match=msg):
        load_gold(_gold(tmp_path, "conversation_id,user_turn,category\n" + body))


def test_split_quality_separates_tuned_and_never_tuned_parts(tmp_path):
    from natfeed.data.extract_quality import load_gold_parts, split_quality

    gold_csv = tmp_path / "gold.csv"
    gold_csv.write_text("conversation_id,user_turn,category,part,note\n"
                        "a,2,positive_feedback,dev_part1,\n"
                        "b,2,make_aware_without_correction,dev_part4,\n"
                        "b,3,none,dev_part4,\n"
                        "c,2,repeat_or_rephrase,dev_part9,\n")
    fb = feedback_frame([("a", 1, "positive_feedback"), ("b", 2, "positive_feedback"), ("c", 1, "repeat_or_rephrase")])
    result = split_quality(fb, load_gold(gold_csv), load_gold_parts(gold_csv), ["dev_part1"],
                           {"a": "English", "b": "Chinese", "c": "English"})
    report, details = result["report"], result["details"]
    assert report["n_turns"] == 4 and report["tuned"]["n_turns"] == 1 and report["never_tuned"]["n_turns"] == 3
    assert report["tuned"]["detection"]["f1"] == 1.0
    assert report["never_tuned"]["micro"]["precision"] == 0.5  # b turn 3 is wrongly feedback; c is right
    assert report["never_tuned_parts"] == ["dev_part4", "dev_part9"]
    assert list(details["per_part"]) == ["dev_part1", "dev_part4", "dev_part9"]
    assert details["per_language"]["other"]["n_turns"] == 2
    assert result["records"] == [{"actual": "make_aware_without_correction", "predicted": "none"},  # validation only
                                 {"actual": "none", "predicted": "positive_feedback"},
                                 {"actual": "repeat_or_rephrase", "predicted": "repeat_or_rephrase"}]


def test_confusion_records_leave_out_turns_both_call_none():
    from natfeed.data.extract_quality import confusion_records

    gold = {("a", 2): "none", ("a", 3): "none", ("b", 2): "positive_feedback"}
    pred = {("a", 2): "none", ("a", 3): "positive_feedback", ("b", 2): "none"}
    assert confusion_records(gold, pred) == [{"actual": "none", "predicted": "positive_feedback"},
                                             {"actual": "positive_feedback", "predicted": "none"}]
