"""Property tests: extract never crashes on any raw input and accounts for every row."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings

from natfeed.core.readers import InputError
from natfeed.core.tables import FEEDBACK_SCHEMA, REJECTED_SCHEMA
from natfeed.extract.run import extract_file
from natfeed.params import ExtractParams
from tests.support.strategies import LINES, is_conversation

P = ExtractParams(workers=1, detect_language=False, batch_size=3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LINES)
def test_any_bytes_json_or_conversation_shape(lines):
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.jsonl"
        raw.write_bytes(b"\n".join(lines) + b"\n")
        out = Path(tmp) / "out" / "fb.parquet"
        try:
            report = extract_file(raw, out, P)
        except InputError as err:  # every row rejected: an error naming the reasons, nothing written
            assert "none of the" in str(err)
            assert not out.parent.exists() or not list(out.parent.iterdir())
            assert not any(is_conversation(line) for line in lines)
            return
        assert report["rows_read"] == report["rows_kept"] + report["rows_rejected"] + report["rows_filtered"]
        assert report["rows_read"] == sum(1 for line in lines if line.strip())
        feedback, rejected = pq.read_table(out), pq.read_table(out.with_name("fb.rejected.parquet"))
        assert feedback.schema.equals(FEEDBACK_SCHEMA) and feedback.num_rows == report["rows"]
        assert rejected.schema.equals(REJECTED_SCHEMA) and rejected.num_rows == report["rows_rejected"]
        assert all(rejected.column("reason").to_pylist())


def test_user_turns_counts_every_user_message_and_judged_turns_those_judged(tmp_path):
    import json

    convs = [{"conversation_id": f"c{i}", "messages": [
        {"role": "user", "content": "Write a haiku about rain."}, {"role": "assistant", "content": "Rain falls."},
        {"role": "user", "content": "No, that is not a haiku, try again."},
        {"role": "assistant", "content": "Soft rain on the roof."}, {"role": "user", "content": "Thanks!"}]}
        for i in range(4)]
    raw = tmp_path / "logs.jsonl"
    raw.write_text("".join(json.dumps(c) + "\n" for c in convs))
    for workers in (1, 2):  # in-process, and the line-decoding worker pool
        report = extract_file(raw, tmp_path / f"w{workers}" / "fb.parquet", P.model_copy(update={"workers": workers}))
        assert report["user_turns"] == 12 and report["judged_turns"] == 8, workers
