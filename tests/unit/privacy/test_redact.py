"""Redaction (Presidio) as logs are read: seeded personal data and secrets never reach an output or a model
server; counts, not contents, in the reports; a clean conversation comes out byte-identical."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from natfeed.cli import app
from natfeed.core.conversation import Conversation
from natfeed.data.ingest import run_ingest
from natfeed.extract.run import extract_file
from natfeed.params import ExtractParams, IngestParams
from natfeed.params.data import RedactParams
from natfeed.privacy.redact import RedactionFailed, Redactor, windows
from tests.support.fake_openai import FakeOpenAI

SEEDS = {
    "EMAIL_ADDRESS": "jane.roe@example.org",
    "PHONE_NUMBER": "+1 415-555-0132",
    "CREDIT_CARD": "4111 1111 1111 1111",
    "IBAN_CODE": "DE89 3704 0044 0532 0130 00",
    "IP_ADDRESS": "81.2.69.160",
    "US_SSN": "536-22-8726",
    "URL_CREDENTIALS": "alice:s3cretPass",
    "OPENAI_KEY": "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx0123456789",
    "AWS_ACCESS_KEY": "AKIAIOSFODNN7EXAMPLE",
    "GITHUB_TOKEN": "ghp_abcdefghijklmnopqrstuvwxyz0123456789AB",
    "SLACK_TOKEN": "xoxb-123456789012-abcdefghijkl",
    "BEARER_TOKEN": "eyJhbGciOiJIUzI1NiJ9.abcdefghijkl.mnopqrstu",
    "PRIVATE_KEY": "MIIEpAIBAAKCAQEA1234567890abcdefSECRETKEYBODY",
}
CONTEXT = {"URL_CREDENTIALS": "git clone https://{}@github.com/x/y.git", "BEARER_TOKEN": "Authorization: Bearer {}",
           "PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
           "US_SSN": "my ssn is {}"}
CLEAN = {"conversation_id": "clean", "model": "m", "conversation": [
    {"role": "user", "content": "Write a haiku about autumn, version 3.11, 2024-05-01, 10 lines."},
    {"role": "assistant", "content": "Leaves fall, 127.0.0.1 hums; 0.725 0.763"},
    {"role": "user", "content": "thanks, that is lovely"}]}


def seeded(entity: str) -> str:
    return CONTEXT.get(entity, "{}").format(SEEDS[entity])


def forms(value: str) -> set[str]:
    """The value as written, and without its spaces or dashes."""
    return {value, value.replace(" ", ""), value.replace("-", ""), re.sub(r"[ -]", "", value)}


def seeded_rows() -> list[dict]:
    """13 conversations; every seeded value in user and assistant turns, in a feedback turn ("that is wrong")
    and in the reply before it."""
    names, rows = list(SEEDS), []
    for i in range(len(names)):
        pick = [names[(i + k) % len(names)] for k in range(4)]
        rows.append({"conversation_id": f"seed-{i}", "model": "m", "conversation": [
            {"role": "user", "content": f"hello, reach me via {seeded(pick[0])} please"},
            {"role": "assistant", "content": f"noted: {seeded(pick[1])}"},
            {"role": "user", "content": f"that is wrong, use {seeded(pick[2])} and again {seeded(pick[0])}"},
            {"role": "assistant", "content": f"sorry: {seeded(pick[3])}"},
            {"role": "user", "content": "thanks a lot"}]})
    return rows


def write_jsonl(path: Path, rows: list[dict], extra: bytes = b"") -> Path:
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in rows) + extra)
    return path


def leaks(folder: Path, skip: Path) -> list[str]:
    found = []
    for f in folder.rglob("*"):
        if not f.is_file() or f == skip:
            continue
        if f.suffix == ".parquet":
            text = json.dumps(pq.read_table(f).to_pylist(), default=str, ensure_ascii=False)
        else:
            text = f.read_bytes().decode("utf-8", "replace")
        text += text.replace("\\n", "\n")
        found += [f"{f.name}: {v}" for value in SEEDS.values() for v in forms(value) if v in text]
    return found


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactParams())


def test_every_seeded_type_is_replaced_by_a_consistent_placeholder(redactor):
    texts = [seeded(e) for e in SEEDS] + ["again: JANE.ROE@example.org, (415) 555 0132, 4111-1111-1111-1111"]
    out, state = redactor.texts(texts)
    assert state.counts == {**{e: 1 for e in SEEDS}, "EMAIL_ADDRESS": 2, "PHONE_NUMBER": 2, "CREDIT_CARD": 2}
    joined = "\n".join(out)
    assert not [v for value in SEEDS.values() for v in forms(value) if v in joined], joined
    assert out[-1] == "again: <EMAIL_1>, <PHONE_1>, <CARD_1>"  # the same values: the same placeholders
    assert out[6] == "git clone https://<CREDENTIALS_1>@github.com/x/y.git"
    second, _ = redactor.texts(["write to bob@example.com or jane.roe@example.org"])
    assert second == ["write to <EMAIL_1> or <EMAIL_2>"]  # numbered per conversation, in reading order


def test_a_text_without_personal_data_is_not_touched_and_costs_no_analysis(redactor):
    conv = Conversation("c", CLEAN["conversation"])
    same, state = redactor.conversation(conv)
    assert same is conv and not state.counts
    assert windows("Write a haiku about autumn.") == []


def test_a_text_the_analyzer_cannot_process_is_rejected_never_passed_on(tmp_path):
    small = Redactor(RedactParams(max_chars=500))
    with pytest.raises(RedactionFailed):
        small.texts([" ".join(f"+1 415-555-{1000 + i}" for i in range(40))])
    rows = [seeded_rows()[0], {"conversation_id": "long", "model": "m", "conversation": [
        {"role": "user", "content": " ".join(f"call {SEEDS['PHONE_NUMBER']} x{i}" for i in range(200))},
        {"role": "assistant", "content": "ok"}, {"role": "user", "content": "thanks"}]}]
    raw = write_jsonl(tmp_path / "in.jsonl", rows)
    report = run_ingest(raw, tmp_path / "out" / "c.parquet", IngestParams(redact={"max_chars": 2000}))
    assert report["rejected_by_reason"] == {"redaction_failed": 1} and report["rows_kept"] == 1
    rejected = pq.read_table(tmp_path / "out" / "c.rejected.parquet").to_pylist()
    assert rejected[0]["raw"].startswith("<") and "not kept" in rejected[0]["raw"]
    assert leaks(tmp_path / "out", raw) == []


def test_ingest_extract_build_kto_and_review_export_leave_no_seeded_value(tmp_path):
    rows = seeded_rows() + [CLEAN]
    bad = f'{{"conversation_id": "broken", "conversation": [{{"role": "user", "content": "{SEEDS["OPENAI_KEY"]}'
    (tmp_path / "in").mkdir()
    raw = write_jsonl(tmp_path / "in" / "logs.jsonl", rows, bad.encode() + b"\n")
    out = tmp_path / "out"
    runner = CliRunner()
    for args in (["ingest", "--input", str(raw), "--output", str(out / "conv.parquet")],
                 ["extract", "--input", str(out / "conv.parquet"), "--output", str(out / "a" / "f.parquet")],
                 ["extract", "--input", str(raw), "--output", str(out / "b" / "f.parquet")],
                 ["build-kto", "--input", str(out / "a" / "f.parquet"), "--output-dir", str(out / "kto")],
                 ["review", "export", "--input", str(out / "b" / "f.parquet"), "--output", str(out / "review" / "t.json")]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, (args, res.output)
    ingest = json.loads((out / "conv.ingest.json").read_text())
    assert ingest["redaction"] == "presidio" and ingest["rows_rejected"] == 1
    per_type = {e: 5 for e in SEEDS}  # each value: twice in one conversation, once in each of three others
    raw_key = {"OPENAI_KEY": 1}  # ... and the broken row's raw text
    assert ingest["redacted"] == {e: n + raw_key.get(e, 0) for e, n in per_type.items()}
    from_raw = json.loads((out / "b" / "f.report.json").read_text())
    assert from_raw["redaction"] == "presidio" and from_raw["redacted"] == ingest["redacted"]
    assert json.loads((out / "a" / "f.report.json").read_text())["redaction"] == "by ingest"
    assert pq.read_table(out / "a" / "f.parquet").num_rows > 0 and pq.read_table(out / "kto" / "kto_train.parquet").num_rows
    assert leaks(out, raw) == []
    kept = {r["conversation_id"]: r for r in pq.read_table(out / "conv.parquet").to_pylist()}
    assert kept["clean"]["conversation"] == CLEAN["conversation"] and kept["clean"]["redacted"] is False
    assert "<EMAIL_1>" in json.dumps(kept["seed-0"]["conversation"])


@pytest.mark.parametrize("workers", [1, 2])
def test_requests_to_a_model_server_hold_no_seeded_value(tmp_path, workers):
    raw = write_jsonl(tmp_path / "logs.jsonl", seeded_rows())
    params = ExtractParams(backend="openai", llm={"model": "fake"}, workers=workers, detect_language=False,
                           shard_dir=str(tmp_path / "shards"), openai={"api_key_env": None})
    with FakeOpenAI() as srv:
        p = params.model_copy(update={"openai": params.openai.model_copy(update={"base_url": srv.url})})
        report = extract_file(raw, tmp_path / "f.parquet", p)
        sent = json.dumps(srv.requests)
    assert report["requests"] == report["judged_turns"] > 0 and "<EMAIL_1>" in sent
    assert not [v for value in SEEDS.values() for v in forms(value) if v in sent]


def test_the_heuristic_on_raw_logs_redacts_in_its_worker_processes(tmp_path):
    raw = write_jsonl(tmp_path / "logs.jsonl", seeded_rows())
    for workers in (1, 2):
        out = tmp_path / f"w{workers}" / "f.parquet"
        report = extract_file(raw, out, ExtractParams(workers=workers, detect_language=False))
        assert report["redacted"] == {e: 5 for e in SEEDS} and leaks(out.parent, raw) == []


def test_redaction_can_be_turned_off_and_unknown_entities_fail(tmp_path):
    raw = write_jsonl(tmp_path / "in.jsonl", seeded_rows()[:1])
    report = run_ingest(raw, tmp_path / "c.parquet", IngestParams(redact={"enabled": False}))
    assert report["redaction"] == "off" and report["redacted"] == {}
    assert SEEDS["EMAIL_ADDRESS"] in json.dumps(pq.read_table(tmp_path / "c.parquet").to_pylist())
    with pytest.raises(ValueError, match="EMAIL_ADDRESS"):
        RedactParams(entities=["EMAIL_ADRESS"])
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"ingest": {"redact": {"enabled": False}}}))
    res = CliRunner().invoke(app, ["extract", "--input", str(raw), "--output", str(tmp_path / "x" / "f.parquet"),
                                   "--params", str(params)])
    assert res.exit_code == 0 and json.loads((tmp_path / "x" / "f.report.json").read_text())["redaction"] == "off"


def test_partitions_of_raw_logs_are_redacted_before_they_are_written(tmp_path):
    from natfeed.extract.run import extract_partition

    raw = write_jsonl(tmp_path / "logs.jsonl", seeded_rows())
    for index in range(2):
        out = tmp_path / f"part{index}" / "f.parquet"
        report = extract_partition(raw, out, ExtractParams(workers=1, detect_language=False,
                                                           shard_dir=str(tmp_path / "shards")), index, 2)
        assert report["redaction"] == "presidio"
        assert report["redacted"] == {e: 5 for e in SEEDS}  # every job reads (and redacts) the whole input
    assert leaks(tmp_path, raw) == []  # the partition files under the shard dir included
