"""Score the heuristic classifier on the dev gold labels.

Reads ``data/labels/dev_*.csv`` (conversation_id,user_turn,category,note) and the conversation
texts from the shared corpora, classifies every labelled turn and prints detection / micro /
per-category scores, the confusion matrix and the speed. ``--errors`` lists misclassified turns;
``--set KEY=VALUE`` overrides a ``HeuristicParams`` field (e.g. ``--set use_embeddings=true``). Only
conversations listed in the corpora's ``dev_ids.txt`` are scored.

    PYTHONPATH=src python scripts/eval_dev.py [--labels 'data/labels/dev_*.csv' ...] [--errors] [--set K=V]
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import time
from pathlib import Path

from natfeed.core.categories import CATEGORIES, NONE
from natfeed.data.extract_quality import LABELS, extraction_quality
from natfeed.extract.heuristic.classifier import HeuristicClassifier, HeuristicParams

CORPORA = ("wildchat_sample.jsonl", "oasst_sample.jsonl")
SHORT = {
    "repeat_or_rephrase": "ROR",
    "make_aware_with_correction": "MAWC",
    "make_aware_without_correction": "MAWO",
    "ask_for_clarification": "AFC",
    "positive_feedback": "PF",
    NONE: "N",
}


def label_files(patterns: list[str]) -> list[str]:
    """The label CSVs matching any of ``patterns``, sorted."""
    return sorted({f for pattern in patterns for f in glob.glob(pattern)})


def read_gold(patterns: list[str]) -> dict[tuple[str, int], str]:
    """Gold labels of every CSV matching ``patterns`` (later files win on duplicate turns)."""
    gold: dict[tuple[str, int], str] = {}
    for path in label_files(patterns):
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                cat = (row.get("category") or "").strip() or NONE
                if cat not in LABELS:
                    print(f"skip unknown category {cat!r} in {path}")
                    continue
                gold[(row["conversation_id"].strip(), int(row["user_turn"]))] = cat
    return gold


def read_rows(corpus_dir: Path, ids: set[str]) -> dict[str, dict]:
    """The corpus rows of the wanted conversations, by id."""
    out = {}
    for name in CORPORA:
        with open(corpus_dir / name, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                if row["conversation_id"] in ids:
                    out[row["conversation_id"]] = row
    return out


def read_conversations(corpus_dir: Path, ids: set[str]) -> dict[str, list[dict[str, str]]]:
    """The message lists of the wanted conversations."""
    return {cid: row["conversation"] for cid, row in read_rows(corpus_dir, ids).items()}


def read_dev_ids(corpus_dir: Path) -> set[str] | None:
    """The conversation ids that may be used for development (None when the list is absent)."""
    path = corpus_dir / "dev_ids.txt"
    if not path.exists():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def heuristic_params(overrides: list[str]) -> HeuristicParams:
    """HeuristicParams with ``KEY=VALUE`` overrides (values parsed as YAML scalars: true, 0.8, ...)."""
    import yaml

    data = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants KEY=VALUE, got {item!r}")
        data[key.strip()] = yaml.safe_load(value)
    return HeuristicParams(**data)


def turn_inputs(conversation: list[dict[str, str]]) -> dict[int, tuple[str, str, list[str]]]:
    """user_turn -> (user text, previous assistant reply, earlier user texts) for turns >= 2."""
    out, users, reply = {}, [], ""
    for msg in conversation:
        if msg["role"] == "user":
            if users:
                out[len(users) + 1] = (msg["content"], reply, list(users))
            users.append(msg["content"])
        elif msg["role"] == "assistant":
            reply = msg["content"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", action="append", metavar="GLOB",
                    help="label CSVs (repeatable; default data/labels/dev_*.csv)")
    ap.add_argument("--corpora", type=Path, default=Path("/work/shared/corpora"))
    ap.add_argument("--errors", action="store_true", help="print misclassified turns")
    ap.add_argument("--width", type=int, default=160, help="characters of each text shown with --errors")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a HeuristicParams field, e.g. use_embeddings=true (repeatable)")
    args = ap.parse_args()

    args.labels = args.labels or ["data/labels/dev_*.csv"]
    gold = read_gold(args.labels)
    dev_ids = read_dev_ids(args.corpora)
    if dev_ids is not None:
        gold = {k: v for k, v in gold.items() if k[0] in dev_ids}
    convs = read_conversations(args.corpora, {cid for cid, _ in gold})
    clf = HeuristicClassifier(heuristic_params(args.set))
    inputs = {cid: turn_inputs(conv) for cid, conv in convs.items()}
    keys = [k for k in gold if k[0] in inputs and k[1] in inputs[k[0]]]
    if clf.params.use_embeddings:  # load the model before timing
        from natfeed.extract.heuristic.semantic import load_model

        load_model()
    t0 = time.perf_counter()
    decisions = dict(zip(keys, clf.classify_batch([inputs[k[0]][k[1]] for k in keys]), strict=True))
    elapsed = time.perf_counter() - t0
    pred = {k: d.category or NONE for k, d in decisions.items()}
    q = extraction_quality({k: gold[k] for k in keys}, pred)

    if args.errors:
        for k in keys:
            if pred[k] != gold[k]:
                text, reply, _ = inputs[k[0]][k[1]]
                clip = lambda s: s[: args.width].replace("\n", " ⏎ ")  # noqa: E731
                print(f"[{SHORT[gold[k]]}->{SHORT[pred[k]]}] {k[0][:10]} t{k[1]} {decisions[k].cue}")
                print(f"    A: {clip(reply)}\n    U: {clip(text)}")
    files = label_files(args.labels)
    print(
        f"labels: {', '.join(Path(f).name for f in files)}; turns {len(keys)} (skipped {len(gold) - len(keys)})"
    )
    print(f"gold feedback {q['n_gold_feedback']}, predicted {q['n_pred_feedback']}")
    for name in ("detection", "micro"):
        m = q[name]
        print(f"{name:9s} P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f}")
    for cat in CATEGORIES:
        c = q["per_category"][cat]
        print(f"  {cat:30s} P={c['precision']:.2f} R={c['recall']:.2f} F1={c['f1']:.2f} n={c['support']}")
    print("confusion (rows gold, cols pred): " + " ".join(SHORT[b] for b in LABELS))
    for a in LABELS:
        print(f"  {SHORT[a]:4s} " + " ".join(f"{q['confusion'][a][b]:4d}" for b in LABELS))
    print(f"speed: {len(keys) / elapsed:.0f} turns/s ({1000 * elapsed / max(1, len(keys)):.3f} ms/turn)")


if __name__ == "__main__":
    main()
