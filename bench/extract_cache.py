"""Benchmark: the judgement cache against an OpenAI-compatible server that counts requests (tests/support's fake,
real HTTP on 127.0.0.1). Real conversations: the OASST rows of the embedded sample (data/raw, `make run` or
`make data` pulls it).

1. 30 then 36 conversations (the 30 plus 6 new): requests sent by each run, and the second run's rows against
   a run from scratch without the cache;
2. `natfeed extract --estimate` on the 36: requests counted, requests sent (0);
3. `--max-requests 10` on a fresh cache: exit code and requests sent, then the rerun without a cap;
4. overhead: ~1,000 distinct requests (the sample's conversations, each made unique) with the cache off, cold
   (every request a miss, then written) and warm (every request a hit), side by side.

    .venv/bin/python bench/extract_cache.py [--requests 1000] [--delay 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support

import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from natfeed.cli import app  # noqa: E402
from natfeed.extract.run import extract_file  # noqa: E402
from natfeed.params import ExtractParams  # noqa: E402
from tests.support.fake_openai import FakeOpenAI  # noqa: E402

RAW = REPO / "data" / "raw" / "conversations.jsonl"


def rows(source: str | None = None) -> list[dict]:
    if not RAW.exists():
        raise SystemExit(f"{RAW} is missing: run `make data` (or `make run`) first")
    out = []
    for line in RAW.read_bytes().splitlines():  # the sample holds malformed rows on purpose: skip them here
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(row, dict) and isinstance(row.get("conversation"), list) and row["conversation"] and all(
                isinstance(m, dict) and isinstance(m.get("content"), str) for m in row["conversation"]):
            out.append(row)
    return [r for r in out if source is None or r.get("source") == source]


def write(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
    return path


def params(url: str, shard_dir: Path, **extra: object) -> ExtractParams:
    return ExtractParams.model_validate({
        "backend": "openai", "llm": {"model": "fake-model"}, "detect_language": False, "shard_dir": str(shard_dir),
        "openai": {"base_url": url, "api_key_env": None, "concurrency": 16}, **extra})


def sorted_rows(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values(["conversation_id", "feedback_turn"]).reset_index(drop=True)


def counts(tmp: Path, delay: float) -> dict[str, object]:
    oasst = rows("oasst1")[:36]
    first, second = write(tmp / "c30.jsonl", oasst[:30]), write(tmp / "c36.jsonl", oasst)
    out: dict[str, object] = {}
    with FakeOpenAI(delay=delay) as srv:
        p = params(srv.url, tmp / "shards")
        r30 = extract_file(first, tmp / "f.parquet", p)
        out["run_30_requests_sent"] = len(srv.requests)
        r36 = extract_file(second, tmp / "f.parquet", p)
        out["run_36_requests_sent"] = len(srv.requests) - out["run_30_requests_sent"]
        out["judged_turns_30"], out["judged_turns_36"] = r30["judged_turns"], r36["judged_turns"]
        out["new_judged_turns"] = r36["judged_turns"] - r30["judged_turns"]
        extract_file(second, tmp / "scratch.parquet", p.model_copy(update={"cache": False,
                                                                          "shard_dir": str(tmp / "s2")}))
        out["rows_equal_a_run_from_scratch"] = sorted_rows(tmp / "f.parquet").equals(sorted_rows(tmp / "scratch.parquet"))

        cfg = tmp / "params.yaml"
        cfg.write_text(yaml.safe_dump({"extract": {"detect_language": False, "openai": {"api_key_env": None}}}))
        base = ["extract", "--input", str(second), "--backend", "openai", "--model", "fake-model", "--base-url",
                srv.url, "--params", str(cfg), "--shard-dir", str(tmp / "fresh")]
        before = len(srv.requests)
        est = CliRunner().invoke(app, [*base, "--output", str(tmp / "e.parquet"), "--estimate", "--json"])
        out["estimate_exit"], out["estimate_requests"] = est.exit_code, json.loads(est.output[est.output.index("{"):])["requests"]
        out["estimate_requests_sent"] = len(srv.requests) - before
        capped = CliRunner().invoke(app, [*base, "--output", str(tmp / "m.parquet"), "--max-requests", "10"])
        out["max_requests_10_exit"], out["max_requests_10_sent"] = capped.exit_code, len(srv.requests) - before
        rest = CliRunner().invoke(app, [*base, "--output", str(tmp / "m.parquet")])
        out["rerun_exit"] = rest.exit_code
        out["rerun_sent"] = len(srv.requests) - before - out["max_requests_10_sent"]
    for name in ("", "natfeed"):  # the CLI's log handlers wrote to CliRunner's streams, closed now
        logging.getLogger(name).handlers.clear()
    return out


def overhead(tmp: Path, n_requests: int, delay: float, repeats: int) -> dict[str, object]:
    base, items, turns = rows(), [], 0
    while turns < n_requests:
        row = json.loads(json.dumps(base[len(items) % len(base)]))
        row["conversation_id"] = f"bench-{len(items):06d}"
        row["conversation"][0]["content"] += f" (#{len(items)})"  # every prompt distinct: no accidental hits
        n = sum(1 for i, m in enumerate(row["conversation"]) if m["role"] == "user" and i >= 2
                and row["conversation"][i - 1]["role"] == "assistant")
        items.append(row)
        turns += n
    data = write(tmp / "overhead.jsonl", items)
    times: dict[str, list[float]] = {"cache off": [], "cold cache (all misses)": [], "warm cache (all hits)": []}
    sent: dict[str, int] = {}
    with FakeOpenAI(delay=delay) as srv:
        for rep in range(repeats):
            runs = [("cache off", params(srv.url, tmp / f"off{rep}", cache=False)),
                    ("cold cache (all misses)", params(srv.url, tmp / f"on{rep}")),
                    ("warm cache (all hits)", params(srv.url, tmp / f"warm{rep}", cache_dir=str(tmp / f"on{rep}" / "cache")))]
            for name, p in runs:
                before = len(srv.requests)
                start = time.perf_counter()
                report = extract_file(data, tmp / f"{name[:4]}.parquet", p)
                times[name].append(time.perf_counter() - start)
                sent[name] = len(srv.requests) - before
    best = {k: min(v) for k, v in times.items()}
    return {"conversations": len(items), "requests": report["judged_turns"], "server_delay_s": delay,
            "seconds_best_of": repeats, "seconds": {k: round(v, 3) for k, v in best.items()},
            "requests_sent": sent,
            "cold_over_off": round(best["cold cache (all misses)"] / best["cache off"], 3),
            "warm_over_off": round(best["warm cache (all hits)"] / best["cache off"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds the fake server waits per answer")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "counts").mkdir()
        result = {"counts": counts(Path(tmp) / "counts", args.delay),
                  "overhead": overhead(Path(tmp), args.requests, args.delay, args.repeats)}
    print(json.dumps(result, indent=1))
    out = REPO / "bench" / "results" / "extract_cache.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
