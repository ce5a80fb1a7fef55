"""evaluate: intrinsic KTO metrics on hand-computable cases, tokenisation, batching, outputs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from natfeed.evaluate.evaluate import (
    heldout_prompts,
    loglik_metrics,
    primary_metric,
    reward_metrics,
    run_evaluate,
    write_outputs,
)
from natfeed.evaluate.likelihood import completion_logps, encode_completion, generate_replies, truncate
from natfeed.evaluate.side_by_side import build_sheet, write_csv, write_html
from natfeed.params import EvaluateParams, ParamsError, parse_params
from tests.support.tiny_lm import biased_lm, random_lm, save_lm, word_tokenizer

USER = [{"role": "user", "content": "hello world"}]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny models: extra threads only contend on a busy 2-core machine (see EvaluateParams.cpu_threads)."""
    from natfeed.core.device import cpu_threads

    with cpu_threads(1, "cpu"):
        yield


def _reply(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer()


def test_completion_tokens_follow_trl_kto_tokenisation(tok):
    prompt_ids, completion_ids = encode_completion(tok, USER, _reply("yes yes no"))
    assert tok.convert_ids_to_tokens(prompt_ids) == ["<s>", "<|user|>", "hello", "world", "<|end|>",
                                                     "<|assistant|>"]
    assert tok.convert_ids_to_tokens(completion_ids) == ["yes", "yes", "no", "<|end|>"]


def test_truncate_cuts_prompt_head_first_then_completion_tail():
    assert truncate([1, 2, 3], [4, 5], 10) == ([1, 2, 3], [4, 5])
    assert truncate([1, 2, 3], [4, 5], 4) == ([2, 3], [4, 5])
    assert truncate([1, 2, 3], [4, 5, 6, 7, 8], 4) == ([3], [4, 5, 6])


def test_loglik_of_a_uniform_model_is_minus_k_log_v(tok):
    model = biased_lm(tok)  # all logits 0: every token has probability 1/V
    v = model.config.vocab_size
    logps, ntok = completion_logps(model, tok, [USER, USER], [_reply("yes yes yes"), _reply("no")])
    assert ntok.tolist() == [4, 2]  # words + <|end|>
    np.testing.assert_allclose(logps, [-4 * math.log(v), -2 * math.log(v)], rtol=1e-5)


def test_loglik_with_a_known_logit_bias(tok):
    model = biased_lm(tok, {"yes": math.log(4)})
    v = model.config.vocab_size
    z = 4 + (v - 1)  # partition function
    logps, _ = completion_logps(model, tok, [USER], [_reply("yes no")])
    assert logps[0] == pytest.approx(math.log(4 / z) + 2 * math.log(1 / z), rel=1e-5)  # yes, no, <|end|>


def test_batched_scoring_equals_one_by_one(tok):
    model = random_lm(tok, seed=3)
    second = [{"role": "user", "content": "the cat"}, *_reply("maybe"), {"role": "user", "content": "hello"}]
    prompts = [USER, second, [{"role": "system", "content": "good"}, *USER]]
    completions = [_reply("yes"), _reply("no no no bad cat"), _reply("good answer the cat")]
    batched, n_b = completion_logps(model, tok, prompts, completions, batch_size=3)
    single, n_s = completion_logps(model, tok, prompts, completions, batch_size=1)
    assert n_b.tolist() == n_s.tolist() == [2, 6, 5]
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-4)


def test_policy_equal_to_reference_gives_margin_zero_and_accuracy_half(tok):
    model = random_lm(tok)
    labels = np.array([True, False, True])
    completions = [_reply("yes"), _reply("no"), _reply("maybe cat")]
    logps, _ = completion_logps(model, tok, [USER] * 3, completions)
    r = reward_metrics(logps, logps.copy(), labels, beta=0.1)
    assert r["accuracy"] == 0.5 and r["margin"] == 0.0 and r["zero_logratio"] == 3
    assert r["reward_desirable"] == r["reward_undesirable"] == 0.0


