"""Fast, dependency-free text similarity for rephrase detection.

All functions look only at a bounded prefix of each text, so their cost does not grow with pasted
documents; n-gram sets of recently seen texts are cached because a conversation's earlier user turns
are compared again for every later turn.
"""

from __future__ import annotations

import re
from functools import lru_cache

DEFAULT_LIMIT = 500
"""Characters of each text that take part in a comparison."""

_SPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def normalize(text: str, limit: int = DEFAULT_LIMIT) -> str:
    """Lower-case, collapse white space and cut ``text`` to ``limit`` characters."""
    return _SPACE.sub(" ", text[: limit * 2]).strip().lower()[:limit]


@lru_cache(maxsize=4096)
def char_ngrams(text: str, n: int = 3, limit: int = DEFAULT_LIMIT) -> frozenset[str]:
    """The set of character ``n``-grams of the normalised prefix of ``text``.

    A text shorter than ``n`` yields itself as its only gram, so very short turns still compare.
    """
    norm = normalize(text, limit)
    if len(norm) <= n:
        return frozenset((norm,)) if norm else frozenset()
    return frozenset(norm[i : i + n] for i in range(len(norm) - n + 1))


def is_cjk(token: str) -> bool:
    """True for a token with Chinese, Japanese or Korean characters (``tokens`` splits those into single
    characters, so their length says nothing about being a number or a short word)."""
    return _CJK.search(token) is not None


@lru_cache(maxsize=4096)
def tokens(text: str, limit: int = DEFAULT_LIMIT) -> frozenset[str]:
    """Word tokens of the normalised prefix; CJK runs are split into single characters."""
    out: set[str] = set()
    for tok in _TOKEN.findall(normalize(text, limit)):
        if _CJK.search(tok):
            out.update(tok)
        else:
            out.add(tok)
    return frozenset(out)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / |a ∪ b|; 0.0 when both are empty."""
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def containment(a: frozenset[str], b: frozenset[str]) -> float:
    """|a ∩ b| / min(|a|, |b|): 1.0 when the smaller set lies inside the larger one."""
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def text_similarity(a: str, b: str, limit: int = DEFAULT_LIMIT) -> float:
    """Character-trigram Jaccard similarity of two texts' prefixes, in [0, 1].

    1.0 for identical prefixes (up to case and white space); cheap rejection when the lengths
    differ so much that the Jaccard bound (shorter/longer) is already small.
    """
    la, lb = min(len(a), limit), min(len(b), limit)
    if la == 0 or lb == 0:
        return 1.0 if la == lb and a.strip() == b.strip() else 0.0
    if min(la, lb) / max(la, lb) < 0.2:
        return 0.0
    return jaccard(char_ngrams(a, 3, limit), char_ngrams(b, 3, limit))


def overlap_profile(a: str, b: str, limit: int = DEFAULT_LIMIT) -> tuple[float, float]:
    """(trigram Jaccard, trigram containment) of two texts' prefixes.

    Containment catches a request re-sent with an added constraint ("X, but shorter"); the Jaccard
    tells a near-identical re-send from a partial overlap. Chinese/Japanese/Korean texts compare character
    bigrams: one of their characters carries about as much as three Latin letters.
    """
    cjk = _CJK.search(a, 0, limit) and _CJK.search(b, 0, limit)  # fast path: no CJK at all
    n = 2 if cjk and cjk_share(a, limit) > 0.5 and cjk_share(b, limit) > 0.5 else 3
    ga, gb = char_ngrams(a, n, limit), char_ngrams(b, n, limit)
    return jaccard(ga, gb), containment(ga, gb)


def new_tokens(current: str, previous: str, limit: int = DEFAULT_LIMIT) -> frozenset[str]:
    """Tokens of ``current`` that ``previous`` does not have (what a re-sent request changed)."""
    return tokens(current, limit) - tokens(previous, limit)


def shared_content_words(text: str, reference: str, min_len: int = 5) -> int:
    """How many distinct words of at least ``min_len`` characters ``text`` shares with ``reference``."""
    common = tokens(text) & tokens(reference, 1500)
    return sum(1 for t in common if len(t) >= min_len and not t.isdigit())


def cjk_share(text: str, limit: int = DEFAULT_LIMIT) -> float:
    """Share of the letters in the prefix of ``text`` that are Chinese, Japanese or Korean (0.0 when none)."""
    letters = [ch for ch in text[:limit] if ch.isalpha()]
    return sum(1 for ch in letters if _CJK.match(ch)) / len(letters) if letters else 0.0


def latin_share(text: str, limit: int = DEFAULT_LIMIT) -> float:
    """Share of the letters in the prefix of ``text`` that are Latin script (1.0 when it has none)."""
    letters = [ch for ch in text[:limit] if ch.isalpha()]
    if not letters:
        return 1.0
    return sum(1 for ch in letters if ch < "\u0250") / len(letters)
