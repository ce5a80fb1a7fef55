"""The fast extract path changes no answer. Worker processes that decode their own chunks of raw lines
and detect languages only for the conversations with feedback rows give exactly the rows, rejected rows
and counts of the plain path (one process reads, every missing language detected, then the extractor),
on the whole embedded sample as raw logs, with a malformed row, a blank line and duplicate ids added (both
redact, as every read of raw logs does)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from natfeed.core.io import ParquetSink
from natfeed.core.tables import FEEDBACK_SCHEMA, REJECTED_SCHEMA
from natfeed.extract.backends import make_extractor
from natfeed.extract.base import feedback_row
from natfeed.extract.inputs import ConversationReader
from natfeed.extract.run import extract_file
from natfeed.params import ExtractParams
from natfeed.params.data import RedactParams
from natfeed.privacy.redact import Redactor
from tests.support.helpers import sample_head

COUNTS = ("rows_read", "rows_kept", "rows_rejected", "rows_duplicate", "conversations", "user_turns", "rows")


def test_fast_path_equals_the_plain_path_on_the_sample(tmp_path):
    raw = sample_head(tmp_path, 10_000)  # the whole sample
    lines = raw.read_bytes().splitlines()
    # a copy of the first conversation in a later chunk, one inside the same chunk, a malformed and a blank line
    raw.write_bytes(b"\n".join([*lines[:30], lines[3], b"{not json", b"", *lines[30:], lines[0]]) + b"\n")
    params = ExtractParams(batch_size=50)
    ext = make_extractor(params)
    with ParquetSink(tmp_path / "plain.rejected.parquet", REJECTED_SCHEMA) as rejected:
        reader = ConversationReader(raw, params.batch_size, rejected, redactor=Redactor(RedactParams()))  # as run
        plain = [feedback_row(det, ext.identity)
                 for batch in reader.prepared(True, params.language_min_confidence, params.language_min_letters)
                 for det in ext.extract(batch)]
    want = pa.Table.from_pylist(plain, schema=FEEDBACK_SCHEMA).to_pandas()
    want_rejected = pd.read_parquet(tmp_path / "plain.rejected.parquet")
    assert len(want) > 100 and want["language"].nunique() > 3
    assert reader.rows_duplicate >= 2 and reader.rows_rejected >= 1
    for workers in (2, 1):  # 2: workers decode lines; 1: this process reads, lazy language detection
        out = tmp_path / f"w{workers}" / "feedback.parquet"
        report = extract_file(raw, out, params.model_copy(update={"workers": workers}))
        pd.testing.assert_frame_equal(pd.read_parquet(out), want)
        pd.testing.assert_frame_equal(pd.read_parquet(out.with_name("feedback.rejected.parquet")), want_rejected)
        assert report["rows"] == len(want) and report["rows_read"] == reader.rows_read
        assert report["rows_duplicate"] == reader.rows_duplicate and report["rows_kept"] == reader.rows_kept
        assert report["rows_read"] == report["rows_kept"] + report["rows_rejected"] + report["rows_duplicate"]
        assert report["redacted"] == dict(sorted(reader.redacted.items())) and sum(reader.redacted.values()) > 0
