"""Scale-out over jobs or machines: conversations to partitions by a stable hash of their id.

:func:`shard_of` (blake2b of ``conversation_id``) gives the same assignment in every process, run and
machine, so the partitions are disjoint and together cover the input. Each job runs
``natfeed extract --shard-index i --num-shards n`` (:func:`natfeed.extract.run.extract_partition`); ``natfeed extract-merge``
(:func:`merge_outputs`) joins the parts. Engine replicas on one machine route requests the same way
(:mod:`natfeed.extract.llm.replicas`).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from natfeed.core.errors import UsageError
from natfeed.core.io import ParquetSink, read_report, sibling, write_report
from natfeed.core.tables import CONVERSATION_SCHEMA, FEEDBACK_SCHEMA, REJECTED_SCHEMA
from natfeed.extract.inputs import ConversationReader

if TYPE_CHECKING:
    from natfeed.params import ExtractParams

log = logging.getLogger(__name__)


# -- assignment ----------------------------------------------------------------------------------
def shard_of(conversation_id: str, num_shards: int) -> int:
    """The shard (0 .. num_shards-1) of a conversation: blake2b of its id, so not Python's salted hash."""
    if num_shards < 1:
        raise UsageError(f"num_shards must be >= 1, got {num_shards}")
    digest = hashlib.blake2b(conversation_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def split_indices(keys: Sequence[str], num_shards: int) -> list[list[int]]:
    """For each shard, the positions of ``keys`` that belong to it (in input order)."""
    parts: list[list[int]] = [[] for _ in range(num_shards)]
    for i, key in enumerate(keys):
        parts[shard_of(key, num_shards)].append(i)
    return parts


# -- several jobs or machines --------------------------------------------------------------------
def partition_path(root: Path, input_path: str | Path, index: int, num_shards: int) -> Path:
    """Where job ``index`` keeps its conversations: ``<shard root>/partitions/<input stem>-i-of-n.parquet``."""
    stem = Path(str(input_path).rstrip("/*")).name.split(".")[0] or "input"
    return root / "partitions" / f"{stem}-{index:03d}-of-{num_shards:03d}.parquet"


def write_partition(input_path: str | Path, out: str | Path, index: int, num_shards: int,
                    params: ExtractParams, redactor: Any = None) -> dict[str, Any]:
    """Write the conversations of shard ``index`` (normalised; languages detected; raw logs redacted by
    ``redactor``, a :class:`natfeed.privacy.redact.Redactor`, before anything is written) to ``out``. Malformed
    raw rows are quarantined by shard 0 only, so that the merged report counts them once."""
    if not 0 <= index < num_shards:
        raise UsageError(f"shard index {index} is not in 0..{num_shards - 1}")
    kept = seen = 0
    rejected = ParquetSink(sibling(out, "rejected.parquet"), REJECTED_SCHEMA, 1000) if index == 0 else None
    reader = ConversationReader(input_path, params.batch_size, rejected)
    if not reader.normalised:
        reader.redactor = redactor
    with ParquetSink(out, CONVERSATION_SCHEMA, 2000) as sink:
        for batch in reader.prepared(params.detect_language, params.language_min_confidence,
                                     params.language_min_letters):
            for conv in batch:
                seen += 1
                if shard_of(conv.conversation_id, num_shards) == index:
                    sink.add(conv.to_row())
                    kept += 1
    rows_rejected = 0
    if rejected is not None:
        rows_rejected = rejected.rows
        rejected.close()
    return {"conversations_seen": seen, "conversations_in_shard": kept, "rows_rejected": rows_rejected,
            "redaction": reader.counts()["redaction"], "redacted": dict(sorted(reader.redacted.items()))}


SUMMED = ("conversations", "user_turns", "judged_turns", "rows", "rows_rejected", "requests", "prompt_tokens",
          "generated_tokens", "parse_failures", "unmatched_spans")


def merge_outputs(parts: Sequence[str | Path], output: str | Path) -> dict[str, Any]:
    """Concatenate the feedback files of the ``num_shards`` jobs into ``output`` and sum their reports
    (each part's ``<stem>.report.json``); fails unless the parts are exactly shards 0..n-1 of one run."""
    reports = [_read_report(sibling(p, "report.json")) for p in parts]
    n = {r.get("num_shards") for r in reports}
    indices = sorted(r.get("shard_index", -1) for r in reports)
    if len(n) != 1 or indices != list(range(next(iter(n)) or 0)):
        raise UsageError(f"parts are shards {indices} of {sorted(n, key=str)}: give every shard 0..n-1 of one "
                         "run exactly once")
    merged: dict[str, Any] = {k: sum(int(r.get(k) or 0) for r in reports) for k in SUMMED}
    per_category: Counter[str] = Counter()
    with ParquetSink(output, FEEDBACK_SCHEMA) as sink:  # an exception below leaves an earlier output as it was
        for p in sorted(parts, key=lambda q: _read_report(sibling(q, "report.json"))["shard_index"]):
            table = pq.read_table(p, schema=FEEDBACK_SCHEMA)
            sink.write_table(table)
            per_category.update(table.column("category").to_pylist())
        if merged["rows"] != sum(per_category.values()):
            raise UsageError(f"reports count {merged['rows']} rows but the parts hold {sum(per_category.values())}")
    seconds = max(float(r.get("seconds") or 0) for r in reports)
    merged.update({"input": reports[0].get("input"), "output": str(output), "extractor": reports[0].get("extractor"),
                   "num_shards": len(reports), "rows_per_category": dict(sorted(per_category.items())),
                   "seconds": round(seconds, 3),
                   "conversations_per_second": round(merged["conversations"] / seconds, 3) if seconds else None})
    write_report(sibling(output, "report.json"), merged)
    return merged


def _read_report(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: merge the outputs of `natfeed extract --shard-index`")
    return read_report(path)
