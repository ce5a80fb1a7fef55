"""Judges: win-rate statistics, the reward-model judge on a tiny random RM, and the LLM judge client
against a fake OpenAI-compatible server on 127.0.0.1 (real HTTP)."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from natfeed.evaluate.evaluate import run_judges
from natfeed.evaluate.llm_judge import JudgeConfigError, combine, judge_pairs, parse_verdict, position_stats
from natfeed.evaluate.metrics import compare_scores, wilson_interval, win_rate
from natfeed.evaluate.rm_judge import load_reward_model, rm_judge, rm_scores
from natfeed.params import EvaluateParams, LlmJudgeParams, RmJudgeParams
from tests.support.tiny_lm import llama_config, word_tokenizer

SECRET = "sk-test-SECRET-4242"
KEY_ENV = "NATFEED_TEST_JUDGE_KEY"
USER = [{"role": "user", "content": "hello world"}]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models: extra threads only contend on a busy 2-core machine (see EvaluateParams.cpu_threads)."""
    from natfeed.core.device import cpu_threads

    with cpu_threads(1, "cpu"):
        yield


# --- statistics ---------------------------------------------------------------------------------------
def test_wilson_interval_known_values():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(1 - low)
    assert wilson_interval(0, 0) == (None, None)
    assert wilson_interval(0, 20)[0] == 0.0 and wilson_interval(20, 20)[1] == 1.0


def test_win_rate_counts_ties_half_and_excludes_failures():
    r = win_rate(["win"] * 6 + ["loss"] * 2 + ["tie"] * 4 + ["failed"] * 3)
    assert (r["wins"], r["losses"], r["ties"], r["failed"], r["n"]) == (6, 2, 4, 3, 12)
    assert r["win_rate"] == pytest.approx(8 / 12) and r["tie_rate"] == pytest.approx(4 / 12)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(wilson_interval(8, 12))
    assert win_rate(["failed"])["win_rate"] is None
    with pytest.raises(ValueError, match="unknown outcomes"):
        win_rate(["won"])


def test_compare_scores():
    assert compare_scores([1.0, 0.0, 0.5, np.nan], [0.0, 1.0, 0.45, 1.0], tie_margin=0.1) == [
        "win", "loss", "tie", "failed"]


# --- reward-model judge ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_rm(tmp_path_factory):
    import torch
    from transformers import LlamaForSequenceClassification

    tok = word_tokenizer()
    torch.manual_seed(1)
    model = LlamaForSequenceClassification(llama_config(tok, num_labels=1))
    path = tmp_path_factory.mktemp("rm")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_rm_judge_scores_each_reply_and_compares(tiny_rm):
    import torch

    params = RmJudgeParams(model=str(tiny_rm), batch_size=3)
    prompts = [USER, [{"role": "user", "content": "the cat"}], USER]
    replies = {"base": ["no", "bad cat", "maybe"], "sft": ["no", "bad cat", "maybe"],
               "policy": ["yes good answer", "good", "the cat the cat"]}
    scores, outcomes = rm_judge(params, prompts, replies, [("policy", "base"), ("policy", "sft")],
                                torch.device("cpu"), torch.float32)
    model, tok = load_reward_model(params, torch.device("cpu"), torch.float32)
    one_by_one = rm_scores(model, tok, prompts, replies["policy"], batch_size=1)
    np.testing.assert_allclose(scores["policy"], one_by_one, rtol=1e-4, atol=1e-5)
    assert len(set(np.round(scores["policy"], 6))) == 3  # a random RM still separates the replies
    expected = ["win" if p > b else "loss" for p, b in zip(scores["policy"], scores["base"], strict=True)]
    assert outcomes["policy_vs_base"] == expected
    np.testing.assert_array_equal(scores["base"], scores["sft"])


def test_rm_judge_identical_replies_tie(tiny_rm):
    import torch

    replies = {"base": ["yes", "no"], "policy": ["yes", "no"]}
    _, outcomes = rm_judge(RmJudgeParams(model=str(tiny_rm)), [USER, USER], replies, [("policy", "base")],
                           torch.device("cpu"), torch.float32)
    assert win_rate(outcomes["policy_vs_base"])["win_rate"] == 0.5


