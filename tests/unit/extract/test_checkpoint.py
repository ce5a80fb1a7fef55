"""Resumable LLM extraction: shards + manifest; a killed run continues without duplicates or gaps."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from natfeed.core.conversation import Conversation
from natfeed.core.io import read_report
from natfeed.core.tables import CONVERSATION_SCHEMA
from natfeed.extract.llm.base import STAT_KEYS, Answer, LLMExtractor
from natfeed.extract.run import extract_file
from natfeed.params import ExtractParams
from tests.support.fake_openai import FakeOpenAI, label_for

REPO = Path(__file__).resolve().parents[3]
USER_TEXTS = ["thanks a lot", "that is wrong", "are you sure?", "next one please", "wrong again"]


def write_conversations(path: Path, n: int) -> Path:
    rows = []
    for i in range(n):
        msgs = [{"role": "user", "content": f"task {i}"}]
        for k in range(1 + i % 3):
            msgs += [{"role": "assistant", "content": f"reply {i}.{k}"},
                     {"role": "user", "content": USER_TEXTS[(i + k) % len(USER_TEXTS)]}]
        rows.append(Conversation(f"conv-{i:03d}", msgs, model="m", language="English").to_row())
    pq.write_table(pa.Table.from_pylist(rows, schema=CONVERSATION_SCHEMA), path)
    return path


class Boom(RuntimeError):
    pass


class FakeLLM(LLMExtractor):
    """Deterministic in-process backend that dies after ``fail_after`` generate calls."""

    backend = "fake"

    def __init__(self, params: ExtractParams, fail_after: int | None = None) -> None:
        super().__init__(params)
        self.calls = 0
        self.fail_after = fail_after

    def generate(self, requests):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise Boom("killed")
        out = []
        for r in requests:
            judged = r.messages[-1]["content"].split("<judged_turn>\n")[1].split("\n</judged_turn>")[0]
            label = label_for(judged)
            out.append(Answer("garbage" if "next one" in judged else label, -0.1, 100, 1))
        return out


def _params(tmp_path: Path, shard_dir: str = "shards", **extra) -> ExtractParams:
    return ExtractParams(backend="openai", batch_size=4, llm={"model": "fake"},
                         shard_dir=str(tmp_path / shard_dir), detect_language=False, **extra)


def _rows(path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path)
    return df.sort_values(["conversation_id", "feedback_turn"]).reset_index(drop=True)


def test_resume_after_failure_equals_uninterrupted_run(tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 22)  # 6 shards of 4 (the last has 2)
    p = _params(tmp_path)
    with pytest.raises(Boom):
        extract_file(conv, tmp_path / "a" / "feedback.parquet", p, FakeLLM(p, fail_after=3))
    manifest = json.loads(next((tmp_path / "shards").glob("*/manifest.json")).read_text())
    assert sorted(manifest["shards"]) == ["0", "1", "2"]
    second = FakeLLM(p)
    report = extract_file(conv, tmp_path / "a" / "feedback.parquet", p, second)
    assert second.calls == 3 and report["shards_resumed"] == 3 and report["shards"] == 6
    assert report["conversations_this_run"] == 10 and report["conversations"] == 22

    q = _params(tmp_path, "shards-clean")
    clean = extract_file(conv, tmp_path / "b" / "feedback.parquet", q, FakeLLM(q))
    resumed, full = _rows(tmp_path / "a" / "feedback.parquet"), _rows(tmp_path / "b" / "feedback.parquet")
    assert not resumed.duplicated(["conversation_id", "feedback_turn"]).any()
    pd.testing.assert_frame_equal(resumed, full)
    assert len(full) == clean["rows"] > 0
    for key in ("conversations", "user_turns", "rows", "rows_per_category", *STAT_KEYS):
        assert report[key] == clean[key], key
    assert report["parse_failures"] == clean["parse_failures"] > 0  # the "next one please" turns
    failures = [json.loads(x) for x in Path(report["parse_failures_file"]).read_text().splitlines()]
    assert len(failures) == report["parse_failures"] and {f["raw"] for f in failures} == {"garbage"}
    assert {f["reason"] for f in failures} == {"no_label"}


def test_finished_run_reruns_without_work_and_changed_params_start_afresh(tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 9)
    p = _params(tmp_path)
    extract_file(conv, tmp_path / "feedback.parquet", p, FakeLLM(p))
    again = FakeLLM(p)
    report = extract_file(conv, tmp_path / "feedback.parquet", p, again)
    assert again.calls == 0 and report["shards_resumed"] == 3 and report["conversations_per_second"] > 0
    other = p.model_copy(update={"llm": p.llm.model_copy(update={"context_turns": 3})})
    fresh = FakeLLM(other)
    extract_file(conv, tmp_path / "feedback.parquet", other, fresh)
    assert fresh.calls == 3 and len(list((tmp_path / "shards").glob("*/manifest.json"))) == 2
    same = p.model_copy(update={"openai": p.openai.model_copy(update={"concurrency": 2})})  # operational only
    assert extract_file(conv, tmp_path / "feedback.parquet", same, FakeLLM(same))["shards_resumed"] == 3


def test_changed_input_starts_new_shards_and_the_cache_answers_the_old_requests(tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 8)
    p = _params(tmp_path)
    first = extract_file(conv, tmp_path / "feedback.parquet", p, FakeLLM(p))
    write_conversations(conv, 9)
    ext = FakeLLM(p)
    report = extract_file(conv, tmp_path / "feedback.parquet", p, ext)
    assert report["shards_resumed"] == 0 and report["conversations"] == 9
    assert ext.calls == 1 and report["cache_hits"] == first["requests"] and report["requests"] == 3  # the 9th's turns
    off = p.model_copy(update={"cache": False, "shard_dir": str(tmp_path / "other")})
    uncached = FakeLLM(off)
    again = extract_file(conv, tmp_path / "scratch.parquet", off, uncached)
    assert uncached.calls == 3 and again["cache_hits"] == 0 and again["requests"] == first["requests"] + 3
    pd.testing.assert_frame_equal(_rows(tmp_path / "feedback.parquet"), _rows(tmp_path / "scratch.parquet"))


def _cli(conv: Path, out: Path, shard_dir: Path, url: str, params: Path) -> list[str]:
    return [sys.executable, "-m", "natfeed.cli", "extract", "--input", str(conv), "--output", str(out),
            "--backend", "openai", "--model", "fake-model", "--mode", "turn", "--base-url", url,
            "--shard-dir", str(shard_dir), "--params", str(params)]


def _done(shard_dir: Path) -> int:
    manifests = list(shard_dir.glob("*/manifest.json"))
    if not manifests:
        return 0
    try:
        return len(json.loads(manifests[0].read_text())["shards"])
    except (json.JSONDecodeError, OSError):  # never happens with the atomic replace; be safe in the test
        return -1


@pytest.mark.slow
def test_sigkill_mid_run_then_rerun_continues(tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 40)  # 10 shards of 4 conversations
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"extract": {"batch_size": 4, "detect_language": False,
                                                  "openai": {"concurrency": 2}}}))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with FakeOpenAI(delay=0.03) as srv:
        out, shards = tmp_path / "run" / "feedback.parquet", tmp_path / "shards"
        proc = subprocess.Popen(_cli(conv, out, shards, srv.url, params), env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while _done(shards) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = _done(shards)
        assert proc.returncode == -signal.SIGKILL and 3 <= killed_at < 10, killed_at
        with sqlite3.connect(shards / "cache" / "judgements.sqlite") as conn:  # what the cache had at the kill
            cached = int(conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])
        before = len(srv.requests)
        rerun = subprocess.run(_cli(conv, out, shards, srv.url, params), env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        resumed_requests = len(srv.requests) - before
        clean_out, clean_shards = tmp_path / "clean" / "feedback.parquet", tmp_path / "shards-clean"
        clean = subprocess.run(_cli(conv, clean_out, clean_shards, srv.url, params), env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=300)
        assert clean.returncode == 0, clean.stderr[-2000:]
        total_requests = len(srv.requests) - before - resumed_requests
    report = read_report(tmp_path / "run" / "feedback.report.json")
    assert report["shards_resumed"] == killed_at and report["shards"] == 10
    assert resumed_requests < total_requests  # the finished shards were not asked again
    assert resumed_requests == total_requests - cached  # nor an answer the cache held (every other one was)
    resumed, full = _rows(out), _rows(clean_out)
    assert not resumed.duplicated(["conversation_id", "feedback_turn"]).any()
    pd.testing.assert_frame_equal(resumed, full)
    assert report["rows"] == len(full) and report["requests"] == total_requests == report["judged_turns"]


@pytest.mark.parametrize(("change", "same"), [
    ({"vllm": {"replicas": 4, "tensor_parallel_size": 2, "max_num_seqs": 512, "gpu_memory_utilization": 0.5,
               "executor": "ray", "devices": ["0,1", "2,3"]}}, True),
    ({"backend": "openai", "openai": {"concurrency": 64, "base_url": "http://other:9000/v1", "timeout_s": 5.0}},
     True),
    ({"backend": "openai", "openai": {"structured": "none"}}, False),
    ({"workers": 3, "shard_dir": "elsewhere"}, True),
    ({"vllm": {"dtype": "bfloat16"}}, False),
    ({"vllm": {"quantization": "fp8"}}, False),
    ({"llm": {"temperature": 0.7}}, False),
    ({"llm": {"model": "other-model"}}, False),
    ({"batch_size": 7}, False),  # shard boundaries
    ({"llm": {"shard_requests": 5, "shard_seconds": 10.0, "progress_seconds": 1.0}}, True),  # the manifest has them
    ({"mode": "paper"}, False),
    ({"cache": False, "cache_dir": "x", "cost": {"gpu_hour": 2.0}, "llm": {"max_requests": 5}}, True),
])
def test_run_key_ignores_only_operational_params(tmp_path, change, same):
    from natfeed.extract.checkpoint import run_key

    data = write_conversations(tmp_path / "c.parquet", 3)
    base = {"backend": change.get("backend", "vllm"), "llm": {"model": "m"}}
    merged = {**base, **{k: ({**base.get(k, {}), **v} if isinstance(v, dict) else v) for k, v in change.items()}}
    key_a, _ = run_key([data], ExtractParams(**base), "vllm-m")
    key_b, _ = run_key([data], ExtractParams(**merged), "vllm-m")
    assert (key_a == key_b) is same


@pytest.mark.slow
def test_kill_after_the_first_small_shard_then_rerun_resumes_from_it(tmp_path):
    """The default batch_size (500) would make this input one shard; shard_requests cuts it small."""
    conv = write_conversations(tmp_path / "conv.parquet", 30)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"extract": {"detect_language": False, "openai": {"concurrency": 1},
                                                  "llm": {"shard_requests": 6, "progress_seconds": 0.2}}}))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    with FakeOpenAI(delay=0.05) as srv:
        out, shards = tmp_path / "run" / "feedback.parquet", tmp_path / "shards"
        proc = subprocess.Popen(_cli(conv, out, shards, srv.url, params), env=env, cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while _done(shards) < 1 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        _, log = proc.communicate()
        killed_at = _done(shards)
        assert proc.returncode == -signal.SIGKILL and killed_at >= 1, log
        manifest = json.loads(next(shards.glob("*/manifest.json")).read_text())
        assert all(info["requests"] <= 6 + 2 for info in manifest["shards"].values())  # small shards
        assert "requests (" in log and "req/s" in log  # progress lines off a terminal
        before = len(srv.requests)
        rerun = subprocess.run(_cli(conv, out, shards, srv.url, params), env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        asked_again = len(srv.requests) - before
    report = read_report(tmp_path / "run" / "feedback.report.json")
    done_requests = sum(manifest["shards"][str(i)]["requests"] for i in range(killed_at))
    assert report["shards_resumed"] == killed_at and asked_again == report["requests"] - done_requests
    assert report["requests"] == report["judged_turns"] and report["shards"] > killed_at
    assert not _rows(out).duplicated(["conversation_id", "feedback_turn"]).any()
    assert report["seconds_per_request"] > 0


@pytest.mark.slow
def test_progress_bar_on_a_terminal(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    conv = write_conversations(tmp_path / "conv.parquet", 12)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"extract": {"detect_language": False, "llm": {"shard_requests": 4}}}))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "COLUMNS": "150"}
    with FakeOpenAI() as srv:
        main, child = pty.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 150, 0, 0))  # a terminal has a size
        proc = subprocess.Popen(_cli(conv, tmp_path / "f.parquet", tmp_path / "s", srv.url, params), env=env,
                                cwd=tmp_path, stdin=child, stdout=child, stderr=child, close_fds=True)
        os.close(child)
        chunks = []
        while True:
            try:
                data = os.read(main, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=120)
        os.close(main)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, screen[-2000:]
    assert "extract (openai" in screen and " req" in screen and "parse_failures=" in screen, screen[-2000:]
    assert "%|" in screen  # a tqdm bar with a total: done/total, rate, ETA
