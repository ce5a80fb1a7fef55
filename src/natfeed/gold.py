"""Gold labels per user turn and the comparison of extracted feedback against them."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from natfeed.categories import CATEGORIES, NONE, feedback_turn_to_user_turn
from natfeed.quality import extraction_quality

Key = tuple[str, int]


class GoldError(ValueError):
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
