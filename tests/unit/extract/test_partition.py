"""Scale-out logic on CPU, without vLLM: hash assignment, device groups, replica routing, partitions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from natfeed.core.io import sibling
from natfeed.extract.llm.replicas import ReplicaPool, device_groups
from natfeed.extract.partition import merge_outputs, shard_of, split_indices
from natfeed.extract.run import extract_file, extract_partition
from natfeed.params import parse_params
from tests.support.helpers import sample_head

REPO = Path(__file__).resolve().parents[3]


def test_shard_of_is_a_fixed_function_of_the_id():
    # pinned values: the assignment must not change between runs, processes or Python versions
    assert [shard_of(x, 7) for x in ["a", "conv-1", "d1fbf87b84d16be90d43a82a9ef4ce8b", ""]] == [2, 1, 5, 0]
    assert all(shard_of(f"id-{i}", 1) == 0 for i in range(50))
    with pytest.raises(ValueError):
        shard_of("x", 0)


def test_shard_of_does_not_depend_on_pythonhashseed(tmp_path):

    code = "from natfeed.extract.partition import shard_of; print([shard_of(f'c{i}', 5) for i in range(40)])"
    outs = {subprocess.run([sys.executable, "-c", code], env={"PYTHONHASHSEED": seed, "PATH": ""},
                           capture_output=True, text=True, check=True).stdout for seed in ("1", "2")}
    assert len(outs) == 1
    assert outs.pop().strip() == str([shard_of(f"c{i}", 5) for i in range(40)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=12), max_size=60), st.integers(1, 9))
def test_split_indices_are_disjoint_and_cover(keys, n):
    parts = split_indices(keys, n)
    assert len(parts) == n
    flat = [i for part in parts for i in part]
    assert sorted(flat) == list(range(len(keys)))  # every request exactly once
    for s, part in enumerate(parts):
        assert part == sorted(part)  # input order kept
        assert all(shard_of(keys[i], n) == s for i in part)
    # one conversation's requests never split across shards
    owner = {}
    for s, part in enumerate(parts):
        for i in part:
            assert owner.setdefault(keys[i], s) == s


def test_shards_are_balanced():
    counts = Counter(shard_of(f"conversation-{i}", 4) for i in range(20_000))
    assert set(counts) == {0, 1, 2, 3}
    assert max(counts.values()) / min(counts.values()) < 1.1


def test_device_groups():
    assert device_groups(1, 1) == ["0"]
    assert device_groups(4, 1) == ["0", "1", "2", "3"]
    assert device_groups(2, 2) == ["0,1", "2,3"]
    assert device_groups(2, 2, ["4,5", " 6, 7"]) == ["4,5", "6,7"]
    with pytest.raises(ValueError, match="groups for 3 replicas"):
        device_groups(3, 1, ["0", "1"])
    with pytest.raises(ValueError, match="tensor_parallel_size is 2"):
        device_groups(2, 2, ["0,1", "2"])
    with pytest.raises(ValueError, match="overlap"):
        device_groups(2, 1, ["0", "0"])


def test_replica_pool_routes_each_conversation_to_its_replica_and_devices():
    keys = [f"conv-{i // 3}" for i in range(30)]  # 3 requests per conversation
    prompts = [[i] for i in range(len(keys))]
    pool = ReplicaPool({}, ["3", "5,6"], factory="tests.support.echo_engine:echo_engine",
                       runner="tests.support.echo_engine:echo_run", start_timeout_s=120)
    try:
        outs = pool.generate(prompts, [{}] * len(keys), keys)
        again = pool.generate(prompts[:4], [{}] * 4, keys[:4])  # the engines stay up between batches
    finally:
        pool.close()
    assert [o.text.split("|")[2] for o in outs] == [str(i) for i in range(len(keys))]  # order restored
    pids = {}
    for key, out in zip(keys, outs, strict=True):
        devices, pid, _ = out.text.split("|")
        assert devices == ["3", "5,6"][shard_of(key, 2)]
        assert pids.setdefault(devices, pid) == pid
    assert len(set(pids.values())) == 2  # two processes
    assert [o.text for o in again] == [o.text for o in outs[:4]]
    assert all(not p.is_alive() for p in pool.procs)


def test_an_unclosed_replica_pool_does_not_hang_the_interpreter_at_exit(tmp_path):

    script = tmp_path / "leave_open.py"
    script.write_text("from natfeed.extract.llm.replicas import ReplicaPool\n"
                      "if __name__ == '__main__':\n"
                      "    pool = ReplicaPool({}, ['0', '1'], factory='tests.support.echo_engine:echo_engine',\n"
                      "                       runner='tests.support.echo_engine:echo_run')\n"
                      "    print(pool.generate([[7]], [{}], ['k'])[0].text.split('|')[2])\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # the echo engine lives in tests/support
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "7"


def test_replica_pool_reports_a_failing_engine():
    with pytest.raises(RuntimeError, match="replica 0 .* failed"):
        ReplicaPool({}, ["0"], factory="tests.support.echo_engine:no_such_factory", start_timeout_s=120)



def _params(tmp_path: Path):
    return parse_params({"extract": {"workers": 1, "detect_language": False, "batch_size": 16,
                                     "shard_dir": str(tmp_path / "shards")}}).extract


def test_partitions_then_merge_equal_one_run(tmp_path):
    raw, params = sample_head(tmp_path), _params(tmp_path)
    with open(raw, "ab") as fh:  # malformed rows to quarantine
        fh.write(b'{"conversation_id": "broken", "conversation": [\n["not", "an", "object"]\n')
    whole = extract_file(raw, tmp_path / "whole" / "feedback.parquet", params)
    parts = []
    for i in range(3):
        out = tmp_path / "parts" / f"feedback-part-{i}.parquet"
        report = extract_partition(raw, out, params, i, 3)
        assert report["shard_index"] == i and report["num_shards"] == 3
        ids = pd.read_parquet(report["partition"])["conversation_id"]
        assert all(shard_of(c, 3) == i for c in ids)
        parts.append((out, set(ids), report))
    ids = [p[1] for p in parts]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])  # disjoint
    assert sum(len(s) for s in ids) == whole["conversations"]  # covering
    assert parts[0][2]["rows_rejected"] == whole["rows_rejected"] > 0  # quarantined once, by shard 0
    assert parts[1][2]["rows_rejected"] == parts[2][2]["rows_rejected"] == 0

    merged = merge_outputs([p[0] for p in reversed(parts)], tmp_path / "merged" / "feedback.parquet")
    for key in ("conversations", "user_turns", "rows", "rows_rejected", "rows_per_category"):
        assert merged[key] == whole[key], key
    cols = ["conversation_id", "feedback_turn", "category"]
    a = pd.read_parquet(tmp_path / "whole" / "feedback.parquet")[cols].sort_values(cols).reset_index(drop=True)
    b = pd.read_parquet(tmp_path / "merged" / "feedback.parquet")[cols].sort_values(cols).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert json.loads((tmp_path / "merged" / "feedback.report.json").read_text())["num_shards"] == 3

    with pytest.raises(ValueError, match="every shard"):
        merge_outputs([parts[0][0], parts[2][0]], tmp_path / "bad.parquet")
    with pytest.raises(FileNotFoundError):
        merge_outputs([tmp_path / "nope.parquet"], tmp_path / "bad.parquet")


def test_cli_shard_options(tmp_path):
    from typer.testing import CliRunner

    from natfeed.cli import app

    raw = sample_head(tmp_path, 30)
    params = tmp_path / "params.yaml"
    params.write_text(f"extract:\n  workers: 1\n  detect_language: false\n  shard_dir: {tmp_path / 's'}\n")
    runner = CliRunner()
    outs = []
    for i in range(2):
        out = tmp_path / f"fb-{i}.parquet"
        res = runner.invoke(app, ["extract", "-i", str(raw), "-o", str(out), "--shard-index", str(i),
                                  "--num-shards", "2", "--params", str(params)])
        assert res.exit_code == 0, res.output
        outs.append(str(out))
    res = runner.invoke(app, ["extract-merge", *outs, "-o", str(tmp_path / "all.parquet")])
    assert res.exit_code == 0, res.output
    assert "2 parts" in res.output
    res = runner.invoke(app, ["extract", "-i", str(raw), "-o", str(tmp_path / "x.parquet"), "--shard-index", "0",
                              "--params", str(params)])
    assert res.exit_code == 2


def test_partition_flags_are_the_shard_flags_under_their_new_names(tmp_path):
    """--partition-index/--num-partitions and the old --shard-index/--num-shards give the same part."""
    from typer.testing import CliRunner

    from natfeed.cli import app

    raw = sample_head(tmp_path, 30)
    params = tmp_path / "params.yaml"
    params.write_text(f"extract:\n  workers: 1\n  detect_language: false\n  shard_dir: {tmp_path / 's'}\n")
    runner = CliRunner()
    got = {}
    for flags in (["--partition-index", "1", "--num-partitions", "2"], ["--shard-index", "1", "--num-shards", "2"]):
        out = tmp_path / f"fb-{flags[0].strip('-')}.parquet"
        res = runner.invoke(app, ["extract", "-i", str(raw), "-o", str(out), *flags, "--params", str(params)])
        assert res.exit_code == 0, res.output
        report = json.loads(sibling(out, "report.json").read_text())
        assert (report["partition_index"], report["num_partitions"]) == (1, 2) == (report["shard_index"],
                                                                                 report["num_shards"])
        got[flags[0]] = pd.read_parquet(out)
    pd.testing.assert_frame_equal(got["--partition-index"], got["--shard-index"])
    res = runner.invoke(app, ["extract", "-i", str(raw), "-o", str(tmp_path / "x.parquet"), "--partition-index",
                              "0", "--params", str(params)])
    assert res.exit_code == 2 and "--num-partitions" in res.output
