"""The extractor interface: a batch of conversations in, feedback detections out.

Every backend's detections become the same feedback rows (:func:`feedback_row`); the backends are
registered in :mod:`natfeed.extract.backends`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from natfeed.core.categories import CODES, label_of
from natfeed.core.conversation import Conversation, JudgedTurn, judged_turns


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


def batch_rows(extractor: Extractor, batch: list[Conversation], detect: tuple[float, int] | None = None
               ) -> list[dict[str, Any]]:
    """The feedback rows of a batch. ``detect`` = (min confidence, min letters): fill in the missing languages
    of raw logs, but only of the conversations that have a feedback row: no backend reads the language, it
    is a column of the rows, so detecting the others (lingua: ~1.3 ms each) would change nothing."""
    rows = [feedback_row(det, extractor.identity) for det in extractor.extract(batch)]
    if detect is not None and rows:
        from natfeed.extract.inputs import with_languages

        with_rows = {r["conversation_id"] for r in rows}
        found = with_languages([c for c in batch if c.conversation_id in with_rows], *detect)
        language = {c.conversation_id: c.language for c in found}
        for row in rows:
            row["language"] = language[row["conversation_id"]]
    return rows


@dataclass
class BatchResult:
    """What running one batch gives, whatever ran it (the one result type of every executor): feedback rows,
    counts and, for the LLM backends, counters and parse failures. Plain data, so it crosses processes."""

    rows: list[dict[str, Any]]
    conversations: int
    user_turns: int
    """The batch's judged turns (the name is the shard manifest's key, kept so old shards resume)."""
    counters: dict[str, int] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def judged_turns(self) -> int:
        return self.user_turns


def run_batch(extractor: Any, batch: list[Conversation], detect: tuple[float, int] | None = None) -> BatchResult:
    """One batch through ``extractor`` (in this process, a worker or a Ray actor); ``detect`` = detect the
    missing languages first (raw logs), with (min confidence, min letters)."""
    rows = batch_rows(extractor, batch, detect)
    turns = sum(1 for c in batch for _ in judged_turns(c))
    counters: dict[str, int] = {}
    failures: list[dict[str, Any]] = []
    if hasattr(extractor, "take_stats"):
        counters, raw = extractor.take_stats()
        failures = [f.to_dict() for f in raw]
    return BatchResult(rows, len(batch), turns, dict(counters), failures)
