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
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from tqdm import tqdm

from natfeed.core.conversation import Conversation, judged_turns
from natfeed.core.errors import NatfeedError, ServerError
from natfeed.core.io import ParquetSink, atomic_path, atomic_write, sibling, write_report
from natfeed.core.tables import FEEDBACK_SCHEMA, REJECTED_SCHEMA
from natfeed.extract.backends import PER_TURN_BACKENDS, make_extractor
from natfeed.extract.base import Extractor, batch_rows
from natfeed.extract.checkpoint import ShardStore, run_key
from natfeed.extract.inputs import ConversationReader, count_user_turns, decode_chunk
from natfeed.extract.llm.base import STAT_KEYS as LLM_STAT_KEYS
from natfeed.extract.partition import partition_path, write_partition
from natfeed.extract.progress import RequestProgress
from natfeed.extract.ray_executor import BatchResult, run_batch
from natfeed.params import ExtractParams

log = logging.getLogger(__name__)

PAPER_COLUMNS = ("conversation_id", "feedback_turn", "category", "label")


class ExtractionStopped(NatfeedError, RuntimeError):
    """An LLM extraction stopped part way (the server failed); its finished shards are kept."""


def shard_root(params: ExtractParams, output: str | Path) -> Path:
    """``extract.shard_dir``, or ``<output folder>/.<output stem>.shards`` when it is not set."""
    if params.shard_dir:
        return Path(params.shard_dir)
    out = Path(output)
    return out.parent / f".{out.name.split('.')[0]}.shards"


def _extract_rows(extractor: Extractor, batch: list[Conversation], detect: tuple[float, int] | None = None
                  ) -> tuple[list[dict[str, Any]], int, int]:
    """(feedback rows, conversations, judged turns) of a batch; ``detect``: :func:`batch_rows`."""
    return batch_rows(extractor, batch, detect), len(batch), sum(1 for c in batch for _ in judged_turns(c))


_WORKER: Extractor | None = None
_DETECT: tuple[float, int] | None = None


def _init_worker(params: ExtractParams, detect: tuple[float, int] | None) -> None:
    global _WORKER, _DETECT
    _WORKER, _DETECT = make_extractor(params), detect


def _work(batch: list[Conversation]) -> tuple[list[dict[str, Any]], int, int]:
    assert _WORKER is not None
    return _extract_rows(_WORKER, batch, _DETECT)


def _work_lines(chunk: list[tuple[str, int, bytes]]) -> list[Any]:
    """Raw lines -> per line, in order: (conversation id, its feedback rows, judged turns, user turns), a rejected row or a
    duplicate id (:func:`decode_chunk`): the worker decodes, so the main process only reads bytes."""
    assert _WORKER is not None
    items = decode_chunk(chunk)
    convs = [c for c in items if isinstance(c, Conversation)]
    by_id: dict[str, list[dict[str, Any]]] = {c.conversation_id: [] for c in convs}
    for row in batch_rows(_WORKER, convs, _DETECT):
        by_id[row["conversation_id"]].append(row)
    return [(c.conversation_id, by_id[c.conversation_id], sum(1 for _ in judged_turns(c)), count_user_turns(c))
            if isinstance(c, Conversation) else c for c in items]


def _pooled(params: ExtractParams, extractor: Extractor | None) -> int:
    """Worker processes for this run (0 = in-process)."""
    workers = params.workers or os.cpu_count() or 1
    return workers if extractor is None and workers > 1 and params.backend in PER_TURN_BACKENDS else 0


def _line_results(reader: ConversationReader, params: ExtractParams, detect: tuple[float, int] | None
                  ) -> Iterator[tuple[list[dict[str, Any]], int, int]]:
    """:func:`_results` for raw JSONL: the workers decode and normalise their own chunks of lines; this process
    keeps the accounting (rows read, rejected, duplicate ids) in input order, so the rows are the same."""
    workers = _pooled(params, None)
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(params, detect)) as pool:
        pending: list[Any] = []

        def done(entries: list[Any]) -> tuple[list[dict[str, Any]], int, int]:
            rows, n_conv, n_turns = [], 0, 0
            for entry in entries:
                if isinstance(entry, tuple):
                    if reader.admit(entry[0], conversation=True, user_turns=entry[3]):
                        rows += entry[1]
                        n_conv += 1
                        n_turns += entry[2]
                else:
                    reader.admit(entry)
            return rows, n_conv, n_turns

        for chunk in reader.line_chunks(params.batch_size):
            pending.append(pool.submit(_work_lines, chunk))
            while len(pending) > 2 * workers:  # bounded read-ahead keeps memory flat
                yield done(pending.pop(0).result())
        for fut in pending:
            yield done(fut.result())


