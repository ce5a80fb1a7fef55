"""Conversation batches for the extractors: from an ingested parquet, or raw logs normalised on the fly.

Nothing is lost silently: every input row is counted as read, and ends up extracted, rejected (a raw
row that is not a conversation, written to the ``rejected`` sink with its reason) or filtered (a
conversation id seen before, first kept), so ``rows_read = rows_kept + rows_rejected + rows_filtered``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from natfeed.core.conversation import Conversation
from natfeed.core.io import ParquetSink
from natfeed.core.language import MIN_CONFIDENCE, MIN_LETTERS, UNKNOWN, detect_languages
from natfeed.core.readers import (
    InputScan,
    RawRecord,
    decode_line,
    is_json_array,
    is_parquet,
    iter_files,
    iter_lines,
    scan_inputs,
)
from natfeed.core.records import Malformed, none_kept_error, normalise_record, rejected_row
from natfeed.core.tables import CONVERSATION_SCHEMA

log = logging.getLogger(__name__)


def is_normalised(files: list[Path]) -> bool:
    """Whether ``files`` are ingested conversations (parquet with the conversation columns)."""
    if not all(is_parquet(f) for f in files):
        return False
    return set(CONVERSATION_SCHEMA.names) <= set(pq.read_schema(files[0]).names)


def with_languages(batch: list[Conversation], min_confidence: float = MIN_CONFIDENCE,
                   min_letters: int = MIN_LETTERS) -> list[Conversation]:
    """Detect the language of the conversations that have none (given languages are kept)."""
    todo = [i for i, c in enumerate(batch) if c.language == UNKNOWN and not c.extra.get("language_given")]
    texts = ["\n".join(m["content"][:300] for m in batch[i].messages if m["role"] == "user") for i in todo]
    for i, lang in zip(todo, detect_languages(texts, min_confidence=min_confidence, min_letters=min_letters),
                       strict=True):
        batch[i] = Conversation(**{**batch[i].__dict__, "language": lang})
    return batch


@dataclass
class ConversationReader:
    """Reads ``path`` in batches of ``batch_size`` conversations, counting what happens to every row."""

    path: str | Path
    batch_size: int
    rejected: ParquetSink | None = None
    scan: InputScan = field(init=False)
    rows_read: int = 0
    rows_kept: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    user_turns: int = 0  # user messages in the kept conversations (judged or not)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    redactor: Any = None
    """Raw logs: a :class:`natfeed.privacy.redact.Redactor` applied to every row as it is read (None = off)."""
    redacted: Counter[str] = field(default_factory=Counter)
    """Entities the redactor replaced, per type."""
    _seen: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self.scan = scan_inputs(self.path)  # an unreadable input fails here, before any output is opened

    @property
    def normalised(self) -> bool:
        return is_normalised(self.scan.files)

    def counts(self) -> dict[str, Any]:
        """The row accounting for the extract report."""
        return {"rows_read": self.rows_read, "rows_kept": self.rows_kept, "rows_rejected": self.rows_rejected,
                "rows_filtered": self.rows_duplicate, "rows_duplicate": self.rows_duplicate,
                "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
                "files_read": len(self.scan.files), "skipped_files": self.scan.skipped,
                "empty_input": self.rows_read == 0,
                "redaction": ("by ingest" if self.normalised else "presidio" if self.redactor is not None else "off"),
                "redacted": dict(sorted(self.redacted.items()))}

    def check_any_kept(self) -> None:
        """Raise InputError (naming the top reasons) when rows were read and every one was rejected."""
        if self.rows_read and self.rows_rejected == self.rows_read:
            raise none_kept_error(self.rejected_by_reason, self.rows_read, str(self.path))

    def _keep(self, conv: Conversation) -> bool:
        if conv.conversation_id in self._seen:
            self.rows_duplicate += 1
            return False
        self._seen.add(conv.conversation_id)
        self.rows_kept += 1
        self.user_turns += count_user_turns(conv)
        return True

    def _conversations(self) -> Iterator[Conversation]:
        if self.normalised:
            for f in self.scan.files:
                # pre_buffer=False: pyarrow's read cache otherwise keeps every row group read so far
                # (memory grew with the input: 0.35 GB of Arrow buffers at 80k conversations)
                for batch in pq.ParquetFile(f, pre_buffer=False).iter_batches(batch_size=self.batch_size):
                    for row in batch.to_pylist():
                        self.rows_read += 1
                        yield Conversation.from_row(row)
            return
        for rec in iter_files(self.scan.files, self.batch_size):
            self.rows_read += 1
            item = read_record(rec, self.redactor, self.redacted)
            if isinstance(item, Conversation):
                yield item
                continue
            self.rows_rejected += 1
            self.rejected_by_reason[str(item["reason"])] += 1
            if self.rejected is not None:
                self.rejected.add(item)

    # -- raw lines decoded elsewhere (worker processes): the same accounting ---------------------------
    @property
    def line_based(self) -> bool:
        """Raw logs in JSONL files (not parquet, not JSON arrays): their lines can be decoded by workers."""
        return not any(is_parquet(f) or is_json_array(f) for f in self.scan.files)

    def line_chunks(self, size: int) -> Iterator[list[tuple[str, int, bytes]]]:
        """The raw lines of every file, ``size`` at a time, undecoded: (source, line number, bytes)."""
        chunk: list[tuple[str, int, bytes]] = []
        for f in self.scan.files:
            log.info("reading %s", f)
            for lineno, data in iter_lines(f):
                chunk.append((str(f), lineno, data))
                if len(chunk) >= size:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk

    def admit(self, item: dict[str, Any] | str, conversation: bool = False, user_turns: int = 0) -> bool:
        """Count one line decoded elsewhere (:func:`decode_chunk`): a dict is its ``rejected`` row; a string is a
        conversation id, of a copy of an earlier conversation, or, with ``conversation``, of a conversation
        that is kept (True) unless its id was seen before (``user_turns``: its user messages)."""
        self.rows_read += 1
        if isinstance(item, dict):
            self.rows_rejected += 1
            self.rejected_by_reason[str(item.get("reason"))] += 1
            if self.rejected is not None:
                self.rejected.add(item)
            return False
        if conversation and item not in self._seen:
            self._seen.add(item)
            self.rows_kept += 1
            self.user_turns += user_turns
            return True
        self.rows_duplicate += 1
        return False

    def prepared(self, detect_language: bool = True, min_confidence: float = MIN_CONFIDENCE,
                 min_letters: int = MIN_LETTERS) -> Iterator[list[Conversation]]:
        """:meth:`batches` with the missing languages of raw logs detected (ingested parquet has them)."""
        detect = detect_language and not self.normalised
        for batch in self.batches():
            yield with_languages(batch, min_confidence, min_letters) if detect else batch

    def batches(self) -> Iterator[list[Conversation]]:
        """Batches of distinct conversations, in input order (languages not yet detected)."""
        buf: list[Conversation] = []
        for conv in self._conversations():
            if self._keep(conv):
                buf.append(conv)
            if len(buf) >= self.batch_size:
                yield buf
                buf = []
        if buf:
            yield buf


def count_user_turns(conv: Conversation) -> int:
    """The conversation's user messages (the first one is never judged: it has no reply before it)."""
    return sum(1 for m in conv.messages if m["role"] == "user")


