"""The normalised conversation record and the judged turns of a conversation (its Arrow schema is
:data:`natfeed.core.tables.CONVERSATION_SCHEMA`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Conversation:
    """A validated conversation: optional system messages, then user/assistant alternating."""

    conversation_id: str
    messages: list[dict[str, str]]
    model: str = "unknown"
    language: str = "unknown"
    openai_moderation: str = "[]"
    flagged: bool = False
    redacted: bool = False
    source: str = "unknown"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def user_turns(self) -> int:
        return sum(1 for m in self.messages if m["role"] == "user")

    def to_row(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "model": self.model,
            "conversation": self.messages,
            "turn": self.user_turns,
            "language": self.language,
            "openai_moderation": self.openai_moderation,
            "flagged": self.flagged,
            "redacted": self.redacted,
            "source": self.source,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Conversation:
        return cls(
            conversation_id=row["conversation_id"],
            messages=[{"role": m["role"], "content": m["content"]} for m in row["conversation"]],
            model=row.get("model") or "unknown",
            language=row.get("language") or "unknown",
            openai_moderation=row.get("openai_moderation") or "[]",
            flagged=bool(row.get("flagged", False)),
            redacted=bool(row.get("redacted", False)),
            source=row.get("source") or "unknown",
        )


@dataclass(frozen=True)
class JudgedTurn:
    """One decision: user message ``user_turn`` (>= 2) judged against the reply before it."""

    conversation: Conversation
    user_turn: int
    user_text: str
    prev_reply: str
    earlier_user: list[str]
    prompt: list[dict[str, str]]
    """Messages up to and including the user message that ``prev_reply`` answered."""


def judged_turns(conv: Conversation) -> Iterator[JudgedTurn]:
    """Every user turn from the 2nd on that follows an assistant reply, with its context."""
    users: list[str] = []
    last_reply: str | None = None
    prompt_end = 0
    for i, msg in enumerate(conv.messages):
        role = msg["role"]
        if role == "assistant":
            last_reply = msg["content"]
            continue
        if role != "user":
            continue
        if users and last_reply is not None:
            yield JudgedTurn(
                conversation=conv,
                user_turn=len(users) + 1,
                user_text=msg["content"],
                prev_reply=last_reply,
                earlier_user=list(users),
                prompt=conv.messages[:prompt_end],
            )
        users.append(msg["content"])
        last_reply = None
        prompt_end = i + 1
