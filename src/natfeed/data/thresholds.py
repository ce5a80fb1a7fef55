"""Per-category confidence thresholds for ``build_kto`` (``build_kto.min_confidence``).

:func:`choose_thresholds` picks, for each KTO category, the lowest extractor confidence ``t`` at which the
rows of that category with ``confidence >= t`` reach a target precision on the validation gold turns (the
gold parts the heuristic's rules were never tuned on); :func:`apply_thresholds` drops the rows below
their category's threshold. Precision and recall are turn-level, as in :mod:`natfeed.data.extract_quality`:
a gold turn without a feedback row counts as predicted ``none``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from natfeed.core.categories import feedback_turn_to_user_turn
from natfeed.core.errors import NatfeedError
from natfeed.data.extract_quality import Key, _part_order, load_gold, load_gold_parts, prf

log = logging.getLogger(__name__)

MANUAL_HINT = "set build_kto.min_confidence by hand ({category: threshold}) or to {} (no thresholds)"


class ThresholdError(NatfeedError, ValueError):
    """Thresholds cannot be chosen from the gold labels (none, or none that describes this feedback)."""


def validation_parts(parts: Mapping[Key, str], tuned_parts: Iterable[str]) -> list[str]:
    """The gold parts not tuned on (in part order: dev_part4 before dev_part10)."""
    tuned = set(tuned_parts)
    return sorted({p for p in parts.values() if p not in tuned}, key=_part_order)


def _scores(conf: pd.Series, hit: pd.Series, t: float, n_gold: int) -> dict[str, Any]:
    keep = conf >= t
    tp, n_pred = int(hit[keep].sum()), int(keep.sum())
    m = prf(tp, n_pred, n_gold)
    return {"precision": round(m["precision"], 4), "recall": round(m["recall"], 4), "n_pred": n_pred, "tp": tp,
            "n_gold": n_gold}


def _choose(category: str, conf: pd.Series, hit: pd.Series, n_gold: int, target: float) -> dict[str, Any]:
    """The threshold of one category from its validation rows' confidences and hits (gold == category)."""
    candidates = sorted(set(conf))
    scored = [(t, _scores(conf, hit, t, n_gold)) for t in candidates]
    reached = [(t, s) for t, s in scored if s["n_pred"] and s["tp"] / s["n_pred"] >= target]
    if reached:
        t, at = reached[0]
    elif scored:
        t, at = max(scored, key=lambda ts: (ts[1]["tp"] / ts[1]["n_pred"], -ts[0]))
        log.warning("build_kto.min_confidence: %s never reaches precision %.2f on the validation gold; best %.3f "
                    "at confidence >= %s (%d rows)", category, target, at["precision"], t, at["n_pred"])
    else:
        t, at = 0.0, _scores(conf, hit, 0.0, n_gold)
        log.warning("build_kto.min_confidence: %s has no feedback row on the validation gold turns; no threshold",
                    category)
    return {"threshold": float(t), "reached": bool(reached), "target": target, "at_threshold": at,
            "unthresholded": _scores(conf, hit, 0.0, n_gold)}


def choose_thresholds(feedback: pd.DataFrame, gold: Mapping[Key, str], parts: Mapping[Key, str],
                      validation: Iterable[str], categories: Iterable[str], target: float) -> dict[str, dict[str, Any]]:
    """Per category: the lowest confidence ``t`` (among those its validation rows have) at which the rows of
    the category with ``confidence >= t`` have precision ``>= target`` on the gold turns of the ``validation``
    parts; when none does, the ``t`` of the highest precision (ties: the lowest ``t``), ``reached`` false and
    a warning. Each entry: ``threshold``, ``reached``, ``target``, and ``at_threshold`` / ``unthresholded``
    (t = 0) scores: ``precision``, ``recall``, ``n_pred`` (rows kept), ``tp``, ``n_gold`` (gold turns of the
    category). ``gold`` holds the judged turns of the extracted conversations (see :func:`validation_gold`)."""
    val = set(validation)
    judged = {k: c for k, c in gold.items() if parts.get(k) in val}
    keys = [(cid, feedback_turn_to_user_turn(int(ft)))
            for cid, ft in zip(feedback["conversation_id"], feedback["feedback_turn"], strict=True)]
    on_val = pd.Series([k in judged for k in keys], index=feedback.index, dtype=bool)
    truth = pd.Series([judged.get(k) for k in keys], index=feedback.index, dtype=object)
    out = {}
    for cat in categories:
        rows = on_val & (feedback["category"] == cat)
        n_gold = sum(1 for c in judged.values() if c == cat)
        out[cat] = _choose(cat, feedback.loc[rows, "confidence"].astype(float), truth[rows] == cat, n_gold, target)
    return out


def apply_thresholds(feedback: pd.DataFrame, thresholds: Mapping[str, float]) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop the rows of each category in ``thresholds`` whose confidence is below its threshold: (kept rows,
    {category: rows dropped}). Categories without a threshold keep every row."""
    limit = feedback["category"].map(thresholds).fillna(0.0).astype(float)
    below = feedback["confidence"].astype(float) < limit
    dropped = {cat: int(n) for cat, n in feedback.loc[below, "category"].value_counts().items()}
    return feedback[~below].reset_index(drop=True), dropped


def validation_gold(gold_path: str | Path, tuned_parts: Iterable[str],
                    feedback: pd.DataFrame) -> tuple[dict[Key, str], dict[Key, str], list[str]]:
    """(gold, parts, validation part names) of the gold CSV, or ThresholdError when the file is absent, has no
    validation part, or no feedback row falls on a validation turn (the gold then describes other data)."""
    path = Path(gold_path)
    if not path.exists():
        raise ThresholdError(f"build_kto.min_confidence auto needs the gold labels {path} (dvc pull), or "
                             f"{MANUAL_HINT}")
    gold, parts = load_gold(path), load_gold_parts(path)
    validation = validation_parts(parts, tuned_parts)
    val_turns = {k for k in gold if parts.get(k) in set(validation)}
    rows = {(cid, feedback_turn_to_user_turn(int(ft)))
            for cid, ft in zip(feedback["conversation_id"], feedback["feedback_turn"], strict=True)}
    if not val_turns or not rows & val_turns:
        what = "has no validation turns (every part is in extract_quality.tuned_parts)" if not val_turns else \
            "has no validation turn with a feedback row (it describes other conversations)"
        raise ThresholdError(f"build_kto.min_confidence auto: {path} {what}; {MANUAL_HINT}")
    return gold, parts, validation
