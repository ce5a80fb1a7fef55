import gzip
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from natfeed.core.records import Malformed, check_roles, normalise
from natfeed.data.ingest import run_ingest
from natfeed.params import IngestParams
from tests.conftest import conv, write_jsonl

P = IngestParams(detect_language=False)


def test_normalise_lmsys_row():
    c = normalise(conv("a1", "hi", "hello", "thanks", "welcome", language="english", redacted=True))
    assert c.conversation_id == "a1"
    assert c.user_turns == 2
    assert c.language == "English"
    assert c.redacted is True
    assert c.flagged is False


def test_normalise_wildchat_and_openai_and_sharegpt():
    w = normalise({"conversation_hash": "h1", "conversation": [
        {"role": "user", "content": "q", "timestamp": None}, {"role": "assistant", "content": "a"}],
        "toxic": True, "language": None})
    assert w.conversation_id == "h1" and w.flagged is True and w.language == "unknown"
    o = normalise({"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "q"},
                                {"role": "assistant", "content": "a"}]})
    assert o.conversation_id.startswith("sha1-") and o.user_turns == 1
    assert o.messages[0]["role"] == "system"
    s = normalise({"id": 7, "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]})
    assert s.conversation_id == "7" and [m["role"] for m in s.messages] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ([1, 2], "not_an_object"),
        ({"conversation_id": "x"}, "missing_messages"),
        ({"conversation_id": "x", "conversation": "hi"}, "messages_not_a_list"),
        ({"conversation_id": "x", "conversation": [{"content": "hi"}]}, "missing_role"),
        ({"conversation_id": "x", "conversation": [{"role": "bot", "content": "hi"}]}, "unknown_role"),
        ({"conversation_id": "x", "conversation": [{"role": "user", "content": 5}]}, "content_not_a_string"),
        ({"conversation_id": "x", "conversation": [{"role": "user", "content": "  "}]}, "empty_content"),
        ({"conversation_id": "x", "conversation": [{"role": "assistant", "content": "a"}]}, "no_user_message"),
        ({"conversation_id": "x", "conversation": [{"role": "assistant", "content": "a"},
                                                   {"role": "assistant", "content": "b"},
                                                   {"role": "user", "content": "q"}]}, "must_start_with_user"),
        ({"conversation_id": None, "conversation": [{"role": "user", "content": "a"}]}, "missing_conversation_id"),
        ({"conversation_id": "x", "conversation": ["hi"]}, "message_not_an_object"),
    ],
)
def test_malformed_reasons(obj, reason):
    with pytest.raises(Malformed) as err:
        normalise(obj)
    assert err.value.reason == reason


