"""Score an LLM extract backend on the labelled dev conversations (like scripts/eval_dev.py for the heuristic).

Takes the first ``--n`` labelled dev conversations (sorted by id; only rows listed in the corpora's
``dev_ids.txt``), runs ``extract_file`` with the backend on them (resumable shards in ``--work``), scores
every labelled turn of those conversations and prints detection / category P/R/F1, the answer
distribution, parse failures and the seconds per judged turn. The heuristic runs on the same turns
for comparison.

    .venv/bin/python scripts/eval_dev_llm.py --backend transformers --model models/base --mode turn --n 20
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_dev import read_conversations, read_dev_ids, read_gold  # noqa: E402

from natfeed.core.categories import NONE  # noqa: E402
from natfeed.data.extract_quality import compare  # noqa: E402
from natfeed.extract.run import extract_file  # noqa: E402
from natfeed.params import parse_params  # noqa: E402


def _row(cid: str, messages: list[dict[str, str]]) -> dict:
    return {"conversation_id": cid, "model": "unknown", "conversation": messages}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="transformers")
    ap.add_argument("--model", default="models/base")
    ap.add_argument("--mode", default="turn", choices=["turn", "paper"])
    ap.add_argument("--n", type=int, default=20, help="labelled dev conversations to score")
    ap.add_argument("--labels", default="data/labels/dev_*.csv")
    ap.add_argument("--corpora", type=Path, default=Path("/work/shared/corpora"))
    ap.add_argument("--work", type=Path, default=Path("bench/results/eval_dev_llm"))
    ap.add_argument("--max-model-len", type=int, default=1536)
    ap.add_argument("--calibration", default="none", choices=["none", "content_free"],
                    help="extract.llm.calibration (turn mode, transformers)")
    ap.add_argument("--extra", default="{}", help="JSON merged into the extract params, e.g. "
                    "'{\"vllm\": {\"gpu_memory_utilization\": 0.3, \"enforce_eager\": true}}'")
    args = ap.parse_args()

    gold = read_gold([args.labels])
    dev_ids = read_dev_ids(args.corpora)
    if dev_ids is not None:
        gold = {k: v for k, v in gold.items() if k[0] in dev_ids}
    chosen = sorted({cid for cid, _ in gold})[: args.n]
    convs = read_conversations(args.corpora, set(chosen))
    gold = {k: v for k, v in gold.items() if k[0] in convs}
    args.work.mkdir(parents=True, exist_ok=True)
    raw = args.work / f"dev{args.n}.jsonl"
    raw.write_text("".join(json.dumps(_row(c, convs[c]), ensure_ascii=False) + "\n" for c in chosen if c in convs))
    extract = {"backend": args.backend, "mode": args.mode, "workers": 1, "detect_language": False,
               "shard_dir": str(args.work / "shards"), "llm": {"model": args.model, "max_model_len": args.max_model_len,
                                                             "calibration": args.calibration},
               **json.loads(args.extra)}
    params = parse_params({"extract": extract}).extract
    out = args.work / f"{args.backend}-{args.mode}-{args.calibration}-{args.n}.parquet"
    start = time.perf_counter()
    report = extract_file(raw, out, params)
    seconds = time.perf_counter() - start
    quality = compare(pd.read_parquet(out), gold)
    heuristic = compare(pd.read_parquet(_heuristic(raw, args.work)), gold)
    answers = Counter(pd.read_parquet(out)["category"])
    answers[NONE] = len(gold) - sum(answers.values())
    print(f"{args.backend} {args.mode} on {len(convs)} dev conversations, {len(gold)} labelled turns, "
          f"{report['requests']} requests, {report['prompt_tokens']} prompt tokens, {report['parse_failures']} "
          f"parse failures, {report['unmatched_spans']} unmatched spans")
    for name, q in ((f"{args.backend}-{args.mode}", quality), ("heuristic", heuristic)):
        d, m = q["detection"], q["micro"]
        print(f"  {name:22s} detection P/R/F1 {d['precision']:.3f}/{d['recall']:.3f}/{d['f1']:.3f}   "
              f"category P/R/F1 {m['precision']:.3f}/{m['recall']:.3f}/{m['f1']:.3f}")
    print(f"  answers: {dict(answers.most_common())}")
    judged = max(1, report["user_turns"])
    print(f"  {seconds:.0f} s in all (model load included): {seconds / judged:.2f} s per judged turn, "
          f"{report['prompt_tokens'] / max(1, report['requests']):.0f} prompt tokens per request")


def _heuristic(raw: Path, work: Path) -> Path:
    out = work / "heuristic.parquet"
    extract_file(raw, out, parse_params({"extract": {"workers": 1, "detect_language": False}}).extract)
    return out


if __name__ == "__main__":
    main()