def test_rm_with_two_outputs_is_refused(tmp_path):
    from transformers import LlamaForSequenceClassification

    tok = word_tokenizer()
    model = LlamaForSequenceClassification(llama_config(tok, num_labels=2))
    with pytest.raises(ValueError, match="num_labels=1"):
        rm_scores(model, tok, [USER], ["yes"])


# --- LLM judge: parsing ------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "verdict"), [
    ("A", "A"), ("B", "B"), (" b ", "B"), ("tie", "tie"), ("Tie.", "tie"), ("[[A]]", "A"), ("[[C]]", "tie"),
    ("**B**", "B"), ("Reply B is better than reply A.", "B"), ("The better reply is A.", "A"),
    ("Verdict: B", "B"), ("Both are equally good.", "tie"), ("<think>A seems short, B</think> A", "A"),
    ("I cannot decide between reply A and reply B", None), ("answer a question", None), ("", None),
    (None, None),
])
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict


def test_combine_needs_both_orders_to_agree():
    assert combine("A", "B") == "win" and combine("B", "A") == "loss"
    assert combine("A", "A") == combine("B", "B") == combine("tie", "B") == combine("tie", "tie") == "tie"
    assert combine(None, "B") == combine("A", None) == "failed"


# --- LLM judge: a fake OpenAI-compatible server ------------------------------------------------------
class FakeJudgeServer:
    """POST /v1/chat/completions. ``mode``: prefer_good (picks the reply containing GOOD, in words),
    always_a (position-biased), flaky (429, then 500, then the right answer), slow (sleeps on prompts
    containing "slow"), unauthorized (401)."""

    def __init__(self, mode: str) -> None:
        self.mode, self.requests, self.attempts = mode, [], Counter()
        self.lock, self.in_flight, self.max_in_flight = threading.Lock(), 0, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    status, payload, headers = server.respond(self.path, dict(self.headers), body)
                    data = json.dumps(payload).encode()
                    self.send_response(status)
                    for k, v in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout)
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def respond(self, path: str, headers: dict, body: dict) -> tuple[int, dict, dict]:
        user = body["messages"][-1]["content"]
        key = json.dumps(body, sort_keys=True)
        with self.lock:
            self.requests.append({"path": path, "auth": headers.get("Authorization"), "body": body})
            self.attempts[key] += 1
            attempt = self.attempts[key]
        if self.mode == "unauthorized":
            return 401, {"error": {"message": "invalid api key"}}, {}
        if headers.get("Authorization") != f"Bearer {SECRET}":
            return 401, {"error": {"message": "missing key"}}, {}
        if self.mode == "flaky" and attempt == 1:
            return 429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"}
        if self.mode == "flaky" and attempt == 2:
            return 500, {"error": {"message": "boom"}}, {}
        if self.mode == "slow" and "slow" in user:
            time.sleep(1.0)
        if self.mode == "always_a":
            answer = "A"
        else:
            a, b = (re.search(rf"<reply_{x}>\n(.*?)\n</reply_{x}>", user, re.S).group(1) for x in "AB")
            answer = ("Reply A is better." if "GOOD" in a and "GOOD" not in b else
                      "After comparing both: [[B]]" if "GOOD" in b and "GOOD" not in a else "tie")
        time.sleep(0.02)
        return 200, {"choices": [{"message": {"role": "assistant", "content": answer}}]}, {}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_judge(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    servers = []

    def start(mode: str, **overrides: object) -> tuple[FakeJudgeServer, LlmJudgeParams]:
        server = FakeJudgeServer(mode)
        servers.append(server)
        fields = {"base_url": server.base_url, "model": "judge-1", "api_key_env": KEY_ENV, "timeout_s": 5.0,
                  "max_retries": 3, "backoff_s": 0.01, "max_backoff_s": 0.05, "max_concurrency": 2}
        return server, LlmJudgeParams(**{**fields, **overrides})

    yield start
    for server in servers:
        server.close()


ITEMS = [(USER, "GOOD yes", "bad no"), ([{"role": "user", "content": "the cat"}], "GOOD cat", "bad"),
         (USER, "bad", "GOOD maybe")]


def test_both_orders_are_requested_and_a_consistent_judge_decides(fake_judge, caplog):
    caplog.set_level(logging.DEBUG)
    server, params = fake_judge("prefer_good")
    judgements, stats = judge_pairs(params, ITEMS)
    assert [j.outcome for j in judgements] == ["win", "win", "loss"]
    assert [(j.candidate_first, j.candidate_second) for j in judgements[:2]] == [("A", "B"), ("A", "B")]
    assert stats == {"requests": 6, "retries": 0, "failed_requests": 0, "unparsed": 0}
    assert len(server.requests) == 6 and {r["path"] for r in server.requests} == {"/v1/chat/completions"}
    shown_first = Counter()
    for r in server.requests:
        user = r["body"]["messages"][-1]["content"]
        a, b = (user.split(f"<reply_{x}>\n")[1].split("\n")[0] for x in "AB")
        shown_first[(a, b)] += 1
    for _, cand, base in ITEMS:  # each pair asked once in each order
        assert shown_first[(cand, base)] == 1 and shown_first[(base, cand)] == 1
    assert server.max_in_flight <= 2  # bounded concurrency
    assert all(r["auth"] == f"Bearer {SECRET}" for r in server.requests)  # the key is sent ...
    assert SECRET not in caplog.text and SECRET not in repr(judgements) and SECRET not in json.dumps(stats)


def test_position_biased_judge_gives_ties_and_half(fake_judge):
    _, params = fake_judge("always_a")
    judgements, _ = judge_pairs(params, ITEMS)
    assert [j.outcome for j in judgements] == ["tie"] * 3
    assert win_rate([j.outcome for j in judgements])["win_rate"] == 0.5
    assert position_stats(judgements) == {"position_consistency": 0.0, "first_position_rate": 1.0}


def test_retries_on_429_and_500_then_succeeds(fake_judge):
    server, params = fake_judge("flaky")
    judgements, stats = judge_pairs(params, ITEMS[:2])
    assert [j.outcome for j in judgements] == ["win", "win"]
    assert stats["requests"] == 12 and stats["retries"] == 8 and stats["failed_requests"] == 0
    assert set(server.attempts.values()) == {3}


def test_timeout_is_retried_then_counted_failed(fake_judge, caplog):
    items = [(USER, "GOOD", "bad"), ([{"role": "user", "content": "slow"}], "GOOD", "bad")]
    server, params = fake_judge("slow", timeout_s=0.3, max_retries=1)
    caplog.set_level(logging.WARNING)
    judgements, stats = judge_pairs(params, items)
    assert [j.outcome for j in judgements] == ["win", "failed"] and judgements[1].error == "timeout"
    assert stats["failed_requests"] == 2 and stats["retries"] == 2 and stats["requests"] == 6
    assert "timeout" in caplog.text and SECRET not in caplog.text


def test_rejected_key_is_a_config_error_without_the_key(fake_judge):
    _, params = fake_judge("unauthorized")
    with pytest.raises(JudgeConfigError, match="HTTP 401") as err:
        judge_pairs(params, ITEMS)
    assert SECRET not in str(err.value) and KEY_ENV in str(err.value)


def test_missing_key_variable_is_a_config_error(fake_judge, monkeypatch):
    _, params = fake_judge("prefer_good")
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(JudgeConfigError, match=KEY_ENV):
        judge_pairs(params, ITEMS)


def test_run_judges_reports_llm_win_rate_as_primary(fake_judge):
    from natfeed.evaluate.evaluate import primary_metric

    _, llm = fake_judge("prefer_good")
    prompts = pd.DataFrame({"prompt_id": [0, 1], "conversation_id": ["a", "b"], "prompt": [USER, USER]})
    replies = {"base": ["bad", "bad"], "sft": ["GOOD", "bad"], "policy": ["GOOD", "GOOD"]}
    params = EvaluateParams(llm_judge=llm)
    report, columns = run_judges(prompts, replies, params)
    assert report["llm_judge"]["policy_vs_base"]["win_rate"] == 1.0 and report["llm_win_rate"] == 1.0
    vs_sft = report["llm_judge"]["policy_vs_sft"]
    assert vs_sft["ties"] == 1 and vs_sft["wins"] == 1 and vs_sft["win_rate"] == 0.75
    assert columns["llm_policy_vs_base"] == ["win", "win"]
    assert columns["llm_policy_vs_sft_orders"] == ["tie/tie", "A/B"]
    assert primary_metric({**report, "kto_reward": {}}, params)["name"] == "llm_win_rate"
    assert SECRET not in json.dumps(report)
