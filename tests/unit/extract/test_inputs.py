"""The conversation readers stream: reading a parquet of many row groups keeps only the current one."""

from __future__ import annotations

import random
import string

import pyarrow as pa
import pyarrow.parquet as pq

from natfeed.core.conversation import Conversation
from natfeed.core.readers import iter_files
from natfeed.core.tables import CONVERSATION_SCHEMA
from natfeed.extract.inputs import ConversationReader


def _write(path, groups: int, rows: int) -> int:
    """``groups`` row groups of ``rows`` conversations of ~2 KB of text; returns the Arrow bytes of one group."""
    rng = random.Random(0)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(5000)]

    def text() -> str:  # incompressible enough that the file is about as big as the text
        return " ".join(rng.choices(words, k=170))

    with pq.ParquetWriter(path, CONVERSATION_SCHEMA) as writer:
        for g in range(groups):
            convs = [Conversation(f"c{g}-{i}", [{"role": "user", "content": text()},
                                                {"role": "assistant", "content": text()}]) for i in range(rows)]
            table = pa.Table.from_pylist([c.to_row() for c in convs], schema=CONVERSATION_SCHEMA)
            writer.write_table(table)
    return table.nbytes


def test_reading_keeps_arrow_memory_bounded_by_a_row_group(tmp_path):
    path = tmp_path / "conv.parquet"
    group = _write(path, groups=30, rows=500)  # ~30 MB of text
    base = pa.total_allocated_bytes()
    peak, n = 0, 0
    for batch in ConversationReader(path, 100).batches():
        n += len(batch)
        peak = max(peak, pa.total_allocated_bytes() - base)
    assert n == 15_000
    assert peak < 4 * group, (peak, group)  # pre-buffering kept every group read: ~30 groups
    peak = 0
    for i, _ in enumerate(iter_files([path], 100)):  # the raw-record reader (ingest)
        if i % 500 == 0:
            peak = max(peak, pa.total_allocated_bytes() - base)
    assert i == 14_999 and peak < 4 * group, (peak, group)
