"""The CLI's contract: a failed command leaves earlier outputs byte-identical; exit 0 ok, 1 the data failed a
check, 2 a usage or input error; errors are a few lines (the traceback only with -v)."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from natfeed.cli import app
from tests.conftest import conv, write_jsonl

REPO = Path(__file__).resolve().parents[2]


def _digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A folder with built-in-default params, raw logs and a first successful run of each command."""
    monkeypatch.chdir(tmp_path)
    Path("params.yaml").write_text("extract: {workers: 1, detect_language: false}\n"
                                   "ingest: {detect_language: false}\n"
                                   "validate: {balance: {min_rows: 1, min_category_share: 0.0, max_category_share: 1.0,"
                                   " min_pos_neg_ratio: 0.0, max_pos_neg_ratio: 1000}, expectations: {enabled: false}}\n"
                                   "build_kto: {ratio_min: 0.01, ratio_max: 100}\n")
    rows = [conv(f"c{i}", "write a poem", "a poem", "thanks, that is great!" if i % 2 else "that is wrong, redo it",
                 "ok") for i in range(12)]
    write_jsonl(tmp_path / "raw.jsonl", rows)
    out = tmp_path / "out"
    assert _invoke("ingest", "-i", "raw.jsonl", "-o", "out/conv.parquet").exit_code == 0
    assert _invoke("extract", "-i", "out/conv.parquet", "-o", "out/fb.parquet", "--paper-csv", "out/fb.csv").exit_code == 0
    assert _invoke("validate", "-i", "out/fb.parquet", "--report", "out/validate.json").exit_code == 0
    assert _invoke("build-kto", "-i", "out/fb.parquet", "-o", "out/kto").exit_code == 0
    return out


