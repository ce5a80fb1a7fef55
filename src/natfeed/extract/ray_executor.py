"""``extract.executor: ray``: the extractor's batches run by Ray Data, on one machine or a cluster.

The driver (``natfeed extract`` / the DVC stage) still reads the input, counts and quarantines rows,
drops duplicate ids, cuts the resumable shards and writes every output, so the report, the run key and
resume behave as with the local executor. Each batch of conversations becomes one row of a Ray Dataset
(its conversations pickled, in the object store, which spills to disk past its size); one
``map_batches`` over an actor pool of ``extract.ray_actors`` actors runs the backend, and each actor
builds the extractor once (a model backend loads its model once per actor, on ``ray_gpus_per_actor``
GPUs: ``extract.vllm.tensor_parallel_size`` by default, so that every actor is one vLLM engine and the
actors are data parallel). Results come back in input order (``preserve_order``), so the rows are
those of the local executor.

``extract.ray_address`` (``--ray-address``): ``null`` starts a local Ray (or joins ``RAY_ADDRESS``);
``auto`` or ``ray://host:10001`` joins a running cluster (``ray start --head`` / ``ray start --address``).
Ray is imported only when this executor is chosen. See docs/SCALING.md.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterable, Iterator
from typing import Any

from natfeed.core.conversation import Conversation
from natfeed.extract.backends import PER_TURN_BACKENDS
from natfeed.extract.base import BatchResult, run_batch

__all__ = ["BatchResult", "ExtractActor", "RayPool", "actor_resources", "run_batch"]  # BatchResult, run_batch: base

log = logging.getLogger(__name__)

class ExtractActor:
    """A Ray Data callable class: builds the extractor once, then answers batches of pickled batches."""

    def __init__(self, params: dict[str, Any], detect: tuple[float, int] | None) -> None:
        from natfeed.extract.backends import make_extractor
        from natfeed.extract.llm.cache import attach_cache
        from natfeed.params import ExtractParams

        local = ExtractParams.model_validate({**params, "executor": "local", "workers": 1})
        self.extractor = make_extractor(local)
        attach_cache(local, self.extractor)  # the driver's cache_dir: every actor reads and fills the same cache
        self.detect = detect

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = [pickle.dumps(run_batch(self.extractor, pickle.loads(p), self.detect)) for p in batch["payload"]]
        return {"key": list(batch["key"]), "result": out}


def actor_resources(backend: str, actors: int, gpus_per_actor: float | None, tensor_parallel_size: int,
                    cluster: dict[str, float]) -> tuple[int, float]:
    """(actors, GPUs per actor): the per-turn heuristic gets one CPU actor per CPU of the cluster; a model
    backend one actor (``tensor_parallel_size`` GPUs for vLLM) per GPU group, or one on CPU."""
    gpus = float(cluster.get("GPU", 0))
    if backend in PER_TURN_BACKENDS or backend == "openai":
        per = 0.0 if gpus_per_actor is None else gpus_per_actor
        auto = int(cluster.get("CPU", 1)) if backend in PER_TURN_BACKENDS else 4
    else:
        per = gpus_per_actor if gpus_per_actor is not None else (
            float(tensor_parallel_size if backend == "vllm" else 1) if gpus else 0.0)
        auto = max(1, int(gpus // per)) if per else 1
    return (actors or max(1, auto)), per


class RayPool:
    """One Ray Data pass over batches of conversations (see the module docstring)."""

    def __init__(self, params: Any) -> None:
        try:
            import ray
        except ImportError as err:  # pragma: no cover - ray is in the dev/test lock
            raise ImportError("extract.executor: ray needs `pip install 'ray[data]'` (on every node)") from err
        self.ray = ray
        self.params = params
        self.started = False
        if not ray.is_initialized():
            address = params.ray_address or os.environ.get("RAY_ADDRESS") or None
            kwargs: dict[str, Any] = {"address": address, "log_to_driver": False}
            if address is None:  # a local cluster of this process: no dashboard, a bounded object store
                kwargs.update(include_dashboard=False, object_store_memory=params.ray_object_store_mb * 2**20)
            ray.init(**kwargs)
            self.started = True
        cluster = ray.cluster_resources()
        self.actors, self.gpus = actor_resources(params.backend, params.ray_actors, params.ray_gpus_per_actor,
                                                 params.vllm.tensor_parallel_size, cluster)
        log.info("ray: %d actor(s) of %s on %s (%.4g CPU, %.4g GPU in the cluster)", self.actors, params.backend,
                 ray.get_runtime_context().gcs_address, cluster.get("CPU", 0), cluster.get("GPU", 0))

    def map(self, batches: Iterable[tuple[Any, list[Conversation]]], detect: tuple[float, int] | None = None
            ) -> Iterator[tuple[Any, BatchResult]]:
        """``(key, batch)`` in, ``(key, result)`` out, in input order; every batch is put into the object store
        first (the driver keeps only references), then one actor pool works through them."""
        import pyarrow as pa
        from ray.data import ActorPoolStrategy, DataContext

        refs, keys = [], []
        for key, batch in batches:
            keys.append(key)
            refs.append(self.ray.put(pa.table({"key": [len(keys) - 1], "payload": [pickle.dumps(batch)]})))
        if not refs:
            return
        ctx = DataContext.get_current()
        ctx.execution_options.preserve_order = True
        if not log.isEnabledFor(logging.DEBUG):  # natfeed's own progress (requests / conversations) is shown
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        ds = self.ray.data.from_arrow_refs(refs).map_batches(
            ExtractActor, batch_size=1, compute=ActorPoolStrategy(size=min(self.actors, len(refs))),
            fn_constructor_kwargs={"params": self.params.model_dump(), "detect": detect},
            num_cpus=1, num_gpus=self.gpus or None)
        for row in ds.iter_rows():
            yield keys[int(row["key"])], pickle.loads(row["result"])

    def close(self) -> None:
        """Stop the local Ray this pool started (a cluster it joined keeps running)."""
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
