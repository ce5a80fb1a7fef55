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
from natfeed.extract.llm import STAT_KEYS as LLM_STAT_KEYS
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
    for batch, raw in _batches(path, batch_size, rejected):
        yield _with_languages(batch) if raw and detect_language else batch


def _batches(path: str | Path, batch_size: int, rejected: ParquetSink | None
             ) -> Iterator[tuple[list[Conversation], bool]]:
    """(batch, whether it came from raw logs, whose languages may still need detecting)."""
    if _is_normalised(path):
        for f in resolve_inputs(path):
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size):
                yield [Conversation.from_row(r) for r in batch.to_pylist()], False
        return
    from natfeed.ingest import Malformed, _rejected_row, normalise_record

    buf: list[Conversation] = []
    for rec in iter_records(path, batch_size):
        try:
            buf.append(normalise_record(rec))
        except Malformed as err:
            if rejected is not None:
                rejected.add(_rejected_row(rec, err.reason, err.detail))
            continue
        if len(buf) >= batch_size:
            yield buf, True
            buf = []
    if buf:
        yield buf, True


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

    LLM backends (``resumable`` extractors) work in shards under ``params.shard_dir`` and continue
    where a killed run stopped. Writes ``<output stem>.report.json`` too and returns the report."""
    if extractor is None and params.backend not in PER_TURN_BACKENDS:
        extractor = make_extractor(params)
    if extractor is not None and getattr(extractor, "resumable", False):
        return _extract_sharded(input_path, output, params, extractor)
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
    counters = {k: 0 for k in LLM_STAT_KEYS}
    report = _report(input_path, output, identity, conversations, rows_rejected, user_turns, per_category,
                     seconds, conversations, counters)
    write_json(sibling(output, "report.json"), report)
    log.info("extract: %d conversations, %d judged turns, %d feedback rows in %.1fs",
             conversations, user_turns, report["rows"], seconds)
    return report


def _report(input_path: str | Path, output: str | Path, identity: str, conversations: int, rows_rejected: int,
            user_turns: int, per_category: Counter[str], seconds: float, done_now: int,
            counters: dict[str, int]) -> dict[str, Any]:
    return {
        "input": str(input_path),
        "output": str(output),
        "extractor": identity,
        "conversations": conversations,
        "rows_rejected": rows_rejected,
        "user_turns": user_turns,
        "rows": sum(per_category.values()),
        "rows_per_category": dict(sorted(per_category.items())),
        "seconds": round(seconds, 3),
        "conversations_per_second": round(done_now / seconds, 3) if seconds > 0 and done_now else None,
        **{k: int(counters.get(k, 0)) for k in LLM_STAT_KEYS},
    }


def _extract_sharded(input_path: str | Path, output: str | Path, params: ExtractParams, extractor: Extractor
                     ) -> dict[str, Any]:
    """The resumable path: each batch is a shard; finished shards (in the manifest) are skipped."""
    from natfeed.extract.shards import ShardStore, run_key

    key, config = run_key(input_path, params, extractor.identity)
    store = ShardStore(params.shard_dir, key, config)
    done = store.done
    if done:
        log.info("extract: resuming %s: %d shards already done in %s", extractor.identity, len(done), store.dir)
    start = time.perf_counter()
    done_now = 0
    with ParquetSink(sibling(output, "rejected.parquet"), _rejected_schema(), 1000) as rejected:
        bar = tqdm(desc=f"extract ({extractor.identity})", unit=" conv", disable=None)
        for index, (batch, raw) in enumerate(_batches(input_path, params.batch_size, rejected)):
            if index in done:
                _check_shard(done[index], batch, store.shard_path(index))
                bar.update(len(batch))
                continue
            if raw and params.detect_language:
                batch = _with_languages(batch)
            shard_start = time.perf_counter()
            rows, n_conv, n_turns = _extract_rows(extractor, batch)
            counters, failures = extractor.take_stats()  # type: ignore[attr-defined]
            info = {"conversations": n_conv, "user_turns": n_turns, "rows": len(rows),
                    "first_id": batch[0].conversation_id, "last_id": batch[-1].conversation_id,
                    "seconds": round(time.perf_counter() - shard_start, 6), **counters}
            store.write(index, rows, [f.to_dict() for f in failures], info)
            done_now += n_conv
            bar.update(n_conv)
        bar.close()
        rows_rejected = rejected.rows
    report = _assemble(store, output, params)
    seconds = time.perf_counter() - start
    totals = report["totals"]
    result = _report(input_path, output, extractor.identity, totals["conversations"], rows_rejected,
                     totals["user_turns"], report["per_category"], seconds, done_now, totals)
    if not done_now and report["shard_seconds"] > 0:  # everything resumed: the shards' own throughput
        result["conversations_per_second"] = round(totals["conversations"] / report["shard_seconds"], 3)
    result.update({"mode": params.mode, "shards": len(store.done), "shards_resumed": len(done),
                   "shard_seconds": round(report["shard_seconds"], 3),
                   "conversations_this_run": done_now, "shard_dir": str(store.dir),
                   "parse_failures_file": str(report["failures_path"])})
    write_json(sibling(output, "report.json"), result)
    log.info("extract: %d conversations (%d this run), %d requests, %d feedback rows, %d parse failures, "
             "%d unmatched spans in %.1fs", totals["conversations"], done_now, totals["requests"],
             result["rows"], totals["parse_failures"], totals["unmatched_spans"], seconds)
    return result


def _check_shard(info: dict[str, Any], batch: list[Conversation], path: Path) -> None:
    got = (len(batch), batch[0].conversation_id, batch[-1].conversation_id)
    want = (info["conversations"], info["first_id"], info["last_id"])
    if got != want or not path.exists():
        raise RuntimeError(f"shard {path} does not match the input (expected {want}, read {got}); delete "
                           f"{path.parent} to start this run afresh")


def _assemble(store: Any, output: str | Path, params: ExtractParams) -> dict[str, Any]:
    """Write ``output`` from the finished shards, in order, and the parse failures beside the shards."""
    per_category: Counter[str] = Counter()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(output, FEEDBACK_SCHEMA) as writer:
        for table in store.tables():
            if table.num_rows:
                writer.write_table(table)
                per_category.update(table.column("category").to_pylist())
    totals: Counter[str] = Counter()
    for info in store.done.values():
        totals.update({k: v for k, v in info.items() if isinstance(v, int)})
    failures_path = Path(params.shard_dir).parent / f"{Path(output).name.split('.')[0]}.parse_failures.jsonl"
    failures_path.parent.mkdir(parents=True, exist_ok=True)
    with open(failures_path, "w", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for line in store.failures())
    shard_seconds = sum(float(info.get("seconds", 0.0)) for info in store.done.values())
    return {"per_category": per_category, "totals": totals, "failures_path": failures_path,
            "shard_seconds": shard_seconds}


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
