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


def detect_languages(texts: list[str], max_chars: int = 300) -> list[str]:
    """Detect many texts at once on all cores (lingua's parallel API); ``"unknown"`` if unsure."""
    if not texts:
        return []
    found = _detector().detect_languages_in_parallel_of([t[:max_chars] for t in texts])
    return [UNKNOWN if lang is None else lang.name.title() for lang in found]


def detect_language(text: str, max_chars: int = 300) -> str:
    """Detect the language of ``text`` (first ``max_chars`` characters); ``"unknown"`` if unsure."""
    sample = text[:max_chars].strip()
    if not sample:
        return UNKNOWN
    lang = _detector().detect_language_of(sample)
    if lang is None:
        return UNKNOWN
    return lang.name.title()
