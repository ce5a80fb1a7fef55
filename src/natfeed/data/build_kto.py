"""build_kto: KTO and SFT datasets from feedback rows.

KTO rows are ``{prompt: [messages], completion: [assistant message], label: bool}`` (TRL's
conversational unpaired-preference format); SFT rows are ``{prompt, completion}`` from the positive
examples. Desirable = positive_feedback replies; undesirable = replies that got one of the params'
negative categories (the paper's choice: both make_aware categories; add repeat_or_rephrase for its
"all negative feedback" variant); the other categories are not used. The larger side is downsampled
(stratified by category, seeded) so that ``desirable_weight * n_d / (undesirable_weight * n_u)`` lies in
[ratio_min, ratio_max] (KTO's guidance); the split is by conversation, never one conversation on both
sides. Before all that, rows below their category's confidence threshold (``min_confidence``, chosen on the
validation gold by :mod:`natfeed.data.thresholds` when ``auto``) are dropped. ``per_category`` in the report
says, for every category, how many rows were used and why others were dropped.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from natfeed.core.io import atomic_path
from natfeed.data.thresholds import (
    MANUAL_HINT,
    ThresholdError,
    apply_thresholds,
    choose_thresholds,
    validation_gold,
)
from natfeed.params import BuildKtoParams


def _messages(value: Any) -> list[dict[str, str]]:
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]


def _candidates(feedback: pd.DataFrame, p: BuildKtoParams) -> pd.Series:
    return feedback["category"].isin(p.kto_categories())


def _flagged(feedback: pd.DataFrame, p: BuildKtoParams) -> pd.Series:
    if not p.exclude_flagged or "flagged" not in feedback:
        return pd.Series(False, index=feedback.index)
    return feedback["flagged"].astype(bool)


def select_rows(feedback: pd.DataFrame, p: BuildKtoParams) -> pd.DataFrame:
    """Rows usable for KTO: positive or a listed negative category; flagged conversations out."""
    return feedback[_candidates(feedback, p) & ~_flagged(feedback, p)].reset_index(drop=True)


def _stratified_sample(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` rows of ``df``, each category keeping its share (largest remainders), seeded."""
    if n >= len(df):
        return df
    counts = df["category"].value_counts()
    exact = counts * n / len(df)
    quota = exact.apply(math.floor)
    for cat in (exact - quota).sort_values(ascending=False).index[: n - int(quota.sum())]:
        quota[cat] += 1
    parts = [df[df["category"] == c].sample(n=int(k), random_state=seed) for c, k in quota.items() if k]
    return pd.concat(parts).sort_index()


def downsample(rows: pd.DataFrame, p: BuildKtoParams) -> pd.DataFrame:
    """Bring the desirable:undesirable ratio into [ratio_min, ratio_max]."""
    des, und = rows[rows["label"] == 1], rows[rows["label"] == -1]
    if des.empty or und.empty:
        return rows
    wd, wu = p.desirable_weight, p.undesirable_weight
    ratio = wd * len(des) / (wu * len(und))
    if ratio < p.ratio_min:
        und = _stratified_sample(und, max(1, math.floor(wd * len(des) / (wu * p.ratio_min))), p.seed)
    elif ratio > p.ratio_max:
        des = _stratified_sample(des, max(1, math.floor(p.ratio_max * wu * len(und) / wd)), p.seed)
    return pd.concat([des, und]).sort_index()


def category_flow(feedback: pd.DataFrame, selected: pd.DataFrame, balanced: pd.DataFrame, p: BuildKtoParams,
                  confidence_dropped: Mapping[str, int] | None = None) -> dict[str, dict[str, Any]]:
    """Per category: feedback rows, its role (desirable / undesirable / unused), rows dropped below the
    category's confidence threshold, for a flagged conversation, to meet the desirable:undesirable ratio, and
    rows kept (a used category's rows = the three drops + kept)."""
    out = {}
    for cat in sorted(set(feedback["category"])):
        role = ("desirable" if cat == "positive_feedback" else "undesirable" if cat in p.undesirable_categories
                else "unused")
        rows = int((feedback["category"] == cat).sum())
        conf = int((confidence_dropped or {}).get(cat, 0))
        sel = int((selected["category"] == cat).sum())
        kept = int((balanced["category"] == cat).sum())
        out[cat] = {"role": role, "feedback_rows": rows, "confidence_dropped": conf,
                    "flagged_dropped": rows - conf - sel if role != "unused" else 0,
                    "ratio_dropped": sel - kept, "kept": kept}
    return out


def resolve_min_confidence(p: BuildKtoParams, feedback: pd.DataFrame, gold_path: str | Path | None = None,
                           tuned_parts: Iterable[str] = ()) -> tuple[dict[str, float], dict[str, Any] | None]:
    """The thresholds to apply ({category: min confidence}) and, for ``auto``, the table they were chosen from
    (:func:`natfeed.data.thresholds.choose_thresholds` on the gold parts not in ``tuned_parts``).
    ``auto`` without a usable gold file is a ThresholdError that says to set the thresholds by hand."""
    if p.min_confidence != "auto":
        return dict(p.min_confidence or {}), None
    if gold_path is None:
        raise ThresholdError(f"build_kto.min_confidence auto needs gold labels (paths.gold_labels; --gold on the CLI); "
                             f"{MANUAL_HINT}")
    gold, parts, validation = validation_gold(gold_path, tuned_parts, feedback)
    table = choose_thresholds(feedback, gold, parts, validation, p.kto_categories(), p.target_precision)
    return {c: t["threshold"] for c, t in table.items()}, {"validation_parts": validation, "per_category": table}


