"""Scale-out: conversations to shards by a hash of their id, engine replicas on disjoint devices.

Two ways to run several engines, both routed by :func:`shard_of` (a stable hash of
``conversation_id``, so the assignment is the same in every process, run and machine: the shards are
disjoint and together cover the input):

- one machine, several GPUs: ``extract.vllm.replicas`` engines, each in its own process with its own
  ``CUDA_VISIBLE_DEVICES`` group (:class:`ReplicaPool`); the extract run, its resumable shards and its
  report stay in the calling process;
- several machines or jobs: ``natfeed extract --shard-index i --num-shards n`` on each
  (:func:`extract_partition`), then ``natfeed extract-merge`` (:func:`merge_outputs`).

Nothing here imports vLLM; :class:`ReplicaPool` starts engines only through the factory it is given.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib
import logging
import multiprocessing as mp
import os
import queue
import traceback
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from natfeed.extract.vllm_backend import Executor, Generated

if TYPE_CHECKING:
    from natfeed.config import ExtractParams

log = logging.getLogger(__name__)


# -- assignment ----------------------------------------------------------------------------------
def shard_of(conversation_id: str, num_shards: int) -> int:
    """The shard (0 .. num_shards-1) of a conversation: blake2b of its id, so not Python's salted hash."""
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    digest = hashlib.blake2b(conversation_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def split_indices(keys: Sequence[str], num_shards: int) -> list[list[int]]:
    """For each shard, the positions of ``keys`` that belong to it (in input order)."""
    parts: list[list[int]] = [[] for _ in range(num_shards)]
    for i, key in enumerate(keys):
        parts[shard_of(key, num_shards)].append(i)
    return parts


def device_groups(replicas: int, tensor_parallel_size: int, devices: Sequence[str] = ()) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` of each replica: ``devices`` as given (one comma-separated group per
    replica, ``tensor_parallel_size`` devices each), or consecutive ids: 2 replicas x tp 2 -> 0,1 | 2,3."""
    if replicas < 1 or tensor_parallel_size < 1:
        raise ValueError("replicas and tensor_parallel_size must be >= 1")
    if not devices:
        return [",".join(str(r * tensor_parallel_size + j) for j in range(tensor_parallel_size))
                for r in range(replicas)]
    groups = [g.replace(" ", "") for g in devices]
    if len(groups) != replicas:
        raise ValueError(f"extract.vllm.devices has {len(groups)} groups for {replicas} replicas: give one "
                         "comma-separated device group per replica, e.g. ['0,1', '2,3']")
    seen: list[str] = []
    for group in groups:
        ids = [d for d in group.split(",") if d]
        if len(ids) != tensor_parallel_size:
            raise ValueError(f"device group {group!r} has {len(ids)} devices; tensor_parallel_size is "
                             f"{tensor_parallel_size}")
        seen.extend(ids)
    if len(seen) != len(set(seen)):
        raise ValueError(f"device groups overlap: {groups}; each replica needs its own devices")
    return groups


# -- replicas on one machine ---------------------------------------------------------------------
def _resolve(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _replica_main(kwargs: dict[str, Any], devices: str, factory: str, runner: str,
                  inbox: Any, outbox: Any) -> None:
    """A replica process: pin its devices, start one engine, answer batches until told to stop."""
    if devices:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    try:
        engine, run = _resolve(factory)(kwargs), _resolve(runner)
        outbox.put(("ready", None))
        while (job := inbox.get()) is not None:
            outbox.put(("ok", run(engine, *job)))
    except BaseException:  # reported to the parent, which raises it
        outbox.put(("error", traceback.format_exc()))


class ReplicaPool(Executor):
    """``len(groups)`` engine processes; a batch's requests go to replica ``shard_of(conversation_id)``."""

    def __init__(self, kwargs: dict[str, Any], groups: Sequence[str],
                 factory: str = "natfeed.extract.vllm_backend:make_engine",
                 runner: str = "natfeed.extract.vllm_backend:run_engine", start_timeout_s: float = 3600) -> None:
        ctx = mp.get_context("spawn")  # engines must not inherit a forked parent's state
        self.groups = list(groups)
        self.inboxes = [ctx.Queue() for _ in self.groups]
        self.outboxes = [ctx.Queue() for _ in self.groups]
        self.procs = [ctx.Process(target=_replica_main, name=f"natfeed-replica-{i}",
                                  args=(kwargs, g, factory, runner, self.inboxes[i], self.outboxes[i]))
                      for i, g in enumerate(self.groups)]
        for p in self.procs:
            p.start()
        atexit.register(self.close)  # replicas are not daemons (an engine starts processes of its own)
        for i in range(len(self.procs)):
            self._receive(i, start_timeout_s)
        log.info("vllm: %d replicas ready on devices %s", len(self.procs), " | ".join(self.groups))

    def _receive(self, i: int, timeout_s: float | None = None) -> Any:
        waited = 0.0
        while True:
            try:
                status, value = self.outboxes[i].get(timeout=5)
                break
            except queue.Empty:
                waited += 5
                if not self.procs[i].is_alive():
                    raise RuntimeError(f"replica {i} (devices {self.groups[i]!r}) died "
                                       f"(exit code {self.procs[i].exitcode})") from None
                if timeout_s is not None and waited >= timeout_s:
                    raise TimeoutError(f"replica {i} did not answer in {timeout_s}s") from None
        if status == "error":
            self.close()
            raise RuntimeError(f"replica {i} (devices {self.groups[i]!r}) failed:\n{value}")
        return value

    def generate(self, prompts: Sequence[list[int]], specs: Sequence[dict[str, Any]],
                 keys: Sequence[str]) -> list[Generated]:
        parts = split_indices(keys, len(self.procs))
        for i, idx in enumerate(parts):  # every replica works at once
            if idx:
                self.inboxes[i].put(([prompts[j] for j in idx], [specs[j] for j in idx]))
        out: list[Generated | None] = [None] * len(prompts)
        for i, idx in enumerate(parts):
            if idx:
                for j, gen in zip(idx, self._receive(i), strict=True):
                    out[j] = gen
        return [g for g in out if g is not None]

    def close(self) -> None:
        """Stop every replica (also at interpreter exit); idempotent."""
        for box, proc in zip(self.inboxes, self.procs, strict=True):
            if proc.is_alive():
                box.put(None)
        for proc in self.procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.terminate()


def echo_engine(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A stand-in engine (no vLLM) that checks the routing: see :func:`echo_run`."""
    return {"devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "pid": os.getpid(), **kwargs}


def echo_run(engine: dict[str, Any], prompts: Sequence[list[int]], specs: Sequence[dict[str, Any]]
             ) -> list[Generated]:
    """Answers ``<devices>|<pid>|<first prompt id>`` for every prompt."""
    return [Generated(f"{engine['devices']}|{engine['pid']}|{ids[0] if ids else ''}", len(ids), 0)
            for ids in prompts]


# -- several jobs or machines --------------------------------------------------------------------
def partition_path(params: ExtractParams, input_path: str | Path, index: int, num_shards: int) -> Path:
    stem = Path(str(input_path).rstrip("/*")).name.split(".")[0] or "input"
    return Path(params.shard_dir) / "partitions" / f"{stem}-{index:03d}-of-{num_shards:03d}.parquet"


def write_partition(input_path: str | Path, out: str | Path, index: int, num_shards: int,
                    params: ExtractParams) -> dict[str, int]:
    """Write the conversations of shard ``index`` (normalised; languages detected) to ``out``. Malformed
    raw rows are quarantined by shard 0 only, so that the merged report counts them once."""
    from natfeed.conversation import CONVERSATION_SCHEMA
    from natfeed.extract.run import _rejected_schema, iter_conversation_batches
    from natfeed.io import ParquetSink, sibling

    if not 0 <= index < num_shards:
        raise ValueError(f"shard index {index} is not in 0..{num_shards - 1}")
    kept = seen = 0
    rejected = ParquetSink(sibling(out, "rejected.parquet"), _rejected_schema(), 1000) if index == 0 else None
    with ParquetSink(out, CONVERSATION_SCHEMA, 2000) as sink:
        for batch in iter_conversation_batches(input_path, params.batch_size, rejected, params.detect_language):
            for conv in batch:
                seen += 1
                if shard_of(conv.conversation_id, num_shards) == index:
                    sink.add(conv.to_row())
                    kept += 1
    rows_rejected = 0
    if rejected is not None:
        rows_rejected = rejected.rows
        rejected.close()
    return {"conversations_seen": seen, "conversations_in_shard": kept, "rows_rejected": rows_rejected}


def extract_partition(input_path: str | Path, output: str | Path, params: ExtractParams, index: int,
                      num_shards: int) -> dict[str, Any]:
    """Extract shard ``index`` of ``num_shards`` of ``input_path`` into ``output`` (one job of many)."""
    from natfeed.extract.run import extract_file
    from natfeed.io import sibling, write_json

    part = partition_path(params, input_path, index, num_shards)
    counts = write_partition(input_path, part, index, num_shards, params)
    report = extract_file(part, output, params)
    report.update({"input": str(input_path), "partition": str(part), "shard_index": index,
                   "num_shards": num_shards, **counts})
    write_json(sibling(output, "report.json"), report)
    return report


SUMMED = ("conversations", "user_turns", "rows", "rows_rejected", "requests", "prompt_tokens",
          "generated_tokens", "parse_failures", "unmatched_spans")


def merge_outputs(parts: Sequence[str | Path], output: str | Path) -> dict[str, Any]:
    """Concatenate the feedback files of the ``num_shards`` jobs into ``output`` and sum their reports
    (each part's ``<stem>.report.json``); fails unless the parts are exactly shards 0..n-1 of one run."""
    from natfeed.extract.base import FEEDBACK_SCHEMA
    from natfeed.io import sibling, write_json

    reports = [_read_report(sibling(p, "report.json")) for p in parts]
    n = {r.get("num_shards") for r in reports}
    indices = sorted(r.get("shard_index", -1) for r in reports)
    if len(n) != 1 or indices != list(range(next(iter(n)) or 0)):
        raise ValueError(f"parts are shards {indices} of {sorted(n, key=str)}: give every shard 0..n-1 of one "
                         "run exactly once")
    per_category: Counter[str] = Counter()
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(output, FEEDBACK_SCHEMA) as writer:
        for p in sorted(parts, key=lambda q: _read_report(sibling(q, "report.json"))["shard_index"]):
            table = pq.read_table(p, schema=FEEDBACK_SCHEMA)
            writer.write_table(table)
            per_category.update(table.column("category").to_pylist())
    merged: dict[str, Any] = {k: sum(int(r.get(k) or 0) for r in reports) for k in SUMMED}
    seconds = max(float(r.get("seconds") or 0) for r in reports)
    merged.update({"input": reports[0].get("input"), "output": str(output), "extractor": reports[0].get("extractor"),
                   "num_shards": len(reports), "rows_per_category": dict(sorted(per_category.items())),
                   "seconds": round(seconds, 3),
                   "conversations_per_second": round(merged["conversations"] / seconds, 3) if seconds else None})
    if merged["rows"] != sum(per_category.values()):
        raise ValueError(f"reports count {merged['rows']} rows but the parts hold {sum(per_category.values())}")
    write_json(sibling(output, "report.json"), merged)
    return merged


def _read_report(path: Path) -> dict[str, Any]:
    import json

    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: merge the outputs of `natfeed extract --shard-index`")
    return json.loads(path.read_text(encoding="utf-8"))
