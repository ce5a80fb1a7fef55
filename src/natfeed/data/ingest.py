"""Ingest: read LMSYS/WildChat/OpenAI-messages logs, normalise, quarantine bad rows, filter, dedupe.

Nothing is dropped silently: every input row ends up kept, rejected (malformed, with a ``reason``)
or filtered (valid but removed by a filter or as a duplicate, with the filter's name), and
``rows_read == rows_kept + rows_rejected + rows_filtered``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from natfeed.core.conversation import Conversation
from natfeed.core.io import ParquetSink, sibling
from natfeed.core.language import UNKNOWN, detect_language, normalise_language
from natfeed.core.readers import RawRecord, iter_files, scan_inputs
from natfeed.core.records import Malformed, none_kept_error, normalise_record, rejected_row
from natfeed.core.tables import CONVERSATION_SCHEMA, FILTERED_SCHEMA, REJECTED_SCHEMA
from natfeed.params import IngestParams
from natfeed.privacy.redact import RedactionFailed, Redactor

log = logging.getLogger(__name__)


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
    redacted: Counter[str] = field(default_factory=Counter)
    conversations_redacted: int = 0
    redaction: str = "off"

    def as_report(self) -> dict[str, Any]:
        return {
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_rejected": sum(self.rejected.values()),
            "rows_filtered": sum(self.filtered.values()),
            "rows_duplicate": self.filtered.get("duplicate_id", 0),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "filtered_by_filter": dict(sorted(self.filtered.items())),
            "languages_kept": dict(self.languages.most_common()),
            "languages_detected": self.languages_detected,
            "redaction": self.redaction,
            "redacted": dict(sorted(self.redacted.items())),  # entities replaced, per type: counts, never values
            "conversations_redacted": self.conversations_redacted,
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
        p = self.params
        language = detect_language(_user_text(conv), min_confidence=p.language_min_confidence,
                                   min_letters=p.language_min_letters)
        return Conversation(**{**conv.__dict__, "language": language})


def redact(redactor: Redactor, conv: Conversation, counts: Counter[str], c: IngestCounts | None = None
           ) -> Conversation:
    """``conv`` redacted, its entities added to ``counts``."""
    conv, state = redactor.conversation(conv)
    counts.update(state.counts)
    if c is not None and state.counts:
        c.conversations_redacted += 1
    return conv


def ingest_records(records: Iterable[RawRecord], output: str | Path, params: IngestParams,
                   source: str = "the input") -> dict[str, Any]:
    """Normalise and filter ``records`` into ``output`` and its .rejected/.filtered siblings. When every row is
    rejected, nothing is written and :class:`~natfeed.core.readers.InputError` names the top reasons."""
    ing = Ingestor(params)
    c = ing.counts
    redactor = Redactor(params.redact) if params.redact.enabled else None
    c.redaction = "presidio" if redactor is not None else "off"
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
                if redactor is not None:  # before any filter: the filtered table holds redacted text too
                    conv = redact(redactor, conv, c.redacted, c)
            except (Malformed, RedactionFailed) as err:
                reason, detail = ((err.reason, err.detail) if isinstance(err, Malformed)
                                  else ("redaction_failed", str(err)))
                c.rejected[reason] += 1
                rejected.add(rejected_row(rec, reason, detail, redactor, c.redacted))
                continue
            conv, hit = ing.apply(conv)
            if hit is not None:
                c.filtered[hit[0]] += 1
                filtered.add({**conv.to_row(), "filter": hit[0], "detail": hit[1]})
                continue
            c.rows_kept += 1
            c.languages[conv.language] += 1
            kept.add(conv.to_row())
        if c.rows_read and sum(c.rejected.values()) == c.rows_read:  # leaving by the error discards every output
            raise none_kept_error(c.rejected, c.rows_read, source)
    report = c.as_report()
    report["seconds"] = round(time.perf_counter() - start, 3)
    log.info("ingest: read %d, kept %d, rejected %d, filtered %d", c.rows_read, c.rows_kept,
             report["rows_rejected"], report["rows_filtered"])
    return report


def run_ingest(input_path: str | Path, output: str | Path, params: IngestParams) -> dict[str, Any]:
    """Ingest every file at ``input_path`` (file, folder of shards or glob) into ``output``.

    Raises :class:`natfeed.core.readers.InputError` before anything is written when the input names
    nothing readable; an input without rows gives empty (schema-valid) outputs and a warning."""
    scan = scan_inputs(input_path)
    report = ingest_records(iter_files(scan.files, params.batch_size), output, params, str(input_path))
    report.update({"input": str(input_path), "output": str(output), "files_read": len(scan.files),
                   "skipped_files": scan.skipped, "empty_input": report["rows_read"] == 0})
    if report["empty_input"]:
        log.warning("ingest: %s holds no rows: wrote empty outputs", input_path)
    return report
