"""Raw log rows -> :class:`Conversation`: the shapes natfeed reads and the reasons a row is malformed.

LMSYS-Chat-1M / WildChat (``conversation``), OpenAI ``messages`` and ShareGPT (``conversations`` with
``from``/``value``) rows all become the same Conversation; a row that cannot be one raises
:class:`Malformed` with a short machine-readable ``reason``. Ingest and extract's raw-log path share this.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from natfeed.core.conversation import Conversation
from natfeed.core.language import UNKNOWN, normalise_language
from natfeed.core.readers import InputError, RawRecord

_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system",
                   "chatgpt": "assistant", "bing": "assistant", "bard": "assistant"}
"""ShareGPT's ``from`` values (V3 also names the assistant ``chatgpt``, ``bing`` or ``bard``)."""


class Malformed(ValueError):
    """A row that cannot be a conversation; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _messages_of(obj: dict[str, Any]) -> tuple[list[Any], bool]:
    """The message list of any supported shape, and whether it is ShareGPT (from/value)."""
    for key in ("conversation", "messages", "conversations"):
        if key in obj:
            msgs = obj[key]
            if not isinstance(msgs, list):
                raise Malformed("messages_not_a_list", f"{key!r} is {type(msgs).__name__}")
            return msgs, key == "conversations"
    raise Malformed("missing_messages", "no 'conversation', 'messages' or 'conversations' field")


def _clean_message(i: int, msg: Any, sharegpt: bool) -> dict[str, str]:
    if not isinstance(msg, dict):
        raise Malformed("message_not_an_object", f"message {i} is {type(msg).__name__}")
    role = msg.get("from") if sharegpt else msg.get("role")
    content = msg.get("value") if sharegpt else msg.get("content")
    if role is None:
        raise Malformed("missing_role", f"message {i} has no role")
    role = _SHAREGPT_ROLES.get(str(role).lower()) if sharegpt else str(role).lower()
    if role not in ("user", "assistant", "system"):
        raise Malformed("unknown_role", f"message {i} has role {msg.get('role', msg.get('from'))!r}")
    if not isinstance(content, str):
        raise Malformed("content_not_a_string", f"message {i} content is {type(content).__name__}")
    if not content.strip():
        raise Malformed("empty_content", f"message {i} ({role}) is empty")
    return {"role": role, "content": content}


def check_roles(messages: list[dict[str, str]]) -> None:
    """System messages only at the start, then at most one assistant message (context: the reply to a request
    that is not in the log, as in ShareGPT's chunks of long chats); then user/assistant alternate, starting
    with the user."""
    body = messages
    while body and body[0]["role"] == "system":
        body = body[1:]
    if body and body[0]["role"] == "assistant":
        body = body[1:]
    if not any(m["role"] == "user" for m in body):
        raise Malformed("no_user_message", "no user message")
    if body[0]["role"] != "user":
        raise Malformed("must_start_with_user", f"after the leading context, message "
                        f"{len(messages) - len(body)} is {body[0]['role']}, expected user")
    for i, msg in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if msg["role"] != expected:
            raise Malformed("roles_not_alternating", f"message {i + len(messages) - len(body)} is "
                            f"{msg['role']}, expected {expected}")


def _conversation_id(obj: dict[str, Any], messages: list[dict[str, str]], keyed: bool) -> str:
    for key in ("conversation_id", "conversation_hash", "id"):
        value = obj.get(key)
        if value is not None and str(value).strip():
            if not isinstance(value, str | int):
                raise Malformed("invalid_conversation_id", f"{key} is {type(value).__name__}")
            return str(value)
    if keyed:  # LMSYS/WildChat rows must carry their id
        raise Malformed("missing_conversation_id", "conversation_id is missing or empty")
    digest = hashlib.sha1(json.dumps(messages, ensure_ascii=False).encode("utf-8")).hexdigest()
    return f"sha1-{digest[:32]}"


def _moderation(obj: dict[str, Any]) -> tuple[str, bool]:
    mod = obj.get("openai_moderation")
    flagged = bool(obj.get("toxic", False))
    if isinstance(mod, list):
        flagged = flagged or any(isinstance(m, dict) and m.get("flagged") for m in mod)
    elif isinstance(mod, dict):
        flagged = flagged or bool(mod.get("flagged"))
    return json.dumps(mod if mod is not None else [], ensure_ascii=False, default=str), flagged


def normalise(obj: Any, source: str = "unknown") -> Conversation:
    """Turn one parsed input object into a Conversation, or raise Malformed with the reason."""
    if not isinstance(obj, dict):
        raise Malformed("not_an_object", f"row is a JSON {type(obj).__name__}")
    raw_msgs, sharegpt = _messages_of(obj)
    messages = [_clean_message(i, m, sharegpt) for i, m in enumerate(raw_msgs)]
    check_roles(messages)
    cid = _conversation_id(obj, messages, keyed="conversation" in obj)
    moderation, flagged = _moderation(obj)
    return Conversation(
        conversation_id=cid,
        messages=messages,
        model=str(obj.get("model") or "unknown"),
        language=normalise_language(obj.get("language")) or UNKNOWN,
        openai_moderation=moderation,
        flagged=flagged,
        redacted=bool(obj.get("redacted", False)),
        source=str(obj.get("source") or source),
        extra={"language_given": normalise_language(obj.get("language")) is not None},
    )


def normalise_record(rec: RawRecord) -> Conversation:
    """A streamed record as a Conversation; raises Malformed for unreadable or malformed rows."""
    if rec.error is not None:
        reason, _, detail = rec.error.partition(": ")
        raise Malformed(reason, detail)
    return normalise(rec.obj, source=Path(rec.source_file).name)


def rejected_row(rec: RawRecord, reason: str, detail: str, redactor: Any = None,
                 counts: Counter[str] | None = None) -> dict[str, Any]:
    """The ``rejected`` table's row of an input record that is not a conversation; with a ``redactor``
    (:class:`natfeed.privacy.redact.Redactor`) its raw text and detail are redacted (entities added to
    ``counts``), and a row that failed redaction keeps only its length."""
    raw = rec.raw if rec.raw is not None else json.dumps(rec.obj, ensure_ascii=False, default=str)
    cid = rec.obj.get("conversation_id") if isinstance(rec.obj, dict) else None
    if redactor is not None:
        tally: Counter[str] = counts if counts is not None else Counter()
        raw = (f"<{len(raw)} characters not kept: they could not be redacted>" if reason == "redaction_failed"
               else redactor.raw(raw, tally))
        detail = redactor.raw(detail, tally) or detail
    return {"source_file": rec.source_file, "line": rec.line, "conversation_id": None if cid is None else str(cid),
            "reason": reason, "detail": detail, "raw": raw}


_HINTS = {
    "invalid_json": "is this JSONL (one JSON object per line), a JSON array or parquet?",
    "invalid_utf8": "is this a text file in UTF-8?",
    "not_an_object": "each row must be a JSON object (one conversation)",
    "missing_messages": "natfeed reads rows with a `conversation` (LMSYS, WildChat), `messages` (OpenAI) or "
                        "`conversations` (ShareGPT) list",
}


def none_kept_error(reasons: Mapping[str, int], rows: int, source: str) -> InputError:
    """The error when every row of ``source`` was rejected: the top reasons and what to check (nothing is
    written: such an input is almost always the wrong file or format)."""
    top = sorted(reasons.items(), key=lambda kv: -kv[1])[:3]
    hint = _HINTS.get(top[0][0], "see the reasons in natfeed's rejected-row table (README)") if top else ""
    listed = ", ".join(f"{reason} {n}" for reason, n in top)
    return InputError(f"{source}: none of the {rows} rows is a conversation: {listed} — {hint}; nothing was written")
