"""Run an extractor over a conversations file and write feedback.parquet and its report.

Outputs are written atomically (:mod:`natfeed.core.io`): a failed run leaves an earlier output, its
rejected rows and its report untouched. The report accounts for every input row:
``rows_read = rows_kept + rows_rejected + rows_filtered`` (filtered = a conversation id seen before).
"""

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

from natfeed.core.conversation import Conversation, judged_turns
from natfeed.core.errors import NatfeedError
from natfeed.core.io import ParquetSink, atomic_path, atomic_write, sibling, write_json
from natfeed.core.openai_client import ServerError
from natfeed.core.tables import FEEDBACK_SCHEMA, REJECTED_SCHEMA
from natfeed.extract.backends import make_extractor
from natfeed.extract.base import Extractor, feedback_row
from natfeed.extract.checkpoint import ShardStore, run_key
from natfeed.extract.inputs import ConversationReader, with_languages
from natfeed.extract.llm.base import STAT_KEYS as LLM_STAT_KEYS
from natfeed.extract.partition import partition_path, write_partition
from natfeed.params import ExtractParams

log = logging.getLogger(__name__)

PAPER_COLUMNS = ("conversation_id", "feedback_turn", "category", "label")
PER_TURN_BACKENDS = {"heuristic"}
"""Backends whose work is plain Python per turn, so they scale with worker processes."""


class ExtractionStopped(NatfeedError, RuntimeError):
    """An LLM extraction stopped part way (the server failed); its finished shards are kept."""


def shard_root(params: ExtractParams, output: str | Path) -> Path:
    """``extract.shard_dir``, or ``<output folder>/.<output stem>.shards`` when it is not set."""
    if params.shard_dir:
        return Path(params.shard_dir)
    out = Path(output)
    return out.parent / f".{out.name.split('.')[0]}.shards"


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


def extract_file(
    input_path: str | Path, output: str | Path, params: ExtractParams, extractor: Extractor | None = None
) -> dict[str, Any]:
    """Extract feedback from every conversation at ``input_path`` into ``output``.

    LLM backends (``resumable`` extractors) work in shards under :func:`shard_root` and continue where a
    killed run stopped. Writes ``<output stem>.report.json`` too and returns the report."""
    reader = ConversationReader(input_path, params.batch_size)  # raises InputError before writing anything
    if extractor is None and params.backend not in PER_TURN_BACKENDS:
        extractor = make_extractor(params)
    if extractor is not None and getattr(extractor, "resumable", False):
        return _extract_sharded(reader, output, params, extractor)
    identity = (extractor or make_extractor(params)).identity
    start = time.perf_counter()
    user_turns = 0
    per_category: Counter[str] = Counter()
    with (
        ParquetSink(output, FEEDBACK_SCHEMA, 5000) as sink,
        ParquetSink(sibling(output, "rejected.parquet"), REJECTED_SCHEMA, 1000) as rejected,
    ):
        reader.rejected = rejected
        bar = tqdm(desc=f"extract ({identity})", unit=" conv", disable=None)
        for rows, n_conv, n_turns in _results(reader.prepared(params.detect_language, params.language_min_confidence,
                                                               params.language_min_letters), params, extractor):
            for row in rows:
                sink.add(row)
                per_category[row["category"]] += 1
            user_turns += n_turns
            bar.update(n_conv)
        bar.close()
    seconds = time.perf_counter() - start
    report = _report(reader, output, identity, user_turns, per_category, seconds, reader.rows_kept, {})
    write_json(sibling(output, "report.json"), report)
    log.info("extract: %d conversations, %d judged turns, %d feedback rows in %.1fs",
             reader.rows_kept, user_turns, report["rows"], seconds)
    return report


def _report(reader: ConversationReader, output: str | Path, identity: str, user_turns: int,
            per_category: Counter[str], seconds: float, done_now: int, counters: dict[str, int]) -> dict[str, Any]:
    if reader.rows_read == 0:
        log.warning("extract: %s holds no rows: wrote an empty feedback table", reader.path)
    return {
        "input": str(reader.path),
        "output": str(output),
        "extractor": identity,
        "conversations": reader.rows_kept,
        **reader.counts(),
        "user_turns": user_turns,
        "rows": sum(per_category.values()),
        "rows_per_category": dict(sorted(per_category.items())),
        "seconds": round(seconds, 3),
        "conversations_per_second": round(done_now / seconds, 3) if seconds > 0 and done_now else None,
        **{k: int(counters.get(k, 0)) for k in LLM_STAT_KEYS},
    }