def test_policy_biased_to_desirable_words_has_accuracy_one_and_known_margin(tok):
    ref, policy = biased_lm(tok), biased_lm(tok, {"yes": math.log(4)})
    completions = [_reply("yes yes yes"), _reply("yes yes yes"), _reply("no no no"), _reply("no no no")]
    labels = np.array([True, True, False, False])
    pol, _ = completion_logps(policy, tok, [USER] * 4, completions)
    ref_lp, _ = completion_logps(ref, tok, [USER] * 4, completions)
    r = reward_metrics(pol, ref_lp, labels, beta=0.1)
    assert r["accuracy"] == 1.0 and r["accuracy_desirable"] == r["accuracy_undesirable"] == 1.0
    # every non-"yes" token loses log(z/V); each "yes" gains log 4 on top: margin = 3 * beta * log 4
    assert r["margin"] == pytest.approx(3 * 0.1 * math.log(4), rel=1e-4)
    assert r["margin_ci_low"] == pytest.approx(r["margin"], rel=1e-4)  # no variance within a label


def test_reward_metrics_on_given_log_ratios():
    policy = np.array([1.0, -2.0, 0.0, 3.0])
    labels = np.array([True, True, False, False])
    r = reward_metrics(policy, np.zeros(4), labels, beta=0.5)
    assert r["accuracy"] == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    assert r["reward_desirable"] == pytest.approx(0.5 * (1 - 2) / 2)
    assert r["reward_undesirable"] == pytest.approx(0.5 * 3 / 2)
    assert r["margin"] == pytest.approx(-0.25 - 0.75)
    assert r["ci_low"] < r["accuracy"] < r["ci_high"]


def test_loglik_metrics_split_by_label():
    m = loglik_metrics(np.array([-4.0, -9.0, -2.0]), np.array([2, 3, 1]), np.array([True, False, True]))
    assert m["logp_sum_desirable"] == -3.0 and m["logp_sum_undesirable"] == -9.0
    assert m["logp_per_token_desirable"] == -2.0 and m["logp_per_token_undesirable"] == -3.0
    assert m["logp_per_token_gap"] == 1.0


def test_heldout_prompts_are_distinct_and_capped():
    p2 = [*USER, *_reply("no"), {"role": "user", "content": "yes"}]
    test = pd.DataFrame({"conversation_id": ["a", "a", "b"], "prompt": [USER, p2, USER]})
    prompts = heldout_prompts(test)
    assert prompts["conversation_id"].tolist() == ["a", "a"] and prompts["prompt"].tolist() == [USER, p2]
    assert len(heldout_prompts(test, max_prompts=1)) == 1


def test_generation_is_greedy_and_deterministic(tok):
    model = biased_lm(tok, {"cat": 5.0})  # the argmax is always "cat"
    replies = generate_replies(model, tok, [USER, [*USER, *_reply("no"), *USER]], max_new_tokens=3)
    assert replies == ["cat cat cat"] * 2


def test_params_validate_choices():
    with pytest.raises(ParamsError, match="reference"):
        parse_params({"evaluate": {"reference": "policy"}})
    with pytest.raises(ParamsError, match="rm_judge"):
        parse_params({"evaluate": {"primary_metric": "rm_win_rate"}})
    with pytest.raises(ParamsError, match="llm_judg"):  # typo of llm_judge
        parse_params({"evaluate": {"llm_judg": None}})
    p = parse_params({"evaluate": {"rm_judge": {"model": "x"}}}).evaluate
    judged = {"win_rate": 0.7, "ci_low": 0.5, "ci_high": 0.8, "n": 12}
    assert primary_metric({"rm_judge": {"policy_vs_base": judged}},
                          p) == {"name": "rm_win_rate", "value": 0.7, "ci_low": 0.5, "ci_high": 0.8,
                                 "comparison": "policy_vs_base", "n": 12}  # n: what the gate's min_examples checks


