"""Engine replicas on one machine: ``extract.vllm.replicas`` engines, each in its own process with its own
``CUDA_VISIBLE_DEVICES`` group; a batch's requests go to replica ``shard_of(conversation_id)``.

The extract run, its resumable shards and its report stay in the calling process. Nothing here imports
vLLM: :class:`ReplicaPool` starts engines only through the ``module:function`` factory it is given.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import multiprocessing as mp
import os
import queue
import traceback
from collections.abc import Sequence
from typing import Any

from natfeed.core.errors import UsageError
from natfeed.extract.llm.engine import Engine, Generated
from natfeed.extract.partition import split_indices

log = logging.getLogger(__name__)


def device_groups(replicas: int, tensor_parallel_size: int, devices: Sequence[str] = ()) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` of each replica: ``devices`` as given (one comma-separated group per
    replica, ``tensor_parallel_size`` devices each), or consecutive ids: 2 replicas x tp 2 -> 0,1 | 2,3."""
    if replicas < 1 or tensor_parallel_size < 1:
        raise UsageError("replicas and tensor_parallel_size must be >= 1")
    if not devices:
        return [",".join(str(r * tensor_parallel_size + j) for j in range(tensor_parallel_size))
                for r in range(replicas)]
    groups = [g.replace(" ", "") for g in devices]
    if len(groups) != replicas:
        raise UsageError(f"extract.vllm.devices has {len(groups)} groups for {replicas} replicas: give one "
                         "comma-separated device group per replica, e.g. ['0,1', '2,3']")
    seen: list[str] = []
    for group in groups:
        ids = [d for d in group.split(",") if d]
        if len(ids) != tensor_parallel_size:
            raise UsageError(f"device group {group!r} has {len(ids)} devices; tensor_parallel_size is "
                             f"{tensor_parallel_size}")
        seen.extend(ids)
    if len(seen) != len(set(seen)):
        raise UsageError(f"device groups overlap: {groups}; each replica needs its own devices")
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


class ReplicaPool(Engine):
    """``len(groups)`` engine processes; a batch's requests go to replica ``shard_of(conversation_id)``."""

    def __init__(self, kwargs: dict[str, Any], groups: Sequence[str],
                 factory: str = "natfeed.extract.llm.vllm:make_engine",
                 runner: str = "natfeed.extract.llm.vllm:run_engine", start_timeout_s: float = 3600) -> None:
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
