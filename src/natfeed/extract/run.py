"""Run an extractor over a conversations file and write feedback.parquet and its report."""

from __future__ import annotations

import csv
import logging
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from tqdm import tqdm

from natfeed.config import ExtractParams
from natfeed.conversation import CONVERSATION_SCHEMA, Conversation, judged_turns
from natfeed.extract.base import FEEDBACK_SCHEMA, Extractor, feedback_row, make_extractor
from natfeed.io import ParquetSink, iter_records, resolve_inputs, sibling, write_json
from natfeed.language import UNKNOWN, detect_languages

log = logging.getLogger(__name__)

PAPER_COLUMNS = ("conversation_id", "feedback_turn", "category", "label")
PER_TURN_BACKENDS = {"heuristic"}
"""Backends whose work is plain Python per turn, so they scale with worker processes."""


def _is_normalised(path: str | Path) -> bool:
    files = resolve_inputs(path)
    if not all(f.name.endswith(".parquet") for f in files):
        return False
    return set(CONVERSATION_SCHEMA.names) <= set(pq.read_schema(files[0]).names)


def _with_languages(batch: list[Conversation]) -> list[Conversation]:
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
    if _is_normalised(path):
        for f in resolve_inputs(path):
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size):
                yield [Conversation.from_row(r) for r in batch.to_pylist()]
        return
    from natfeed.ingest import Malformed, _rejected_row, normalise

    buf: list[Conversation] = []
    for rec in iter_records(path, batch_size):
        try:
            if rec.error is not None:
                reason, _, detail = rec.error.partition(": ")
                raise Malformed(reason, detail)
            buf.append(normalise(rec.obj, source=Path(rec.source_file).name))
        except Malformed as err:
            if rejected is not None:
                rejected.add(_rejected_row(rec, err.reason, err.detail))
            continue
        if len(buf) >= batch_size:
            yield _with_languages(buf) if detect_language else buf
            buf = []
    if buf:
        yield _with_languages(buf) if detect_language else buf


def _extract_rows(extractor: Extractor, batch: list[Conversation]) -> tuple[list[dict[str, Any]], int, int]:
    rows = [feedback_row(det, extractor.identity) for det in extractor.extract(batch)]
    return rows, len(batch), sum(1 for c in batch for _ in judged_turns(c))


_WORKER: Extractor | None = None


def _init_worker(params: ExtractParams) -> None:
    global _WORKER
    _WORKER = make_extractor(params)


def _work(batch: list[Conversation]) -> tuple[list[dict[str, Any]], int, int]:
    assert _WORKER is not None
    return _extract_rows(_WORKER, batch)


def _results(batches: Iterable[list[Conversation]], params: ExtractParams, extractor: Extractor | None
             ) -> Iterator[tuple[list[dict[str, Any]], int, int]]:
    """Per-batch (rows, conversations, judged turns), in input order; per-turn backends run in a
    process pool of ``params.workers`` (0 = one per core)."""
    workers = params.workers or os.cpu_count() or 1
    if extractor is not None or workers <= 1 or params.backend not in PER_TURN_BACKENDS:
        ext = extractor or make_extractor(params)
        for batch in batches:
            yield _extract_rows(ext, batch)
        return
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(params,)) as pool:
        pending: list[Any] = []
        for batch in batches:
            pending.append(pool.submit(_work, batch))
            while len(pending) > 2 * workers:  # bounded read-ahead keeps memory flat
                yield pending.pop(0).result()
        for fut in pending:
            yield fut.result()


def extractor_identity(params: ExtractParams, extractor: Extractor | None) -> str:
    return (extractor or make_extractor(params)).identity


def extract_file(
    input_path: str | Path, output: str | Path, params: ExtractParams, extractor: Extractor | None = None
) -> dict[str, Any]:
    """Extract feedback from every conversation at ``input_path`` into ``output``.

    Writes ``<output stem>.report.json`` too and returns the report."""
    identity = extractor_identity(params, extractor)
    start = time.perf_counter()
    conversations = user_turns = 0
    per_category: Counter[str] = Counter()
    with (
        ParquetSink(output, FEEDBACK_SCHEMA, 5000) as sink,
        ParquetSink(sibling(output, "rejected.parquet"), _rejected_schema(), 1000) as rejected,
    ):
        bar = tqdm(desc=f"extract ({identity})", unit=" conv", disable=None)
        batches = iter_conversation_batches(input_path, params.batch_size, rejected, params.detect_language)
        for rows, n_conv, n_turns in _results(batches, params, extractor):
            for row in rows:
                sink.add(row)
                per_category[row["category"]] += 1
            conversations += n_conv
            user_turns += n_turns
            bar.update(n_conv)
        bar.close()
        rows_rejected = rejected.rows
    seconds = time.perf_counter() - start
    report = {
        "input": str(input_path),
        "output": str(output),
        "extractor": identity,
        "conversations": conversations,
        "rows_rejected": rows_rejected,
        "user_turns": user_turns,
        "rows": sum(per_category.values()),
        "rows_per_category": dict(sorted(per_category.items())),
        "seconds": round(seconds, 3),
        "conversations_per_second": round(conversations / seconds, 1) if seconds > 0 else None,
    }
    write_json(sibling(output, "report.json"), report)
    log.info("extract: %d conversations, %d judged turns, %d feedback rows in %.1fs",
             conversations, user_turns, report["rows"], seconds)
    return report


def _rejected_schema():  # imported lazily: ingest pulls language detection
    from natfeed.ingest import REJECTED_SCHEMA

    return REJECTED_SCHEMA


def write_paper_csv(feedback_path: str | Path, csv_path: str | Path) -> int:
    """Write the paper's released format: conversation_id, feedback_turn, category (UR code), label."""
    table = pq.read_table(feedback_path, columns=["conversation_id", "feedback_turn", "code", "label"])
    Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(PAPER_COLUMNS)
        for row in table.to_pylist():
            writer.writerow([row["conversation_id"], row["feedback_turn"], row["code"], row["label"]])
    return table.num_rows
