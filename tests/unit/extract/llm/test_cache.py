"""The judgement cache: only new requests are sent, hits give the same rows, damage is a miss, concurrent
writers agree; ``--estimate`` sends nothing and ``--max-requests`` stops with exit 3 and a rerun sends the rest."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from natfeed.cli import app
from natfeed.extract.llm import base as llm_base
from natfeed.extract.llm.cache import JudgementCache, model_fingerprint, parse_duration, request_key
from natfeed.extract.run import extract_file
from natfeed.params import ExtractParams
from tests.support.fake_openai import FakeOpenAI
from tests.unit.extract.test_checkpoint import REPO, _cli, _rows, write_conversations

runner = CliRunner()


def _params(tmp_path: Path, url: str, **extra: object) -> ExtractParams:
    data = {"backend": "openai", "batch_size": 4, "llm": {"model": "fake-model"}, "detect_language": False,
            "shard_dir": str(tmp_path / "shards"),
            "openai": {"base_url": url, "api_key_env": None, "backoff_s": 0.01, "timeout_s": 5.0}}
    for key, value in extra.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return ExtractParams.model_validate(data)


def _entries(cache_dir: Path) -> int:
    with sqlite3.connect(cache_dir / "judgements.sqlite") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0])


def test_appended_conversations_send_only_their_requests_and_rows_equal_a_run_from_scratch(tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 30)
    with FakeOpenAI() as srv:
        p = _params(tmp_path, srv.url)
        first = extract_file(conv, tmp_path / "a.parquet", p)
        sent_first = len(srv.requests)
        write_conversations(conv, 36)  # the same 30 (same ids, same text) and 6 new
        second = extract_file(conv, tmp_path / "a.parquet", p)
        sent_second = len(srv.requests) - sent_first
        scratch = extract_file(conv, tmp_path / "b.parquet", p.model_copy(update={"cache": False,
                                                                                 "shard_dir": str(tmp_path / "s2")}))
    new_turns = second["judged_turns"] - first["judged_turns"]
    assert sent_first == first["requests"] == first["judged_turns"] and first["cache_hits"] == 0
    assert sent_second == new_turns == second["requests"] > 0 and second["cache_hits"] == first["judged_turns"]
    assert scratch["requests"] == second["judged_turns"] and scratch["cache_hits"] == 0
    pd.testing.assert_frame_equal(_rows(tmp_path / "a.parquet"), _rows(tmp_path / "b.parquet"))
    assert second["cache_dir"] == str(tmp_path / "shards" / "cache") and second["estimated_cost"] is None


def test_a_param_that_changes_no_prompt_hits_and_the_prompt_version_or_model_misses(tmp_path, monkeypatch):
    conv = write_conversations(tmp_path / "conv.parquet", 12)
    with FakeOpenAI() as srv:
        p = _params(tmp_path, srv.url)
        turns = extract_file(conv, tmp_path / "a.parquet", p)["judged_turns"]
        other_batch = extract_file(conv, tmp_path / "b.parquet", p.model_copy(update={"batch_size": 5}))
        assert other_batch["cache_hits"] == turns and other_batch["requests"] == 0
        other_model = extract_file(conv, tmp_path / "c.parquet", _params(tmp_path, srv.url, llm={"model": "other"}))
        assert other_model["requests"] == turns and other_model["cache_hits"] == 0
        monkeypatch.setattr(llm_base, "PROMPT_VERSION", "test-next")
        other_prompt = extract_file(conv, tmp_path / "d.parquet", p.model_copy(update={"batch_size": 6}))
        assert other_prompt["requests"] == turns and other_prompt["cache_hits"] == 0
        assert len(srv.requests) == 3 * turns


def test_the_key_covers_decoding_and_the_local_models_bytes(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights-1")
    (model / "tokenizer.json").write_text("{}")
    cache = JudgementCache(tmp_path / "cache")
    before = model_fingerprint(str(model), cache)
    assert model_fingerprint(str(model), cache) == before and before["sha256"]
    (model / "model.safetensors").write_bytes(b"weights-2")
    assert model_fingerprint(str(model), cache) != before  # same name, other weights: other keys
    assert model_fingerprint("served-name", cache) == {"name": "served-name"}
    assert request_key({"a": 1, "b": [1, 2]}) == request_key({"b": [1, 2], "a": 1}) != request_key({"a": 2})


def test_a_damaged_entry_is_a_miss_with_one_warning_and_an_unreadable_cache_is_off(tmp_path, caplog):
    conv = write_conversations(tmp_path / "conv.parquet", 8)
    with FakeOpenAI() as srv:
        p = _params(tmp_path, srv.url)
        extract_file(conv, tmp_path / "a.parquet", p)
        sent = len(srv.requests)
        with sqlite3.connect(tmp_path / "shards" / "cache" / "judgements.sqlite") as conn:
            conn.execute("UPDATE answers SET value = replace(value, 'none', 'positive_feedback')")  # digest fails
            conn.execute("UPDATE answers SET value = '{not json' WHERE rowid = 1")
        with caplog.at_level(logging.WARNING):
            again = extract_file(conv, tmp_path / "b.parquet", p.model_copy(update={"batch_size": 3}))
        assert caplog.text.count("is damaged") == 1
        damaged = len(srv.requests) - sent
        assert damaged > 0 and again["requests"] == damaged and again["cache_hits"] == again["judged_turns"] - damaged
        pd.testing.assert_frame_equal(_rows(tmp_path / "a.parquet"), _rows(tmp_path / "b.parquet"))

        broken = tmp_path / "broken"
        broken.mkdir()
        (broken / "judgements.sqlite").write_bytes(b"this is not a database" * 100)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            off = extract_file(conv, tmp_path / "c.parquet", p.model_copy(update={"cache_dir": str(broken),
                                                                                 "batch_size": 5}))
        assert "cannot be used" in caplog.text and off["requests"] == off["judged_turns"]
        pd.testing.assert_frame_equal(_rows(tmp_path / "a.parquet"), _rows(tmp_path / "c.parquet"))


def test_two_processes_on_one_cache_both_finish_and_it_reads_back_consistent(tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 40)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"extract": {"batch_size": 4, "detect_language": False,
                                                  "openai": {"concurrency": 2, "api_key_env": None}}}))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    cache = tmp_path / "shared-cache"
    with FakeOpenAI(delay=0.005) as srv:
        procs = [subprocess.Popen([*_cli(conv, tmp_path / f"out{i}" / "f.parquet", tmp_path / f"shards{i}", srv.url,
                                         params), "--cache-dir", str(cache)],
                                  env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for i in range(2)]
        errors = [p.communicate(timeout=300)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        sent = len(srv.requests)
        third = extract_file(conv, tmp_path / "third.parquet", _params(tmp_path, srv.url, cache_dir=str(cache),
                                                                       shard_dir=str(tmp_path / "s3")))
        assert len(srv.requests) == sent  # everything is in the cache
    turns = third["judged_turns"]
    assert third["cache_hits"] == turns and _entries(cache) == turns and turns <= sent <= 2 * turns
    for i in range(2):
        pd.testing.assert_frame_equal(_rows(tmp_path / f"out{i}" / "f.parquet"), _rows(tmp_path / "third.parquet"))


def _cli_params(tmp_path: Path) -> Path:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"extract": {"batch_size": 4, "detect_language": False,
                                                  "openai": {"api_key_env": None},
                                                  "cost": {"input_per_million": 2.0, "output_per_million": 6.0}}}))
    return params


def test_estimate_sends_nothing_and_counts_requests_and_cached_ones(tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 12)
    params = _cli_params(tmp_path)
    with FakeOpenAI() as srv:
        args = ["extract", "--input", str(conv), "--output", str(tmp_path / "f.parquet"), "--backend", "openai",
                "--model", "fake-model", "--base-url", srv.url, "--params", str(params)]
        res = runner.invoke(app, [*args, "--estimate", "--json"])
        assert res.exit_code == 0, res.output
        est = json.loads(res.output)
        assert srv.requests == [] and not (tmp_path / "f.parquet").exists()
        assert est["requests"] == est["judged_turns"] == est["to_send"] > 0 and est["cached"] == 0
        assert est["prompt_tokens"] > 0 and est["cost"] > 0 and "estimate" in est["prompt_tokens_counted_by"]
        assert runner.invoke(app, args).exit_code == 0
        sent = len(srv.requests)
        res = runner.invoke(app, [*args, "--estimate"])
        assert res.exit_code == 0 and len(srv.requests) == sent
        assert f"already cached    {est['requests']}" in res.output and "to send           0" in res.output


def test_max_requests_stops_with_exit_3_and_the_rerun_sends_the_rest(tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 20)
    params = _cli_params(tmp_path)
    out = tmp_path / "f.parquet"
    with FakeOpenAI() as srv:
        args = ["extract", "--input", str(conv), "--output", str(out), "--backend", "openai", "--model",
                "fake-model", "--base-url", srv.url, "--params", str(params)]
        capped = runner.invoke(app, [*args, "--max-requests", "10"])
        assert capped.exit_code == 3, capped.output
        assert len(srv.requests) == 10 and not out.exists()
        assert "stopped by the budget: 10 new request(s) sent" in capped.output and "rerun" in capped.output
        total = json.loads(runner.invoke(app, [*args, "--estimate", "--json"]).output)["requests"]
        assert f"{total - 10} of {total} request(s) are still unanswered" in capped.output
        done = runner.invoke(app, args)
        assert done.exit_code == 0, done.output
        assert len(srv.requests) == total and out.exists()  # the rest, and nothing twice
    report = json.loads((tmp_path / "f.report.json").read_text())
    assert report["requests"] + report["cache_hits"] == report["judged_turns"] == total
    assert report["estimated_cost"] == pytest.approx(
        report["prompt_tokens"] / 1e6 * 2.0 + report["generated_tokens"] / 1e6 * 6.0, abs=1e-6)


def test_cache_stats_and_prune(tmp_path):
    conv = write_conversations(tmp_path / "conv.parquet", 8)
    with FakeOpenAI() as srv:
        report = extract_file(conv, tmp_path / "a.parquet", _params(tmp_path, srv.url))
        extract_file(conv, tmp_path / "b.parquet", _params(tmp_path, srv.url, batch_size=3))
    cache = str(tmp_path / "shards" / "cache")
    res = runner.invoke(app, ["cache", "stats", "--cache-dir", cache, "--json"])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output)
    assert stats["entries"] == report["judged_turns"] and stats["bytes"] > 0
    assert stats["by_model"][0]["model"] == "openai-turn:fake-model"
    assert stats["by_model"][0]["hits"] == report["judged_turns"]
    assert "openai-turn:fake-model" in runner.invoke(app, ["cache", "stats", "--cache-dir", cache]).output
    kept = runner.invoke(app, ["cache", "prune", "--cache-dir", cache, "--older-than", "1d"])
    assert kept.exit_code == 0 and f"removed 0 entries older than 1d; {report['judged_turns']} left" in kept.output
    gone = runner.invoke(app, ["cache", "prune", "--cache-dir", cache, "--older-than", "0"])
    assert gone.exit_code == 0 and _entries(Path(cache)) == 0
    assert runner.invoke(app, ["cache", "prune", "--cache-dir", cache, "--older-than", "soon"]).exit_code == 2
    assert runner.invoke(app, ["cache", "stats", "--cache-dir", str(tmp_path / "nowhere")]).exit_code == 2
    assert parse_duration("2h") == 7200 and parse_duration("90") == 90


def test_the_cache_pickles_without_its_connection(tmp_path):
    import pickle

    cache = JudgementCache(tmp_path)
    cache.put_many([("k", "m", {"text": "none"})])
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.get_many(["k"]) == {"k": {"text": "none"}}
    cache.close()
    copy.close()
