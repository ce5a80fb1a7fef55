"""Inter-annotator agreement of two gold label files: Cohen's kappa for feedback/none and for the category.

    .venv/bin/python scripts/agreement.py FIRST.csv[,MORE.csv] SECOND.csv [--json out.json]

Only turns labelled in both files count. Prints the number of turns, raw agreement and kappa (binary:
feedback vs none; category: the six labels), and the confusion between the two annotators.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from pathlib import Path


def read(paths: str) -> dict[tuple[str, int], str]:
    out: dict[tuple[str, int], str] = {}
    for path in paths.split(","):
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                out[(row["conversation_id"].strip(), int(row["user_turn"]))] = (row["category"] or "none").strip()
    return out


def kappa(a: list[str], b: list[str]) -> float:
    """Cohen's kappa of two label sequences."""
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    ca, cb = Counter(a), Counter(b)
    expected = sum(ca[k] * cb[k] for k in set(ca) | set(cb)) / (n * n)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def agreement(first: dict, second: dict) -> dict:
    keys = sorted(set(first) & set(second))
    a, b = [first[k] for k in keys], [second[k] for k in keys]
    fa, fb = ["none" if x == "none" else "feedback" for x in a], ["none" if x == "none" else "feedback" for x in b]
    return {"turns": len(keys), "conversations": len({k[0] for k in keys}),
            "binary_agreement": round(sum(x == y for x, y in zip(fa, fb, strict=True)) / len(keys), 3),
            "binary_kappa": round(kappa(fa, fb), 3),
            "category_agreement": round(sum(x == y for x, y in zip(a, b, strict=True)) / len(keys), 3),
            "category_kappa": round(kappa(a, b), 3),
            "confusion": {f"{x} | {y}": n for (x, y), n in Counter(zip(a, b, strict=True)).most_common()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first")
    ap.add_argument("second")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    result = agreement(read(args.first), read(args.second))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
