"""Multilingual heuristic classifier of naturally occurring feedback (Don-Yehiya et al., 2024).

For one user turn it weighs cheap signals — cue lexicons (``lexicons.py``) weighted by where the cue
sits, the shape of the turn (a short question about the reply, a negation aimed at it, an error paste
after code) and similarity to the user's earlier turns (``similarity.py``) — and returns one of the
five categories or ``None``. When several categories fire, the PRIORITY rule of the guidelines picks
the strongest negative one. Only a bounded head (and tail) of each text is read, so the cost per turn
stays flat however much the user pasted.

With ``use_embeddings`` the rephrase questions the trigrams leave open — a middle Jaccard band that may
be a rephrase in other words, or a trigram rephrase that may be a new request on the same template —
are settled by sentence-embedding cosine (``semantic.py``), in one batch per :meth:`classify_batch`,
and only where the answer can change the turn's category.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from natfeed.core.categories import PRIORITY
from natfeed.extract.heuristic import lexicons as lx
from natfeed.extract.heuristic.cuematch import CueMatcher, LiteralScanner, StartMatcher
from natfeed.extract.heuristic.similarity import (
    is_cjk,
    latin_share,
    new_tokens,
    overlap_profile,
    shared_content_words,
)
from natfeed.extract.heuristic.version import heuristic_version
from natfeed.params.heuristic import HeuristicParams

REPHRASE = "repeat_or_rephrase"
CORRECTION = "make_aware_with_correction"
COMPLAINT = "make_aware_without_correction"
CLARIFY = "ask_for_clarification"
POSITIVE = "positive_feedback"


@dataclass(frozen=True)
class TurnDecision:
    """The classifier's answer for one user turn."""

    category: str | None
    confidence: float
    cue: str


@dataclass(frozen=True)
class _Signal:
    category: str
    confidence: float
    cue: str


