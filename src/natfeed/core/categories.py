"""The five feedback categories of the paper (UR1–UR5) and the turn-index conventions.

Gold labels count turns as ``user_turn``: the 1-based index of a message among the *user* messages
of a conversation (system messages do not count). Feedback rows use the paper's ``feedback_turn``:
the 1-based index of the user→assistant exchange whose assistant reply received the feedback, so the
feedback is user message ``feedback_turn + 1``. A conversation may open with one assistant message (a chunk
of a longer chat, as in ShareGPT): it is context, not an exchange; user turns still count from 1, and the
first one is not judged (the request its reply answered is not in the log).
"""

from __future__ import annotations

CATEGORIES: tuple[str, ...] = (
    "repeat_or_rephrase",
    "make_aware_with_correction",
    "make_aware_without_correction",
    "ask_for_clarification",
    "positive_feedback",
)
"""Category names in the paper's order (UR1..UR5)."""

NONE = "none"
"""The label of a user turn that is not feedback."""

CODES: dict[str, str] = {name: f"UR{i}" for i, name in enumerate(CATEGORIES, start=1)}
CATEGORY_BY_CODE: dict[str, str] = {code: name for name, code in CODES.items()}

PRIORITY: tuple[str, ...] = (
    "make_aware_with_correction",
    "make_aware_without_correction",
    "repeat_or_rephrase",
    "ask_for_clarification",
    "positive_feedback",
)
"""When a turn carries two signals, the first of these wins (ANNOTATION_GUIDELINES.md)."""


def label_of(category: str) -> int:
    """The KTO/paper label of a category: +1 for positive feedback, -1 for the others."""
    if category not in CODES:
        raise ValueError(f"unknown feedback category {category!r}; expected one of {CATEGORIES}")
    return 1 if category == "positive_feedback" else -1


def user_turn_to_feedback_turn(user_turn: int) -> int:
    """Convert a gold ``user_turn`` (1-based among user messages, >= 2) to ``feedback_turn``."""
    if user_turn < 2:
        raise ValueError(f"user_turn must be >= 2 (turn 1 is never feedback), got {user_turn}")
    return user_turn - 1


def feedback_turn_to_user_turn(feedback_turn: int) -> int:
    """Inverse of :func:`user_turn_to_feedback_turn`."""
    if feedback_turn < 1:
        raise ValueError(f"feedback_turn must be >= 1, got {feedback_turn}")
    return feedback_turn + 1


def stronger(a: str, b: str) -> str:
    """The category that wins when one turn carries both signals."""
    return a if PRIORITY.index(a) <= PRIORITY.index(b) else b
