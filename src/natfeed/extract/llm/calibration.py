"""Turn-mode label choice, with contextual calibration (``extract.llm.calibration: content_free``), shared
by the backends that score every allowed label (transformers, vllm).

A backend gives log P(label | prompt) for every choice; :func:`choose_label` normalises them over the
choices and, with a prior, divides by the model's answer to the same prompt with the conversation replaced
by ``N/A`` (:func:`content_free_request`; one prior per prompt shape, cached by its key), then picks the
label. Plain floats: no torch, no vLLM.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from natfeed.extract.llm.prompts import Request, content_free

PriorKey = tuple[tuple[str, ...], tuple[str, ...]]
"""A content-free prompt's choices and message texts: requests with the same key share one prior."""


@dataclass(frozen=True)
class LabelChoice:
    """The chosen label of one request."""

    index: int
    """Index into the request's choices."""
    logprob: float
    """Its log-probability normalised over the choices (calibrated when a prior was given)."""
    raw_logprob: float | None
    """With a prior: the same before calibration; None without one."""


def log_softmax(scores: Sequence[float]) -> list[float]:
    """``scores`` normalised in log space: ``log(exp(s) / sum(exp(scores)))``."""
    top = max(scores)
    total = top + math.log(sum(math.exp(s - top) for s in scores))
    return [s - total for s in scores]


def content_free_request(req: Request) -> tuple[PriorKey, Request]:
    """The content-free twin of a turn request (:func:`natfeed.extract.llm.prompts.content_free`) and the key
    its prior is cached by."""
    messages = content_free(req.messages)
    key = (tuple(req.choices or ()), tuple(m["content"] for m in messages))
    return key, replace(req, messages=messages)


def choose_label(scores: Sequence[float], prior: Sequence[float] | None = None, temperature: float = 0.0,
                 draw: Callable[[list[float]], int] | None = None) -> LabelChoice:
    """Pick one of the choices from their log P(label | prompt) ``scores``.

    The scores are normalised over the choices; with ``prior`` (the content-free scores, normalised by
    :func:`log_softmax`) it is subtracted and the result normalised again (contextual calibration). Greedy
    (the first of equal best on a tie), or with ``temperature > 0`` ``draw(probabilities)`` picks an index
    from ``softmax(normalised / temperature)``.
    """
    raw = log_softmax(scores)
    norm = raw if prior is None else log_softmax([r - p for r, p in zip(raw, prior, strict=True)])
    if temperature > 0:
        if draw is None:
            raise ValueError("choose_label: temperature > 0 needs a draw function")
        k = draw([math.exp(x) for x in log_softmax([n / temperature for n in norm])])
    else:
        k = max(range(len(norm)), key=norm.__getitem__)
    return LabelChoice(k, norm[k], None if prior is None else raw[k])


def describe_prior(choices: Sequence[str], prior: Sequence[float]) -> str:
    """``"label p (log p), ..."`` for the log: the model's prior over the labels."""
    return ", ".join(f"{c} {math.exp(p):.3f} (log {p:.3f})" for c, p in zip(choices, prior, strict=True))