_POS_START = StartMatcher(lx.POSITIVE_START)
_POS_ANY = CueMatcher(lx.POSITIVE_ANY)
_COMP_START = StartMatcher(lx.COMPLAINT_START)
_COMP_ANY = CueMatcher(lx.COMPLAINT_ANY)
_CORR_ANY = CueMatcher(lx.CORRECTION_ANY)
_CLAR_ANY = CueMatcher(lx.CLARIFY_ANY)
_WHY = CueMatcher(lx.WHY_CUES)
_DEICTIC = CueMatcher(lx.DEICTIC)
_SELF = CueMatcher(lx.SELF_CORRECTION)
_CONT_ONLY = re.compile(
    rf"^\W*(?:please\W*)?(?:{'|'.join(p for ps in lx.CONTINUATION.values() for p in ps)})\W*(?:please)?\W*$"
)
_RETRY = CueMatcher(lx.RETRY)
_REFUSAL = CueMatcher(lx.REFUSAL)
_ERROR = CueMatcher({"code": lx.ERROR_OUTPUT})
_REPLY_ASKS = re.compile("|".join(lx.REPLY_ASKS_USER))
_HEAD_SCAN = LiteralScanner(
    set().union(
        *(
            m.owners
            for m in (_POS_ANY, _COMP_ANY, _CORR_ANY, _CLAR_ANY, _WHY, _DEICTIC, _SELF, _RETRY, _ERROR)
        )
    )
)
_ANY_TABLES: tuple[tuple[CueMatcher, str, str, float], ...] = (
    (_COMP_ANY, COMPLAINT, "complaint", 0.75),
    (_CORR_ANY, CORRECTION, "correction", 0.7),
    (_CLAR_ANY, CLARIFY, "clarify", 0.78),
)
_CODE = re.compile("|".join(lx.CODE_IN_REPLY), re.MULTILINE)
_GREETING = re.compile(
    r"how (?:can|may) i (?:help|assist)|what can i do for you|有什么(?:可以|能)帮|чем (?:я )?могу (?:вам |тебе )?помочь"
    r"|en qué puedo ayudar|comment puis-je vous aider|wie kann ich (?:dir|ihnen) helfen|como posso (?:te )?ajudar"
)
_QUOTED = re.compile(r"[\"“«'‘「]([^\"”»'’」\n]{3,80})[\"”»'’」]")
_QUESTION_START = re.compile(
    r"^\W*(?:why|how|what|which|is|are|does|do|did|can|could|should|would|where|when|who|"
    r"为什么|为啥|怎么|什么|почему|как|что|зачем|por ?qu[eé]|c[oó]mo|qu[eé]|pourquoi|comment|warum|wie|was|porque)(?!\w)"
)
_WORDS = re.compile(r"\w+")
_TERM_QUESTION = re.compile(
    r"^\W*(?:what(?:'s| is| are| does) (?:an? |the )?|explain (?:more )?(?:on |about )?(?:why )?|"
    r"что (?:такое|значит) |qu'est-ce que |qué es (?:el |la |un |una )?|was (?:ist|bedeutet) (?:ein |eine |der |die |das )?)"
    r"(?P<term>[^?？\n]{2,40}?)(?: mean| means| command)?\W*$"
)
_REVISION = re.compile(
    r"^\W*(?:please |pls )?(?:make|keep|change|rewrite|re write|write|shorten|simplify|do) (?:it|this|that|the (?!following)\w+|in)\b.{0,40}?"
    r"\b(?:more|less|shorter|longer|simpler|simple|simplicity|easier|better|(?:one|two|three|\d+) (?:words|lines|sentences))\b"
    r"|^\W*(?:shorter|longer|simpler|more \w+|less \w+)\W*$"
    r"|^\W*(?:сделай|перепиши|измени|упрости|сократи)\w*.{0,30}?(?:коро\w+|проще|длинн\w+|более|менее|подробн\w+)"
    r"|^\W*(?:再|改得?|写得?)(?:短|长|简单|详细|正式)"
    r"|^\W*(?:hazlo|haz|reescribe|cambia)\w*.{0,30}?(?:más|menos)"
    r"|^\W*(?:rends|réécris|fais)\w*.{0,30}?(?:plus|moins)"
    r"|^\W*(?:mach|schreibe?|ändere)\w*.{0,40}?(?:\w+er\b|kürzer|einfacher|länger)"
    r"|^\W*(?:faça|deixe|reescreva)\w*.{0,30}?(?:mais|menos)"
)


_FILLER = frozenset(
    ["like", "that", "this", "it", "so", "just", "again", "please", "and", "but", "ok", "okay", "all", "at", "now", "then", "too", "again", "here", "there"]
)
_SPACED_WORDS = re.compile(r"[^\W\d_]+")


def _foreign_languages(head: str) -> frozenset[str]:
    """The gated cue languages (``lexicons.GATED``) an English-reading turn is not written in."""
    words = _SPACED_WORDS.findall(head[:200])
    english = sum(w in lx.STOPWORDS["en"] for w in words)
    if english < 2:
        return frozenset()
    return frozenset(
        lang for lang in lx.GATED if sum(w in lx.STOPWORDS[lang] for w in words) < english
    )


def _position_weight(pos: int, length: int, p: HeuristicParams) -> float:
    """How much a cue at ``pos`` of a turn of ``length`` characters says about the whole turn."""
    if pos <= p.start_window:
        return 0.9 if length > p.long_turn_chars else 1.0
    if length > p.long_turn_chars:
        return 0.55
    if length <= p.short_turn_chars:
        return 0.92
    return 0.8 if pos <= 150 else 0.65


@dataclass(frozen=True)
class _Turn:
    """The parts of one classification input that the checks share."""

    text: str  # the stripped user turn
    head: str  # its lower-cased head
    present: set[str]  # cue literals found in the head
    reply: str
    reply_head: str
    skip: frozenset[str] = frozenset()  # cue languages this turn is not written in (``lexicons.GATED``)

    @property
    def is_question(self) -> bool:
        """Whether the head asks something (question mark or an opening question word)."""
        return "?" in self.head or "？" in self.head or _QUESTION_START.search(self.head) is not None


