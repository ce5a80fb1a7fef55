"""Generated replies as text: a reply cut by ``max_new_tokens`` inside a multi-byte UTF-8 character (byte-level
BPE splits one Chinese character over two or three tokens) ends in U+FFFD; that partial character is dropped."""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


def clean_cut(text: str) -> str:
    """``text`` without the replacement characters a cut inside a character leaves at its end, stripped."""
    return text.rstrip().rstrip(REPLACEMENT).strip()


def decode_reply(tokenizer: Any, ids: Any) -> str:
    """The generated token ids as text, special tokens skipped, a character cut at the end dropped."""
    return clean_cut(tokenizer.decode(ids, skip_special_tokens=True))
