"""Executors: what runs batches of conversations through an extractor, behind one interface.

The extraction run (:func:`natfeed.extract.run.extract_file`) reads the input, plans the batches (and, for
the resumable LLM backends, the shards), hands ``(key, batch)`` tasks to an executor, and commits and writes
what comes back, in one path whatever the executor. An executor only runs batches (datatrove's split of
steps from executors is the model):

- :class:`InProcess`: in this process, one batch at a time (the LLM backends' default: one model, loaded once);
- :class:`ProcessPool`: ``extract.workers`` spawned processes for the per-turn heuristic (one per core by
  default), which can also decode raw JSONL lines themselves (:meth:`ProcessPool.map_lines`);
- :class:`RayData`: ``extract.executor: ray``, a Ray Data actor pool on this machine or a cluster
  (:mod:`natfeed.extract.ray_executor`).

A machine's slice of a big input is a *partition* (:mod:`natfeed.extract.partition`), orthogonal to the
executor; vLLM replicas and Ray-placed engines are the vllm backend's own engine choices.
"""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Protocol

from natfeed.core.conversation import Conversation, judged_turns
from natfeed.core.errors import NatfeedError
from natfeed.extract.backends import PER_TURN_BACKENDS, make_extractor
from natfeed.extract.base import BatchResult, Extractor, run_batch
from natfeed.extract.inputs import ConversationReader, count_user_turns, decode_chunk
from natfeed.params import ExtractParams

Detect = tuple[float, int] | None
"""Language detection for raw logs: (min confidence, min letters), or None (the input has languages)."""


class ExecutorFailed(NatfeedError, RuntimeError):
    """The executor itself failed (a Ray worker died, a cluster went away): the run stops, keeping its shards."""


class Executor(Protocol):
    """Runs ``(key, batch)`` tasks and yields ``(key, result)`` in task order."""

    name: str
    lazy: bool
    """True when the next task is taken only after the last result is back (so a planner may still cut)."""

    def map(self, tasks: Iterable[tuple[Any, list[Conversation]]]) -> Iterator[tuple[Any, BatchResult]]:
        ...

    def close(self) -> None:
        ...


class InProcess:
    """One batch at a time, in this process, with one extractor (built once)."""

    name, lazy = "in-process", True

    def __init__(self, extractor: Extractor, detect: Detect = None) -> None:
        self.extractor, self.detect = extractor, detect

    def map(self, tasks: Iterable[tuple[Any, list[Conversation]]]) -> Iterator[tuple[Any, BatchResult]]:
        for key, batch in tasks:
            yield key, run_batch(self.extractor, batch, self.detect)

    def close(self) -> None:
        pass


_WORKER: Extractor | None = None
_DETECT: Detect = None
_REDACTOR: Any = None


def _init_worker(params: ExtractParams, detect: Detect, redactor: Any = None) -> None:
    global _WORKER, _DETECT, _REDACTOR
    _WORKER, _DETECT, _REDACTOR = make_extractor(params), detect, redactor


def _work(batch: list[Conversation]) -> BatchResult:
    assert _WORKER is not None
    return run_batch(_WORKER, batch, _DETECT)


def _work_lines(chunk: list[tuple[str, int, bytes]]) -> tuple[list[Any], Counter[str]]:
    """Raw lines -> per line, in order: (conversation id, its feedback rows, judged turns, user turns), a rejected
    row or a duplicate id (:func:`decode_chunk`), and the entities redacted: the worker decodes and redacts, so
    the main process only reads bytes."""
    assert _WORKER is not None
    redacted: Counter[str] = Counter()
    items = decode_chunk(chunk, _REDACTOR, redacted)
    convs = [c for c in items if isinstance(c, Conversation)]
    res = run_batch(_WORKER, convs, _DETECT)
    by_id: dict[str, list[dict[str, Any]]] = {c.conversation_id: [] for c in convs}
    for row in res.rows:
        by_id[row["conversation_id"]].append(row)
    return [(c.conversation_id, by_id[c.conversation_id], sum(1 for _ in judged_turns(c)), count_user_turns(c))
            if isinstance(c, Conversation) else c for c in items], redacted


