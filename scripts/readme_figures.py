"""Write the README's figures from the committed reports, so the two cannot drift apart.

A figure in README.md sits between markers, ``<!--fig:NAME-->text<!--/fig-->`` (inline) or on lines of
their own (a table); the text between them is what ``FIGURES[NAME]`` computes from ``reports/`` and the gold
labels. ``make readme-figures`` rewrites them; ``--check`` (tests/repo/test_readme_figures.py) exits 1 naming
every figure that differs. Figures that are measurements of their own (timings, GPU runs, experiments)
carry the command that measured them instead, and no marker.

    python scripts/readme_figures.py           # rewrite README.md
    python scripts/readme_figures.py --check   # exit 1 when README.md and the reports disagree
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!--fig:(?P<name>[a-z0-9_]+)-->(?P<text>.*?)<!--/fig-->", re.S)
CATEGORIES = ("repeat_or_rephrase", "make_aware_with_correction", "make_aware_without_correction",
              "ask_for_clarification", "positive_feedback")


@cache
def report(name: str) -> dict[str, Any]:
    return json.loads((REPO / "reports" / name).read_text(encoding="utf-8"))


def _gold_rows() -> list[dict[str, str]]:
    """The gold labels: data/labels/dev_part*.csv (data/raw/gold_labels.csv is built from them)."""
    rows: list[dict[str, str]] = []
    for part in sorted((REPO / "data" / "labels").glob("dev_part*.csv")):
        with open(part, newline="", encoding="utf-8") as fh:
            rows += [{**row, "part": part.stem} for row in csv.DictReader(fh)]
    return rows


def f3(x: float) -> str:
    return f"{x:.3f}"


def f2(x: float) -> str:
    return f"{x:.2f}"


def n(x: int) -> str:
    return f"{x:,}"


def quality_splits() -> str:
    q = report("extract_quality.json")
    rows = [("validation (parts 4, 5, 9–11)", q["never_tuned"]), ("tuned on (parts 1–3, 6–8)", q["tuned"]),
            ("all", q)]
    lines = ["| split | turns | detection P / R / F1 | category P / R / F1 |", "|---|---|---|---|"]
    for label, s in rows:
        d, m = s["detection"], s["micro"]
        lines.append(f"| {label} | {s['n_turns']} | {f3(d['precision'])} / {f3(d['recall'])} / {f3(d['f1'])} | "
                     f"{f3(m['precision'])} / {f3(m['recall'])} / {f3(m['f1'])} |")
    return "\n" + "\n".join(lines) + "\n"


def quality_categories() -> str:
    q = report("extract_quality.json")
    lines = ["| category | validation F1 (support) | tuned F1 (support) |", "|---|---|---|"]
    for c in CATEGORIES:
        v, t = q["never_tuned"]["per_category"][c], q["tuned"]["per_category"][c]
        lines.append(f"| {c} | {f2(v['f1'])} ({v['support']}) | {f2(t['f1'])} ({t['support']}) |")
    return "\n" + "\n".join(lines) + "\n"


def quality_languages() -> str:
    lang = report("extract_quality_details.json")["per_language"]
    en, other = lang["English"], lang["other"]
    return (f"English conversations ({en['n_turns']} turns): detection F1 {f3(en['detection']['f1'])}, category "
            f"F1 {f3(en['micro']['f1'])}; the others ({other['n_turns']} turns): {f3(other['detection']['f1'])} "
            f"and {f3(other['micro']['f1'])}")


def ingest_kept() -> str:
    r = report("ingest.json")
    return f"Ingest keeps {r['rows_kept']} of the {r['rows_read']} rows"


def gold_counts() -> str:
    counts = Counter(g["category"] for g in _gold_rows())
    order = ["none", *sorted(CATEGORIES, key=lambda c: -counts[c])]
    return ", ".join(f"{n(counts[c])} {c}" for c in order)


def gold_turns() -> str:
    return f"{n(len(_gold_rows()))} turns"


def parts(names: list[str]) -> str:
    """dev_part1, dev_part2, dev_part3, dev_part6 -> "parts 1–3, 6"."""
    nums, out = sorted(int(x.removeprefix("dev_part")) for x in names), []
    for k in nums:
        if out and out[-1][1] == k - 1:
            out[-1][1] = k
        else:
            out.append([k, k])
    return "parts " + ", ".join(f"{a}" if a == b else f"{a}, {b}" if b == a + 1 else f"{a}–{b}" for a, b in out)


def tuning_split() -> str:
    q, rows = report("extract_quality.json"), _gold_rows()
    tuned, validation = q["tuned_parts"], q["never_tuned_parts"]
    return (f"The rules were tuned on {parts(tuned)} ({sum(g['part'] in tuned for g in rows)} turns); "
            f"{parts(validation)} ({sum(g['part'] in validation for g in rows)} turns) are the **validation** "
            "parts")


def agreement() -> str:
    a = json.loads((REPO / "data" / "labels" / "agreement" / "agreement.json").read_text(encoding="utf-8"))
    return (f"{a['conversations']} conversations ({a['turns']} turns) were labelled a second time, independently "
            f"(`data/labels/agreement/`): Cohen's κ {f3(a['binary_kappa'])} for feedback vs none and "
            f"{f3(a['category_kappa'])} for the category")


def kto_feedback_rows() -> str:
    per = report("build_kto_details.json")["per_category"]
    aware = per["make_aware_with_correction"]["feedback_rows"] + per["make_aware_without_correction"]["feedback_rows"]
    return f"{per['positive_feedback']['feedback_rows']} `positive_feedback` rows against {aware} make_aware rows"


def kto_thresholds() -> str:
    th = report("build_kto_details.json")["thresholds"]["per_category"]
    shown = [f"{c} {f2(th[c]['at_threshold']['precision'])} at confidence {th[c]['threshold']:g}"
             for c in ("positive_feedback", "make_aware_with_correction", "make_aware_without_correction")
             if c in th]
    sizes = sorted(th[c]["at_threshold"]["n_pred"] for c in th)
    reached = [c for c in th if th[c]["reached"]]
    head = ("None of the three KTO categories reaches" if not reached
            else f"{len(reached)} of the {len(th)} KTO categories reach")
    return (f"{head} {th[next(iter(th))]['target']:g} on the validation parts ({', '.join(shown)}, each on "
            f"{sizes[0]}–{sizes[-1]} predicted rows)")


def kto_set() -> str:
    r, per = report("build_kto.json"), report("build_kto_details.json")["per_category"]
    ratio = sum(c["ratio_dropped"] for c in per.values())
    return (f"that drops {r['confidence_dropped']} rows, the ratio rule {ratio} more, and the KTO set is "
            f"{r['kto_train_rows'] + r['kto_test_rows']} examples ({r['kto_train_rows']} train / "
            f"{r['kto_test_rows']} test")


FIGURES: dict[str, Callable[[], str]] = {
    "quality_splits": quality_splits, "quality_categories": quality_categories,
    "quality_languages": quality_languages, "ingest_kept": ingest_kept, "gold_counts": gold_counts,
    "gold_turns": gold_turns, "tuning_split": tuning_split, "agreement": agreement,
    "kto_feedback_rows": kto_feedback_rows, "kto_thresholds": kto_thresholds, "kto_set": kto_set,
}


def rewrite(text: str) -> tuple[str, list[str]]:
    """README text with every figure recomputed, and the names of those that changed (or are unknown)."""
    changed: list[str] = []

    def sub(m: re.Match[str]) -> str:
        name = m["name"]
        if name not in FIGURES:
            changed.append(f"{name} (no such figure: one of {', '.join(FIGURES)})")
            return m.group(0)
        value = FIGURES[name]()
        if value != m["text"]:
            changed.append(name)
        return f"<!--fig:{name}-->{value}<!--/fig-->"

    return MARKER.sub(sub, text), changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 naming the figures that differ")
    ap.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = ap.parse_args()
    text = args.readme.read_text(encoding="utf-8")
    new, changed = rewrite(text)
    missing = [f"{name} (no marker in {args.readme.name})"
               for name in sorted(set(FIGURES) - {m["name"] for m in MARKER.finditer(text)})]
    if args.check:
        if changed or missing:
            print(f"{args.readme.name} disagrees with the reports: {', '.join(changed + missing)}; run "
                  "`make readme-figures` (after `dvc repro`) and commit", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(new, encoding="utf-8")
    print(f"{args.readme.name}: {len(changed)} figure(s) rewritten" + (f": {', '.join(changed)}" if changed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
