"""The fast extract path changes no answer: worker processes that detect languages only for the
conversations with feedback rows give exactly the rows of the plain path (one process, every missing
language detected first, then the extractor), on the whole embedded sample as raw logs."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from natfeed.core.tables import FEEDBACK_SCHEMA
from natfeed.extract.backends import make_extractor
from natfeed.extract.base import feedback_row
from natfeed.extract.inputs import ConversationReader
from natfeed.extract.run import extract_file
from natfeed.params import ExtractParams
from tests.support.helpers import sample_head


def test_fast_path_equals_the_plain_path_on_the_sample(tmp_path):
    raw = sample_head(tmp_path, 10_000)  # the whole sample
    params = ExtractParams(batch_size=50)
    ext = make_extractor(params)
    reader = ConversationReader(raw, params.batch_size)
    plain = [feedback_row(det, ext.identity)
             for batch in reader.prepared(True, params.language_min_confidence, params.language_min_letters)
             for det in ext.extract(batch)]
    want = pa.Table.from_pylist(plain, schema=FEEDBACK_SCHEMA).to_pandas()
    assert len(want) > 100 and want["language"].nunique() > 3
    for workers in (2, 1):
        out = tmp_path / f"w{workers}" / "feedback.parquet"
        report = extract_file(raw, out, params.model_copy(update={"workers": workers}))
        pd.testing.assert_frame_equal(pd.read_parquet(out), want)
        assert report["rows"] == len(want) and report["rows_read"] == reader.rows_read