def test_roles_must_alternate_but_system_prefix_is_allowed():
    check_roles([{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                 {"role": "assistant", "content": "a"}, {"role": "user", "content": "u2"}])
    with pytest.raises(Malformed, match="roles_not_alternating"):
        check_roles([{"role": "user", "content": "u"}, {"role": "user", "content": "u"}])
    with pytest.raises(Malformed, match="roles_not_alternating"):
        check_roles([{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"},
                     {"role": "system", "content": "s"}])


def _bad_input_file(tmp_path):
    good = [conv(f"g{i}", "question", "answer", "that's wrong", "sorry") for i in range(5)]
    lines = [json.dumps(r).encode() for r in good]
    lines += [
        b'{"conversation_id": "t1", "conversation": [{"role": "us',               # truncated JSON
        json.dumps(conv("w1", "q", "a") | {"conversation": {"role": "user"}}).encode(),  # wrong type
        json.dumps({"conversation_id": "m1", "conversation": [{"content": "q"}]}).encode(),  # missing role
        json.dumps(conv("e1", "q", "", "x", "y")).encode(),                          # empty content
        json.dumps({"conversation_id": "r1", "conversation": [{"role": "user", "content": "a"},
                                                               {"role": "user", "content": "b"}]}).encode(),
        b'{"conversation_id": "u1", "conversation": [{"role": "user", "content": "caf\xe9"}]}',  # bad UTF-8
        b'"just a string"',                                                           # not an object
        json.dumps(conv("big", "x" * 2_000_000, "a", "b", "c")).encode(),             # 2 MB message
        json.dumps(good[0]).encode(),                                                 # duplicate id
        json.dumps(conv("short", "only one turn", "reply")).encode(),                 # 1 user turn
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_bad_input_suite_quarantines_everything(tmp_path):
    out = tmp_path / "out" / "conversations.parquet"
    report = run_ingest(_bad_input_file(tmp_path), out, P)
    assert report["rows_read"] == 15
    assert report["rows_kept"] == 5
    assert report["rows_read"] == report["rows_kept"] + report["rows_rejected"] + report["rows_filtered"]
    assert report["rejected_by_reason"] == {
        "empty_content": 1, "invalid_json": 1, "invalid_utf8": 1, "messages_not_a_list": 1,
        "missing_role": 1, "not_an_object": 1, "roles_not_alternating": 1}
    assert report["filtered_by_filter"] == {"duplicate_id": 1, "max_chars": 1, "min_user_turns": 1}
    rejected = pd.read_parquet(tmp_path / "out" / "conversations.rejected.parquet")
    assert len(rejected) == 7 and rejected["reason"].notna().all()
    assert rejected["raw"].str.len().gt(0).all()  # the raw text is kept, nothing lost
    bad_utf8 = rejected[rejected["reason"] == "invalid_utf8"]["raw"].iloc[0]
    assert "\\xe9" in bad_utf8
    filtered = pd.read_parquet(tmp_path / "out" / "conversations.filtered.parquet")
    assert sorted(filtered["filter"]) == ["duplicate_id", "max_chars", "min_user_turns"]
    kept = pd.read_parquet(out)
    assert list(kept["conversation_id"]) == [f"g{i}" for i in range(5)]


def test_cli_bad_input_exit_code_zero(tmp_path):
    from typer.testing import CliRunner

    from natfeed.cli import app

    out = tmp_path / "c.parquet"
    (tmp_path / "empty.yaml").write_text("{}\n")  # the built-in defaults
    res = CliRunner().invoke(app, ["ingest", "--input", str(_bad_input_file(tmp_path)), "--output", str(out),
                                   "--params", str(tmp_path / "empty.yaml")])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "c.ingest.json").read_text())
    assert report["rows_read"] == 15 and report["rows_rejected"] == 7


def test_reads_gz_parquet_folder_and_glob(tmp_path):
    rows = [conv(f"c{i}", "q", "a", "q2", "a2") for i in range(6)]
    shards = tmp_path / "shards"
    shards.mkdir()
    write_jsonl(shards / "a.jsonl", rows[:2])
    with gzip.open(shards / "b.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows[2:4])
    table = pa.Table.from_pylist([r | {"openai_moderation": None} for r in rows[4:]])
    pq.write_table(table, shards / "c.parquet")
    rep = run_ingest(shards, tmp_path / "o1.parquet", P)
    assert rep["rows_kept"] == 6
    rep = run_ingest(str(shards / "*.jsonl*"), tmp_path / "o2.parquet", P)
    assert rep["rows_kept"] == 4


def test_filters_languages_and_detection(tmp_path):
    rows = [conv("en", "What is the capital of France?", "Paris.", "And of Spain?", "Madrid.", language=None),
            conv("de", "Wie spät ist es in Berlin bitte?", "Es ist zehn Uhr.", "Danke sehr, und in Rom?", "Auch.",
                 language=None)]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    rep = run_ingest(src, tmp_path / "o.parquet", IngestParams(languages=["German"]))
    assert rep["rows_kept"] == 1 and rep["filtered_by_filter"] == {"languages": 1}
    kept = pd.read_parquet(tmp_path / "o.parquet")
    assert kept["language"].tolist() == ["German"]
    assert rep["languages_detected"] == 2


@settings(max_examples=60, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.sampled_from(
                        ["conversation_id", "conversation", "role", "content", "messages"]), c, max_size=4),
                    max_leaves=10))
def test_normalise_never_crashes_on_arbitrary_json(obj):
    try:
        c = normalise(obj)
    except Malformed as err:
        assert err.reason
    else:
        assert c.user_turns >= 1


def test_an_input_of_nothing_but_rejected_rows_exits_2_naming_the_reasons_and_writes_nothing(tmp_path, monkeypatch):
    """A CSV renamed .jsonl used to give kept 0, rejected 125, exit 0 and no warning (issue 20)."""
    from typer.testing import CliRunner

    from natfeed.cli import app

    monkeypatch.chdir(tmp_path)  # no params.yaml: the built-in defaults
    csv = tmp_path / "logs.jsonl"
    csv.write_text("conversation_id,text\n" + "".join(f"c{i},hello there\n" for i in range(125)))
    out = tmp_path / "out"
    out.mkdir()
    (out / "conv.parquet").write_bytes(b"earlier output")
    for cmd, target in (("ingest", "conv.parquet"), ("extract", "fb.parquet")):
        res = CliRunner().invoke(app, [cmd, "-i", str(csv), "-o", str(out / target)])
        assert res.exit_code == 2, res.output
        assert "none of the 126 rows is a conversation: invalid_json 126" in res.output
        assert "is this JSONL" in res.output and "Traceback" not in res.output
    assert sorted(p.name for p in out.iterdir()) == ["conv.parquet"]
    assert (out / "conv.parquet").read_bytes() == b"earlier output"
