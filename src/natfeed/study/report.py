"""study_report: reports/study.json from the step reports — the verdict, the label noise and the diagnostics
computed here — then docs/STUDY.md (:mod:`natfeed.study.writeup`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from natfeed.core.io import write_json
from natfeed.evaluate.metrics import wilson_interval
from natfeed.params.study import StudyParams
from natfeed.study.common import read_json, report_path, work_dir
from natfeed.study.trained import trained_examples
from natfeed.study.verdict import correct, verdict
from natfeed.study.writeup import write_study


def correctness(scores: pd.DataFrame, arms: list[str]) -> dict[str, np.ndarray]:
    labels = scores["label"].to_numpy(dtype=bool)
    return {arm: correct(scores[arm].to_numpy(), scores["base"].to_numpy(), labels) for arm in arms
            if arm in scores}


def report_step(p: StudyParams) -> dict[str, Any]:
    """reports/study.json from the step reports, with the computed verdict; docs/STUDY.md and its figures."""
    corpus_r, kto_r, arms_r = (read_json(report_path(p, n)) for n in ("corpus", "kto", "arms"))
    scores = pd.read_parquet(work_dir(p) / "scores.parquet")
    study = {
        "corpora": corpus_r["corpora"],
        "corpus_file": {"file": corpus_r["file"], "sha256": corpus_r["sha256"],
                        "ingest": {k: corpus_r["ingest"][k] for k in ("rows_read", "rows_kept", "rows_rejected",
                                                                      "rows_filtered", "rejected_by_reason")}},
        "extractor": corpus_r["extract"].get("extractor"),
        "extractor_quality": extractor_quality(Path(p.paths.extract_quality)),
        "extractable": extractable(kto_r["thresholds"]),
        "kto": {"train": kto_r["train"], "test": kto_r["test"], "train_desirable": kto_r["train_desirable"],
                "test_desirable": kto_r["test_desirable"], "target_precision": kto_r["target_precision"],
                "thresholds": {c: e["threshold"] for c, e in kto_r["thresholds"].items()},
                "feedback_rows": kto_r["feedback_rows"], "kept_by_threshold": kto_r["kept_by_threshold"]},
        "arms": {arm: {k: v for k, v in e.items() if k != "training"} for arm, e in arms_r["arms"].items()},
        "base": arms_r["base"],
        "trained_examples": trained_examples({n: pd.read_parquet(work_dir(p) / "kto" / f"{n}.parquet")
                                              for n in ("kto_train", "kto_shuffled", "random")}, p.train),
        "verdict": verdict(correctness(scores, list(arms_r["arms"]))),
        "kto_over_its_sft": kto_over_its_sft(scores),
        "seconds": {"corpus": corpus_r["seconds"], "kto": kto_r["seconds"], "arms": arms_r["seconds"],
                    "total": round(corpus_r["seconds"] + kto_r["seconds"] + arms_r["seconds"], 2)},
    }
    write_json(Path(p.paths.reports_dir) / "study.json", study)
    write_study(study, arms_r, p, kto_r["thresholds"])
    return study


def extractable(thresholds: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Label noise of the training data: validation precision and recall of positive_feedback and of the
    undesirable categories pooled, at the thresholds used, and the TPR − FPR they imply for the KTO labels."""
    pos = thresholds.get("positive_feedback", {}).get("at_threshold", {})
    neg = [e["at_threshold"] for c, e in thresholds.items() if c != "positive_feedback"]
    tp, n_pred, n_gold = (sum(e.get(k, 0) for e in neg) for k in ("tp", "n_pred", "n_gold"))
    undesirable = {"precision": tp / n_pred if n_pred else None, "recall": tp / n_gold if n_gold else None,
                   "n_pred": n_pred, "n_gold": n_gold}
    j = label_tpr_minus_fpr(pos.get("precision"), undesirable["precision"])
    return {"positive_feedback": {k: pos.get(k) for k in ("precision", "recall", "n_pred", "n_gold")},
            "undesirable": undesirable, "label_tpr_minus_fpr": j,
            "measured_on": "validation gold parts (never used to write the rules; see extract_quality)"}


def label_tpr_minus_fpr(p_pos: float | None, p_neg: float | None) -> float | None:
    """TPR − FPR of the KTO label "desirable" as a detector of a truly good reply, on a balanced train set
    (as many desirable as undesirable examples): a desirable example is truly good with probability
    ``p_pos`` (positive_feedback's precision), an undesirable one is truly not good with ``p_neg`` (the
    undesirable categories' pooled precision; a wrong undesirable row is counted as a good reply, the
    label's worst case). TPR = p_pos / (p_pos + 1 − p_neg), FPR = (1 − p_pos) / (1 − p_pos + p_neg)."""
    if p_pos is None or p_neg is None or p_pos + 1 - p_neg == 0 or 1 - p_pos + p_neg == 0:
        return None
    return p_pos / (p_pos + 1 - p_neg) - (1 - p_pos) / (1 - p_pos + p_neg)


def extractor_quality(path: Path) -> dict[str, Any] | None:
    """The extractor's validation figures (extract_quality's ``never_tuned`` turns), or None without the report."""
    if not path.exists():
        return None
    q = read_json(path).get("never_tuned") or {}
    return {"turns": q.get("n_turns"), "gold_feedback_turns": q.get("n_gold_feedback"),
            "detection_f1": (q.get("detection") or {}).get("f1"), "category_f1": (q.get("micro") or {}).get("f1"),
            "macro_f1": q.get("macro_f1"),
            "per_category_f1": {c: v.get("f1") for c, v in (q.get("per_category") or {}).items()},
            "measured_on": "the validation gold parts (extract_quality's never-tuned parts)"}




def kto_over_its_sft(scores: pd.DataFrame) -> dict[str, Any] | None:
    """A diagnostic beside the verdict: the ``kto`` arm scored against its own SFT model (``sft_feedback``, KTO's
    reference in training) instead of the base, which isolates what the KTO phase changed."""
    if not {"kto", "sft_feedback"} <= set(scores.columns):
        return None
    labels = scores["label"].to_numpy(dtype=bool)
    c = correct(scores["kto"].to_numpy(), scores["sft_feedback"].to_numpy(), labels)
    low, high = wilson_interval(float(c.sum()), len(c))
    return {"n": len(c), "reward_accuracy": float(c.mean()) if len(c) else None, "ci": [low, high],
            "accuracy_desirable": float(c[labels].mean()) if labels.any() else None,
            "accuracy_undesirable": float(c[~labels].mean()) if (~labels).any() else None,
            "reference": "sft_feedback (the kto arm's SFT model)"}
