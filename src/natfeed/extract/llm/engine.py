"""What an engine returns and the interface of the executors that route requests to engines (in-process,
replica processes, Ray): plain data, no engine imported here."""

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


class Executor:
    """Base of the executors that take (prompts, specs, conversation ids) and route them."""

    def generate(self, prompts: Sequence[list[int]], specs: Sequence[dict[str, Any]],
                 keys: Sequence[str]) -> list[Generated]:
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover - trivial
        pass
