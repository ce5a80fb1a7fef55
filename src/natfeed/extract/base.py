"""The extractor interface: a batch of conversations in, feedback detections out.

Backends register a factory in ``_FACTORIES``; :func:`make_extractor` builds the one that params
name. Every backend's detections become the same feedback rows (:func:`feedback_row`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from natfeed.categories import CODES, label_of
from natfeed.conversation import MESSAGE_TYPE, Conversation, JudgedTurn, judged_turns

if TYPE_CHECKING:
    from natfeed.config import ExtractParams

FEEDBACK_SCHEMA = pa.schema(
    [
        ("conversation_id", pa.string()),
        ("feedback_turn", pa.int32()),
        ("category", pa.string()),
        ("code", pa.string()),
        ("label", pa.int8()),
        ("feedback_text", pa.string()),
        ("prompt", pa.list_(MESSAGE_TYPE)),
        ("response", pa.string()),
        ("extractor", pa.string()),
        ("confidence", pa.float64()),
        ("language", pa.string()),
        ("model", pa.string()),
        ("flagged", pa.bool_()),
        ("cue", pa.string()),
    ]
)
"""One row per feedback turn. ``feedback_turn`` is the paper's index of the exchange whose reply got
the feedback (the feedback is user message ``feedback_turn + 1``); ``cue`` says why it was chosen."""


@dataclass(frozen=True)
class Detection:
    """A judged user turn that the extractor labelled as feedback."""

    turn: JudgedTurn
    category: str
    confidence: float
    cue: str = ""


class Extractor(Protocol):
    """What every backend provides."""

    identity: str
    """Backend and version or model, stored in each row's ``extractor`` column."""

    def extract(self, conversations: Sequence[Conversation]) -> list[Detection]:
        """Judge every user turn from the 2nd on; return the ones that are feedback."""
        ...


class TurnClassifierExtractor:
    """Adapts a per-turn classifier (``classify(user_text, prev_reply, earlier_user)``).

    A classifier that also has ``classify_batch([(user_text, prev_reply, earlier_user), ...])`` gets
    every judged turn of the conversation batch in one call (the heuristic's embeddings batch that way).
    """

    def __init__(self, classifier: Any) -> None:
        self.classifier = classifier
        self.identity = f"{classifier.name}-{classifier.version}"

    def extract(self, conversations: Sequence[Conversation]) -> list[Detection]:
        out: list[Detection] = []
        turns = [turn for conv in conversations for turn in judged_turns(conv)]
        inputs = [(t.user_text, t.prev_reply, t.earlier_user) for t in turns]
        if hasattr(self.classifier, "classify_batch"):
            decisions = self.classifier.classify_batch(inputs)
        else:
            decisions = [self.classifier.classify(*args) for args in inputs]
        for turn, decision in zip(turns, decisions, strict=True):
            if decision.category is not None:
                out.append(Detection(turn, decision.category, decision.confidence, decision.cue))
        return out


def _heuristic(params: ExtractParams) -> Extractor:
    from natfeed.extract.heuristic import HeuristicClassifier

    return TurnClassifierExtractor(HeuristicClassifier(params.heuristic))


def _openai(params: ExtractParams) -> Extractor:
    from natfeed.extract.openai_backend import OpenAIExtractor

    return OpenAIExtractor(params)


def _transformers(params: ExtractParams) -> Extractor:
    from natfeed.extract.transformers_backend import TransformersExtractor

    return TransformersExtractor(params)


def _paper_loop(params: ExtractParams) -> Extractor:
    from natfeed.extract.transformers_backend import PaperLoopExtractor

    return PaperLoopExtractor(params)


def _vllm(params: ExtractParams) -> Extractor:
    from natfeed.extract.vllm_backend import DEFAULT_MODEL, VLLMExtractor

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
"""Backend name -> factory. LLM backends subclass natfeed.extract.llm.LLMExtractor; heavy imports stay
inside the factory so that the default path never loads them."""


def available_backends() -> set[str]:
    return set(_FACTORIES)


def make_extractor(params: ExtractParams) -> Extractor:
    """Build the backend that ``params.backend`` names."""
    try:
        factory = _FACTORIES[params.backend]
    except KeyError:
        raise ValueError(f"unknown backend {params.backend!r}; available: {sorted(_FACTORIES)}") from None
    return factory(params)


def feedback_row(det: Detection, extractor: str) -> dict[str, Any]:
    """The feedback.parquet row of one detection."""
    conv = det.turn.conversation
    return {
        "conversation_id": conv.conversation_id,
        "feedback_turn": det.turn.user_turn - 1,
        "category": det.category,
        "code": CODES[det.category],
        "label": label_of(det.category),
        "feedback_text": det.turn.user_text,
        "prompt": det.turn.prompt,
        "response": det.turn.prev_reply,
        "extractor": extractor,
        "confidence": float(min(1.0, max(0.0, det.confidence))),
        "language": conv.language,
        "model": conv.model,
        "flagged": conv.flagged,
        "cue": det.cue,
    }
