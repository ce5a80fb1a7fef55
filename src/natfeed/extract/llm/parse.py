"""Parse LLM answers: turn-mode labels, the paper's JSON answers, and spans matched back to user turns.

API (stable)::

    parse_turn_label(text, choices=TURN_CHOICES) -> str          # one of choices, or ParseError
    parse_paper_answer(text) -> list[PaperItem]                   # PaperItem(category, text); ParseError
    match_spans(conversation, items) -> SpanMatch                 # .matched [(JudgedTurn, category, span)],
                                                                  # .unmatched [PaperItem]
    parse_category(name) -> str | None                            # None = "no feedback"
    ParseFailure(conversation_id, user_turn, raw, reason).to_dict()

Nothing here raises anything but :class:`ParseError` (with a short ``reason``) on bad model output.
"""

from __future__ import annotations

import ast
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from natfeed.core.categories import CATEGORIES, CATEGORY_BY_CODE, NONE, stronger
from natfeed.core.conversation import Conversation, JudgedTurn, judged_turns
from natfeed.extract.llm.prompts import PAPER_PATTERNS, TURN_CHOICES


class ParseError(ValueError):
    """A model answer that could not be understood; ``reason`` is a short machine-readable tag."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class PaperItem:
    """One feedback span the model reported: its category (a CATEGORIES name) and text."""

    category: str
    text: str


@dataclass(frozen=True)
class ParseFailure:
    """An answer kept raw because it did not parse (written to ``*.parse_failures.jsonl``)."""

    conversation_id: str
    user_turn: int | None
    raw: str
    reason: str
    mode: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SpanMatch:
    matched: list[tuple[JudgedTurn, str, str]] = field(default_factory=list)
    unmatched: list[PaperItem] = field(default_factory=list)


def _key(text: str) -> str:
    """Lower-case letters and digits only: 'Make Aware with Correction' -> 'makeawarewithcorrection'."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


_NAME_KEYS: dict[str, str] = {_key(name): name for name in CATEGORIES}
_NAME_KEYS.update({_key(v): CATEGORY_BY_CODE[c] for c, v in PAPER_PATTERNS.items()})
_NAME_KEYS.update({
    _key("make aware with corrections"): "make_aware_with_correction",
    _key("make aware without corrections"): "make_aware_without_correction",
    _key("repeat"): "repeat_or_rephrase", _key("rephrase"): "repeat_or_rephrase",
    _key("clarification"): "ask_for_clarification", _key("positive"): "positive_feedback",
})
_NONE_KEYS = {_key(x) for x in ("none", "no feedback", "nofeedback", "not feedback", "null", "n/a", "no")}
_CODE_RE = re.compile(r"\bUR\s*-?\s*([1-5])\b", re.IGNORECASE)


def parse_category(name: str) -> str | None:
    """A category from any of its spellings: ``UR2``, ``UR2: make aware with correction``, ``Make Aware
    with Correction``, ``make_aware_with_correction``; ``None`` for no feedback."""
    text = str(name).strip().strip("\"'`*.").strip()
    key = _key(text)
    if key in _NONE_KEYS:
        return None
    code = _CODE_RE.search(text)
    rest = _key(_CODE_RE.sub("", text))
    if code:
        by_code = CATEGORY_BY_CODE[f"UR{code.group(1)}"]
        if rest and rest in _NAME_KEYS and _NAME_KEYS[rest] != by_code:
            raise ParseError("conflicting_category", text[:80])
        return by_code
    if key in _NAME_KEYS:
        return _NAME_KEYS[key]
    raise ParseError("unknown_category", text[:80])


def parse_turn_label(text: str, choices: Sequence[str] = TURN_CHOICES) -> str:
    """The label of a turn-mode answer: one of ``choices`` (``none`` included)."""
    raw = _strip_fences(text or "").strip()
    if not raw:
        raise ParseError("empty")
    if raw.startswith("{"):
        for obj in _json_values(raw):
            if isinstance(obj, dict) and obj:
                raw = str(next(iter(obj.values())))
                break
    first = raw.splitlines()[0].strip()
    for candidate in (first, raw):
        try:
            cat = parse_category(candidate)
        except ParseError:
            continue
        label = NONE if cat is None else cat
        if label in choices:
            return label
    found = {c for c in choices if re.search(rf"(?<![a-z_]){re.escape(c)}(?![a-z_])", raw.lower())}
    found |= {CATEGORY_BY_CODE[f"UR{m}"] for m in _CODE_RE.findall(raw)} & set(choices)
    if len(found) == 1:
        return found.pop()
    raise ParseError("ambiguous_label" if found else "no_label", raw[:80])


