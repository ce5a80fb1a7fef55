"""Win rates of a candidate model against a baseline: outcome counting and 95% intervals.

Outcomes are from the candidate's side: ``win``, ``loss``, ``tie`` or ``failed`` (the judge gave no
usable verdict; left out of the rate and counted). The win rate counts a tie as half a win:
``(wins + ties / 2) / (wins + losses + ties)``, with a 95% Wilson score interval on that (fractional)
success count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

OUTCOMES = ("win", "loss", "tie", "failed")
Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval for a proportion (``successes`` may be fractional: ties count half)."""
    if n <= 0:
        return None, None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate(outcomes: Sequence[str]) -> dict[str, Any]:
    """Counts, the win rate (ties half) and its 95% Wilson interval; failed verdicts are excluded."""
    unknown = set(outcomes) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)}; expected {OUTCOMES}")
    counts = {k: int(sum(o == k for o in outcomes)) for k in OUTCOMES}
    n = counts["win"] + counts["loss"] + counts["tie"]
    successes = counts["win"] + 0.5 * counts["tie"]
    low, high = wilson_interval(successes, n)
    return {"wins": counts["win"], "losses": counts["loss"], "ties": counts["tie"],
            "failed": counts["failed"], "n": n, "win_rate": successes / n if n else None,
            "ci_low": low, "ci_high": high,
            "tie_rate": counts["tie"] / n if n else None}


def compare_scores(candidate: Sequence[float], baseline: Sequence[float],
                   tie_margin: float = 0.0) -> list[str]:
    """Outcome per item from two scores (higher is better); NaN scores give ``failed``."""
    out = []
    for a, b in zip(candidate, baseline, strict=True):
        if math.isnan(a) or math.isnan(b):
            out.append("failed")
        elif abs(a - b) <= tie_margin:
            out.append("tie")
        else:
            out.append("win" if a > b else "loss")
    return out
