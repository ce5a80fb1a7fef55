"""Resumable extraction: one shard per input batch, and a manifest of the finished ones.

Layout: ``<shard_dir>/<key>/shard-00042.parquet`` (feedback rows), ``shard-00042.failures.jsonl`` (raw
answers that did not parse) and ``manifest.json`` (per finished shard: counters and the ids of its
first and last conversation). ``key`` hashes the input files' content (md5), the backend, model, mode,
prompt version and the params that change answers, so a rerun with the same inputs continues and a
changed one starts afresh. A shard counts as done only once the manifest — replaced atomically (temp
file + ``os.replace``) after the shard's own files — names it, so a kill at any moment leaves at most
one shard to redo and never a duplicate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from natfeed.core.io import atomic_write, file_md5
from natfeed.core.tables import FEEDBACK_SCHEMA
from natfeed.extract.llm.cache import default_cache_dir
from natfeed.extract.llm.prompts import PROMPT_VERSION

if TYPE_CHECKING:
    from natfeed.params import ExtractParams

OPERATIONAL: dict[str, frozenset[str]] = {
    "extract": frozenset({"workers", "detect_language", "heuristic", "shard_dir", "executor", "ray_address",
                         "ray_actors", "ray_gpus_per_actor", "ray_object_store_mb", "cache", "cache_dir", "cost"}),
    "openai": frozenset({"concurrency", "timeout_s", "max_retries", "backoff_s", "max_backoff_s", "api_key_env",
                         "base_url"}),
    "transformers": frozenset({"device"}),
    "vllm": frozenset({"tensor_parallel_size", "gpu_memory_utilization", "max_num_seqs", "max_num_batched_tokens",
                       "enable_prefix_caching", "enforce_eager", "replicas", "devices", "engine", "executor", "ray_address",
                       "ray_batch_size", "ray_accelerator_type"}),
}
"""Per params section, the keys that change how fast or where work runs, not the answers: left out of the run
key, so that a run resumed with more GPUs, replicas, a bigger batch or another server continues its shards.
``extract.batch_size`` stays in: it sets the shard boundaries."""
LLM_OPERATIONAL = frozenset({"shard_requests", "shard_seconds", "progress_seconds", "max_requests"})
"""``extract.llm`` keys that only say when shards are cut and progress is shown: the manifest records each
shard's conversations, so a resume with other values continues."""


BACKEND_SECTION = {"paper_loop": "transformers"}
"""Backends whose params live in another backend's section."""


def _semantic(section: dict[str, Any], operational: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in sorted(section.items()) if k not in operational}


def shard_root(params: ExtractParams, output: str | Path) -> Path:
    """``extract.shard_dir``, or ``<output folder>/.<output stem>.shards`` when it is not set."""
    if params.shard_dir:
        return Path(params.shard_dir)
    out = Path(output)
    return out.parent / f".{out.name.split('.')[0]}.shards"


def with_cache_dir(params: ExtractParams, output: str | Path) -> ExtractParams:
    """``params`` with ``extract.cache_dir`` resolved (its default is beside the shards), so that every process of
    the run (worker, Ray actor) opens the same judgement cache."""
    if not params.cache or params.cache_dir:
        return params
    return params.model_copy(update={"cache_dir": str(default_cache_dir(shard_root(params, output)))})


def llm_semantics(params: ExtractParams) -> dict[str, Any]:
    """``extract.llm`` less what only says when shards are cut (and the model, which the cache fingerprints)."""
    return _semantic(params.llm.model_dump(), LLM_OPERATIONAL | {"model"})


def backend_semantics(params: ExtractParams, backend: str) -> dict[str, Any]:
    """The backend's params section less what only says how fast or where work runs."""
    name = BACKEND_SECTION.get(backend, backend)
    section = getattr(params, name, None)
    if section is None or not hasattr(section, "model_dump"):
        return {}
    return _semantic(section.model_dump(), OPERATIONAL.get(name, frozenset()))


def run_key(files: list[Path], params: ExtractParams, identity: str) -> tuple[str, dict[str, Any]]:
    """The shard folder name of these input files + configuration, and what it was computed from."""
    inputs = [{"name": f.name, "size": f.stat().st_size, "md5": file_md5(f)} for f in files]
    dump = params.model_dump()
    name = BACKEND_SECTION.get(params.backend, params.backend)
    section = dump.get(name)
    config = {
        "inputs": inputs,
        "identity": identity,
        "prompt_version": PROMPT_VERSION,
        "params": _semantic({k: (_semantic(v, LLM_OPERATIONAL) if k == "llm" else v) for k, v in dump.items()
                             if k not in ("openai", "transformers", "vllm")}, OPERATIONAL["extract"]),
        "backend_params": _semantic(section, OPERATIONAL.get(name, frozenset())) if isinstance(section, dict)
        else {},
    }
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16], config


class ShardStore:
    """The shards and manifest of one run key."""

    def __init__(self, root: str | Path, key: str, config: dict[str, Any]) -> None:
        self.root = Path(root)
        self.dir = self.root / key
        self.dir.mkdir(parents=True, exist_ok=True)
        self.manifest_path = self.dir / "manifest.json"
        if self.manifest_path.exists():
            self.manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        else:
            self.manifest = {"key": key, "config": config, "shards": {}}

    @property
    def done(self) -> dict[int, dict[str, Any]]:
        return {int(k): v for k, v in self.manifest["shards"].items()}

    def shard_path(self, index: int, suffix: str = "parquet") -> Path:
        return self.dir / f"shard-{index:05d}.{suffix}"

    def write(self, index: int, rows: list[dict[str, Any]], failures: list[dict[str, Any]],
              info: dict[str, Any]) -> None:
        """Store one finished shard, then record it in the manifest (the commit point)."""
        sink = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows, schema=FEEDBACK_SCHEMA), sink)
        atomic_write(self.shard_path(index), sink.getvalue().to_pybytes())
        text = "".join(json.dumps(f, ensure_ascii=False) + "\n" for f in failures)
        atomic_write(self.shard_path(index, "failures.jsonl"), text.encode("utf-8"))
        self.manifest["shards"][str(index)] = info
        blob = json.dumps(self.manifest, indent=1, ensure_ascii=False, sort_keys=True).encode("utf-8")
        atomic_write(self.manifest_path, blob)

    def tables(self) -> Iterator[pa.Table]:
        """The finished shards' rows, in shard order."""
        for index in sorted(self.done):
            yield pq.read_table(self.shard_path(index), schema=FEEDBACK_SCHEMA)

    def failures(self) -> Iterable[str]:
        for index in sorted(self.done):
            path = self.shard_path(index, "failures.jsonl")
            yield from (line for line in path.read_text(encoding="utf-8").splitlines() if line)
