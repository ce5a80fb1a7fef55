"""bench/scale.py runs end to end on a few conversations (the figures themselves live in the README)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.helpers import sample_head

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_scale_bench_prints_throughput_and_peak_rss_per_size(tmp_path):
    corpus = sample_head(tmp_path, 80)
    res = subprocess.run([sys.executable, str(REPO / "bench/scale.py"), "--sizes", "40", "120", "--corpus",
                          str(corpus)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(res.stdout.strip().splitlines()[-1])
    assert [r["conversations"] for r in rows] == [40, 120]
    assert all(r["ingest_peak_rss_mb"] > 0 and r["extract_conv_per_s"] > 0 and r["kept"] > 0 for r in rows)
    assert "RSS vs first" in res.stdout
