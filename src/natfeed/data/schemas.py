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


def balance_checks(p: BalanceParams) -> list[pa.Check]:
    """Dataset-level balance rules from params (each yields one scalar pass/fail)."""

    def shares(df: pd.DataFrame) -> pd.Series:
        return df["category"].value_counts(normalize=True).reindex(list(CATEGORIES), fill_value=0.0)

    def pos_neg(df: pd.DataFrame) -> float:
        pos, neg = int((df["label"] == 1).sum()), int((df["label"] == -1).sum())
        return pos / neg if neg else float("inf")

    return [
        pa.Check(lambda df: len(df) >= p.min_rows, name="min_rows",
                 description=f"at least {p.min_rows} rows"),
        pa.Check(lambda df: bool((shares(df) >= p.min_category_share).all()), name="min_category_share",
                 description=f"a category's share is below {p.min_category_share}"),
        pa.Check(lambda df: bool((shares(df) <= p.max_category_share).all()), name="max_category_share",
                 description=f"a category's share is above {p.max_category_share}"),
        pa.Check(lambda df: p.min_pos_neg_ratio <= pos_neg(df) <= p.max_pos_neg_ratio, name="pos_neg_ratio",
                 description=f"positive:negative ratio outside [{p.min_pos_neg_ratio}, {p.max_pos_neg_ratio}]"),
    ]


def feedback_schema(balance: BalanceParams | None = None, with_turns: bool = False) -> pa.DataFrameSchema:
    """The feedback schema plus the params' balance checks (and the turn-range check)."""
    schema = copy.deepcopy(FeedbackModel.to_schema())
    extra = balance_checks(balance) if balance is not None else []
    if with_turns:
        extra.append(turn_inside_conversation_check())
    schema.checks = list(schema.checks) + extra
    return schema
