"""The study's verdict, computed: paired comparisons of two arms on the same test examples.

McNemar's exact test on the examples where exactly one arm is right (ties — a zero log-ratio, half right —
count as wrong for both sides of the pair only when both are ties). A comparison is ``better`` when the
first arm is right more often and p < alpha, ``worse`` when the second is, else ``no_difference``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

COMPARISONS = (("kto", "kto_shuffled"), ("sft_feedback", "sft_random"))
ALPHA = 0.05


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` pairs only the first got right and ``c`` only the second."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(0, min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def compare(a: np.ndarray, b: np.ndarray, alpha: float = ALPHA) -> dict[str, Any]:
    """Paired comparison of per-example correctness arrays (1, 0 or 0.5) of two arms."""
    ra, rb = a >= 1.0, b >= 1.0
    only_a, only_b = int((ra & ~rb).sum()), int((rb & ~ra).sum())
    p = mcnemar_exact(only_a, only_b)
    outcome = "no_difference"
    if p < alpha:
        outcome = "better" if only_a > only_b else "worse"
    return {"n": len(a), "only_first_right": only_a, "only_second_right": only_b,
            "accuracy_difference": float(np.mean(a) - np.mean(b)) if len(a) else None,
            "p_value": p, "alpha": alpha, "outcome": outcome}


def verdict(correct: dict[str, np.ndarray]) -> dict[str, Any]:
    """``{"kto_vs_kto_shuffled": {...}, "sft_feedback_vs_sft_random": {...}}`` for the arms that ran."""
    return {f"{x}_vs_{y}": compare(correct[x], correct[y]) for x, y in COMPARISONS if x in correct and y in correct}

def correct(arm_logps: np.ndarray, base_logps: np.ndarray, labels: np.ndarray, tie: float = 1e-6) -> np.ndarray:
    """Per example: 1 if the log-ratio's sign agrees with the label, 0 if not, 0.5 for a zero log-ratio."""
    ratio = arm_logps - base_logps
    return np.where(np.abs(ratio) <= tie, 0.5, ((ratio > 0) == labels).astype(float))
