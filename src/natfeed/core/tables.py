"""The Arrow schemas of the pipeline's tables: conversations, feedback, and the rows set aside.

The pandera models that validate the same tables (:mod:`natfeed.data.schemas`) are checked against these
by a test, so the two never drift apart.
"""

from __future__ import annotations

import pyarrow as pa

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])
CONVERSATION_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("model", pa.string()),
        ("conversation", pa.list_(MESSAGE_TYPE)),
        ("turn", pa.int32()),
        ("language", pa.string()),
        ("openai_moderation", pa.string()),
        ("flagged", pa.bool_()),
        ("redacted", pa.bool_()),
        ("source", pa.string()),
    ]
)
"""One row per conversation; ``turn`` is the number of user messages, ``openai_moderation`` the
original moderation record as JSON text, ``flagged`` whether any message was flagged."""

FEEDBACK_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("feedback_turn", pa.int32()),
        ("category", pa.string()),
        ("code", pa.string()),
        ("label", pa.int8()),
        ("feedback_text", pa.string()),
        ("prompt", pa.list_(MESSAGE_TYPE)),
        ("response", pa.string()),
        ("extractor", pa.string()),
        ("confidence", pa.float64()),
        ("language", pa.string()),
        ("model", pa.string()),
        ("flagged", pa.bool_()),
        ("cue", pa.string()),
    ]
)
"""One row per feedback turn. ``feedback_turn`` is the paper's index of the exchange whose reply got
the feedback (the feedback is user message ``feedback_turn + 1``); ``cue`` says why it was chosen."""

REJECTED_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("line", pa.int64()),
        ("conversation_id", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("raw", pa.string()),
    ]
)
FILTERED_SCHEMA = CONVERSATION_SCHEMA.append(pa.field("filter", pa.string())).append(
    pa.field("detail", pa.string())
)
"""``rejected`` rows: malformed input with its ``reason`` code; ``filtered`` rows: valid conversations a filter
removed, with the filter's name."""
