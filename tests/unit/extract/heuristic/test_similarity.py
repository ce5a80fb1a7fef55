"""Tests of the fast text-similarity helpers used for rephrase detection."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from natfeed.extract.heuristic.similarity import (
    char_ngrams,
    containment,
    jaccard,
    new_tokens,
    normalize,
    overlap_profile,
    shared_content_words,
    text_similarity,
    tokens,
)


def test_identical_texts_score_one_up_to_case_and_spaces() -> None:
    assert text_similarity("What is the capital of France?", "what is  the capital of france?") == 1.0


def test_near_identical_resend_is_high_and_new_topic_is_low() -> None:
    a = "Write a poem about the sea at night"
    assert text_similarity(a, "Write a poem about the sea at night please") > 0.8
    assert text_similarity(a, "How do I install numpy on Windows?") < 0.2


def test_rephrase_scores_between_resend_and_new_topic() -> None:
    a = "Evaluate the optimal amount of gear inches for track cycling"
    b = "Assess the optimal amount of gear inches for track cycling"
    assert 0.6 < text_similarity(a, b) < 1.0


def test_chinese_similarity_works_without_spaces() -> None:
    assert text_similarity("帮我写一首关于春天的诗", "帮我写一首关于春天的诗，要押韵") > 0.6
    assert text_similarity("帮我写一首关于春天的诗", "今天天气怎么样") < 0.1


def test_very_different_lengths_are_rejected_cheaply() -> None:
    assert text_similarity("hi", "hi " + "x" * 400) == 0.0


def test_only_the_prefix_counts() -> None:
    a = "same start " * 10 + "tail one"
    b = "same start " * 10 + "completely different ending"
    assert text_similarity(a, b, limit=100) == 1.0


def test_jaccard_and_containment_hand_computed() -> None:
    a, b = frozenset("abc"), frozenset("bcde")
    assert jaccard(a, b) == 2 / 5
    assert containment(a, b) == 2 / 3
    assert jaccard(frozenset(), b) == 0.0 and containment(a, frozenset()) == 0.0


def test_overlap_profile_detects_resend_with_added_constraint() -> None:
    jac, cont = overlap_profile(
        "suggest a weekly meal plan for me. I eat twice a day", "suggest a weekly meal plan for me"
    )
    assert cont > 0.95 and jac < 0.8


def test_tokens_split_cjk_into_characters() -> None:
    assert tokens("Hello 你好 world") == frozenset({"hello", "你", "好", "world"})


def test_new_tokens_and_shared_words() -> None:
    assert new_tokens("revenue of FedEx in 1986", "revenue of FedEx in 1983") == frozenset({"1986"})
    assert shared_content_words("what is a membrane?", "use a membrane pump") == 1


def test_normalize_and_short_ngrams() -> None:
    assert normalize("  A\n\tB  ", 10) == "a b"
    assert char_ngrams("ab") == frozenset({"ab"})
    assert char_ngrams("") == frozenset()


@given(st.text(max_size=300), st.text(max_size=300))
def test_similarity_is_bounded_and_symmetric(a: str, b: str) -> None:
    s = text_similarity(a, b)
    assert 0.0 <= s <= 1.0
    assert s == text_similarity(b, a)


@given(st.text(min_size=1, max_size=300).filter(lambda t: t.strip()))
def test_text_is_fully_similar_to_itself(a: str) -> None:
    assert text_similarity(a, a) == 1.0
