"""Run an extractor over a conversations file and write feedback.parquet and its report.

Outputs are written atomically (:mod:`natfeed.core.io`): a failed run leaves an earlier output, its
rejected rows and its report untouched. The report accounts for every input row:
``rows_read = rows_kept + rows_rejected + rows_filtered`` (filtered = a conversation id seen before).
"""

from __future__ import annotations

import csv
import logging
import time
from collections import Counter
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from tqdm import tqdm

from natfeed.core.conversation import Conversation, judged_turns
from natfeed.core.errors import BudgetStopped, NatfeedError, ServerError, UsageError
from natfeed.core.io import ParquetSink, atomic_path, atomic_write, sibling, write_report
from natfeed.core.tables import FEEDBACK_SCHEMA, REJECTED_SCHEMA
from natfeed.extract.backends import PER_TURN_BACKENDS, make_extractor
from natfeed.extract.base import BatchResult, Extractor
from natfeed.extract.checkpoint import ShardStore, run_key, shard_root, with_cache_dir
from natfeed.extract.estimate import price
from natfeed.extract.executors import Executor, ExecutorFailed, InProcess, ProcessPool, make_executor
from natfeed.extract.inputs import ConversationReader
from natfeed.extract.llm.base import STAT_KEYS as LLM_STAT_KEYS
from natfeed.extract.llm.base import BudgetReached
from natfeed.extract.llm.cache import attach_cache
from natfeed.extract.partition import partition_path, write_partition
from natfeed.extract.progress import RequestProgress
from natfeed.params import ExtractParams
from natfeed.params.data import RedactParams
from natfeed.privacy.redact import Redactor

log = logging.getLogger(__name__)

PAPER_COLUMNS = ("conversation_id", "feedback_turn", "category", "label")


class ExtractionStopped(NatfeedError, RuntimeError):
    """An LLM extraction stopped part way (the server failed); its finished shards are kept."""


def _detect(params: ExtractParams, reader: ConversationReader) -> tuple[float, int] | None:
    """The language-detection settings when raw logs need it (ingested parquet has languages)."""
    if params.detect_language and not reader.normalised:
        return params.language_min_confidence, params.language_min_letters
    return None


def extract_file(
    input_path: str | Path, output: str | Path, params: ExtractParams, extractor: Extractor | None = None,
    redact: RedactParams | None = None,
) -> dict[str, Any]:
    """Extract feedback from every conversation at ``input_path`` into ``output``.

    Raw logs are redacted as they are read (``redact``: ``ingest.redact``, default on; an ingested parquet
    was redacted by ingest). LLM backends (``resumable`` extractors) work in shards under :func:`shard_root`
    and continue where a killed run stopped. Writes ``<output stem>.report.json`` too and returns the report."""
    reader = ConversationReader(input_path, params.batch_size)  # raises InputError before writing anything
    redact = redact if redact is not None else RedactParams()
    if redact.enabled and not reader.normalised:
        reader.redactor = Redactor(redact)
    params = with_cache_dir(params, output)
    if extractor is None and params.backend not in PER_TURN_BACKENDS:
        extractor = make_extractor(params)
    if extractor is not None and getattr(extractor, "resumable", False):
        return _extract_sharded(reader, output, params, extractor)
    executor = make_executor(params, extractor, _detect(params, reader), reader.redactor)
    identity = (extractor or getattr(executor, "extractor", None) or make_extractor(params)).identity
    start = time.perf_counter()
    judged = 0
    per_category: Counter[str] = Counter()
    try:
        with (
            ParquetSink(output, FEEDBACK_SCHEMA, 5000) as sink,
            ParquetSink(sibling(output, "rejected.parquet"), REJECTED_SCHEMA, 1000) as rejected,
        ):
            reader.rejected = rejected
            bar = tqdm(desc=f"extract ({identity})", unit=" conv", disable=None)
            if isinstance(executor, ProcessPool) and reader.line_based:  # raw JSONL: the workers decode it
                results: Iterator[BatchResult] = executor.map_lines(reader, params.batch_size)
            else:
                results = (res for _, res in executor.map((None, batch) for batch in reader.batches()))
            for res in results:
                for row in res.rows:
                    sink.add(row)
                    per_category[row["category"]] += 1
                judged += res.judged_turns
                bar.update(res.conversations)
            bar.close()
            reader.check_any_kept()  # inside the sinks: an input of nothing but rejected rows writes nothing
    finally:
        executor.close()
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
    if params.llm.max_requests is not None and params.executor == "ray":
        raise UsageError("extract.llm.max_requests (--max-requests) counts requests in this process: use "
                         "extract.executor: local (the vllm backend spreads over GPUs with vllm.engine), or no cap")
    cache = attach_cache(params, extractor)
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
            executor = (InProcess(extractor, _detect(params, reader)) if params.executor != "ray"
                        else make_executor(params, extractor, _detect(params, reader)))
            try:
                done_now = _run_shards(ShardPlanner(stream, len(done), params, max_requests), store, params,
                                       progress, executor)
            except BudgetReached as err:
                raise _budget_stopped(reader, params, extractor, store) from err
            finally:
                executor.close()
    finally:
        progress.close()
        if cache is not None:
            cache.close()
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
                   "seconds_per_request": round(shard_seconds / totals["requests"], 4) if totals["requests"] else None,
                   "estimated_cost": price(totals["prompt_tokens"], totals["generated_tokens"], params.cost)[1],
                   "cost_currency": params.cost.currency, "cache_dir": str(cache.dir) if cache is not None else None})
    write_report(sibling(output, "report.json"), result)
    log.info("extract: %d conversations (%d this run), %d requests, %d feedback rows, %d parse failures, "
             "%d unmatched spans in %.1fs", totals["conversations"], done_now, totals["requests"],
             result["rows"], totals["parse_failures"], totals["unmatched_spans"], result["seconds"])
    return result