def _extract_sharded(reader: ConversationReader, output: str | Path, params: ExtractParams, extractor: Extractor
                     ) -> dict[str, Any]:
    """The resumable path: each batch is a shard; finished shards (in the manifest) are skipped."""
    key, config = run_key(reader.scan.files, params, extractor.identity)
    store = ShardStore(shard_root(params, output), key, config)
    done = store.done
    if done:
        log.info("extract: resuming %s: %d shards already done in %s", extractor.identity, len(done), store.dir)
    start = time.perf_counter()
    done_now = 0
    with ParquetSink(sibling(output, "rejected.parquet"), REJECTED_SCHEMA, 1000) as rejected:
        reader.rejected = rejected
        bar = tqdm(desc=f"extract ({extractor.identity})", unit=" conv", disable=None)
        for index, batch in enumerate(reader.batches()):
            if index in done:
                _check_shard(done[index], batch, store.shard_path(index))
                bar.update(len(batch))
                continue
            done_now += _run_shard(extractor, batch, index, store, params, reader.normalised)
            bar.update(len(batch))
        bar.close()
    per_category, totals, shard_seconds = _assemble(store, output)
    failures_path = store.root.parent / f"{Path(output).name.split('.')[0]}.parse_failures.jsonl"
    atomic_write(failures_path, "".join(line + "\n" for line in store.failures()).encode("utf-8"))
    result = _report(reader, output, extractor.identity, totals["user_turns"], per_category,
                     time.perf_counter() - start, done_now, totals)
    if not done_now and shard_seconds > 0:  # everything resumed: the shards' own throughput
        result["conversations_per_second"] = round(totals["conversations"] / shard_seconds, 3)
    result.update({"mode": params.mode, "shards": len(store.done), "shards_resumed": len(done),
                   "shard_seconds": round(shard_seconds, 3), "conversations_this_run": done_now,
                   "shard_dir": str(store.dir), "parse_failures_file": str(failures_path)})
    write_json(sibling(output, "report.json"), result)
    log.info("extract: %d conversations (%d this run), %d requests, %d feedback rows, %d parse failures, "
             "%d unmatched spans in %.1fs", totals["conversations"], done_now, totals["requests"],
             result["rows"], totals["parse_failures"], totals["unmatched_spans"], result["seconds"])
    return result


def _run_shard(extractor: Extractor, batch: list[Conversation], index: int, store: ShardStore,
               params: ExtractParams, normalised: bool) -> int:
    """Extract one shard and commit it to the store; a server failure stops the run, naming what is kept."""
    if params.detect_language and not normalised:
        batch = with_languages(batch, params.language_min_confidence, params.language_min_letters)
    shard_start = time.perf_counter()
    try:
        rows, n_conv, n_turns = _extract_rows(extractor, batch)
    except ServerError as err:
        kept = (f"{len(store.done)} shard(s) of this run are done and kept in {store.dir}: rerun the same command "
                "to continue from there" if store.done else "no shard was finished yet: rerun the same command "
                "once the server answers")
        raise ExtractionStopped(f"{err}\n{kept}") from err
    counters, failures = extractor.take_stats()  # type: ignore[attr-defined]
    info = {"conversations": n_conv, "user_turns": n_turns, "rows": len(rows),
            "first_id": batch[0].conversation_id, "last_id": batch[-1].conversation_id,
            "seconds": round(time.perf_counter() - shard_start, 6), **counters}
    store.write(index, rows, [f.to_dict() for f in failures], info)
    return n_conv


def _check_shard(info: dict[str, Any], batch: list[Conversation], path: Path) -> None:
    got = (len(batch), batch[0].conversation_id, batch[-1].conversation_id)
    want = (info["conversations"], info["first_id"], info["last_id"])
    if got != want or not path.exists():
        raise ExtractionStopped(f"shard {path} does not match the input (expected {want}, read {got}); delete "
                                f"{path.parent} to start this run afresh")


def _assemble(store: ShardStore, output: str | Path) -> tuple[Counter[str], Counter[str], float]:
    """Write ``output`` from the finished shards, in order: (rows per category, summed counters, seconds)."""
    per_category: Counter[str] = Counter()
    with ParquetSink(output, FEEDBACK_SCHEMA) as sink:
        for table in store.tables():
            sink.write_table(table)
            per_category.update(table.column("category").to_pylist())
    totals: Counter[str] = Counter()
    for info in store.done.values():
        totals.update({k: v for k, v in info.items() if isinstance(v, int)})
    shard_seconds = sum(float(info.get("seconds", 0.0)) for info in store.done.values())
    return per_category, totals, shard_seconds


def write_paper_csv(feedback_path: str | Path, csv_path: str | Path) -> int:
    """Write the paper's released format: conversation_id, feedback_turn, category (UR code), label."""
    table = pq.read_table(feedback_path, columns=["conversation_id", "feedback_turn", "code", "label"])
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(PAPER_COLUMNS)
        for row in table.to_pylist():
            writer.writerow([row["conversation_id"], row["feedback_turn"], row["code"], row["label"]])
    return table.num_rows


def extract_partition(input_path: str | Path, output: str | Path, params: ExtractParams, index: int,
                      num_shards: int) -> dict[str, Any]:
    """Extract shard ``index`` of ``num_shards`` of ``input_path`` into ``output`` (one job of many)."""
    part = partition_path(shard_root(params, output), input_path, index, num_shards)
    counts = write_partition(input_path, part, index, num_shards, params)
    report = extract_file(part, output, params)
    report.update({"input": str(input_path), "partition": str(part), "shard_index": index,
                   "num_shards": num_shards, **counts})
    write_json(sibling(output, "report.json"), report)
    return report
