"""Claim 1, *common*: the share of conversations with naturally occurring feedback, per corpus.

Shares come with Wilson 95% intervals. ``with_feedback`` counts over every conversation of the corpus;
``with_feedback_judged`` over the conversations that have at least one judged turn (a second user turn
after a reply), the only ones where feedback can occur at all.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from natfeed.core.categories import CATEGORIES
from natfeed.core.conversation import Conversation, judged_turns
from natfeed.evaluate.metrics import wilson_interval

PAPER_WITH_FEEDBACK = 0.30
"""The paper's headline: "as much as ~30% of the chats include explicit feedback" (its manual annotation of
conversations of a standard corpus; arXiv:2407.10944, abstract)."""


def share(k: int, n: int) -> dict[str, Any]:
    """``{share, ci: [low, high], k, n}`` with a Wilson 95% interval (share None when n is 0)."""
    low, high = wilson_interval(k, n)
    return {"share": k / n if n else None, "ci": [low, high], "k": int(k), "n": int(n)}


def judged_per_conversation(conversations: pd.DataFrame) -> pd.Series:
    """Judged turns of each conversation (index: conversation_id)."""
    counts = [sum(1 for _ in judged_turns(Conversation.from_row(row)))
              for row in conversations[["conversation_id", "conversation"]].to_dict("records")]
    return pd.Series(counts, index=conversations["conversation_id"].to_numpy(), dtype=int)


def prevalence(conversations: pd.DataFrame, feedback: pd.DataFrame) -> dict[str, Any]:
    """The corpus's conversations, judged turns, share with feedback and per category."""
    judged = judged_per_conversation(conversations)
    ids = set(conversations["conversation_id"])
    fb = feedback[feedback["conversation_id"].isin(ids)]
    with_fb = set(fb["conversation_id"])
    n, n_judged = len(ids), int((judged > 0).sum())
    per_category = {}
    for cat in CATEGORIES:
        convs = set(fb.loc[fb["category"] == cat, "conversation_id"])
        per_category[cat] = {**share(len(convs), n), "turns": int((fb["category"] == cat).sum())}
    return {
        "conversations": n, "judged_turns": int(judged.sum()), "conversations_with_judged_turns": n_judged,
        "feedback_turns": int(len(fb)),
        "with_feedback": share(len(with_fb), n),
        "with_feedback_judged": share(len(with_fb), n_judged),
        "feedback_turn_share": share(len(fb), int(judged.sum())),
        "per_category": per_category,
        "paper_with_feedback": PAPER_WITH_FEEDBACK,
    }


def by_source(conversations: pd.DataFrame, feedback: pd.DataFrame, sources: dict[str, str]) -> dict[str, Any]:
    """:func:`prevalence` of each named corpus of the embedded run (``{name: source}``)."""
    return {name: prevalence(conversations[conversations["source"] == src], feedback)
            for name, src in sources.items()}
