"""What an engine returns and the interface of the vllm backend's engine choices that route requests to vLLM
engines (replica processes, Ray Data's ray.data.llm; a local ``vllm.LLM`` is used as it is): plain data, no
engine imported here. The run's executor (in-process, process pool, Ray actors) is another layer:
:mod:`natfeed.extract.executors`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Generated:
    """What an engine returned for one request (plain data: it crosses process boundaries)."""

    text: str
    prompt_tokens: int
    generated_tokens: int
    logprob: float | None = None
    cached_tokens: int = 0
    prompt_logprob: float | None = None
    """With a spec's ``score_ids``: the summed log-probability of those last prompt tokens (label scoring)."""


def tail_logprob(prompt_ids: Sequence[int] | None, prompt_logprobs: Sequence[Any] | None,
                 tail: Sequence[int]) -> float | None:
    """Sum of log P(token | the tokens before) over the prompt's last ``len(tail)`` tokens, which must be
    ``tail``, from vLLM's ``prompt_logprobs`` (per prompt position: None, or {token id: Logprob or
    {"logprob": x}}, the keys int or, past Arrow, str). None when the engine gave none, tokenized the
    prompt into other tokens, or left a position out."""
    n = len(tail)
    if not n or prompt_ids is None or prompt_logprobs is None:
        return None
    ids = [int(t) for t in prompt_ids]
    steps = list(prompt_logprobs)
    if len(steps) != len(ids) or ids[-n:] != [int(t) for t in tail]:
        return None
    total = 0.0
    for tok, step in zip(ids[-n:], steps[-n:], strict=True):
        entry = None if step is None else (step.get(tok) or step.get(str(tok)))
        if entry is None:
            return None
        total += float(entry["logprob"] if isinstance(entry, dict) else entry.logprob)
    return total


class Engine:
    """Base of the engine choices that take (prompts, specs, conversation ids) and route them."""

    def generate(self, prompts: Sequence[list[int]], specs: Sequence[dict[str, Any]],
                 keys: Sequence[str]) -> list[Generated]:
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - trivial
        pass


Executor = Engine
"""The old name (before the run's executors got theirs)."""