def read_record(rec: RawRecord, redactor: Any = None, counts: Counter[str] | None = None
                ) -> Conversation | dict[str, Any]:
    """One raw record: its Conversation (redacted when a ``redactor`` is given, entities added to ``counts``)
    or its ``rejected`` row (malformed, or a text the redactor could not process)."""
    from natfeed.privacy.redact import RedactionFailed

    tally: Counter[str] = counts if counts is not None else Counter()
    try:
        conv = normalise_record(rec)
        if redactor is not None:
            conv, state = redactor.conversation(conv)
            tally.update(state.counts)
        return conv
    except Malformed as err:
        return rejected_row(rec, err.reason, err.detail, redactor, tally)
    except RedactionFailed as err:
        return rejected_row(rec, "redaction_failed", str(err), redactor, tally)


def decode_chunk(chunk: list[tuple[str, int, bytes]], redactor: Any = None, counts: Counter[str] | None = None
                 ) -> list[Conversation | dict[str, Any] | str]:
    """Raw lines -> per non-blank line, in order: its Conversation, its ``rejected`` row (a dict), or, for a
    conversation id already seen in this chunk, that id (a duplicate; :meth:`ConversationReader.admit`)."""
    out: list[Conversation | dict[str, Any] | str] = []
    seen: set[str] = set()
    for source, lineno, data in chunk:
        rec = decode_line(source, lineno, data)
        if rec is None:
            continue
        conv = read_record(rec, redactor, counts)
        if isinstance(conv, dict):
            out.append(conv)
            continue
        if conv.conversation_id in seen:
            out.append(conv.conversation_id)
        else:
            seen.add(conv.conversation_id)
            out.append(conv)
    return out


def iter_conversation_batches(path: str | Path, batch_size: int, rejected: ParquetSink | None = None,
                              detect_language: bool = True, min_confidence: float = MIN_CONFIDENCE,
                              min_letters: int = MIN_LETTERS) -> Iterator[list[Conversation]]:
    """Batches of distinct conversations from ``path``; raw logs get their missing languages detected."""
    yield from ConversationReader(path, batch_size, rejected).prepared(detect_language, min_confidence, min_letters)
