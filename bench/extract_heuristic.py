"""Benchmark: end-to-end `natfeed extract --backend heuristic` (read, normalise, extract, write).

Builds N real-text conversations by repeating the rows of ../shared/corpora (or any JSONL given with
--corpus) under new ids, writes them as raw JSONL (the format users feed in), then runs the CLI in a
subprocess and reports conversations/s and the subprocess's peak RSS. ``--set KEY=VALUE`` overrides an
``extract.heuristic`` param (written to the params file the CLI reads), e.g. ``--set use_embeddings=true``.

    .venv/bin/python bench/extract_heuristic.py --n 20000 [--set use_embeddings=true]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPORA = [REPO.parent / "shared" / "corpora" / f for f in ("wildchat_sample.jsonl", "oasst_sample.jsonl")]


def build_input(corpora: list[Path], n: int, out: Path) -> dict[str, float]:
    rows = [json.loads(line) for path in corpora for line in path.open(encoding="utf-8")]
    if not rows:
        raise SystemExit("no rows in the corpora")
    chars = 0
    with out.open("w", encoding="utf-8") as fh:
        for i in range(n):
            row = dict(rows[i % len(rows)])
            row["conversation_id"] = f"bench-{i:07d}-{row['conversation_id']}"
            chars += sum(len(m["content"]) for m in row["conversation"])
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {"conversations": n, "mean_chars": chars / n, "source_rows": len(rows)}


def write_params(path: Path, overrides: list[str]) -> dict[str, object]:
    """A params file whose ``extract.heuristic`` section holds the ``KEY=VALUE`` overrides (YAML values)."""
    import yaml

    heuristic = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants KEY=VALUE, got {item!r}")
        heuristic[key.strip()] = yaml.safe_load(value)
    path.write_text(yaml.safe_dump({"extract": {"heuristic": heuristic}}), encoding="utf-8")  # always: --params reads it
    return heuristic


def run(n: int, corpora: list[Path], extra: list[str], overrides: list[str] = ()) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.jsonl", Path(tmp) / "feedback.parquet"
        info = build_input(corpora, n, src)
        info["heuristic_overrides"] = write_params(Path(tmp) / "defaults.yaml", list(overrides))
        cmd = [sys.executable, "-m", "natfeed.cli", "extract", "--input", str(src), "--output", str(out),
               "--backend", "heuristic", "--params", str(Path(tmp) / "defaults.yaml"), *extra]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO)
        peak_tree = _watch_rss(proc)
        if proc.returncode != 0:
            raise SystemExit(f"extract failed with exit code {proc.returncode}")
        wall = time.perf_counter() - start
        report = json.loads((Path(tmp) / "feedback.report.json").read_text())
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {**info, "wall_seconds": round(wall, 2), "conversations_per_second": round(n / wall, 1),
            "extract_seconds": report["seconds"], "rows": report["rows"], "user_turns": report["user_turns"],
            "peak_rss_mb_largest_process": round(peak_kb / 1024, 1),
            "peak_rss_mb_all_processes": round(peak_tree / 2**20, 1)}


def _watch_rss(proc: subprocess.Popen) -> int:
    """Wait for ``proc``, sampling the summed RSS of it and its workers every 0.1 s; the peak."""
    import psutil

    peak = 0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            total = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
        except psutil.Error:
            total = 0
        peak = max(peak, total)
        time.sleep(0.1)
    return peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000, help="conversations to extract")
    ap.add_argument("--corpus", type=Path, action="append", help="JSONL corpus (repeatable)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override an extract.heuristic param, e.g. use_embeddings=true (repeatable)")
    args, extra = ap.parse_known_args()
    corpora = args.corpus or [p for p in DEFAULT_CORPORA if p.exists()]
    if not corpora:
        raise SystemExit("no corpus: pass --corpus FILE.jsonl (../shared/corpora is absent)")
    result = run(args.n, corpora, extra, args.set)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
