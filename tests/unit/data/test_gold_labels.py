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
