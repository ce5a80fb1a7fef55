"""Stage ``extract_quality``: gold labels per user turn, and turn-level quality metrics of an extractor.

Gold labels are CSV files ``conversation_id,user_turn,category[,note]`` (:func:`load_gold`);
:func:`compare` scores a feedback table against them.

The metric functions take two mappings of ``(conversation_id, user_turn)`` to a category name or
``"none"`` over the same set of judged turns. Micro scores count a predicted feedback turn as a true positive only when its
category is right; detection scores only ask whether a turn is feedback at all.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from natfeed.core.categories import CATEGORIES, NONE, feedback_turn_to_user_turn
from natfeed.core.errors import NatfeedError, UsageError

LABELS: tuple[str, ...] = (*CATEGORIES, NONE)
"""Row/column order of the confusion matrix."""

Labels = Mapping[Hashable, str]


def _check(gold: Labels, pred: Labels) -> None:
    if set(gold) != set(pred):
        missing, extra = len(set(gold) - set(pred)), len(set(pred) - set(gold))
        raise UsageError(
            f"gold and pred must cover the same turns ({missing} turns lack a prediction, {extra} are not in gold)"
        )
    unknown = {v for v in (*gold.values(), *pred.values()) if v not in LABELS}
    if unknown:
        raise UsageError(f"unknown labels {sorted(unknown)}; expected one of {LABELS}")


def prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    """Precision, recall and F1 from counts; a ratio with a zero denominator is 0.0."""
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def confusion(gold: Labels, pred: Labels) -> dict[str, dict[str, int]]:
    """Nested counts ``matrix[actual][predicted]`` over LABELS (all cells present)."""
    matrix = {a: {b: 0 for b in LABELS} for a in LABELS}
    for key, actual in gold.items():
        matrix[actual][pred[key]] += 1
    return matrix


def confusion_rows(matrix: Mapping[str, Mapping[str, int]]) -> list[dict[str, Any]]:
    """The confusion matrix as DVC plot rows ``{actual, predicted, count}`` (non-zero cells)."""
    return [
        {"actual": a, "predicted": b, "count": matrix[a][b]} for a in LABELS for b in LABELS if matrix[a][b]
    ]


def per_category(gold: Labels, pred: Labels) -> dict[str, dict[str, float]]:
    """Precision/recall/F1/support of each feedback category."""
    out = {}
    for cat in CATEGORIES:
        tp = sum(1 for k, g in gold.items() if g == cat and pred[k] == cat)
        n_pred = sum(1 for v in pred.values() if v == cat)
        n_gold = sum(1 for v in gold.values() if v == cat)
        out[cat] = {**prf(tp, n_pred, n_gold), "support": n_gold}
    return out


def micro(gold: Labels, pred: Labels) -> dict[str, float]:
    """Micro P/R/F1 over feedback turns: a hit needs the right category."""
    tp = sum(1 for k, g in gold.items() if g != NONE and pred[k] == g)
    n_pred = sum(1 for v in pred.values() if v != NONE)
    n_gold = sum(1 for v in gold.values() if v != NONE)
    return prf(tp, n_pred, n_gold)


def detection(gold: Labels, pred: Labels) -> dict[str, float]:
    """Feedback-vs-none P/R/F1: any predicted category counts for a gold feedback turn."""
    tp = sum(1 for k, g in gold.items() if g != NONE and pred[k] != NONE)
    n_pred = sum(1 for v in pred.values() if v != NONE)
    n_gold = sum(1 for v in gold.values() if v != NONE)
    return prf(tp, n_pred, n_gold)


def extraction_quality(gold: Labels, pred: Labels) -> dict[str, Any]:
    """All turn-level metrics in one JSON-serialisable dict.

    Keys: ``n_turns``, ``n_gold_feedback``, ``n_pred_feedback``, ``detection``, ``micro``,
    ``per_category``, ``macro_f1`` (mean F1 over categories with gold support), ``confusion``
    (nested dict) and ``confusion_rows`` (DVC format). Raises ValueError when the two mappings
    cover different turns or use unknown labels. Without gold turns quality is unknown, not zero: the
    figures are None (``measured`` false).
    """
    _check(gold, pred)
    if not gold:
        return {"n_turns": 0, "n_gold_feedback": 0, "n_pred_feedback": 0, "measured": False, "detection": None,
                "micro": None, "per_category": {}, "macro_f1": None, "confusion": {}, "confusion_rows": []}
    cats = per_category(gold, pred)
    supported = [c["f1"] for c in cats.values() if c["support"]]
    matrix = confusion(gold, pred)
    return {
        "n_turns": len(gold),
        "measured": True,
        "n_gold_feedback": sum(1 for v in gold.values() if v != NONE),
        "n_pred_feedback": sum(1 for v in pred.values() if v != NONE),
        "detection": detection(gold, pred),
        "micro": micro(gold, pred),
        "per_category": cats,
        "macro_f1": sum(supported) / len(supported) if supported else 0.0,
        "confusion": matrix,
        "confusion_rows": confusion_rows(matrix),
    }


# -- gold labels --------------------------------------------------------------------------------
Key = tuple[str, int]


class GoldError(NatfeedError, ValueError):
    """A gold label file is malformed."""


def load_gold(paths: str | Path | Iterable[str | Path]) -> dict[Key, str]:
    """Read ``conversation_id,user_turn,category[,note]`` CSV(s) into {(id, user_turn): category}."""
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    gold: dict[Key, str] = {}
    for f in files:
        with open(f, newline="", encoding="utf-8") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                cat = row.get("category", "").strip()
                if cat not in (*CATEGORIES, NONE):
                    raise GoldError(f"{f}:{n}: unknown category {cat!r}")
                key = (row["conversation_id"], int(row["user_turn"]))
                if key[1] < 2:
                    raise GoldError(f"{f}:{n}: user_turn {key[1]} < 2 (turn 1 is never feedback)")
                if key in gold:
                    raise GoldError(f"{f}:{n}: duplicate label for {key}")
                gold[key] = cat
    return gold


def predictions(feedback: pd.DataFrame, judged: Iterable[Key]) -> dict[Key, str]:
    """Map each judged turn to the extracted category, or ``none`` where no row names it."""
    found = {
        (cid, feedback_turn_to_user_turn(int(ft))): cat
        for cid, ft, cat in zip(feedback["conversation_id"], feedback["feedback_turn"], feedback["category"],
                                strict=True)
    }
    return {key: found.get(key, NONE) for key in judged}


def compare(feedback: pd.DataFrame, gold: dict[Key, str]) -> dict[str, Any]:
    """Quality of ``feedback`` on the gold turns (only conversations present in ``feedback``'s
    source count: pass the gold of the conversations that were extracted)."""
    return extraction_quality(gold, predictions(feedback, gold))


def load_gold_parts(paths: str | Path | Iterable[str | Path]) -> dict[Key, str]:
    """{(id, user_turn): part} from gold CSVs that have a ``part`` column (``dev_part3``, ...); a file without
    one names its own part (its stem)."""
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    parts: dict[Key, str] = {}
    for f in files:
        with open(f, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                parts[(row["conversation_id"], int(row["user_turn"]))] = (row.get("part") or f.stem).strip()
    return parts


def _headline(gold: dict[Key, str], pred: dict[Key, str]) -> dict[str, Any]:
    q = extraction_quality(gold, pred)
    return {k: q[k] for k in ("n_turns", "measured", "n_gold_feedback", "detection", "micro", "per_category",
                              "macro_f1", "confusion")}


def confusion_records(gold: Mapping[Key, str], pred: Mapping[Key, str]) -> list[dict[str, str]]:
    """One record per judged turn for DVC's confusion plot, leaving out the turns gold and extractor both call
    ``none``: they are most turns and would drown the cells that show the errors."""
    return [{"actual": gold[k], "predicted": pred[k]} for k in sorted(gold)
            if not (gold[k] == NONE and pred[k] == NONE)]


def split_quality(feedback: pd.DataFrame, gold: dict[Key, str], parts: dict[Key, str], tuned_parts: Iterable[str],
                  languages: dict[str, str]) -> dict[str, Any]:
    """Quality over every gold turn, on the parts the rules were tuned on vs the parts never tuned on, per
    part and per language group (English / other, by the conversation's language): (report, details,
    per-turn records of the confusion plot)."""
    pred = predictions(feedback, gold)
    tuned = set(tuned_parts)
    report = extraction_quality(gold, pred)
    report.pop("confusion_rows")
    validation = [k for k in sorted(gold) if parts.get(k, "") not in tuned]
    records = confusion_records({k: gold[k] for k in validation}, {k: pred[k] for k in validation})

    def subset(keep: Callable[[Key], bool]) -> dict[str, Any] | None:
        keys = [k for k in gold if keep(k)]
        return _headline({k: gold[k] for k in keys}, {k: pred[k] for k in keys}) if keys else None

    report["never_tuned"] = subset(lambda k: parts.get(k, "") not in tuned)
    report["tuned"] = subset(lambda k: parts.get(k, "") in tuned)
    report["tuned_parts"] = sorted(tuned)
    report["never_tuned_parts"] = sorted({p for p in parts.values() if p not in tuned})
    details = {"per_part": {part: subset(lambda k, part=part: parts.get(k) == part)
                            for part in sorted(set(parts.values()), key=_part_order)},
               "per_language": {"English": subset(lambda k: languages.get(k[0]) == "English"),
                                "other": subset(lambda k: languages.get(k[0]) != "English")}}
    return {"report": report, "details": details, "records": records}


def _part_order(part: str) -> tuple[int, str]:
    digits = "".join(ch for ch in part if ch.isdigit())
    return (int(digits) if digits else 0, part)
