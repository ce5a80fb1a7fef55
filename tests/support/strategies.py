"""hypothesis strategies for raw log lines: random bytes, random JSON values and random conversation shapes."""

from __future__ import annotations

import json

from hypothesis import strategies as st

ROLES = st.sampled_from(["user", "assistant", "system", "gpt", "human", "tool", "", "USER"])
TEXT = st.text(max_size=40)
JSON_VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                          lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                          max_leaves=12)
MESSAGE = st.fixed_dictionaries({"role": ROLES, "content": TEXT | st.none() | st.integers()}) | JSON_VALUE
SHAREGPT_MESSAGE = st.fixed_dictionaries({"from": ROLES, "value": TEXT})


@st.composite
def conversation_shape(draw) -> dict:
    """A row in one of the shapes natfeed reads (LMSYS, OpenAI messages, ShareGPT), valid or not."""
    key = draw(st.sampled_from(["conversation", "messages", "conversations"]))
    message = SHAREGPT_MESSAGE if key == "conversations" else MESSAGE
    row = {key: draw(st.lists(message, max_size=6) | JSON_VALUE)}
    if draw(st.booleans()):
        row["conversation_id"] = draw(st.sampled_from(["a", "b", "c"]) | st.integers() | st.none() | TEXT)
    if draw(st.booleans()):
        row["language"] = draw(st.none() | TEXT)
    if draw(st.booleans()):
        row["openai_moderation"] = draw(JSON_VALUE)
    return row


def _line(value: object) -> bytes:
    return json.dumps(value).encode("utf-8")


LINE = (st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ")) | JSON_VALUE.map(_line)
        | conversation_shape().map(_line))
LINES = st.lists(LINE, max_size=12)


def is_conversation(line: bytes) -> bool:
    """Whether one raw line normalises to a conversation (else ingest/extract reject it)."""
    from natfeed.core.readers import decode_line
    from natfeed.core.records import Malformed, normalise_record

    rec = decode_line("x", 1, line)
    if rec is None:
        return False
    try:
        normalise_record(rec)
    except Malformed:
        return False
    return True