def test_sheet_escapes_untrusted_text(tmp_path):
    evil = [{"role": "user", "content": "<script>alert(1)</script> & \"q\""}]
    prompts = pd.DataFrame({"prompt_id": [0], "conversation_id": ["<b>c</b>"], "prompt": [evil]})
    replies = {"base": ["=HYPERLINK(\"http://x\")"], "policy": ["<img src=x onerror=alert(1)>"]}
    sheet = build_sheet(prompts, replies, {"rm_policy_vs_base": ["win"]})
    page = write_html(sheet, [evil], tmp_path / "s.html", {"title<": "<i>"}).read_text()
    assert "<script>" not in page and "<img" not in page and "<b>c" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;q&quot;" in page
    assert "Content-Security-Policy" in page
    csv = pd.read_csv(write_csv(sheet, tmp_path / "s.csv"))
    assert csv.loc[0, "reply_base"] == "'=HYPERLINK(\"http://x\")"
    assert csv.loc[0, "reply_policy"] == "<img src=x onerror=alert(1)>"  # CSV keeps the text as is
    assert list(csv.columns) == ["prompt_id", "conversation_id", "prompt", "reply_base", "reply_policy",
                                 "rm_policy_vs_base", "rating_base", "rating_policy"]
    assert csv["rating_base"].isna().all()  # empty, for a human rater


@pytest.mark.slow
def test_run_evaluate_end_to_end_with_policy_equal_to_base(tmp_path, tok):
    model_dir = save_lm(random_lm(tok), tok, tmp_path / "m")
    test = pd.DataFrame({
        "prompt": [USER, USER, [{"role": "user", "content": "the cat"}]],
        "completion": [_reply("yes"), _reply("no"), _reply("maybe")], "label": [True, False, True],
        "conversation_id": ["a", "a", "b"]})
    params = EvaluateParams(max_new_tokens=4, batch_size=2)
    ev = run_evaluate(test, {"base": model_dir, "sft": model_dir, "policy": model_dir}, params)
    r = ev.report
    assert r["primary_metric"]["name"] == "kto_reward_accuracy" and r["primary_metric"]["value"] == 0.5
    assert r["kto_reward_accuracy"] == 0.5 and r["kto_reward_margin"] == 0.0
    assert r["test_examples"] == 3 and r["desirable"] == 2 and r["heldout_prompts"] == 2
    assert r["loglik"]["base"] == r["loglik"]["policy"]
    assert r["rm_judge"] is None and r["llm_judge"] is None and r["llm_win_rate"] is None
    assert ev.sheet["reply_base"].tolist() == ev.sheet["reply_policy"].tolist()
    paths = write_outputs(ev, tmp_path / "reports")
    saved = json.loads(paths["report"].read_text())
    assert saved["primary_metric"] == r["primary_metric"] and set(saved["kto_reward"]) == {
        "policy_vs_sft", "policy_vs_base", "sft_vs_base"}
    rates = pd.read_csv(paths["evaluate_rates.csv"])
    assert rates["value"].tolist() == [0.5, 0.5, 0.5]
    assert len(pd.read_csv(paths["evaluate_loglik.csv"])) == 6
    sanity = pd.read_csv(paths["evaluate_sanity.csv"])
    assert sanity["model"].tolist() == list(r["sanity"]) and sanity["rate"].tolist() == [
        s["rate"] for s in r["sanity"].values()]
    sheet = pd.read_csv(paths["csv"])
    assert len(sheet) == 2 + len(params.sanity) and "reply_sft" in paths["html"].read_text()
    assert sheet["expected"].dropna().tolist() == [s.expect for s in params.sanity]
    assert r["sanity"]["base"]["n"] == len(params.sanity) == r["sanity"]["policy"]["n"]
    assert r["sanity"]["base"] == r["sanity"]["policy"]  # the same model answers the same


