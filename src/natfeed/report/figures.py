"""The dataset card's figures (PNG, matplotlib, headless): the counterparts of the paper's prevalence plots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from natfeed.core.categories import CATEGORIES
from natfeed.core.io import atomic_path

FIGURES = ("feedback_share", "categories", "rate_by_language", "rate_by_model", "feedback_position")
"""The figure names (``<name>.png``)."""

TOP = 8  # languages / models shown; the rest are summed as "other"


def prevalence(conversations: pd.DataFrame, feedback: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per value of ``column`` (language, model): conversations, those with feedback and their share.

    The ``TOP`` most frequent values are kept, the rest summed as ``other``.
    """
    with_fb = set(feedback["conversation_id"])
    conv = conversations.assign(group=conversations[column].fillna("unknown").astype(str),
                                has_feedback=conversations["conversation_id"].isin(with_fb))
    counts = conv.groupby("group").agg(conversations=("has_feedback", "size"), with_feedback=("has_feedback", "sum"))
    counts = counts.sort_values("conversations", ascending=False)
    if len(counts) > TOP:
        head, rest = counts.iloc[:TOP], counts.iloc[TOP:]
        counts = pd.concat([head, pd.DataFrame(rest.sum()).T.rename(index={0: "other"})])
    counts["share"] = counts["with_feedback"] / counts["conversations"]
    return counts


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def write_figures(conversations: pd.DataFrame, feedback: pd.DataFrame, out_dir: str | Path) -> dict[str, str]:
    """Draw :data:`FIGURES` into ``out_dir``; {name: path}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    n_conv = len(conversations)
    n_with = feedback["conversation_id"].nunique()

    fig, ax = plt.subplots(figsize=(5, 1.6))
    ax.barh(["conversations"], [n_with], color="#4c78a8", label="with feedback")
    ax.barh(["conversations"], [n_conv - n_with], left=[n_with], color="#d3d3d3", label="without")
    ax.set_title(f"{n_with} of {n_conv} conversations ({100 * n_with / max(1, n_conv):.1f}%) have feedback")
    ax.legend(loc="lower right", fontsize=8)
    paths["feedback_share"] = str(out / "feedback_share.png")
    _save(fig, Path(paths["feedback_share"]))

    counts = feedback["category"].value_counts().reindex(CATEGORIES, fill_value=0)
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.barh(list(counts.index)[::-1], list(counts.values)[::-1], color="#f58518")
    for i, v in enumerate(list(counts.values)[::-1]):
        ax.text(v, i, f" {v}", va="center", fontsize=8)
    ax.set_title("Feedback rows per category")
    paths["categories"] = str(out / "categories.png")
    _save(fig, Path(paths["categories"]))

    for column, name in (("language", "rate_by_language"), ("model", "rate_by_model")):
        table = prevalence(conversations, feedback, column)
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(table) + 1))
        ax.barh(list(table.index)[::-1], list(table["share"])[::-1], color="#54a24b")
        for i, (share, n) in enumerate(zip(list(table["share"])[::-1], list(table["conversations"])[::-1],
                                           strict=True)):
            ax.text(share, i, f" {share:.0%} of {int(n)}", va="center", fontsize=8)
        ax.set_xlim(0, 1.15)
        ax.set_title(f"Share of conversations with feedback, by {column}")
        paths[name] = str(out / f"{name}.png")
        _save(fig, Path(paths[name]))

    turns = feedback["feedback_turn"].clip(upper=10)
    by_turn = turns.value_counts().sort_index()
    fig, ax = plt.subplots(figsize=(6, 2.4))
    ax.bar([str(t) if t < 10 else "10+" for t in by_turn.index], list(by_turn.values), color="#b279a2")
    ax.set_xlabel("exchange whose reply got the feedback (1 = the first reply; feedback_turn)")
    ax.set_title("Where feedback appears in a conversation")
    paths["feedback_position"] = str(out / "feedback_position.png")
    _save(fig, Path(paths["feedback_position"]))
    plt.close("all")
    return paths
