"""The extractor backends by name: :func:`make_extractor` builds the one that ``extract.backend`` names.

Heavy imports stay inside each factory, so that the default (heuristic) path never loads torch, vLLM or
an HTTP client. ``extract.backend`` is a ``Literal`` of these names (a test checks that they agree).
"""

from __future__ import annotations

from collections.abc import Callable

from natfeed.core.errors import UsageError
from natfeed.extract.base import Extractor, TurnClassifierExtractor
from natfeed.params import ExtractParams


def _heuristic(params: ExtractParams) -> Extractor:
    from natfeed.extract.heuristic.classifier import HeuristicClassifier

    return TurnClassifierExtractor(HeuristicClassifier(params.heuristic))


def _openai(params: ExtractParams) -> Extractor:
    from natfeed.extract.llm.openai import OpenAIExtractor

    return OpenAIExtractor(params)


def _transformers(params: ExtractParams) -> Extractor:
    from natfeed.extract.llm.transformers import TransformersExtractor

    return TransformersExtractor(params)


def _paper_loop(params: ExtractParams) -> Extractor:
    from natfeed.extract.llm.transformers import PaperLoopExtractor

    return PaperLoopExtractor(params)


def _vllm(params: ExtractParams) -> Extractor:
    from natfeed.extract.llm.vllm import DEFAULT_MODEL, VLLMExtractor

    if not params.llm.model:
        params = params.model_copy(update={"llm": params.llm.model_copy(update={"model": DEFAULT_MODEL})})
    return VLLMExtractor(params)


_FACTORIES: dict[str, Callable[[ExtractParams], Extractor]] = {
    "heuristic": _heuristic,
    "openai": _openai,
    "transformers": _transformers,
    "paper_loop": _paper_loop,
    "vllm": _vllm,
}
"""Backend name -> factory. LLM backends subclass natfeed.extract.llm.base.LLMExtractor."""


PER_TURN_BACKENDS = frozenset({"heuristic"})
"""Backends whose work is plain Python per turn, so they scale with worker processes (or CPU actors)."""


def available_backends() -> set[str]:
    return set(_FACTORIES)


def make_extractor(params: ExtractParams) -> Extractor:
    """Build the backend that ``params.backend`` names."""
    try:
        factory = _FACTORIES[params.backend]
    except KeyError:
        raise UsageError(f"unknown backend {params.backend!r}; available: {sorted(_FACTORIES)}") from None
    return factory(params)