def _detect(params: ExtractParams, reader: ConversationReader) -> tuple[float, int] | None:
    """The language-detection settings when raw logs need it (ingested parquet has languages)."""
    if params.detect_language and not reader.normalised:
        return params.language_min_confidence, params.language_min_letters
    return None


def _ray_results(reader: ConversationReader, params: ExtractParams
                 ) -> Iterator[tuple[list[dict[str, Any]], int, int]]:
    """:func:`_results` on Ray actors (``extract.executor: ray``); languages are detected in the actors."""
    from natfeed.extract.ray_executor import RayPool

    pool = RayPool(params)
    try:
        for _, res in pool.map(((None, b) for b in reader.batches()), _detect(params, reader)):
            yield res.rows, res.conversations, res.user_turns
    finally:
        pool.close()


def _results(batches: Iterable[list[Conversation]], params: ExtractParams, extractor: Extractor | None,
             detect: tuple[float, int] | None = None) -> Iterator[tuple[list[dict[str, Any]], int, int]]:
    """Per-batch (rows, conversations, judged turns), in input order; per-turn backends run in a
    process pool of ``params.workers`` (0 = one per core), which also detects the missing languages."""
    workers = _pooled(params, extractor)
    if not workers:
        ext = extractor or make_extractor(params)
        for batch in batches:
            yield _extract_rows(ext, batch, detect)
        return
    ctx = mp.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(params, detect)) as pool:
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
    judged = 0
    per_category: Counter[str] = Counter()
    with (
        ParquetSink(output, FEEDBACK_SCHEMA, 5000) as sink,
        ParquetSink(sibling(output, "rejected.parquet"), REJECTED_SCHEMA, 1000) as rejected,
    ):
        reader.rejected = rejected
        bar = tqdm(desc=f"extract ({identity})", unit=" conv", disable=None)
        if params.executor == "ray":
            results = _ray_results(reader, params)
        elif _pooled(params, extractor) and reader.line_based:
            results = _line_results(reader, params, _detect(params, reader))
        else:
            results = _results(reader.batches(), params, extractor, _detect(params, reader))
        for rows, n_conv, n_turns in results:
            for row in rows:
                sink.add(row)
                per_category[row["category"]] += 1
            judged += n_turns
            bar.update(n_conv)
        bar.close()
        reader.check_any_kept()  # inside the sinks: an input of nothing but rejected rows writes nothing
    seconds = time.perf_counter() - start
    report = _report(reader, output, identity, judged, per_category, seconds, reader.rows_kept, {})
    write_report(sibling(output, "report.json"), report)
    log.info("extract: %d conversations, %d judged turns, %d feedback rows in %.1fs",
             reader.rows_kept, judged, report["rows"], seconds)
    return report


def _report(reader: ConversationReader, output: str | Path, identity: str, judged: int,
            per_category: Counter[str], seconds: float, done_now: int, counters: dict[str, int]) -> dict[str, Any]:
    if reader.rows_read == 0:
        log.warning("extract: %s holds no rows: wrote an empty feedback table", reader.path)
    return {
        "input": str(reader.path),
        "output": str(output),
        "extractor": identity,
        "conversations": reader.rows_kept,
        **reader.counts(),
        "user_turns": reader.user_turns,  # every user message of the kept conversations
        "judged_turns": judged,  # those after a reply, from the 2nd on: what the extractor judged
        "rows": sum(per_category.values()),
        "rows_per_category": dict(sorted(per_category.items())),
        "seconds": round(seconds, 3),
        "conversations_per_second": round(done_now / seconds, 3) if seconds > 0 and done_now else None,
        **{k: int(counters.get(k, 0)) for k in LLM_STAT_KEYS},
    }


def shard_requests(params: ExtractParams) -> int:
    """Requests per shard: ``extract.llm.shard_requests``, or auto (small on CPU, large on a GPU or a server)."""
    if params.llm.shard_requests:
        return params.llm.shard_requests
    if params.backend == "openai":
        return 2048
    try:
        import torch

        return 2048 if torch.cuda.is_available() else 32
    except ImportError:  # pragma: no cover - every local model backend needs torch
        return 32


def engine_batch(params: ExtractParams) -> int:
    """Requests handed to the backend at once (a micro-batch of a shard)."""
    if params.backend == "openai":
        return 4 * params.openai.concurrency
    if params.backend == "vllm":
        return params.vllm.max_num_seqs
    return params.transformers.batch_size


