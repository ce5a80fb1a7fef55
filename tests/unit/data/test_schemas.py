"""The pandera models validate exactly the tables that natfeed writes (the Arrow schemas of core.tables)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from natfeed.core.tables import CONVERSATION_SCHEMA, FEEDBACK_SCHEMA
from natfeed.data.schemas import ConversationModel, FeedbackModel


def _kind(arrow: pa.DataType) -> str:
    if pa.types.is_string(arrow):
        return "str"
    if pa.types.is_integer(arrow):
        return "int"
    if pa.types.is_floating(arrow):
        return "float"
    if pa.types.is_boolean(arrow):
        return "bool"
    return "object"


def _pandera_kind(dtype: object) -> str:
    text = str(dtype)
    return next((k for k in ("str", "int", "float", "bool") if text.startswith(k)), "object")


@pytest.mark.parametrize(("model", "arrow"), [(FeedbackModel, FEEDBACK_SCHEMA),
                                              (ConversationModel, CONVERSATION_SCHEMA)])
def test_pandera_model_and_arrow_schema_agree(model, arrow):
    columns = model.to_schema().columns
    assert list(columns) == arrow.names
    assert {n: _pandera_kind(c.dtype) for n, c in columns.items()} == {f.name: _kind(f.type) for f in arrow}