def _budget_stopped(reader: ConversationReader, params: ExtractParams, extractor: Any, store: ShardStore
                    ) -> BudgetStopped:
    """The exit-3 error of a run that spent ``extract.llm.max_requests``: what was sent, what remains, what is kept."""
    from natfeed.extract.estimate import estimate

    left = estimate(reader.path, params, extractor)
    return BudgetStopped(
        f"stopped by the budget: {extractor.sent} new request(s) sent (extract.llm.max_requests / --max-requests "
        f"{params.llm.max_requests}); {left.to_send} of {left.requests} request(s) are still unanswered, "
        f"{left.cached} are cached. No feedback table was written.\n{_kept(store)}; rerun without the cap (or "
        "with a new one) to send the rest")


def _kept(store: ShardStore) -> str:
    return (f"{len(store.done)} shard(s) of this run are done and kept in {store.dir}: rerun the same command "
            "to continue from there" if store.done else "no shard was finished yet: rerun the same command "
            "once the server answers")


class ShardPlanner:
    """Cuts the input into micro-batches of the engine's size that never cross a shard's limits
    (``extract.batch_size`` conversations, ``max_requests`` estimated requests); :meth:`cut` closes the current
    shard early (``shard_seconds`` of work, known only once it is done: a lazy executor applies it exactly)."""

    def __init__(self, stream: Iterator[Conversation], first: int, params: ExtractParams, max_requests: int) -> None:
        self.stream, self.index, self.params, self.max_requests = stream, first, params, max_requests
        self.n_conv = self.n_req = 0
        self.engine = engine_batch(params)

    def cut(self) -> None:
        if self.n_conv:
            self.index, self.n_conv, self.n_req = self.index + 1, 0, 0

    def tasks(self) -> Iterator[tuple[tuple[int, int, str, str, bool], list[Conversation]]]:
        """((shard index, estimated requests, first id, last id, last of its shard), micro-batch), in input order."""
        while True:
            room = max(1, min(self.engine, self.max_requests - self.n_req))
            batch, cost = _take(self.stream, self.params.batch_size - self.n_conv, room, self.params.mode)
            if not batch:
                return
            self.n_conv, self.n_req = self.n_conv + len(batch), self.n_req + cost  # before the yield: cut() sees it
            full = self.n_conv >= self.params.batch_size or self.n_req >= self.max_requests
            yield (self.index, cost, batch[0].conversation_id, batch[-1].conversation_id, full), batch
            if full:
                self.cut()  # a no-op when the runner already cut this shard


def plan_shards(stream: Iterator[Conversation], first: int, params: ExtractParams, max_requests: int
                ) -> Iterator[tuple[int, list[Conversation], int]]:
    """(shard index, micro-batch, estimated requests) of :class:`ShardPlanner`, without time cuts."""
    for (index, cost, _, _, _), batch in ShardPlanner(stream, first, params, max_requests).tasks():
        yield index, batch, cost


def _run_shards(planner: ShardPlanner, store: ShardStore, params: ExtractParams, progress: RequestProgress,
                executor: Executor) -> int:
    """The planned micro-batches through ``executor``; each shard is committed as soon as its last micro-batch is
    back. Returns the conversations done in this run."""
    shard, done_now = _Shard(planner.index), 0
    try:
        for (index, cost, first_id, last_id, last), res in executor.map(planner.tasks()):
            shard.add(res, first_id, last_id)
            progress.update(cost, shard.failures_added)
            if not last and executor.lazy and time.perf_counter() - shard.start >= params.llm.shard_seconds:
                planner.cut()  # enough work in this shard: the next micro-batch opens the next one
                last = True
            if last:  # committed at once: a failure in the next micro-batch keeps it
                shard.commit(store)
                done_now += shard.conversations
                progress.shard_done(shard.index)
                shard = _Shard(index + 1)
    except (ServerError, ExecutorFailed) as err:  # a server or executor failure stops the run, naming what is kept
        raise ExtractionStopped(f"{err}\n{_kept(store)}") from err
    if shard.conversations:
        shard.commit(store)
        done_now += shard.conversations
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
                      num_shards: int, redact: RedactParams | None = None) -> dict[str, Any]:
    """Extract partition ``index`` of ``num_shards`` of ``input_path`` into ``output`` (one machine's job of
    many; whatever the executor). Not to be confused with the resumable shards of one run (:class:`ShardPlanner`)."""
    part = partition_path(shard_root(params, output), input_path, index, num_shards)
    redact = redact if redact is not None else RedactParams()
    counts = write_partition(input_path, part, index, num_shards, params,
                             Redactor(redact) if redact.enabled else None)  # the partition holds redacted text
    report = extract_file(part, output, params, redact=redact)
    report.update({"input": str(input_path), "partition": str(part), "partition_index": index,
                   "num_partitions": num_shards, "shard_index": index, "num_shards": num_shards,  # the old names
                   **counts})
    write_report(sibling(output, "report.json"), report)
    return report
