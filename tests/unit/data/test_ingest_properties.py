"""Property tests: ingest never crashes on any input and accounts for every row."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings

from natfeed.core.readers import InputError
from natfeed.data.ingest import run_ingest
from natfeed.params import IngestParams
from tests.support.strategies import LINES, is_conversation

P = IngestParams(detect_language=False, min_user_turns=1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LINES)
def test_any_bytes_json_or_conversation_shape(lines):
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.jsonl"
        raw.write_bytes(b"\n".join(lines) + b"\n")
        try:
            report = run_ingest(raw, Path(tmp) / "c.parquet", P)
        except InputError as err:  # every row rejected: an error naming the reasons, nothing written
            assert "none of the" in str(err) and not list(Path(tmp).glob("c.*"))
            assert not any(is_conversation(line) for line in lines)
            return
        assert report["rows_read"] == report["rows_kept"] + report["rows_rejected"] + report["rows_filtered"]
        assert report["rows_read"] == sum(1 for line in lines if line.strip())
        rejected = pd.read_parquet(Path(tmp) / "c.rejected.parquet")
        assert len(rejected) == report["rows_rejected"] and rejected["reason"].str.len().gt(0).all()
        kept = pd.read_parquet(Path(tmp) / "c.parquet")
        assert len(kept) == report["rows_kept"] and kept["conversation_id"].is_unique
