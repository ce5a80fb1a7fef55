import pytest
from hypothesis import given
from hypothesis import strategies as st

from natfeed.core.categories import (
    CATEGORIES,
    CODES,
    PRIORITY,
    feedback_turn_to_user_turn,
    label_of,
    stronger,
    user_turn_to_feedback_turn,
)


def test_codes_follow_paper_order():
    assert [CODES[c] for c in CATEGORIES] == ["UR1", "UR2", "UR3", "UR4", "UR5"]
    assert CODES["positive_feedback"] == "UR5"
    assert CODES["make_aware_with_correction"] == "UR2"


def test_labels():
    assert label_of("positive_feedback") == 1
    assert {label_of(c) for c in CATEGORIES[:4]} == {-1}
    with pytest.raises(ValueError, match="unknown feedback category"):
        label_of("praise")


@given(st.integers(min_value=2, max_value=10_000))
def test_turn_conversion_round_trips(user_turn):
    ft = user_turn_to_feedback_turn(user_turn)
    assert ft == user_turn - 1
    assert feedback_turn_to_user_turn(ft) == user_turn


def test_turn_one_is_never_feedback():
    with pytest.raises(ValueError):
        user_turn_to_feedback_turn(1)
    with pytest.raises(ValueError):
        feedback_turn_to_user_turn(0)


def test_priority_rule():
    assert stronger("positive_feedback", "make_aware_with_correction") == "make_aware_with_correction"
    assert stronger("repeat_or_rephrase", "make_aware_without_correction") == "make_aware_without_correction"
    assert stronger("ask_for_clarification", "repeat_or_rephrase") == "repeat_or_rephrase"
    assert sorted(PRIORITY) == sorted(CATEGORIES)
