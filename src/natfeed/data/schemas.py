"""pandera schemas for the conversations and the feedback tables (row-level rules and balance).

The columns are those of the Arrow schemas in :mod:`natfeed.core.tables` (a test checks that every column
and type agree). Distribution checks (null rates, language mix, drift) live in
:mod:`natfeed.data.expectations`; no rule is written twice.
"""

from __future__ import annotations

import copy
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from natfeed.core.categories import CATEGORIES, CODES
from natfeed.core.records import Malformed, check_roles
from natfeed.params import BalanceParams


def _non_blank(s: pd.Series) -> pd.Series:
    return s.astype(str).str.strip().str.len() > 0


def _user_turns(messages: Any) -> int:
    return sum(1 for m in messages if m["role"] == "user")


def _roles_ok(messages: Any) -> bool:
    try:
        check_roles([{"role": m["role"], "content": m["content"]} for m in messages])
    except (Malformed, KeyError, TypeError):
        return False
    return all(isinstance(m["content"], str) and m["content"].strip() for m in messages)


class ConversationModel(pa.DataFrameModel):
    """data/interim/conversations.parquet"""

    conversation_id: Series[str] = pa.Field(unique=True)
    model: Series[str]
    conversation: Series[object]
    turn: Series[int] = pa.Field(ge=1, coerce=True)
    language: Series[str]
    openai_moderation: Series[str]
    flagged: Series[bool]
    redacted: Series[bool]
    source: Series[str]

    @pa.check("conversation_id", "language", name="non_blank")
    def _ids_non_blank(cls, s: Series[str]) -> Series[bool]:
        return _non_blank(s)

    @pa.check("conversation", name="roles_alternate_and_contents_non_empty")
    def _roles(cls, s: Series[object]) -> Series[bool]:
        return s.map(_roles_ok).astype(bool)

    @pa.dataframe_check(name="turn_equals_user_messages")
    def _turn_count(cls, df: pd.DataFrame) -> Series[bool]:
        return df["conversation"].map(_user_turns) == df["turn"]


class FeedbackModel(pa.DataFrameModel):
    """data/processed/feedback.parquet (one row per feedback turn)."""

    conversation_id: Series[str]
    feedback_turn: Series[int] = pa.Field(ge=1, coerce=True)
    category: Series[str] = pa.Field(isin=list(CATEGORIES))
    code: Series[str] = pa.Field(isin=list(CODES.values()))
    label: Series[int] = pa.Field(isin=[-1, 1], coerce=True)
    feedback_text: Series[str]
    prompt: Series[object]
    response: Series[str]
    extractor: Series[str]
    confidence: Series[float] = pa.Field(ge=0.0, le=1.0)
    language: Series[str]
    model: Series[str]
    flagged: Series[bool]
    cue: Series[str] = pa.Field(nullable=True)

    class Config:
        unique = ["conversation_id", "feedback_turn"]

    @pa.check("conversation_id", "feedback_text", "response", "extractor", name="non_blank")
    def _non_blank(cls, s: Series[str]) -> Series[bool]:
        return _non_blank(s)

    @pa.check("prompt", name="prompt_non_empty")
    def _prompt(cls, s: Series[object]) -> Series[bool]:
        return s.map(lambda p: p is not None and len(p) > 0).astype(bool)

    @pa.dataframe_check(name="label_matches_category")
    def _label(cls, df: pd.DataFrame) -> Series[bool]:
        return df["label"] == df["category"].map(lambda c: 1 if c == "positive_feedback" else -1)

    @pa.dataframe_check(name="code_matches_category")
    def _code(cls, df: pd.DataFrame) -> Series[bool]:
        return df["code"] == df["category"].map(CODES)


def turn_inside_conversation_check() -> pa.Check:
    """feedback_turn + 1 must be a user turn of the conversation (needs ``conversation_turns``)."""
    return pa.Check(
        lambda df: df["feedback_turn"] + 1 <= df["conversation_turns"].fillna(0),
        name="feedback_turn_inside_conversation",
        description="feedback_turn + 1 must not exceed the conversation's user turns",
    )


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def balance_failures(feedback: pd.DataFrame, p: BalanceParams) -> list[dict[str, Any]]:
    """The dataset-level balance rules of ``validate.balance``, each failure naming the rule, the observed
    value and the allowed range (``share of positive_feedback 0.71 > max 0.6``)."""
    out: list[dict[str, Any]] = []

    def fail(check: str, column: str, observed: float, message: str) -> None:
        out.append({"table": "feedback", "check": check, "column": column, "count": 1,
                    "observed": round(float(observed), 4), "message": message})

    n = len(feedback)
    if n < p.min_rows:
        fail("min_rows", "<table>", n, f"feedback rows {n} < min {p.min_rows}")
    if n == 0:
        return out
    shares = feedback["category"].value_counts(normalize=True).reindex(list(CATEGORIES), fill_value=0.0)
    for cat, share in shares.items():
        if share < p.min_category_share:
            fail("min_category_share", "category", share,
                 f"share of {cat} {_fmt(share)} < min {_fmt(p.min_category_share)}")
        if share > p.max_category_share:
            fail("max_category_share", "category", share,
                 f"share of {cat} {_fmt(share)} > max {_fmt(p.max_category_share)}")
    pos, neg = int((feedback["label"] == 1).sum()), int((feedback["label"] == -1).sum())
    ratio = pos / neg if neg else float("inf")
    if not p.min_pos_neg_ratio <= ratio <= p.max_pos_neg_ratio:
        fail("pos_neg_ratio", "label", ratio if neg else -1.0, f"positive:negative ratio {pos}:{neg} = "
             f"{_fmt(ratio)} outside [{_fmt(p.min_pos_neg_ratio)}, {_fmt(p.max_pos_neg_ratio)}]")
    return out


def feedback_schema(with_turns: bool = False) -> pa.DataFrameSchema:
    """The feedback schema (row rules), plus the turn-range check when the conversations are known."""
    schema = copy.deepcopy(FeedbackModel.to_schema())
    if with_turns:
        schema.checks = [*schema.checks, turn_inside_conversation_check()]
    return schema
