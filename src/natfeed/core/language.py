"""Offline language identification with LMSYS-style names ("English", "Chinese", ...)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

UNKNOWN = "unknown"

# LMSYS-Chat-1M and WildChat spell languages by their English names, title-cased.
_ISO_TO_NAME = {
    "en": "English", "zh": "Chinese", "ru": "Russian", "es": "Spanish", "fr": "French", "de": "German",
    "pt": "Portuguese", "it": "Italian", "ja": "Japanese", "ko": "Korean", "ar": "Arabic", "tr": "Turkish",
    "nl": "Dutch", "pl": "Polish", "uk": "Ukrainian", "vi": "Vietnamese", "id": "Indonesian", "fa": "Persian",
}


def normalise_language(value: Any) -> str | None:
    """Map a given language value (name or ISO code, any case) to the LMSYS name; None if empty."""
    if value is None:
        return None
    text = str(value).strip()
    if not text or text.lower() in {"none", "null", "nan"}:
        return None
    if text.lower() in _ISO_TO_NAME:
        return _ISO_TO_NAME[text.lower()]
    return text[:1].upper() + text[1:].lower()


@lru_cache(maxsize=2)
def _detector(high_accuracy: bool = False) -> Any:
    """lingua over all its languages: low-accuracy mode (trigrams, ~100 MB) for long texts; high-accuracy mode
    (1- to 5-grams, ~1 GB, loaded on first use) for short ones, where trigrams guess wildly ("What was FedEx's
    revenue during 1983?" is Yoruba at 0.98 in low-accuracy mode, English in high-accuracy mode)."""
    from lingua import LanguageDetectorBuilder

    builder = LanguageDetectorBuilder.from_all_languages()
    if not high_accuracy:
        builder = builder.with_low_accuracy_mode().with_preloaded_language_models()
    return builder.build()


_CODE = re.compile(r"```.*?(```|$)|`[^`\n]*`", re.S)
_URL = re.compile(r"(https?://|ftp://|www\.)\S+|\S+@\S+\.\w+", re.I)
_TOKEN = re.compile(r"[!-~]*[\d_/\\<>{}\[\]=#$%^&*|~+;][!-~]*")  # ASCII code, paths, numbers, identifiers
SHORT_LETTERS = 200
"""Texts with fewer letters (after code and URLs are removed) go to lingua's high-accuracy mode."""


def _non_latin_weight(text: str) -> tuple[int, int]:
    """(weighted letters outside the Latin script, weighted letters): a CJK, kana or Hangul character counts 3."""
    other = total = 0
    for ch in text:
        if ch.isalpha():
            w = 3 if ord(ch) >= 0x2E80 else 1
            total += w
            if ord(ch) > 0x24F:
                other += w
    return other, total


def own_words(text: str) -> str:
    """The words of ``text`` in a non-Latin script when they carry at least a fifth of its letters (CJK x3):
    a user who writes Chinese or Russian and pastes an English error message writes Chinese or Russian."""
    other, total = _non_latin_weight(text)
    if other >= 6 and other >= 0.2 * total and other < total:
        return " ".join(w for w in text.split() if any(ch.isalpha() and ord(ch) > 0x24F for ch in w))
    return text


def prose(text: str) -> str:
    """``text`` without code blocks, inline code, URLs, e-mail addresses and code-like tokens (``x_val``,
    ``src/icon.ico``, ``2/3``): what is left is the language the user writes in, or nothing."""
    text = _CODE.sub(" ", text)
    text = _URL.sub(" ", text)
    return " ".join(_TOKEN.sub(" ", text).split())


MIN_CONFIDENCE = 0.5
"""Below this lingua confidence the text is too short or mixed to tell: ``unknown`` rather than a guess
("ok thanks" comes out Afrikaans at 0.27, "wait what" Maori at 0.43)."""
MIN_LETTERS = 2


def _letters(text: str) -> int:
    return sum(ch.isalpha() for ch in text)


def _name(values: Any, min_confidence: float) -> str:
    if not values or values[0].value < min_confidence:
        return UNKNOWN
    return values[0].language.name.title()


def detect_languages(texts: list[str], max_chars: int = 1000, min_confidence: float = MIN_CONFIDENCE,
                     min_letters: int = MIN_LETTERS) -> list[str]:
    """Detect many texts at once on all cores (lingua's parallel API) from their :func:`prose`; ``"unknown"``
    for a text with fewer than ``min_letters`` letters of prose or whose best language has a confidence below
    ``min_confidence``. Short prose (under :data:`SHORT_LETTERS` letters) is judged in high-accuracy mode."""
    if not texts:
        return []
    samples = [own_words(prose(t[: 4 * max_chars]))[:max_chars] for t in texts]
    out = [UNKNOWN] * len(texts)
    letters = [_letters(s) for s in samples]
    for high in (False, True):
        todo = [i for i, n in enumerate(letters) if n >= min_letters and (n < SHORT_LETTERS) == high]
        if not todo:
            continue
        found = _detector(high).compute_language_confidence_values_in_parallel([samples[i] for i in todo])
        for i, values in zip(todo, found, strict=True):
            out[i] = _name(values, min_confidence)
    return out


def detect_language(text: str, max_chars: int = 1000, min_confidence: float = MIN_CONFIDENCE,
                    min_letters: int = MIN_LETTERS) -> str:
    """Detect the language of ``text`` (its prose, first ``max_chars`` characters); ``"unknown"`` if unsure."""
    return detect_languages([text], max_chars, min_confidence, min_letters)[0]
