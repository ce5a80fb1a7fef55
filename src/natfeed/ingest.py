"""Ingest: read LMSYS/WildChat/OpenAI-messages logs, normalise, quarantine bad rows, filter, dedupe.

Nothing is dropped silently: every input row ends up kept, rejected (malformed, with a ``reason``)
or filtered (valid but removed by a filter or as a duplicate, with the filter's name), and
``rows_read == rows_kept + rows_rejected + rows_filtered``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from tqdm import tqdm

from natfeed.config import IngestParams
from natfeed.conversation import CONVERSATION_SCHEMA, Conversation
from natfeed.io import ParquetSink, RawRecord, iter_records, sibling
from natfeed.language import UNKNOWN, detect_language, normalise_language

log = logging.getLogger(__name__)

REJECTED_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("line", pa.int64()),
        ("conversation_id", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
    ]
)
FILTERED_SCHEMA = CONVERSATION_SCHEMA.append(pa.field("filter", pa.string())).append(
    pa.field("detail", pa.string())
)
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


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
    """System messages only at the start; then user/assistant alternate, starting with the user."""
    body = messages
    while body and body[0]["role"] == "system":
        body = body[1:]
    if not body:
        raise Malformed("no_user_message", "no user message")
    if body[0]["role"] != "user":
        raise Malformed("must_start_with_user", f"first non-system message is {body[0]['role']}")
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


def _user_text(conv: Conversation) -> str:
    return "\n".join(m["content"][:400] for m in conv.messages if m["role"] == "user")


@dataclass
class IngestCounts:
    """Running counts; ``as_report`` gives reports/ingest.json."""

    rows_read: int = 0
    rows_kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    filtered: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    languages_detected: int = 0

    def as_report(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_rejected": sum(self.rejected.values()),
            "rows_filtered": sum(self.filtered.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "filtered_by_filter": dict(sorted(self.filtered.items())),
            "languages_kept": dict(self.languages.most_common()),
            "languages_detected": self.languages_detected,
        }


class Ingestor:
    """Applies params' filters and duplicate removal to a stream of records."""

    def __init__(self, params: IngestParams) -> None:
        self.params = params
        self.seen: set[str] = set()
        self.counts = IngestCounts()
        self.languages = {normalise_language(x) for x in params.languages}

    def apply(self, conv: Conversation) -> tuple[Conversation, tuple[str, str] | None]:
        """Detect the language where needed and find the first filter (name, detail) that removes
        ``conv``; None keeps it. Cheap filters run before language detection."""
        p = self.params
        if conv.conversation_id in self.seen:
            return conv, ("duplicate_id", f"conversation_id {conv.conversation_id} seen before")
        self.seen.add(conv.conversation_id)
        if conv.user_turns < p.min_user_turns:
            return conv, ("min_user_turns", f"{conv.user_turns} user turns < {p.min_user_turns}")
        chars = sum(len(m["content"]) for m in conv.messages)
        if chars > p.max_chars:
            return conv, ("max_chars", f"{chars} characters > {p.max_chars}")
        conv = self.with_language(conv)
        if self.languages and conv.language not in self.languages:
            return conv, ("languages", f"language {conv.language} not in {sorted(self.languages)}")
        return conv, None

    def with_language(self, conv: Conversation) -> Conversation:
        if conv.language != UNKNOWN or not self.params.detect_language or conv.extra.get("language_given"):
            return conv
        self.counts.languages_detected += 1
        return Conversation(**{**conv.__dict__, "language": detect_language(_user_text(conv))})


def _rejected_row(rec: RawRecord, reason: str, detail: str) -> dict[str, Any]:
    raw = rec.raw if rec.raw is not None else json.dumps(rec.obj, ensure_ascii=False, default=str)
    cid = rec.obj.get("conversation_id") if isinstance(rec.obj, dict) else None
    return {"source_file": rec.source_file, "line": rec.line, "conversation_id": None if cid is None else str(cid),
            "reason": reason, "detail": detail, "raw": raw}


def ingest_records(records: Iterable[RawRecord], output: str | Path, params: IngestParams) -> dict[str, Any]:
    """Normalise and filter ``records`` into ``output`` and its .rejected/.filtered siblings."""
    ing = Ingestor(params)
    c = ing.counts
    start = time.perf_counter()
    with (
        ParquetSink(output, CONVERSATION_SCHEMA, params.batch_size) as kept,
        ParquetSink(sibling(output, "rejected.parquet"), REJECTED_SCHEMA, params.batch_size) as rejected,
        ParquetSink(sibling(output, "filtered.parquet"), FILTERED_SCHEMA, params.batch_size) as filtered,
    ):
        for rec in tqdm(records, desc="ingest", unit=" rows", disable=None):
            c.rows_read += 1
            try:
                conv = normalise_record(rec)
            except Malformed as err:
                c.rejected[err.reason] += 1
                rejected.add(_rejected_row(rec, err.reason, err.detail))
                continue
            conv, hit = ing.apply(conv)
            if hit is not None:
                c.filtered[hit[0]] += 1
                filtered.add({**conv.to_row(), "filter": hit[0], "detail": hit[1]})
                continue
            c.rows_kept += 1
            c.languages[conv.language] += 1
            kept.add(conv.to_row())
    report = c.as_report()
    report["seconds"] = round(time.perf_counter() - start, 3)
    log.info("ingest: read %d, kept %d, rejected %d, filtered %d", c.rows_read, c.rows_kept,
             report["rows_rejected"], report["rows_filtered"])
    return report


def run_ingest(input_path: str | Path, output: str | Path, params: IngestParams) -> dict[str, Any]:
    """Ingest every file at ``input_path`` (file, folder of shards or glob) into ``output``."""
    report = ingest_records(iter_records(input_path, params.batch_size), output, params)
    report.update({"input": str(input_path), "output": str(output)})
    return report
