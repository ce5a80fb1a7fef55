"""Benchmark: does memory stay flat as the input grows? `natfeed ingest` then `natfeed extract` at several sizes.

For each size it builds that many real-text conversations (the rows of ../shared/corpora, or --corpus,
repeated under new ids; see bench/extract_heuristic.py), then runs ``natfeed ingest`` on the raw JSONL
and ``natfeed extract`` (the default heuristic) on ingest's parquet, each in its own process, and
prints conversations/s and the peak RSS of the process tree, and each size's peak against the first's.

    .venv/bin/python bench/scale.py                     # 20,000 and 200,000
    .venv/bin/python bench/scale.py --sizes 20000 200000 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_heuristic import DEFAULT_CORPORA, REPO, _watch_rss, build_input  # noqa: E402


def _timed(cmd: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes of the process and its children) of a command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = _watch_rss(proc)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[2:5])} failed ({proc.returncode}): {proc.stderr.read()[-1500:]}")
    return time.perf_counter() - start, peak


def run(n: int, corpora: list[Path]) -> dict[str, object]:
    natfeed = [sys.executable, "-m", "natfeed.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        raw, conv, out = Path(tmp) / "raw.jsonl", Path(tmp) / "conv.parquet", Path(tmp) / "feedback.parquet"
        build_input(corpora, n, raw)
        params = Path(tmp) / "defaults.yaml"
        params.write_text("{}\n")  # built-in defaults, not the project's params.yaml
        ingest_s, ingest_rss = _timed([*natfeed, "ingest", "--input", str(raw), "--output", str(conv),
                                       "--params", str(params)])
        extract_s, extract_rss = _timed([*natfeed, "extract", "--input", str(conv), "--output", str(out),
                                         "--params", str(params)])
        report = json.loads((Path(tmp) / "feedback.report.json").read_text())
    return {"conversations": n, "kept": report["conversations"],
            "ingest_conv_per_s": round(n / ingest_s, 1), "ingest_peak_rss_mb": round(ingest_rss / 2**20, 1),
            "extract_conv_per_s": round(report["conversations"] / extract_s, 1),
            "extract_peak_rss_mb": round(extract_rss / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    ap.add_argument("--corpus", type=Path, action="append", help="JSONL corpus (repeatable)")
    args = ap.parse_args()
    corpora = args.corpus or [p for p in DEFAULT_CORPORA if p.exists()]
    if not corpora:
        raise SystemExit("no corpus: pass --corpus FILE.jsonl (../shared/corpora is absent)")
    rows = [run(n, corpora) for n in args.sizes]
    base = rows[0]
    print(f"{'conversations':>13s} {'ingest conv/s':>14s} {'ingest RSS MB':>14s} {'extract conv/s':>15s} "
          f"{'extract RSS MB':>15s} {'RSS vs first':>13s}")
    for r in rows:
        ratio = max(r["ingest_peak_rss_mb"], r["extract_peak_rss_mb"]) / max(base["ingest_peak_rss_mb"],
                                                                           base["extract_peak_rss_mb"])
        print(f"{r['conversations']:>13,} {r['ingest_conv_per_s']:>14,.0f} {r['ingest_peak_rss_mb']:>14,.0f} "
              f"{r['extract_conv_per_s']:>15,.0f} {r['extract_peak_rss_mb']:>15,.0f} {ratio:>12.2f}×")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