def requests_of(conv: Conversation, mode: str) -> int:
    """How many requests a conversation costs: one per judged turn (turn mode) or one (paper mode)."""
    turns = sum(1 for _ in judged_turns(conv))
    return turns if mode == "turn" else min(1, turns)


class _Shard:
    """The shard being filled: micro-batches until a limit, then one commit to the store."""

    def __init__(self, index: int) -> None:
        self.index, self.start = index, time.perf_counter()
        self.rows: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []
        self.counters: Counter[str] = Counter()
        self.conversations = 0
        self.first_id = self.last_id = ""
        self.user_turns = 0
        self.failures_added = 0  # parse failures of the last micro-batch

    def add(self, res: BatchResult, first_id: str, last_id: str) -> None:
        """A micro-batch's result (its conversations run from ``first_id`` to ``last_id``)."""
        self.rows += res.rows
        self.failures_added = len(res.failures)
        self.failures += res.failures
        self.counters.update(res.counters)
        self.first_id = self.first_id or first_id
        self.last_id = last_id
        self.conversations += res.conversations
        self.user_turns += res.user_turns

    def full(self, params: ExtractParams, max_requests: int) -> bool:
        return (self.conversations >= params.batch_size or self.counters["requests"] >= max_requests
                or time.perf_counter() - self.start >= params.llm.shard_seconds)

    def commit(self, store: ShardStore) -> None:
        info = {"conversations": self.conversations, "user_turns": self.user_turns, "rows": len(self.rows),
                "first_id": self.first_id, "last_id": self.last_id,
                "seconds": round(time.perf_counter() - self.start, 6), **self.counters}
        store.write(self.index, self.rows, self.failures, info)


def _take(stream: Iterator[Conversation], max_conversations: int, max_requests: int, mode: str
          ) -> tuple[list[Conversation], int]:
    """The next conversations, up to ``max_conversations`` or about ``max_requests`` requests (at least one)."""
    batch: list[Conversation] = []
    cost = 0
    while len(batch) < max_conversations and cost < max_requests:
        conv = next(stream, None)
        if conv is None:
            break
        batch.append(conv)
        cost += requests_of(conv, mode)
    return batch, cost


def _extract_sharded(reader: ConversationReader, output: str | Path, params: ExtractParams, extractor: Extractor
                     ) -> dict[str, Any]:
    """The resumable path: shards of at most ``extract.batch_size`` conversations, ``shard_requests`` requests or
    ``shard_seconds`` of work, each committed to the manifest with its conversations; a rerun skips them."""
    key, config = run_key(reader.scan.files, params, extractor.identity)
    store = ShardStore(shard_root(params, output), key, config)
    done = store.done
    if sorted(done) != list(range(len(done))):
        raise ExtractionStopped(f"the manifest in {store.dir} has gaps ({sorted(done)}); delete {store.dir} to start "
                                "this run afresh")
    if done:
        log.info("extract: resuming %s: %d shards already done in %s", extractor.identity, len(done), store.dir)
    total = sum(requests_of(c, params.mode) for batch in ConversationReader(reader.path, params.batch_size).batches()
                for c in batch)
    progress = RequestProgress(total, extractor.identity, params.llm.progress_seconds,
                               resumed=sum(int(i.get("requests", 0)) for i in done.values()))
    start = time.perf_counter()
    done_now = 0
    max_requests = shard_requests(params)
    try:
        with ParquetSink(sibling(output, "rejected.parquet"), REJECTED_SCHEMA, 1000) as rejected:
            reader.rejected = rejected
            stream = (conv for batch in reader.batches() for conv in batch)
            for index in range(len(done)):  # the finished shards: check they cover the same conversations
                batch = list(islice(stream, int(done[index]["conversations"])))
                _check_shard(done[index], batch, store.shard_path(index))
            if params.executor == "ray":
                done_now = _run_ray(stream, len(done), store, params, max_requests, progress, _detect(params, reader))
            else:
                done_now = _run_local(stream, len(done), store, params, max_requests, progress, extractor,
                                      _detect(params, reader))
    finally:
        progress.close()
    per_category, totals, shard_seconds = _assemble(store, output)
    failures_path = store.root.parent / f"{Path(output).name.split('.')[0]}.parse_failures.jsonl"
    atomic_write(failures_path, "".join(line + "\n" for line in store.failures()).encode("utf-8"))
    result = _report(reader, output, extractor.identity, totals["user_turns"], per_category,
                     time.perf_counter() - start, done_now, totals)
    if not done_now and shard_seconds > 0:  # everything resumed: the shards' own throughput
        result["conversations_per_second"] = round(totals["conversations"] / shard_seconds, 3)
    result.update({"mode": params.mode, "shards": len(store.done), "shards_resumed": len(done),
                   "shard_seconds": round(shard_seconds, 3), "conversations_this_run": done_now,
                   "shard_dir": str(store.dir), "parse_failures_file": str(failures_path),
                   "seconds_per_request": round(shard_seconds / totals["requests"], 4) if totals["requests"] else None})
    write_report(sibling(output, "report.json"), result)
    log.info("extract: %d conversations (%d this run), %d requests, %d feedback rows, %d parse failures, "
             "%d unmatched spans in %.1fs", totals["conversations"], done_now, totals["requests"],
             result["rows"], totals["parse_failures"], totals["unmatched_spans"], result["seconds"])
    return result