@pytest.mark.slow
def test_stage_writes_reports_and_logs_to_mlflow(tmp_path, tok, monkeypatch):
    """stages/evaluate.py in a scratch directory: outputs where params say, metrics + sheet in MLflow."""
    import runpy

    import yaml

    from tests.conftest import REPO

    for name in ("base", "sft", "policy"):
        save_lm(random_lm(tok), tok, tmp_path / "models" / name)
    kto = tmp_path / "kto"
    kto.mkdir()
    pd.DataFrame({"prompt": [USER, USER], "completion": [_reply("yes"), _reply("no")], "label": [True, False],
                  "conversation_id": ["a", "a"]}).to_parquet(kto / "kto_test.parquet")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["paths"].update(kto_dir=str(kto), reports_dir=str(tmp_path / "reports"),
                           **{k: str(tmp_path / "models" / n) for k, n in
                              [("base_model_dir", "base"), ("sft_model_dir", "sft"), ("policy_dir", "policy")]})
    params["evaluate"]["max_new_tokens"] = 3
    params["tracking"].update(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db",
                              artifact_location=str(tmp_path / "artifacts"))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(SystemExit) as done:  # run_stage exits with the stage's code
        runpy.run_path(str(REPO / "stages" / "evaluate.py"), run_name="__main__")
    assert done.value.code == 0

    report = json.loads((tmp_path / "reports" / "evaluate.json").read_text())
    assert report["primary_metric"]["value"] == 0.5
    for name in ("side_by_side.html", "side_by_side.csv", "evaluate_rates.csv", "evaluate_loglik.csv"):
        assert (tmp_path / "reports" / name).is_file()
    import mlflow

    run = mlflow.search_runs(experiment_names=["natfeed"], filter_string="tags.`natfeed.stage` = 'evaluate'",
                             output_format="list")[0]
    assert run.data.metrics["kto_reward_accuracy"] == 0.5 and run.data.metrics["primary_metric.value"] == 0.5
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "evaluate")}
    assert logged == {"evaluate/evaluate.json", "evaluate/side_by_side.html", "evaluate/side_by_side.csv"}


def test_repetition_penalty_breaks_greedy_loops(tok):
    model = biased_lm(tok, {"cat": 5.0, "answer": 4.0})
    assert generate_replies(model, tok, [USER], max_new_tokens=3) == ["cat cat cat"]
    # penalty 2: a generated token's logit is halved, so cat (5 -> 2.5) yields to answer (4 -> 2) and back
    assert generate_replies(model, tok, [USER], max_new_tokens=3, repetition_penalty=2.0) == ["cat answer cat"]


def test_device_and_dtype_are_resolved_once_from_params():
    import torch

    from natfeed.evaluate.evaluate import device_and_dtype

    assert device_and_dtype(EvaluateParams(device="cpu")) == (torch.device("cpu"), torch.float32)
    assert device_and_dtype(EvaluateParams(device="cpu", dtype="float16"))[1] is torch.float16
    device, dtype = device_and_dtype(EvaluateParams())  # auto
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert dtype is (torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32)


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_evaluate_on_cuda_matches_cpu(tmp_path, tok):
    """The evaluate stage's figures on CUDA (float32, so comparable) equal the CPU ones; auto picks CUDA."""
    model_dir = save_lm(biased_lm(tok, {"yes": 3.0}), tok, tmp_path / "policy")
    base_dir = save_lm(random_lm(tok), tok, tmp_path / "base")
    test = pd.DataFrame({
        "prompt": [USER, USER, [{"role": "user", "content": "the cat"}]],
        "completion": [_reply("yes"), _reply("no"), _reply("yes yes")], "label": [True, False, True],
        "conversation_id": ["a", "a", "b"]})
    dirs = {"base": base_dir, "sft": base_dir, "policy": model_dir}
    cpu = run_evaluate(test, dirs, EvaluateParams(max_new_tokens=4, batch_size=2, device="cpu")).report
    gpu = run_evaluate(test, dirs, EvaluateParams(max_new_tokens=4, batch_size=2, device="cuda",
                                                  dtype="float32")).report
    assert gpu["kto_reward_accuracy"] == cpu["kto_reward_accuracy"]
    assert gpu["kto_reward_margin"] == pytest.approx(cpu["kto_reward_margin"], abs=1e-3)
    auto = run_evaluate(test, dirs, EvaluateParams(max_new_tokens=4, batch_size=2)).report  # bf16 where supported
    assert auto["kto_reward_accuracy"] == cpu["kto_reward_accuracy"]
