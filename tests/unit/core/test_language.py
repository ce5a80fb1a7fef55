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
    assert detect_languages(texts, min_confidence=0.0)[0] != UNKNOWN  # lingua's raw guess
    assert detect_languages(texts, min_letters=3)[3] == UNKNOWN


def test_normalise_language_names_and_codes():
    assert normalise_language("en") == "English" and normalise_language("CHINESE") == "Chinese"
    assert normalise_language(" ") is None and normalise_language(None) is None


@pytest.mark.parametrize("text", [
    "resarch for device malfunction\nresarch for Digestive",  # Latin in low-accuracy mode
    "What Was FexEx's Revenue During 1983?\nWhat Was FedEx Revenue During 1986?",  # Yoruba at 0.98
    "def f(x):\n    return x[0] + self.y_val\nprint(f(a_b))",  # code
    "https://www.example.com/foo/bar?id=12",  # a URL
    "Lpng story\nLpng story",  # Welsh
])
def test_short_code_like_or_url_texts_are_unknown(text):
    assert detect_language(text) == UNKNOWN


@pytest.mark.parametrize(("text", "language"), [
    ("在ubuntu22.04上如何安装openvswtich\nerror: [Errno 2] No such file or directory: '/usr/local/bin/", "Chinese"),
    ("yt_dlp로 유튜브 다운로더를 구현해놔서 그걸 pyinstaller로 컴파일할려고하는데, ffmpeg 위치", "Korean"),
    ("Please review this function and tell me why it fails:\n```python\ndef f(x):\n    return x[0]\n```\n"
     "I think the problem is the index, because the list can be empty when the request has no items at all "
     "and then the whole service stops answering our customers.", "English"),
])
def test_the_users_own_words_decide_not_the_pasted_code_or_error(text, language):
    assert detect_language(text) == language
