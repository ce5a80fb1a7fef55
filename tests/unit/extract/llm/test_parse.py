"""Parsing the paper's answer shapes, turn labels, and matching spans back to user turns."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from natfeed.core.conversation import Conversation
from natfeed.extract.llm.parse import (
    PaperItem,
    ParseError,
    match_spans,
    parse_category,
    parse_paper_answer,
    parse_turn_label,
)
from natfeed.extract.llm.prompts import TURN_CHOICES

MAWC, MAWO, POS = "make_aware_with_correction", "make_aware_without_correction", "positive_feedback"


@pytest.mark.parametrize("name, expected", [
    ("UR2", MAWC), ("ur2", MAWC), ("UR2: make aware with correction", MAWC), ("UR2 - Make Aware with Correction", MAWC),
    ("Make Aware with Correction", MAWC), ("make_aware_with_correction", MAWC), ("Make Aware Without Correction", MAWO),
    ("UR3", MAWO), ("Positive Feedback", POS), ("UR1: Repeat or Rephrase", "repeat_or_rephrase"),
    ("ask for clarification", "ask_for_clarification"), ("none", None), ("No feedback", None),
])
def test_category_spellings(name, expected):
    assert parse_category(name) == expected


def test_category_conflict_and_unknown():
    with pytest.raises(ParseError, match="conflicting"):
        parse_category("UR2: Positive Feedback")
    with pytest.raises(ParseError, match="unknown_category"):
        parse_category("sarcasm")


SHAPES = {
    "json list": '[{"pattern": "UR2: Make Aware with Correction", "text": "No, use tabs"}, '
                 '{"pattern": "UR5: Positive Feedback", "text": "thanks"}]',
    "several objects": 'Here is the feedback:\n{"User Response Pattern": "UR2", "User Response Text": "No, use tabs"}\n'
                       '{"User Response Pattern": "Positive Feedback", "User Response Text": "thanks"}\nHope it helps.',
    "code fence": '```json\n[{"category": "make_aware_with_correction", "span": "No, use tabs"},\n'
                  '{"category": "positive_feedback", "span": "thanks"}]\n```',
    "single quotes": "[{'pattern': 'UR2', 'text': 'No, use tabs'}, {'pattern': 'UR5', 'text': 'thanks'}]",
    "wrapper": '{"feedback": [{"pattern": "UR2", "text": "No, use tabs"}, {"pattern": "UR5", "text": "thanks"}]}',
    "stray text": 'Sure! The answer is [{"pattern": "UR2", "text": "No, use tabs"}, '
                  '{"pattern": "UR5", "text": "thanks"}] -- done',
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_paper_answer_shapes(shape):
    assert parse_paper_answer(SHAPES[shape]) == [PaperItem(MAWC, "No, use tabs"), PaperItem(POS, "thanks")]


def test_escaped_quotes_and_apostrophes():
    items = parse_paper_answer(r'[{"pattern": "UR2", "text": "it says \"Tricycle\" not \"Tricycles\""}]')
    assert items == [PaperItem(MAWC, 'it says "Tricycle" not "Tricycles"')]
    items = parse_paper_answer(r"{'pattern': 'UR3', 'text': 'that\'s wrong'}")
    assert items == [PaperItem(MAWO, "that's wrong")]


@pytest.mark.parametrize("text", ["[]", "No feedback.", "```json\n[]\n```", '[{"pattern": "none", "text": ""}]'])
def test_no_feedback_answers(text):
    assert parse_paper_answer(text) == []


@pytest.mark.parametrize("text, reason", [("", "empty"), ("   ", "empty"), ("I cannot help with that", "no_json"),
                                          ('[{"pattern": "sarcasm", "text": "x"}]', "bad_items"),
                                          ('{"pattern": "UR2"', "no_json")])
def test_paper_answer_failures(text, reason):
    with pytest.raises(ParseError) as err:
        parse_paper_answer(text)
    assert err.value.reason == reason


@given(st.text(max_size=200))
def test_parsers_never_raise_anything_but_parse_error(text):
    for fn in (parse_paper_answer, parse_turn_label):
        with contextlib.suppress(ParseError):
            fn(text)


@pytest.mark.parametrize("text, label", [
    ("none", "none"), ("positive_feedback", POS), (" positive_feedback\n", POS), ('"UR2"', MAWC),
    ("UR2: make aware with correction", MAWC), ('{"label": "ask_for_clarification"}', "ask_for_clarification"),
    ("Make Aware without Correction.", MAWO), ("Label: repeat_or_rephrase", "repeat_or_rephrase"),
])
def test_turn_labels(text, label):
    assert parse_turn_label(text, TURN_CHOICES) == label


@pytest.mark.parametrize("text, reason", [("", "empty"), ("maybe", "no_label"),
                                          ("positive_feedback or none", "ambiguous_label")])
def test_turn_label_failures(text, reason):
    with pytest.raises(ParseError) as err:
        parse_turn_label(text, TURN_CHOICES)
    assert err.value.reason == reason


def test_turn_label_outside_the_choices_is_rejected():
    with pytest.raises(ParseError):
        parse_turn_label("positive_feedback", ("none", MAWC))


CONV = Conversation("c", [
    {"role": "user", "content": "Thanks in advance! Write a   sorting function."},
    {"role": "assistant", "content": "def sort(x): return x. No, use tabs."},
    {"role": "user", "content": "No, use\nTABS and return a copy."},
    {"role": "assistant", "content": "Done."},
    {"role": "user", "content": "Perfect, thanks"},
])


def test_span_matching_normalises_whitespace_and_case():
    m = match_spans(CONV, [PaperItem(MAWC, "no, use tabs"), PaperItem(POS, '"perfect, thanks"')])
    assert [(t.user_turn, cat) for t, cat, _ in m.matched] == [(2, MAWC), (3, POS)] and not m.unmatched


def test_span_not_in_a_user_turn_from_the_second_on_is_never_emitted():
    items = [PaperItem(POS, "Thanks in advance"),  # in user turn 1 only: never feedback
             PaperItem(MAWC, "def sort(x)"),  # assistant text
             PaperItem(MAWO, "use spaces"),  # invented
             PaperItem(POS, "")]
    m = match_spans(CONV, items)
    assert m.matched == [] and m.unmatched == items


def test_two_spans_on_one_turn_keep_the_stronger_category():
    m = match_spans(CONV, [PaperItem("ask_for_clarification", "return a copy"), PaperItem(MAWC, "use tabs")])
    assert [(t.user_turn, cat) for t, cat, _ in m.matched] == [(2, MAWC)]


@given(st.text(min_size=1, max_size=30))
def test_emitted_spans_are_text_of_their_turn(span):
    from natfeed.extract.llm.parse import normalise

    for turn, _, text in match_spans(CONV, [PaperItem(POS, span)]).matched:
        assert normalise(text.strip().strip("\"'`")) in normalise(turn.user_text)
