"""The vllm backend's pure parts, without vLLM: sampling params, engine arguments, output conversion,
the extract flow on a fake engine, the Ray Data row functions. The real engine: tests/integration/
test_vllm_cpu.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from natfeed.core.conversation import Conversation
from natfeed.extract.backends import make_extractor
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
    assert out == {"idx": 1, "text": "b", "prompt_tokens": 10, "generated_tokens": 2, "logprob": -1.5}
    cfg = processor_config(engine_kwargs(_params(replicas=4)), _params(replicas=4).vllm)
    assert cfg["model_source"] == "m" and cfg["concurrency"] == 4 and cfg["apply_chat_template"] is False
    assert "model" not in cfg["engine_kwargs"] and "quantization" not in cfg["engine_kwargs"]
