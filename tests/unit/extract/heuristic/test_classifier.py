"""Tests of the multilingual heuristic feedback classifier."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from natfeed.core.categories import CATEGORIES
from natfeed.extract.heuristic import lexicons as lx
from natfeed.extract.heuristic.classifier import HeuristicClassifier, HeuristicParams, TurnDecision
from natfeed.extract.heuristic.cuematch import CueMatcher

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
    matcher = CueMatcher(table)
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


_MATCHERS = {id(t): CueMatcher(t) for t in (lx.POSITIVE_ANY, lx.COMPLAINT_ANY)}
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


# ---------------------------------------------------------------- optional sentence embeddings

NEUTRAL = "Here is the answer you asked for."
SLEEP = ("Give me some tips to improve my sleep quality", "tips for improving the quality of my sleep")
BATTERY = (
    "How can I make my laptop battery last longer?",
    "What can I do so that the battery of my laptop lasts longer?",
)
TEMPLATE = ("give me 10 names for a bakery", "give me 10 names for a bookstore")
EMB = HeuristicParams(use_embeddings=True)


def _stub_cosines(monkeypatch: pytest.MonkeyPatch, value: float) -> list[list[tuple[str, str]]]:
    """Replace the model by a constant cosine; returns the list of batches it was asked."""
    from natfeed.extract.heuristic import semantic

    calls: list[list[tuple[str, str]]] = []

    def fake(pairs: list[tuple[str, str]], chars: int) -> list[float]:
        calls.append(list(pairs))
        return [value] * len(pairs)

    monkeypatch.setattr(semantic, "cosines", fake)
    return calls


def test_embeddings_are_off_by_default() -> None:
    assert HeuristicParams().use_embeddings is False
    assert CLF.version.startswith("1.2.0+") and HeuristicClassifier(EMB).version != CLF.version


def test_the_version_follows_code_lexicons_and_params() -> None:
    from natfeed.extract.heuristic import version

    files = dict(version._sources())
    assert {"classifier.py", "lexicons.py", "cuematch.py", "similarity.py", "version.py"} <= set(files)
    base = version.heuristic_version(HeuristicParams(), files)
    assert base == CLF.version == HeuristicClassifier().version  # stable: the same inputs, the same version
    new_cue = {**files, "lexicons.py": files["lexicons.py"] + b"\nEXTRA = ('one more cue',)\n"}
    assert version.heuristic_version(HeuristicParams(), new_cue) != base
    assert version.heuristic_version(HeuristicParams(min_confidence=0.6), files) != base
    assert version.heuristic_version(HeuristicParams(use_embeddings=True), files).endswith(".minilm")


def test_default_path_never_imports_the_model_stack() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from natfeed.extract.base import TurnClassifierExtractor\n"
        "from natfeed.extract.heuristic.classifier import HeuristicClassifier\n"
        f"HeuristicClassifier().classify_batch([({SLEEP[1]!r}, 'ok', [{SLEEP[0]!r}])])\n"
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'natfeed.extract.heuristic.semantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("cosine", "expected"), [(0.95, "repeat_or_rephrase"), (0.5, None)])
def test_middle_band_turn_is_settled_by_the_cosine(monkeypatch: pytest.MonkeyPatch, cosine, expected) -> None:
    calls = _stub_cosines(monkeypatch, cosine)
    earlier, text = SLEEP
    assert CLF.classify(text, NEUTRAL, [earlier]).category is None  # trigrams alone: undecided -> none
    d = HeuristicClassifier(EMB).classify(text, NEUTRAL, [earlier])
    assert d.category == expected and calls == [[(text, earlier)]]
    assert d.cue.startswith("semantic:") == (expected is not None)


@pytest.mark.parametrize(("cosine", "expected"), [(0.3, None), (0.95, "repeat_or_rephrase")])
def test_template_rephrase_is_vetoed_below_the_cosine(monkeypatch: pytest.MonkeyPatch, cosine, expected) -> None:
    _stub_cosines(monkeypatch, cosine)
    earlier, text = TEMPLATE
    assert CLF.classify(text, NEUTRAL, [earlier]).category == "repeat_or_rephrase"
    assert HeuristicClassifier(EMB).classify(text, NEUTRAL, [earlier]).category == expected


def test_embeddings_are_asked_only_when_the_answer_can_change_the_category(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = _stub_cosines(monkeypatch, 0.95)
    clf = HeuristicClassifier(EMB)
    assert clf.classify("What is the capital of Australia?", REPLY, ASKED).cue.startswith("repeat:")
    assert clf.classify("Thanks, that's perfect!", REPLY, ASKED).category == "positive_feedback"
    earlier, text = SLEEP  # a stronger negative signal wins whatever the cosine says
    # "That's wrong." followed by what the user wants is a correction
    assert clf.classify(f"That's wrong. {text}", NEUTRAL, [earlier]).category == "make_aware_with_correction"
    assert calls == []


def test_embeddings_are_not_asked_about_non_latin_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stub_cosines(monkeypatch, 0.3)
    earlier, text = "придумай слоган о дружбе россии и украины", "придумай слоган о братстве народов россии и украины"
    assert CLF.classify(text, NEUTRAL, [earlier]).category == "repeat_or_rephrase"
    assert HeuristicClassifier(EMB).classify(text, NEUTRAL, [earlier]).category == "repeat_or_rephrase"
    assert calls == []


def test_classify_batch_embeds_once_and_agrees_with_classify(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _stub_cosines(monkeypatch, 0.95)
    clf = HeuristicClassifier(EMB)
    turns = [(SLEEP[1], NEUTRAL, [SLEEP[0]]), ("Thanks!", REPLY, ASKED), (TEMPLATE[1], NEUTRAL, [TEMPLATE[0]])]
    batch = clf.classify_batch(turns)
    assert len(calls) == 1 and len(calls[0]) == 2
    assert batch == [clf.classify(*t) for t in turns]


def test_extractor_hands_a_conversation_batch_to_classify_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    from natfeed.core.conversation import Conversation
    from natfeed.extract.base import TurnClassifierExtractor

    calls = _stub_cosines(monkeypatch, 0.95)
    convs = [
        Conversation.from_row(
            {
                "conversation_id": f"c{i}",
                "conversation": [
                    {"role": "user", "content": a},
                    {"role": "assistant", "content": NEUTRAL},
                    {"role": "user", "content": b},
                ],
            }
        )
        for i, (a, b) in enumerate([SLEEP, BATTERY])
    ]
    dets = TurnClassifierExtractor(HeuristicClassifier(EMB)).extract(convs)
    assert [(d.turn.conversation.conversation_id, d.category) for d in dets] == [
        ("c0", "repeat_or_rephrase"),
        ("c1", "repeat_or_rephrase"),
    ]
    assert len(calls) == 1 and len(calls[0]) == 2


def test_missing_model_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from natfeed.extract.heuristic import semantic

    monkeypatch.setattr(semantic, "_MODEL", None)
    monkeypatch.setattr(semantic, "MODEL_PACKAGE", "natfeed_no_such_model_package")
    with pytest.raises(semantic.EmbeddingsUnavailable, match="natfeed\\[embeddings\\]"):
        HeuristicClassifier(EMB).classify(SLEEP[1], NEUTRAL, [SLEEP[0]])


@pytest.fixture(scope="module")
def offline_model():
    """The bundled MiniLM, loaded afresh with every network connection refused."""
    import socket

    from natfeed.extract.heuristic import semantic

    pytest.importorskip(semantic.MODEL_PACKAGE, reason="the embeddings extra is not installed")

    def refuse(*args, **kwargs):
        raise OSError("network access during the embedding model load")

    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setattr(socket.socket, "connect", refuse)
    semantic._MODEL = None  # load it here, under the patches; it stays cached for the later tests
    try:
        model = semantic.load_model()
    finally:
        mp.undo()
    return model


@pytest.mark.slow
def test_model_loads_offline_once(offline_model) -> None:
    from natfeed.extract.heuristic import semantic

    assert semantic.is_loaded() and semantic.load_model() is offline_model
    (vector,) = semantic.embed(["a sentence"], 400).values()
    assert vector.shape == (384,) and abs(float(vector @ vector) - 1.0) < 1e-4
    near, far = semantic.cosines([(SLEEP[0], SLEEP[1]), (SLEEP[0], "the capital of Australia is Canberra")], 400)
    assert 0.85 < near <= 1.0001 and far < 0.3


@pytest.mark.slow
@pytest.mark.parametrize("pair", [SLEEP, BATTERY])
def test_semantic_rephrase_with_low_overlap_is_found_only_with_embeddings(offline_model, pair) -> None:
    earlier, text = pair
    assert CLF._similarity(text, earlier)[0] < HeuristicParams().rephrase_similarity  # little char overlap
    assert CLF.classify(text, NEUTRAL, [earlier]).category is None
    d = HeuristicClassifier(EMB).classify(text, NEUTRAL, [earlier])
    assert d.category == "repeat_or_rephrase" and d.cue.startswith("semantic:")


@pytest.mark.slow
def test_same_template_new_topic_is_not_a_rephrase_with_embeddings(offline_model) -> None:
    earlier, text = TEMPLATE
    assert CLF.classify(text, NEUTRAL, [earlier]).category == "repeat_or_rephrase"  # the false alarm
    assert HeuristicClassifier(EMB).classify(text, NEUTRAL, [earlier]).category is None


BASES = st.sampled_from([SLEEP[0], BATTERY[0], TEMPLATE[0], ASKED[0]])


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(
    st.one_of(st.text(max_size=600), st.builds(lambda b, s: f"{b} {s}", BASES, st.text(max_size=40))),
    st.text(max_size=300),
    st.lists(st.one_of(BASES, st.text(max_size=300)), max_size=3),
)
def test_classify_with_embeddings_keeps_its_contract(offline_model, text, reply, earlier) -> None:
    d = HeuristicClassifier(EMB).classify(text, reply, earlier)
    assert d.category is None or d.category in CATEGORIES
    assert 0.0 <= d.confidence <= 1.0 and d.cue


def test_cjk_rephrase_is_not_mistaken_for_a_new_template_request() -> None:
    # tokens() splits CJK into single characters: four changed ones are a rephrase, not "short words"
    earlier = ["日本の首都はどこですか"]
    assert category("日本の首都はどこにありますか", "日本の首都は大阪です。", earlier) == "repeat_or_rephrase"


def test_cjk_numerals_on_the_same_template_are_a_new_request() -> None:
    earlier = ["写一个创新创业PPT结束语八个字"]  # "... in eight characters" -> "... in four characters"
    assert category("写一个创新创业PPT结束语四个字", "踏实创新，薪火相传。", earlier) is None


# ---------------------------------------------------------------- issue 11: cases a new user hit


def test_negation_followed_by_the_right_answer_is_a_correction() -> None:
    assert category("That's wrong, the capital is Canberra.") == "make_aware_with_correction"
    assert category("No, that's not right.") == "make_aware_without_correction"


def test_a_second_complaint_is_not_the_detail_of_a_correction() -> None:
    assert category("It doesn't work like that, you did it wrong.") == "make_aware_without_correction"


@pytest.mark.parametrize(
    "text",
    [
        "Write me a super detailed plan for the trip to Rome",
        "Can you make the intro super short and add a title to it",
        "I need a toll free number for the bank in my city",
    ],
)
def test_language_gated_cues_do_not_fire_in_english(text: str) -> None:
    assert category(text) is None


@pytest.mark.parametrize("text", ["Das ist super, danke", "Super, danke!", "C'est super, merci"])
def test_language_gated_cues_still_fire_in_their_language(text: str) -> None:
    assert category(text) == "positive_feedback"


def test_cue_inside_a_question_about_new_content_is_not_feedback() -> None:
    assert category("如果缺少维生素D会怎么样？") is None
    assert category("你的回答缺少了第三部分") == "make_aware_with_correction"


def test_persian_negation_with_an_instruction_is_a_correction() -> None:
    assert category("نه، اینطوری نه! محتوای هر عنوان را زیر آن خلاصه کن") == "make_aware_with_correction"


def test_short_question_about_a_term_of_the_reply_is_clarification() -> None:
    assert category("What is Sydney?") == "ask_for_clarification"
    assert category("What is a koala?") is None  # not in the reply: a new question


def test_role_prompt_and_hypothetical_are_not_corrections() -> None:
    assert category("I want you to act as a travel guide for Canberra and Sydney.") is None
    assert category("How would your answer change if I told you it is for a school quiz?") != (
        "make_aware_with_correction"
    )
