"""Language detection says ``unknown`` for texts too short to tell, instead of a confident-looking guess."""

from __future__ import annotations

import pytest

from natfeed.core.language import UNKNOWN, detect_language, detect_languages, normalise_language


@pytest.mark.parametrize("text", ["ok thanks", "Thank you!", "that's wrong", "wait what", "no", "?!", "12 34"])
def test_short_english_lines_are_unknown_not_finnish_or_maori(text):
    assert detect_language(text) == UNKNOWN


@pytest.mark.parametrize(("text", "language"), [
    ("Hello, how are you today? I want to write an essay about rivers.", "English"),
    ("Bonjour, pouvez-vous m'aider à écrire une lettre de motivation ?", "French"),
    ("Привет, помоги мне написать письмо начальнику.", "Russian"),
    ("谢谢你的帮助", "Chinese"),
])
def test_clear_texts_keep_their_language(text, language):
    assert detect_language(text) == language


def test_batch_detection_agrees_with_one_by_one_and_honours_the_thresholds():
    texts = ["ok thanks", "Hello, how are you today? I want to write an essay about rivers.", "", "谢谢"]
    assert detect_languages(texts) == [detect_language(t) for t in texts] == [UNKNOWN, "English", UNKNOWN, "Chinese"]
    assert detect_languages(texts, min_confidence=0.0)[0] not in (UNKNOWN, "English")  # lingua's raw guess
    assert detect_languages(texts, min_letters=3)[3] == UNKNOWN


def test_normalise_language_names_and_codes():
    assert normalise_language("en") == "English" and normalise_language("CHINESE") == "Chinese"
    assert normalise_language(" ") is None and normalise_language(None) is None