def _kept(store: ShardStore) -> str:
    return (f"{len(store.done)} shard(s) of this run are done and kept in {store.dir}: rerun the same command "
            "to continue from there" if store.done else "no shard was finished yet: rerun the same command "
            "once the server answers")


def _run_local(stream: Iterator[Conversation], first: int, store: ShardStore, params: ExtractParams,
               max_requests: int, progress: RequestProgress, extractor: Extractor,
               detect: tuple[float, int] | None) -> int:
    """Micro-batches of the engine's size that never cross a shard's limits, in this process; returns the
    conversations done."""
    shard, engine, done_now = _Shard(first), engine_batch(params), 0
    while True:
        room = min(engine, max_requests - shard.counters["requests"])
        batch, cost = _take(stream, params.batch_size - shard.conversations, max(1, room), params.mode)
        if not batch:
            break
        try:
            res = run_batch(extractor, batch, detect)
        except ServerError as err:  # a server failure stops the run, naming what is kept
            raise ExtractionStopped(f"{err}\n{_kept(store)}") from err
        shard.add(res, batch[0].conversation_id, batch[-1].conversation_id)
        progress.update(cost, shard.failures_added)
        if shard.full(params, max_requests):
            shard.commit(store)
            done_now += shard.conversations
            progress.shard_done(shard.index)
            shard = _Shard(shard.index + 1)
    if shard.conversations:
        shard.commit(store)
        done_now += shard.conversations
    return done_now


def plan_shards(stream: Iterator[Conversation], first: int, params: ExtractParams, max_requests: int
                ) -> Iterator[tuple[int, list[Conversation], int]]:
    """(shard index, micro-batch, estimated requests): the cuts of :func:`_run_local` made up front from the
    request estimate (``shard_seconds`` cannot apply before the work is done)."""
    index, n_conv, n_req, engine = first, 0, 0, engine_batch(params)
    while True:
        batch, cost = _take(stream, params.batch_size - n_conv, max(1, min(engine, max_requests - n_req)),
                            params.mode)
        if not batch:
            return
        yield index, batch, cost
        n_conv, n_req = n_conv + len(batch), n_req + cost
        if n_conv >= params.batch_size or n_req >= max_requests:
            index, n_conv, n_req = index + 1, 0, 0


def _run_ray(stream: Iterator[Conversation], first: int, store: ShardStore, params: ExtractParams,
             max_requests: int, progress: RequestProgress, detect: tuple[float, int] | None) -> int:
    """The planned micro-batches on Ray actors; each shard is committed as soon as its last one is back."""
    from natfeed.extract.ray_executor import RayPool

    pool, shard, done_now = RayPool(params), _Shard(first), 0
    plan = (((index, cost, batch[0].conversation_id, batch[-1].conversation_id), batch)
            for index, batch, cost in plan_shards(stream, first, params, max_requests))
    try:
        for (index, cost, first_id, last_id), res in pool.map(plan, detect):
            if index != shard.index:
                shard.commit(store)
                done_now += shard.conversations
                progress.shard_done(shard.index)
                shard = _Shard(index)
            shard.add(res, first_id, last_id)
            progress.update(cost, shard.failures_added)
        if shard.conversations:
            shard.commit(store)
            done_now += shard.conversations
    except Exception as err:
        if isinstance(err, NatfeedError):
            raise
        first_line = (str(err).strip().splitlines() or [""])[-1][:500]
        raise ExtractionStopped(f"ray: the extraction failed ({type(err).__name__}: {first_line})\n"
                                f"{_kept(store)}") from err
    finally:
        pool.close()
    return done_now


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
    write_report(sibling(output, "report.json"), report)
    return report
