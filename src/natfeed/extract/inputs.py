"""Conversation batches for the extractors: from an ingested parquet, or raw logs normalised on the fly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from natfeed.core.conversation import Conversation
from natfeed.core.io import ParquetSink, iter_records, resolve_inputs
from natfeed.core.language import UNKNOWN, detect_languages
from natfeed.core.records import Malformed, normalise_record, rejected_row
from natfeed.core.tables import CONVERSATION_SCHEMA


def _is_normalised(path: str | Path) -> bool:
    files = resolve_inputs(path)
    if not all(f.name.endswith(".parquet") for f in files):
        return False
    return set(CONVERSATION_SCHEMA.names) <= set(pq.read_schema(files[0]).names)


def with_languages(batch: list[Conversation]) -> list[Conversation]:
    todo = [i for i, c in enumerate(batch) if c.language == UNKNOWN and not c.extra.get("language_given")]
    texts = ["\n".join(m["content"][:300] for m in batch[i].messages if m["role"] == "user") for i in todo]
    for i, lang in zip(todo, detect_languages(texts), strict=True):
        batch[i] = Conversation(**{**batch[i].__dict__, "language": lang})
    return batch


def iter_conversation_batches(
    path: str | Path, batch_size: int, rejected: ParquetSink | None = None, detect_language: bool = True
) -> Iterator[list[Conversation]]:
    """Batches of conversations from an ingested parquet, or from raw logs normalised on the fly
    (malformed raw rows go to ``rejected`` with their reason)."""
    for batch, raw in tagged_batches(path, batch_size, rejected):
        yield with_languages(batch) if raw and detect_language else batch


def tagged_batches(path: str | Path, batch_size: int, rejected: ParquetSink | None
                   ) -> Iterator[tuple[list[Conversation], bool]]:
    """(batch, whether it came from raw logs, whose languages may still need detecting)."""
    if _is_normalised(path):
        for f in resolve_inputs(path):
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size):
                yield [Conversation.from_row(r) for r in batch.to_pylist()], False
        return
    buf: list[Conversation] = []
    for rec in iter_records(path, batch_size):
        try:
            buf.append(normalise_record(rec))
        except Malformed as err:
            if rejected is not None:
                rejected.add(rejected_row(rec, err.reason, err.detail))
            continue
        if len(buf) >= batch_size:
            yield buf, True
            buf = []
    if buf:
        yield buf, True
