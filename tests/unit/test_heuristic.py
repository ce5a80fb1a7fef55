"""Tests of the multilingual heuristic feedback classifier."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from natfeed.categories import CATEGORIES
from natfeed.extract import lexicons as lx
from natfeed.extract.heuristic import HeuristicClassifier, HeuristicParams, TurnDecision, _CueMatcher

CLF = HeuristicClassifier()
REPLY = "The capital of Australia is Sydney, its largest city."
ASKED = ["What is the capital of Australia?"]
CODE_REPLY = "Here is the code:\n```python\nimport pandas as pd\ndf = pd.read_csv('a.csv')\n```"


def category(text: str, reply: str = REPLY, earlier: list[str] | None = None) -> str | None:
    return CLF.classify(text, reply, ASKED if earlier is None else earlier).category


@pytest.mark.parametrize(
    "text",
    [
        "Thanks, that's perfect!",  # en
        "谢谢，太好了",  # zh
        "Спасибо, отлично!",  # ru
        "¡Gracias, perfecto!",  # es
        "Merci, c'est parfait",  # fr
        "Danke, super!",  # de
        "Obrigado, ficou ótimo!",  # pt
        "Great, now translate it into French.",  # praise then a new request is still positive
    ],
)
def test_positive_feedback(text: str) -> None:
    assert category(text) == "positive_feedback"


@pytest.mark.parametrize(
    "text",
    [
        "That's wrong.",
        "不对",
        "Неправильно.",
        "Está mal.",
        "C'est faux.",
        "Das ist falsch.",
        "Está errado.",
        "it doesn't work",
        "还是不行",
        "Не работает",
    ],
)
def test_make_aware_without_correction(text: str) -> None:
    assert category(text) == "make_aware_without_correction"


@pytest.mark.parametrize(
    "text",
    [
        "No, the capital of Australia is Canberra, not Sydney.",  # en: negation + the right fact
        "我说的是首都，应该是堪培拉",  # zh
        "Я просил столицу, а не крупнейший город",  # ru
        "Te pedí la capital, debería ser Canberra",  # es
        "Je voulais la capitale, pas la plus grande ville",  # fr
        "Ich meinte die Hauptstadt, nicht die größte Stadt",  # de
        "Eu pedi a capital, deveria ser Canberra",  # pt
        "you forgot the population column",
    ],
)
def test_make_aware_with_correction(text: str) -> None:
    assert category(text) == "make_aware_with_correction"


@pytest.mark.parametrize(
    "text",
    [
        "Are you sure?",
        "你确定吗？",
        "Ты уверен?",
        "¿Estás seguro?",
        "Tu es sûr ?",
        "Bist du sicher?",
        "Tem certeza?",
        "What do you mean by largest city?",
        "why did you say Sydney?",
    ],
)
def test_ask_for_clarification(text: str) -> None:
    assert category(text) == "ask_for_clarification"


def test_identical_resend_is_repeat() -> None:
    d = CLF.classify("What is the capital of Australia?", REPLY, ASKED)
    assert d.category == "repeat_or_rephrase" and d.confidence >= 0.85 and d.cue.startswith("repeat:")


def test_rephrase_with_added_detail_is_repeat() -> None:
    earlier = ["suggest a weekly meal plan for weight loss"]
    assert (
        category("suggest a weekly meal plan for weight loss, I eat twice a day", "Sure: ...", earlier)
        == "repeat_or_rephrase"
    )


def test_rephrase_after_refusal() -> None:
    earlier = ["write a story where the villain wins"]
    refusal = "I'm sorry, but as an AI I cannot write that."
    assert (
        category("write a short story in which the villain wins in the end", refusal, earlier)
        == "repeat_or_rephrase"
    )


def test_try_again_is_repeat() -> None:
    assert category("try again", "Dear friends, ...", ["write an invitation email"]) == "repeat_or_rephrase"


def test_error_paste_after_code_is_make_aware() -> None:
    text = "Traceback (most recent call last):\n  File \"a.py\", line 2\nNameError: name 'pd' is not defined"
    assert category(text, CODE_REPLY, ["read a csv with pandas"]) == "make_aware_without_correction"


@pytest.mark.parametrize(
    ("text", "earlier"),
    [
        ("Now write a poem about cats", ASKED),  # new request
        ("What is the population of France?", ASKED),  # new topic, same question template
        ("continue", ["write a long story"]),  # continuation
        ("Next", ["list 50 animals"]),
        (
            "sorry, I meant one in a thousand, not a million",
            ["what are the odds of one in a million"],
        ),  # own typo
        ("What was FedEx revenue in 1986?", ["What was FedEx revenue in 1983?"]),  # template, new number
        ("how do I install it on Windows?", ["what is numpy"]),  # follow-up building on the reply
    ],
)
def test_hard_negatives(text: str, earlier: list[str]) -> None:
    assert category(text, "Here is the answer you asked for.", earlier) is None


def test_thanks_deep_inside_long_paste_is_not_feedback() -> None:
    text = (
        "Please summarise this letter:\n\nDear team,\n"
        + "the quarterly figures are attached. " * 60
        + "\nThanks, John"
    )
    assert category(text, "Sure, send me the letter.", ["can you summarise a letter?"]) is None


def test_greeting_reply_makes_next_turn_non_feedback() -> None:
    assert category("that's wrong, write me a poem", "Hello! How can I assist you today?", ["hi"]) is None


def test_priority_prefers_the_stronger_negative_signal() -> None:
    assert category("Thanks, but it doesn't work") == "make_aware_without_correction"
    assert category("thanks, but you forgot the population column") == "make_aware_with_correction"
    assert category("Are you sure? You forgot Canberra") == "make_aware_with_correction"


def test_decision_shape_and_cue() -> None:
    d = CLF.classify("Thanks!", REPLY, ASKED)
    assert isinstance(d, TurnDecision) and d.cue.startswith("lexicon:en:positive")
    none = CLF.classify("Tell me about koalas", REPLY, ASKED)
    assert none.category is None and 0.0 <= none.confidence <= 1.0


def test_min_confidence_turns_weak_signals_into_none() -> None:
    strict = HeuristicClassifier(HeuristicParams(min_confidence=0.99))
    assert strict.classify("Thanks!", REPLY, ASKED).category is None


def test_params_are_frozen_and_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        HeuristicParams(min_confidnce=0.3)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        HeuristicParams(min_confidence=1.5)
    p = HeuristicParams()
    with pytest.raises(ValidationError):
        p.min_confidence = 0.1  # type: ignore[misc]


def _naive_first(table: lx.Table, text: str) -> tuple[int, int] | None:
    best = None
    for lang, frags in table.items():
        for frag in frags:
            body = rf"(?<!\w)(?:{frag})(?!\w)" if lang in lx.SPACED else frag
            m = re.search(body, text)
            if m and (best is None or (m.start(), -m.end()) < (best[0], -best[1])):
                best = (m.start(), m.end())
    return best


SAMPLES = [
    "thanks a lot, that's great",
    "that's wrong and it doesn't work",
    "i said the capital, you forgot it",
    "are you sure? what do you mean",
    "спасибо, но это неправильно",
    "谢谢，不过你说错了",
    "c'est faux, merci",
    "no such thing",
    "it is right now",
    "nothing works here",
    "je voulais dire autre chose",
]


@pytest.mark.parametrize("table", [lx.POSITIVE_ANY, lx.COMPLAINT_ANY, lx.CORRECTION_ANY, lx.CLARIFY_ANY])
def test_cue_matcher_agrees_with_naive_search(table: lx.Table) -> None:
    matcher = _CueMatcher(table)
    for text in SAMPLES:
        got = matcher.search(text)
        assert (None if got is None else got[:2]) == _naive_first(table, text), text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000), st.text(max_size=500), st.lists(st.text(max_size=300), max_size=4))
def test_classify_never_raises_on_arbitrary_text(text: str, reply: str, earlier: list[str]) -> None:
    d = CLF.classify(text, reply, earlier)
    assert d.category is None or d.category in CATEGORIES
    assert 0.0 <= d.confidence <= 1.0
    assert isinstance(d.cue, str) and d.cue


_MATCHERS = {id(t): _CueMatcher(t) for t in (lx.POSITIVE_ANY, lx.COMPLAINT_ANY)}
WORDS = st.sampled_from(
    [
        "thanks",
        "wrong",
        "no",
        "not",
        "work",
        "sure",
        "that's",
        "it",
        "you",
        "forgot",
        "спасибо",
        "不对",
        "great",
        "doesn't",
        "are",
        "mean",
        "x",
        "the",
        "should",
        "be",
        ",",
        "?",
        "!",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(WORDS, max_size=12))
def test_cue_matcher_agrees_with_naive_search_on_cue_soup(words: list[str]) -> None:
    text = " ".join(words)
    for table in (lx.POSITIVE_ANY, lx.COMPLAINT_ANY):
        got = _MATCHERS[id(table)].search(text)
        assert (None if got is None else got[:2]) == _naive_first(table, text), text