@pytest.mark.parametrize("args", [
    ["ingest", "-i", "nosuch.jsonl", "-o", "out/conv.parquet"],
    ["extract", "-i", "nosuch.jsonl", "-o", "out/fb.parquet", "--paper-csv", "out/fb.csv"],
    ["extract", "-i", "out/conv.parquet", "-o", "out/fb.parquet", "--backend", "nosuch"],
    ["validate", "-i", "out/conv.parquet", "--report", "out/validate.json"],
    ["validate", "-i", "nosuch.parquet", "--report", "out/validate.json"],
    ["build-kto", "-i", "out/conv.parquet", "-o", "out/kto"],
    ["build-kto", "-i", "raw.jsonl", "-o", "out/kto"],
    ["quality", "--feedback", "out/fb.parquet", "--gold", "nosuch.csv", "--report", "out/validate.json"],
    ["extract-merge", "out/fb.parquet", "-o", "out/fb.parquet"],
])
def test_a_failed_rerun_leaves_earlier_outputs_byte_identical(project, args):
    before = _digests(project)
    res = _invoke(*args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and len(res.output.strip().splitlines()) <= 3, res.output
    assert "Traceback" not in res.output
    assert _digests(project) == before


def test_an_input_error_mid_stream_leaves_the_old_output(project):
    before = _digests(project)
    bad = Path("bad.jsonl.gz")
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")  # a truncated gzip: readable header, unreadable body
    res = _invoke("ingest", "-i", str(bad), "-o", "out/conv.parquet")
    assert res.exit_code == 2 and "cannot read" in res.output
    assert _digests(project) == before and not list(project.glob(".*.tmp"))


def test_verbose_shows_the_traceback(project):
    res = _invoke("-v", "ingest", "-i", "nosuch.jsonl", "-o", "out/conv.parquet")
    assert res.exit_code != 0 and res.exception is not None  # re-raised for the traceback


def test_validate_exit_codes_and_messages(project):
    fb = pd.read_parquet("out/fb.parquet")
    bad = pd.concat([fb, fb.head(1)])
    bad.loc[bad.index[1], "category"] = "bogus"
    bad.to_parquet("bad.parquet")
    res = _invoke("validate", "-i", "bad.parquet")
    assert res.exit_code == 1, res.output
    assert "rows share the key (conversation_id, feedback_turn)" in res.output
    assert "category: 1 row(s) not one of the allowed values, e.g. bogus" in res.output
    res = _invoke("validate", "-i", "out/conv.parquet")
    assert res.exit_code == 2 and "is not a feedback table: missing column(s) feedback_turn, category" in res.output


def test_validate_on_empty_tables_names_what_is_wrong_and_writes_docs_beside_its_report(project):
    fb = pd.read_parquet("out/fb.parquet").iloc[:0]
    fb.to_parquet("empty_fb.parquet")
    pd.read_parquet("out/conv.parquet").iloc[:0].to_parquet("empty_conv.parquet")
    Path("defaults.yaml").write_text("validate: {expectations: {enabled: true}}\n")
    res = _invoke("validate", "-i", "empty_fb.parquet", "--conversations", "empty_conv.parquet",
                  "--report", "checks/validate.json", "--params", "defaults.yaml")
    assert res.exit_code == 1, res.output
    assert "feedback rows 0 < min" in res.output
    assert "feedback_turn_inside_conversation" not in res.output  # was '1 row(s) fail' on a table of none
    assert Path("checks/data_docs/index.html").exists() and not Path("reports").exists()


def test_folder_input_case_insensitive_skips_listed_and_duplicates_dropped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    write_jsonl(logs / "a.jsonl", [conv("x1", "q", "a", "no, wrong", "a2"), conv("x2", "q", "a", "thanks!", "b")])
    write_jsonl(logs / "g.JSONL", [conv("x2", "q", "a", "thanks!", "b"), conv("x3", "q", "a", "are you sure?", "c")])
    (logs / "notes.txt").write_text("not a log\n")
    (logs / "table.csv").write_text("a,b\n")
    res = _invoke("extract", "-i", "logs", "-o", "out/fb.parquet", "--params", str(_defaults(tmp_path)))
    assert res.exit_code == 0, res.output
    import json

    report = json.loads(Path("out/fb.report.json").read_text())
    assert report["rows_read"] == 4 and report["rows_duplicate"] == 1 and report["conversations"] == 3
    assert report["rows_read"] == report["rows_kept"] + report["rows_rejected"] + report["rows_filtered"]
    assert sorted(Path(s["file"]).name for s in report["skipped_files"]) == ["notes.txt", "table.csv"]
    assert "skipped" in res.output
    assert sorted(p.name for p in Path("out").iterdir() if "report" in p.name) == ["fb.report.json",
                                                                                  "fb.report.timings.json"]
    fb = pd.read_parquet("out/fb.parquet")
    assert not fb.duplicated(["conversation_id", "feedback_turn"]).any()


def _defaults(tmp_path: Path) -> Path:
    path = tmp_path / "defaults.yaml"
    path.write_text("extract: {workers: 1, detect_language: false}\n")
    return path


def test_empty_input_warns_and_writes_schema_valid_outputs(tmp_path, monkeypatch):
    from natfeed.core.tables import FEEDBACK_SCHEMA

    monkeypatch.chdir(tmp_path)
    Path("empty.jsonl").write_text("")
    res = _invoke("extract", "-i", "empty.jsonl", "-o", "out/fb.parquet", "--params", str(_defaults(tmp_path)))
    assert res.exit_code == 0 and "holds no rows" in res.output
    import pyarrow.parquet as pq

    table = pq.read_table("out/fb.parquet")
    assert table.num_rows == 0 and table.schema.equals(FEEDBACK_SCHEMA)
    res = _invoke("ingest", "-i", "empty.jsonl", "-o", "out/conv.parquet", "--params", str(_defaults(tmp_path)))
    assert res.exit_code == 0 and "holds no rows" in res.output


def test_extract_outside_a_project_keeps_its_files_under_the_output_folder(tmp_path, monkeypatch):
    from tests.support.fake_openai import FakeOpenAI

    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "raw.jsonl", [conv("c1", "q", "a", "thanks!", "b")])
    with FakeOpenAI() as srv:
        res = _invoke("extract", "-i", "raw.jsonl", "-o", "out/x.parquet", "--backend", "openai", "--model", "m",
                      "--base-url", srv.url)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "raw.jsonl"]
    assert (tmp_path / "out" / ".x.shards").is_dir() and (tmp_path / "out" / "x.parse_failures.jsonl").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openai_backend_with_nothing_listening_fails_fast_and_briefly(tmp_path):
    write_jsonl(tmp_path / "raw.jsonl", [conv(f"c{i}", "q", "a", "thanks!", "b") for i in range(30)])
    url = f"http://127.0.0.1:{_free_port()}/v1"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "natfeed.cli", "extract", "-i", "raw.jsonl", "-o", "out/f.parquet",
                          "--backend", "openai", "--model", "m", "--base-url", url], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    seconds = time.perf_counter() - start
    lines = (res.stdout + res.stderr).strip().splitlines()
    assert res.returncode == 2 and seconds < 20, (seconds, lines)
    assert len(lines) <= 10, lines
    assert any(f"cannot reach {url}: connection refused — is the server running?" in line for line in lines)
    assert not (tmp_path / "out" / "f.parquet").exists()


@pytest.mark.parametrize("args", [["--help"], ["summary"]])
def test_a_closed_pipe_is_not_an_error(args):
    """`natfeed --help | head`: the reader leaves early; natfeed exits 0 without a word on stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "natfeed.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[2])
    proc.stdout.close()  # before natfeed has written anything: its first write gets EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0, err
    assert "error" not in err.lower() and "Traceback" not in err, err
