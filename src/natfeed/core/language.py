"""Offline language identification with LMSYS-style names ("English", "Chinese", ...)."""

from __future__ import annotations

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


@lru_cache(maxsize=1)
def _detector() -> Any:
    from lingua import LanguageDetectorBuilder

    return (
        LanguageDetectorBuilder.from_all_languages()
        .with_low_accuracy_mode()
        .with_preloaded_language_models()
        .build()
    )


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


def detect_languages(texts: list[str], max_chars: int = 300, min_confidence: float = MIN_CONFIDENCE,
                     min_letters: int = MIN_LETTERS) -> list[str]:
    """Detect many texts at once on all cores (lingua's parallel API); ``"unknown"`` for a text with fewer
    than ``min_letters`` letters or whose best language has a confidence below ``min_confidence``."""
    if not texts:
        return []
    samples = [t[:max_chars] for t in texts]
    todo = [i for i, s in enumerate(samples) if _letters(s) >= min_letters]
    out = [UNKNOWN] * len(texts)
    found = _detector().compute_language_confidence_values_in_parallel([samples[i] for i in todo])
    for i, values in zip(todo, found, strict=True):
        out[i] = _name(values, min_confidence)
    return out


def detect_language(text: str, max_chars: int = 300, min_confidence: float = MIN_CONFIDENCE,
                    min_letters: int = MIN_LETTERS) -> str:
    """Detect the language of ``text`` (first ``max_chars`` characters); ``"unknown"`` if unsure."""
    sample = text[:max_chars].strip()
    if _letters(sample) < min_letters:
        return UNKNOWN
    return _name(_detector().compute_language_confidence_values(sample), min_confidence)
