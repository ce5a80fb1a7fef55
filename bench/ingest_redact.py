"""Benchmark: `natfeed ingest` with redaction (Presidio, the default) against redaction off, side by side.

The input is the throughput set of bench/extract_heuristic.py: N real-text conversations repeating the rows
of ../shared/corpora (or --corpus files) under new ids, written as raw JSONL. Each run is the CLI in a
subprocess (start-up included); the table gives seconds, conversations/s, the ratio and what was redacted.

    .venv/bin/python bench/ingest_redact.py --n 20000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from extract_heuristic import DEFAULT_CORPORA, build_input  # noqa: E402


def run(raw: Path, out: Path, enabled: bool) -> dict[str, object]:
    out.parent.mkdir(parents=True, exist_ok=True)
    params = out.parent / f"params-{enabled}.yaml"
    params.write_text(json.dumps({"ingest": {"redact": {"enabled": enabled}}}))  # JSON is YAML
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "natfeed.cli", "ingest", "--input", str(raw), "--output", str(out),
                          "--params", str(params)], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(res.stderr[-2000:])
    report = json.loads(out.with_name(out.name.split(".")[0] + ".ingest.json").read_text())
    return {"seconds": round(seconds, 2), "rows_read": report["rows_read"], "rows_kept": report["rows_kept"],
            "redacted": report.get("redacted", {}), "conversations_redacted": report.get("conversations_redacted")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--corpus", type=Path, nargs="*", default=DEFAULT_CORPORA)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "conversations.jsonl"
        info = build_input(args.corpus, args.n, raw)
        off = run(raw, Path(tmp) / "off" / "c.parquet", False)
        on = run(raw, Path(tmp) / "on" / "c.parquet", True)
    result = {"input": info, "redaction_off": off, "redaction_on": on,
              "on_over_off": round(float(on["seconds"]) / float(off["seconds"]), 3)}
    print(f"{'':16}{'seconds':>10}{'conv/s':>10}")
    for name, r in (("redaction off", off), ("redaction on", on)):
        print(f"{name:16}{r['seconds']:>10}{args.n / float(r['seconds']):>10.0f}")
    print(f"ratio on/off: {result['on_over_off']}; redacted: {on['redacted']} in {on['conversations_redacted']} "
          "conversations")
    out = REPO / "bench" / "results" / "ingest_redact.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