class ProcessPool:
    """``workers`` spawned processes, each building its own extractor; a bounded read-ahead keeps memory flat."""

    name, lazy = "process pool", False

    def __init__(self, params: ExtractParams, detect: Detect, workers: int, redactor: Any = None) -> None:
        self.workers = workers
        self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker,
                                        initargs=(params, detect, redactor))

    def _ordered(self, futures: Iterable[tuple[Any, Future[Any]]]) -> Iterator[tuple[Any, Any]]:
        pending: list[tuple[Any, Future[Any]]] = []
        for item in futures:
            pending.append(item)
            while len(pending) > 2 * self.workers:
                key, fut = pending.pop(0)
                yield key, fut.result()
        for key, fut in pending:
            yield key, fut.result()

    def map(self, tasks: Iterable[tuple[Any, list[Conversation]]]) -> Iterator[tuple[Any, BatchResult]]:
        return self._ordered((key, self.pool.submit(_work, batch)) for key, batch in tasks)

    def map_lines(self, reader: ConversationReader, size: int) -> Iterator[BatchResult]:
        """Raw JSONL decoded by the workers; this process keeps the accounting (rows read, rejected, duplicate
        ids) in input order through ``reader.admit``, so the rows are those of :meth:`map`."""
        for _, (entries, redacted) in self._ordered((None, self.pool.submit(_work_lines, chunk))
                                                    for chunk in reader.line_chunks(size)):
            reader.redacted.update(redacted)
            rows: list[dict[str, Any]] = []
            n_conv = n_turns = 0
            for entry in entries:
                if isinstance(entry, tuple):
                    if reader.admit(entry[0], conversation=True, user_turns=entry[3]):
                        rows += entry[1]
                        n_conv += 1
                        n_turns += entry[2]
                else:
                    reader.admit(entry)
            yield BatchResult(rows, n_conv, n_turns)

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


class RayData:
    """``extract.executor: ray``: the tasks on a Ray Data actor pool (:class:`natfeed.extract.ray_executor.RayPool`)."""

    name, lazy = "ray", False

    def __init__(self, params: ExtractParams, detect: Detect) -> None:
        from natfeed.extract.ray_executor import RayPool

        self.pool, self.detect = RayPool(params), detect

    def map(self, tasks: Iterable[tuple[Any, list[Conversation]]]) -> Iterator[tuple[Any, BatchResult]]:
        try:
            yield from self.pool.map(tasks, self.detect)
        except NatfeedError:
            raise
        except Exception as err:  # a worker or the cluster failed: say it in a line
            first_line = (str(err).strip().splitlines() or [""])[-1][:500]
            raise ExecutorFailed(f"ray: the extraction failed ({type(err).__name__}: {first_line})") from err

    def close(self) -> None:
        self.pool.close()


def workers_for(params: ExtractParams, extractor: Extractor | None) -> int:
    """Worker processes for this run (0 = in-process): the per-turn backends, unless an extractor was given."""
    import os

    workers = params.workers or os.cpu_count() or 1
    return workers if extractor is None and workers > 1 and params.backend in PER_TURN_BACKENDS else 0


def make_executor(params: ExtractParams, extractor: Extractor | None, detect: Detect, redactor: Any = None
                  ) -> Executor:
    """The executor ``params`` ask for: Ray, a process pool (per-turn backends, ``workers`` > 1; ``redactor``:
    what its workers apply to the raw lines they decode) or in-process."""
    if params.executor == "ray":
        return RayData(params, detect)
    workers = workers_for(params, extractor)
    if workers:
        return ProcessPool(params, detect, workers, redactor)
    return InProcess(extractor or make_extractor(params), detect)