def split_conversations(ids: pd.Series, test_size: float, seed: int, labels: pd.Series | None = None) -> set[str]:
    """The conversation ids of the test split (seeded, at least one when there are two or more).

    With ``labels`` (aligned with ``ids``) the split is stratified: conversations are grouped by the labels
    they hold (only desirable, only undesirable, both) and each group gives its share of the test split, so
    the test set has the training set's label balance rather than what the shuffle happened to draw."""
    unique = sorted(set(ids))
    n_test = min(len(unique) - 1, max(1, round(len(unique) * test_size))) if len(unique) > 1 else 0
    rng = random.Random(seed)
    if labels is None:
        rng.shuffle(unique)
        return set(unique[:n_test])
    held: dict[str, set[int]] = defaultdict(set)
    for cid, label in zip(ids, labels, strict=True):
        held[cid].add(int(label))
    strata: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for cid in unique:
        strata[tuple(sorted(held[cid]))].append(cid)
    ranked: list[tuple[float, int, str]] = []
    for order, key in enumerate(sorted(strata)):
        members = strata[key]
        rng.shuffle(members)
        ranked += [((i + 0.5) / len(members), order, cid) for i, cid in enumerate(members)]
    return {cid for _, _, cid in sorted(ranked)[:n_test]}


def to_kto(rows: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "prompt": [_messages(p) for p in rows["prompt"]],
        "completion": [[{"role": "assistant", "content": str(r)}] for r in rows["response"]],
        "label": (rows["label"] == 1).tolist(),
        "category": rows["category"].tolist(),
        "conversation_id": rows["conversation_id"].tolist(),
        "feedback_turn": rows["feedback_turn"].tolist(),
    })


def to_sft(rows: pd.DataFrame) -> pd.DataFrame:
    pos = rows[rows["label"] == 1]
    return pd.DataFrame({
        "prompt": [_messages(p) for p in pos["prompt"]],
        "completion": [[{"role": "assistant", "content": str(r)}] for r in pos["response"]],
        "conversation_id": pos["conversation_id"].tolist(),
    })


def build_kto(feedback: pd.DataFrame, p: BuildKtoParams,
              thresholds: Mapping[str, float] | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Build ``kto_train``, ``kto_test``, ``sft_train``, ``sft_test`` frames and a report. ``thresholds``
    ({category: min confidence}, from :func:`resolve_min_confidence`) are applied first; None = the params'
    hand-set ``min_confidence`` (``auto`` must be resolved first)."""
    if thresholds is None:
        if p.min_confidence == "auto":
            raise ThresholdError("build_kto.min_confidence is auto: resolve it first (resolve_min_confidence)")
        thresholds = p.min_confidence or {}
    kept, conf_dropped = apply_thresholds(feedback, thresholds)
    selected = select_rows(kept, p)
    balanced = downsample(selected, p)
    test_ids = split_conversations(balanced["conversation_id"], p.test_size, p.seed, balanced["label"])
    is_test = balanced["conversation_id"].isin(test_ids)
    frames = {
        "kto_train": to_kto(balanced[~is_test]), "kto_test": to_kto(balanced[is_test]),
        "sft_train": to_sft(balanced[~is_test]), "sft_test": to_sft(balanced[is_test]),
    }
    n_d, n_u = int((balanced["label"] == 1).sum()), int((balanced["label"] == -1).sum())
    per_cat: dict[str, int] = defaultdict(int)
    for c in balanced["category"]:
        per_cat[c] += 1
    report = {
        "per_category": category_flow(feedback, selected, balanced, p, conf_dropped),
        "feedback_rows": int(len(feedback)), "min_confidence": dict(sorted(thresholds.items())),
        "confidence_dropped": sum(conf_dropped.values()), "selected_rows": int(len(selected)),
        "flagged_excluded": int((_candidates(kept, p) & _flagged(kept, p)).sum()),
        "desirable": n_d, "undesirable": n_u,
        "weighted_ratio": round(p.desirable_weight * n_d / (p.undesirable_weight * n_u), 4) if n_u else None,
        "rows_per_category": dict(sorted(per_cat.items())),
        **{f"{k}_rows": int(len(v)) for k, v in frames.items()},
        "test_conversations": len(test_ids),
        "test_desirable": int(frames["kto_test"]["label"].sum()),
        "test_undesirable": int((~frames["kto_test"]["label"].astype(bool)).sum()),
    }
    return frames, report


def write_frames(frames: dict[str, pd.DataFrame], out_dir: str | Path) -> list[Path]:
    """Write each frame to ``out_dir/<name>.parquet`` atomically (an earlier file stays until the new one
    is complete)."""
    paths = []
    for name, frame in frames.items():
        path = Path(out_dir) / f"{name}.parquet"
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False)
        paths.append(path)
    return paths