@dataclass(frozen=True)
class _Open:
    """A rephrase question the cheap signals leave open, for the embedding check to settle."""

    text: str
    prev: str  # the earlier user turn it shares most character trigrams with
    threshold: float  # embedding cosine that settles it
    veto: _Signal | None = None  # a trigram rephrase dropped below the threshold; None: one is added above it

    def settled(self, signals: list[_Signal], cosine: float) -> list[_Signal]:
        """The signals once the embedding cosine of the two turns is known."""
        if self.veto is not None:
            return [s for s in signals if s != self.veto] if cosine < self.threshold else signals
        if cosine >= self.threshold:
            return signals + [_Signal(REPHRASE, 0.6, f"semantic:{cosine:.2f}")]
        return signals


@dataclass
class _Draft:
    """A turn's signals before the decision."""

    turn: _Turn
    signals: list[_Signal]
    open: _Open | None = None


class HeuristicClassifier:
    """Cue-lexicon + structure + similarity classifier of a user turn's feedback category."""

    name = "heuristic"

    def __init__(self, params: HeuristicParams | None = None) -> None:
        self.params = params or HeuristicParams()
        # derived from the code, lexicons and params (see version.py): a rule change changes it
        self.version = heuristic_version(self.params)

    def classify(self, user_text: str, prev_reply: str, earlier_user: Sequence[str]) -> TurnDecision:
        """Decide the feedback category of ``user_text`` given the reply before it and the earlier user turns.

        For a non-feedback turn (category None) the confidence is that the turn is *not* feedback.
        """
        return self.classify_batch([(user_text, prev_reply, earlier_user)])[0]

    def classify_batch(self, turns: Sequence[tuple[str, str, Sequence[str]]]) -> list[TurnDecision]:
        """:meth:`classify` for many (user text, previous reply, earlier user turns) at once.

        With ``use_embeddings`` the turns the cheap signals leave undecided are embedded in one batch.
        """
        drafts = [self._draft(*t) for t in turns]
        if self.params.use_embeddings:
            self._settle([d for d in drafts if isinstance(d, _Draft) and d.open is not None])
        return [d if isinstance(d, TurnDecision) else self._decide(d.signals, d.turn) for d in drafts]

    def _draft(self, user_text: str, prev_reply: str, earlier_user: Sequence[str]) -> TurnDecision | _Draft:
        """The turn's signals, or its decision when a shortcut settles it."""
        p = self.params
        stripped = user_text.strip()
        if not stripped:
            return TurnDecision(None, 1.0, "empty")
        head = stripped[: p.head_chars].lower()
        reply_head = prev_reply[:300].lower()
        if len(prev_reply) < 200 and _GREETING.search(reply_head):
            return TurnDecision(None, 1.0, "after-greeting")
        if len(head) < 40 and _CONT_ONLY.match(head):
            return TurnDecision(None, 1.0, "continuation")
        turn = _Turn(stripped, head, _HEAD_SCAN.present(head), prev_reply, reply_head, _foreign_languages(head))
        signals = self._lexical_signals(turn)
        structural, open_ = self._structural_signals(turn, earlier_user)
        signals += structural
        if open_ is not None and not self._matters(open_, signals, turn):
            open_ = None  # either answer leaves the category as it is: no need to embed
        return _Draft(turn, signals, open_)

    def _matters(self, open_: _Open, signals: list[_Signal], turn: _Turn) -> bool:
        """Whether settling ``open_`` one way or the other can change the turn's category."""
        low, high = open_.settled(signals, -1.0), open_.settled(signals, 1.0)
        return self._decide(low, turn).category != self._decide(high, turn).category

    def _settle(self, drafts: list[_Draft]) -> None:
        """Answer the drafts' open rephrase questions with sentence-embedding cosines (one batch)."""
        from natfeed.extract.heuristic.semantic import cosines

        opens = [d.open for d in drafts if d.open is not None]
        if not opens:
            return
        sims = cosines([(o.text, o.prev) for o in opens], self.params.similarity_chars)
        for d, open_, cos in zip(drafts, opens, sims, strict=True):
            d.signals = open_.settled(d.signals, cos)

    # ---------------------------------------------------------------- lexical

    def _cue(
        self, matcher: CueMatcher | StartMatcher, turn: _Turn, name: str, base: float
    ) -> tuple[float, str, int]:
        """(confidence, cue, end offset) of the first cue of ``matcher`` in the turn's head; (0, "", -1) if none."""
        m = (
            matcher.search(turn.head, turn.skip)
            if isinstance(matcher, StartMatcher)
            else matcher.search(turn.head, turn.present, turn.skip)
        )
        if m is None:
            return 0.0, "", -1
        start, end, lang, word = m
        weight = _position_weight(start, len(turn.text), self.params)
        return base * weight, f"lexicon:{lang}:{name}:{word.strip()[:24]}", end

    def _lexical_signals(self, turn: _Turn) -> list[_Signal]:
        p = self.params
        out: list[_Signal] = []
        # an opening "no"/"correct" may answer a question the assistant asked rather than judge the reply
        start_scale = 0.65 if turn.reply.rstrip()[-1:] in "?？" else 1.0
        conf, cue, _ = self._cue(_POS_START, turn, "positive", 0.85 * start_scale)
        if not conf and (len(turn.text) <= 300 or not turn.is_question):
            conf, cue, _ = self._cue(_POS_ANY, turn, "positive", 0.8)
            if turn.is_question and conf < 0.8:
                conf = 0.0  # praise words inside a question are usually quoted or hypothetical
        if conf:
            out.append(_Signal(POSITIVE, conf, cue))
        conf, cue, end = self._cue(_COMP_START, turn, "complaint", 0.8 * start_scale)
        if conf:
            out.append(self._complaint(turn, conf, cue, end))
        for matcher, category, name, base in _ANY_TABLES:
            conf, cue, end = self._cue(matcher, turn, name, base)
            if not conf or (category == CLARIFY and len(turn.text) > p.long_turn_chars):
                continue
            if category != CLARIFY and turn.is_question and not self._points_at_reply(turn):
                continue  # "what happens if it lacks vitamin D?": a question about new content
            opening = category == COMPLAINT and end <= p.start_window + 25
            out.append(self._complaint(turn, conf, cue, end) if opening else _Signal(category, conf, cue))
        if len(turn.text) > p.head_chars and p.tail_chars:
            out += self._tail_signals(turn.text[-p.tail_chars :].lower())
        return out

    def _complaint(self, turn: _Turn, conf: float, cue: str, end: int) -> _Signal:
        """An opening complaint; followed by a statement of what is right, it is a correction.

        "That's wrong, the capital is Canberra." gives the fix; "It doesn't work like that, you did
        it wrong." only complains twice: complaint cues and filler words after the first do not count.
        """
        rest = turn.head[end : end + 200]
        again = _COMP_ANY.search(rest, skip=turn.skip)
        if again is not None:
            rest = rest[: again[0]] + " " + rest[again[1] :]
        words = [w for w in _WORDS.findall(rest) if w not in _FILLER]
        if len(words) >= 4 and "?" not in rest and "error" not in cue:
            return _Signal(CORRECTION, conf * 0.85, cue + "+detail")
        return _Signal(COMPLAINT, conf, cue)

    def _points_at_reply(self, turn: _Turn) -> bool:
        """Whether the turn refers back to the reply (this/that/you, or two content words taken from it)."""
        if _DEICTIC.search(turn.head, turn.present, turn.skip) is not None:
            return True
        return shared_content_words(turn.text, turn.reply) >= 2

    def _tail_signals(self, tail: str) -> list[_Signal]:
        """Complaints written after a pasted block ("<code> ... this doesn't work")."""
        m = _COMP_ANY.search(tail)
        return [] if m is None else [_Signal(COMPLAINT, 0.55, f"tail:{m[2]}:complaint:{m[3][:24]}")]

    # ---------------------------------------------------------------- structure

    def _structural_signals(self, turn: _Turn, earlier: Sequence[str]) -> tuple[list[_Signal], _Open | None]:
        out, open_ = self._rephrase_signals(turn, earlier)
        for check in (self._question_about_reply, self._error_paste, self._revision_request):
            sig = check(turn, earlier)
            if sig is not None:
                out.append(sig)
        m = _RETRY.search(turn.head, turn.present)
        if m is not None and len(turn.text) <= self.params.short_turn_chars:
            out.append(_Signal(REPHRASE, 0.7, f"retry:{m[2]}:{m[3][:24]}"))
        return out, open_

    def _similarity(self, text: str, prev: str) -> tuple[float, float]:
        """(Jaccard, containment) of two turns; long turns must match at both ends."""
        n = self.params.similarity_chars
        la, lb = min(len(text), n), min(len(prev), n)
        if min(la, lb) < 0.3 * max(la, lb):
            return 0.0, 0.0  # too different in length to be a re-send
        jac, cont = overlap_profile(text, prev, n)
        if jac > 0.3 and (len(text) > n or len(prev) > n):
            tail_jac, tail_cont = overlap_profile(text[-n:], prev[-n:], n)
            jac, cont = min(jac, max(tail_jac, tail_cont)), min(cont, tail_cont)
        return jac, cont

    def _rephrase_signals(self, turn: _Turn, earlier: Sequence[str]) -> tuple[list[_Signal], _Open | None]:
        """Similarity of this turn to the latest earlier user turns, and what embeddings should settle."""
        p = self.params
        best, best_cont, best_prev = 0.0, 0.0, ""
        for prev in list(earlier)[-p.compare_turns :]:
            if prev.strip():
                jac, cont = self._similarity(turn.text, prev)
                if (jac, cont) > (best, best_cont):
                    best, best_cont, best_prev = jac, cont, prev
        if not best_prev or best < 0.3:
            return [], None
        refused = _REFUSAL.search(turn.reply_head) is not None
        if best >= p.repeat_similarity and (len(turn.text) >= 12 or refused):
            return [_Signal(REPHRASE, 0.9, f"repeat:{best:.2f}")], None
        changed = new_tokens(turn.text, best_prev, p.similarity_chars)
        numbers = any(t.isnumeric() for t in changed)  # isnumeric: also 八, 四, 十 (CJK numerals)
        if (
            changed
            and not refused
            and (all(t.isnumeric() or (len(t) <= 2 and not is_cjk(t)) for t in changed)
                 or (numbers and len(changed) <= 2)
                 or (len(changed) <= 2 and all(is_cjk(t) for t in changed)))  # CJK: single characters
        ):
            return [], None  # same template, new numbers: a new request ("... in 1986?")
        bonus = 0.15 if refused else 0.0
        sig: _Signal | None = None
        if best >= p.rephrase_similarity:
            scale = (best - p.rephrase_similarity) / max(1e-6, 1.0 - p.rephrase_similarity)
            sig = _Signal(REPHRASE, min(0.55 + 0.3 * scale + bonus, 0.9), f"rephrase:{best:.2f}")
        elif best_cont >= p.rephrase_containment:
            return [_Signal(REPHRASE, 0.6 + bonus, f"resend+:{best_cont:.2f}")], None
        elif refused:
            sig = _Signal(REPHRASE, 0.6, f"rephrase-after-refusal:{best:.2f}")
        if not p.use_embeddings or min(latin_share(t, p.similarity_chars) for t in (turn.text, best_prev)) < 0.7:
            return ([] if sig is None else [sig]), None  # MiniLM reads English: other scripts all look alike
        # the trigrams are unsure: same words may carry a new request, few shared ones a rephrase
        if sig is not None:
            return [sig], _Open(turn.text, best_prev, p.embed_veto_similarity, veto=sig)
        return [], _Open(turn.text, best_prev, p.embed_rephrase_similarity)

    def _question_about_reply(self, turn: _Turn, earlier: Sequence[str]) -> _Signal | None:
        """A short question that points back at the reply (deixis or words/quotes taken from it)."""
        if len(turn.text) > self.params.question_chars:
            return None
        why = _WHY.search(turn.head, turn.present)
        if not turn.is_question and why is None:
            return None
        reply_low = turn.reply[:3000].lower()
        for quoted in _QUOTED.findall(turn.head):
            if quoted.strip() and quoted.strip() in reply_low:
                return _Signal(CLARIFY, 0.62, "question:quotes-reply")
        if why is None:
            return self._term_question(turn)
        previous = earlier[-1] if earlier else ""
        refers = _DEICTIC.search(turn.head, turn.present) is not None
        shared = shared_content_words(turn.text, turn.reply) - shared_content_words(turn.text, previous)
        if refers or shared >= 2:
            return _Signal(CLARIFY, 0.58 if refers else 0.52, f"question:{why[2]}:{why[3][:16]}")
        return None

    def _term_question(self, turn: _Turn) -> _Signal | None:
        """A short "what is X?" / "explain why X" about a term the reply used: the reply was unclear to the user."""
        m = _TERM_QUESTION.match(turn.head)
        if m is None or len(turn.text) > 80:
            return None
        term = m.group("term").strip(" ?？.!")
        if len(term) < 2 or term not in turn.reply[:4000].lower():
            return None
        return _Signal(CLARIFY, 0.55, f"question:term:{term[:16]}")

    def _error_paste(self, turn: _Turn, earlier: Sequence[str]) -> _Signal | None:
        """Error output pasted right after the assistant gave code: the reply did not work."""
        m = _ERROR.search(turn.head, turn.present)
        if m is None or _CODE.search(turn.reply[:4000]) is None:
            return None
        return _Signal(COMPLAINT, 0.62, f"error-paste:{m[3][:24]}")

    def _revision_request(self, turn: _Turn, earlier: Sequence[str]) -> _Signal | None:
        """An order to redo the reply differently ("make it shorter", "re write in simplicity: <the reply>")."""
        m = _REVISION.search(turn.head)
        if m is None:
            return None
        if len(turn.text) > self.params.short_turn_chars and shared_content_words(turn.text, turn.reply) < 5:
            return None  # a long turn counts only when what follows the order is the reply pasted back
        return _Signal(CORRECTION, 0.53, f"revision:{m.group(0)[:24]}")

    # ---------------------------------------------------------------- decision

    def _decide(self, signals: list[_Signal], turn: _Turn) -> TurnDecision:
        """Apply the self-correction guard, the confidence floor and the PRIORITY rule."""
        if _SELF.search(turn.head, turn.present) is not None:
            signals = [s for s in signals if s.category in (POSITIVE, CLARIFY)]
        if _REPLY_ASKS.search(turn.reply[-400:].lower()) is not None:
            # the assistant asked for details: supplying them (even re-sending the request) is not feedback
            signals = [
                s if s.category in (POSITIVE, CLARIFY) else _Signal(s.category, s.confidence * 0.7, s.cue)
                for s in signals
            ]
        kept = [s for s in signals if s.confidence >= self.params.min_confidence]
        if not kept:
            best = max(signals, key=lambda s: s.confidence, default=None)
            if best is None:
                return TurnDecision(None, 1.0, "no-cue")
            return TurnDecision(None, round(1.0 - min(1.0, best.confidence), 3), "weak:" + best.cue)
        win = min(kept, key=lambda s: (PRIORITY.index(s.category), -s.confidence))
        return TurnDecision(win.category, round(min(1.0, max(0.0, win.confidence)), 3), win.cue)