_FENCE_RE = re.compile(r"```[a-zA-Z]*\s*\n?(.*?)```", re.DOTALL)


def _strip_fences(text: str) -> str:
    blocks = _FENCE_RE.findall(text)
    return "\n".join(blocks) if blocks else text


def _balanced_end(text: str, start: int) -> int:
    """Index after the bracket group opening at ``start`` (quotes respected), or -1."""
    pairs = {"{": "}", "[": "]"}
    stack: list[str] = []
    quote: str | None = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'" and (ch == '"' or (i > 0 and not text[i - 1].isalnum())):
            quote = ch
        elif ch in pairs:
            stack.append(pairs[ch])
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                return -1
            if not stack:
                return i + 1
        i += 1
    return -1


def _json_values(text: str) -> list[Any]:
    """Every top-level JSON (or Python-literal) object or list in ``text``, left to right."""
    decoder = json.JSONDecoder()
    out: list[Any] = []
    i = 0
    while i < len(text):
        if text[i] not in "{[":
            i += 1
            continue
        try:
            value, end = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            end = _balanced_end(text, i)
            value = None
            if end > 0:
                try:
                    value = ast.literal_eval(text[i:end])
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    value = None
            if value is None:
                i += 1
                continue
        out.append(value)
        i = end
    return out


_CATEGORY_FIELDS = ("pattern", "category", "userresponsepattern", "type", "label", "code", "class",
                    "feedbacktype", "feedbackcategory", "ur")
_TEXT_FIELDS = ("text", "span", "userresponsetext", "userresponse", "feedbacktext", "feedback", "quote",
                "utterance", "response", "usertext", "feedbackspan")


def _items_of(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return [d for v in value for d in _items_of(v)]
    if isinstance(value, dict):
        for v in value.values():  # {"feedback": [...]} wrappers
            if isinstance(v, list) and all(isinstance(x, dict) for x in v):
                return [d for x in v for d in _items_of(x)]
        return [value]
    return []


def _field(obj: dict[str, Any], names: Sequence[str]) -> Any:
    keyed = {_key(str(k)): v for k, v in obj.items()}
    return next((keyed[n] for n in names if n in keyed), None)


def parse_paper_answer(text: str) -> list[PaperItem]:
    """The feedback items of a paper-mode answer: a JSON list, several JSON objects, code fences, stray
    text around them, single-quoted (Python-style) objects. ``[]`` / "no feedback" give no items."""
    raw = _strip_fences(text or "").strip()
    if not raw:
        raise ParseError("empty")
    values = _json_values(raw)
    if not values:
        if _key(raw) in _NONE_KEYS or re.search(r"\bno (user )?feedback\b", raw, re.IGNORECASE):
            return []
        raise ParseError("no_json", raw[:80])
    items: list[PaperItem] = []
    bad = 0
    for obj in (d for v in values for d in _items_of(v)):
        cat_raw, span = _field(obj, _CATEGORY_FIELDS), _field(obj, _TEXT_FIELDS)
        try:
            cat = parse_category(cat_raw) if cat_raw is not None else None
        except ParseError:
            bad += 1
            continue
        if cat is None:
            continue
        if not isinstance(span, str) or not span.strip():
            bad += 1
            continue
        items.append(PaperItem(cat, span))
    if bad and not items:
        raise ParseError("bad_items", raw[:80])
    return items


def normalise(text: str) -> str:
    """For span matching: NFKC, case-folded, whitespace collapsed, our data escaping undone."""
    text = unicodedata.normalize("NFKC", text).replace("&lt;", "<")
    return " ".join(text.casefold().split())


def _clean_span(span: str) -> str:
    span = span.strip()
    while len(span) >= 2 and span[0] == span[-1] and span[0] in "\"'`":
        span = span[1:-1].strip()
    return span


def match_spans(conv: Conversation, items: Sequence[PaperItem]) -> SpanMatch:
    """Keep an item only if its text appears verbatim (after :func:`normalise`) in a user turn from the
    2nd on; it goes to the first such turn. Two items on one turn: the stronger category wins."""
    turns = [(t, normalise(t.user_text)) for t in judged_turns(conv)]
    result = SpanMatch()
    best: dict[int, tuple[JudgedTurn, str, str]] = {}
    for item in items:
        span = normalise(_clean_span(item.text))
        hit = next((t for t, norm in turns if span and span in norm), None)
        if hit is None:
            result.unmatched.append(item)
            continue
        prev = best.get(hit.user_turn)
        if prev is None or stronger(item.category, prev[1]) != prev[1]:
            best[hit.user_turn] = (hit, item.category, item.text)
    result.matched = [best[k] for k in sorted(best)]
    return result
