"""The core every LLM backend shares: conversations -> requests -> answers -> detections, with counters.

A backend subclasses :class:`LLMExtractor` and implements ``generate(requests) -> list[Answer]`` (same
order, one answer per request). Everything else — prompts (:mod:`natfeed.extract.llm.prompts`), parsing and
span matching (:mod:`natfeed.extract.llm.parse`), the counters of the report and the raw answers that did
not parse — lives here, so all backends produce the same rows::

    class MyBackend(LLMExtractor):
        backend = "mine"
        def generate(self, requests: list[Request]) -> list[Answer]: ...

    ext = MyBackend(params)                 # params: ExtractParams (mode, llm, ...)
    detections = ext.extract(conversations)
    counters, failures = ext.take_stats()   # counters since the last call; failures: [ParseFailure]
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from natfeed.core.categories import NONE
from natfeed.core.conversation import Conversation, judged_turns
from natfeed.core.errors import BudgetStopped, UsageError
from natfeed.extract.base import Detection
from natfeed.extract.llm.cache import JudgementCache, model_fingerprint, request_key
from natfeed.extract.llm.parse import (
    ParseError,
    ParseFailure,
    match_spans,
    parse_paper_answer,
    parse_turn_label,
)
from natfeed.extract.llm.prompts import PROMPT_VERSION, PromptConfig, Request, build_requests

if TYPE_CHECKING:
    from natfeed.params import ExtractParams

log = logging.getLogger(__name__)

STAT_KEYS = ("requests", "cache_hits", "prompt_tokens", "generated_tokens", "parse_failures", "unmatched_spans")
"""The counters each LLM backend adds to the extract report: ``requests`` were sent to the model (the prompt and
generated tokens are theirs), ``cache_hits`` were answered from the judgement cache."""


class BudgetReached(BudgetStopped):
    """``extract.llm.max_requests`` new requests were sent: the run stops (exit 3), keeping what is done."""

    def __init__(self, sent: int) -> None:
        super().__init__(f"the budget of new requests is spent ({sent} sent in its last batch)")
        self.sent = sent


@dataclass
class Answer:
    """A backend's answer to one request."""

    text: str
    logprob: float | None = None
    """Log-probability of the answer (turn mode: of the label), when the backend gives it."""
    prompt_tokens: int = 0
    generated_tokens: int = 0
    error: str | None = None
    """The request failed for good (e.g. HTTP 400): kept as a failure, the run goes on."""
    raw_logprob: float | None = None
    """With calibration: the label's log-probability before it (``logprob`` is the calibrated one)."""

    def to_cache(self) -> dict[str, Any]:
        return {"text": self.text, "logprob": self.logprob, "prompt_tokens": self.prompt_tokens,
                "generated_tokens": self.generated_tokens, "raw_logprob": self.raw_logprob}

    @classmethod
    def from_cache(cls, value: dict[str, Any]) -> Answer | None:
        """The answer a cache entry holds, or None when it is not one."""
        text = value.get("text")
        probs = [value.get("logprob"), value.get("raw_logprob")]
        if not isinstance(text, str) or not all(p is None or isinstance(p, int | float) for p in probs):
            return None
        return cls(text=text, logprob=probs[0], raw_logprob=probs[1],
                   prompt_tokens=int(value.get("prompt_tokens") or 0),
                   generated_tokens=int(value.get("generated_tokens") or 0))


def prompt_config(params: ExtractParams, count_tokens: Callable[[str], int] | None = None) -> PromptConfig:
    """The prompt settings of ``params.llm`` for ``params.mode``."""
    llm = params.llm
    new = llm.max_new_tokens if params.mode == "turn" else llm.paper_max_new_tokens
    return PromptConfig(max_model_len=llm.max_model_len, max_new_tokens=new, context_turns=llm.context_turns,
                        count_tokens=count_tokens, system_prompt=llm.system_prompt)


def model_name(model: str) -> str:
    """A short model name for the ``extractor`` column: the last part of a path or hub id."""
    return Path(model.rstrip("/")).name or model


class LLMExtractor:
    """Base class of the LLM backends (see the module docstring)."""

    backend = "llm"
    resumable = True
    """extract_file writes this backend's work to resumable shards."""
    calibrates = False
    """Turn mode scores every allowed label, so extract.llm.calibration can divide by their prior."""

    def __init__(self, params: ExtractParams) -> None:
        if not params.llm.model:
            raise UsageError(f"backend {self.backend} needs a model: set extract.llm.model or pass --model")
        calibrated = params.llm.calibration != "none" and params.mode == "turn"
        if calibrated and not self.calibrates:
            raise UsageError(f"extract.llm.calibration: {params.llm.calibration} needs every label's probability: "
                             f"the transformers and vllm backends score them; {self.backend} returns only the "
                             "chosen label's (use calibration: none, or backend transformers or vllm)")
        self.params = params
        self.mode = params.mode
        self.identity = f"{self.backend}-{self.mode}:{model_name(params.llm.model)}"
        if calibrated:
            self.identity += f"+{params.llm.calibration}"
        self.counters: Counter[str] = Counter({k: 0 for k in STAT_KEYS})
        self.failures: list[ParseFailure] = []
        self.cache: JudgementCache | None = None
        self.budget: int | None = params.llm.max_requests
        """New requests this extractor may still send (None = no cap)."""
        self.sent = 0
        self._cache_parts: dict[str, Any] | None = None

    def use_cache(self, cache: JudgementCache | None) -> None:
        """Answer from (and fill) ``cache``; None = every request is sent."""
        self.cache, self._cache_parts = cache, None

    # -- what a backend implements ------------------------------------------------------------
    def count_tokens(self) -> Callable[[str], int] | None:
        """A tokenizer-based counter for truncation; None = the character estimate."""
        return None

    def generate(self, requests: list[Request]) -> list[Answer]:
        raise NotImplementedError

    def model_identity(self) -> dict[str, Any]:
        """What identifies the model in a cache key: its name, and the sha256 of its files when it is local."""
        return model_fingerprint(self.params.llm.model, self.cache)

    def request_identity(self, req: Request) -> dict[str, Any]:
        """What identifies one request in a cache key (the exact prompt and the allowed answers)."""
        return {"mode": req.mode, "messages": req.messages, "choices": list(req.choices or ()),
                "json_schema": req.json_schema}

    # -- shared --------------------------------------------------------------------------------
    def requests(self, conversations: Sequence[Conversation]) -> list[Request]:
        return build_requests(conversations, self.mode, prompt_config(self.params, self.count_tokens()))

    def cache_parts(self) -> dict[str, Any]:
        """The part of every key that is the same for the whole run: backend, model, the params that change
        answers (not those that only say how fast or where work runs), the prompt version."""
        if self._cache_parts is None:
            from natfeed.extract.checkpoint import backend_semantics, llm_semantics

            self._cache_parts = {"backend": self.backend, "identity": self.identity, "model": self.model_identity(),
                                 "prompt_version": PROMPT_VERSION, "llm": llm_semantics(self.params),
                                 "backend_params": backend_semantics(self.params, self.backend)}
        return self._cache_parts

    def cache_key(self, req: Request) -> str:
        return request_key({**self.cache_parts(), "request": self.request_identity(req)})

    def answers(self, requests: list[Request]) -> list[Answer]:
        """One answer per request: from the cache where it holds one, else from :meth:`generate` (then
        cached). Counts requests sent, cache hits and tokens; raises :class:`BudgetReached` once
        ``extract.llm.max_requests`` are sent and more would be needed (after caching those sent)."""
        if not requests:
            return []
        keys = [self.cache_key(r) for r in requests] if self.cache is not None else []
        found = self.cache.get_many(keys) if self.cache is not None else {}
        got: list[Answer | None] = [Answer.from_cache(found[k]) if k in found else None for k in keys] or \
            [None] * len(requests)
        misses = [i for i, a in enumerate(got) if a is None]
        hits = len(requests) - len(misses)
        stop = self.budget is not None and len(misses) > self.budget
        if stop:
            misses = misses[:self.budget]
        fresh = self.generate([requests[i] for i in misses]) if misses else []
        if len(fresh) != len(misses):
            raise RuntimeError(f"{self.backend}: {len(fresh)} answers for {len(misses)} requests")
        if self.cache is not None:
            self.cache.put_many((keys[i], self.identity, a.to_cache()) for i, a in zip(misses, fresh, strict=True)
                                if a.error is None)
            self.cache.count_hits(self.identity, hits)
        for i, a in zip(misses, fresh, strict=True):
            got[i] = a
            self.counters["requests"] += 1
            self.counters["prompt_tokens"] += a.prompt_tokens or requests[i].prompt_tokens
            self.counters["generated_tokens"] += a.generated_tokens
        self.sent += len(misses)
        if self.budget is not None:
            self.budget -= len(misses)
        if stop:
            raise BudgetReached(len(misses))
        self.counters["cache_hits"] += hits
        return [a for a in got if a is not None]

    def extract(self, conversations: Sequence[Conversation]) -> list[Detection]:
        requests = self.requests(conversations)
        answers = self.answers(requests)
        by_id = {c.conversation_id: c for c in conversations}
        out: list[Detection] = []
        for req, ans in zip(requests, answers, strict=True):
            if ans.error is not None:
                self._fail(req, ans.text, ans.error)
                continue
            conv = by_id[req.conversation_id]
            out.extend(self._turn(conv, req, ans) if req.mode == "turn" else self._paper(conv, req, ans))
        return out

    def take_stats(self) -> tuple[dict[str, int], list[ParseFailure]]:
        """Counters and failures since the last call (then reset)."""
        counters, failures = dict(self.counters), self.failures
        self.counters = Counter({k: 0 for k in STAT_KEYS})
        self.failures = []
        return counters, failures

    def _fail(self, req: Request, raw: str, reason: str) -> None:
        self.counters["parse_failures"] += 1
        self.failures.append(ParseFailure(req.conversation_id, req.user_turn, raw, reason, req.mode))

    def _turn(self, conv: Conversation, req: Request, ans: Answer) -> list[Detection]:
        try:
            label = parse_turn_label(ans.text, req.choices or ())
        except ParseError as err:
            self._fail(req, ans.text, err.reason)
            return []
        if label == NONE:
            return []
        turn = next(t for t in judged_turns(conv) if t.user_turn == req.user_turn)
        conf = math.exp(ans.logprob) if ans.logprob is not None else 1.0
        cue = f"{self.backend} label" + (f" p={conf:.3f}" if ans.logprob is not None else "")
        if ans.raw_logprob is not None:
            cue += f" raw p={math.exp(ans.raw_logprob):.3f}"  # the uncalibrated probability, kept beside
        return [Detection(turn, label, conf, cue)]

    def _paper(self, conv: Conversation, req: Request, ans: Answer) -> list[Detection]:
        try:
            items = parse_paper_answer(ans.text)
        except ParseError as err:
            self._fail(req, ans.text, err.reason)
            return []
        match = match_spans(conv, items)
        self.counters["unmatched_spans"] += len(match.unmatched)
        return [Detection(turn, cat, 1.0, f"{self.backend} span: {span[:120]}") for turn, cat, span in match.matched]


class LocalTokenizerExtractor(LLMExtractor):
    """LLM backends that tokenize here (transformers, vllm): the model's own tokenizer and chat template,
    loaded lazily (a resumed run whose shards are all done never loads it); prompts become token ids cut
    from the left so that the prompt plus the answer fit ``max_model_len``."""

    def __init__(self, params: ExtractParams) -> None:
        super().__init__(params)
        self._tokenizer: Any = None

    def tokenizer_path(self) -> str:
        return self.params.llm.model

    def prepare_tokenizer(self, tokenizer: Any) -> Any:
        """Backend-specific settings (padding side, pad token)."""
        return tokenizer

    def answer_tokens(self, req: Request) -> int:
        """The most tokens an answer to ``req`` may take."""
        raise NotImplementedError

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(self.tokenizer_path())
            if not tok.chat_template:
                raise UsageError(f"{self.params.llm.model} has no chat template: use an instruct/chat model")
            self._tokenizer = self.prepare_tokenizer(tok)
        return self._tokenizer

    def count_tokens(self) -> Callable[[str], int]:
        tok = self.tokenizer
        return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, req: Request) -> list[int]:
        """Token ids of the chat-templated request, cut in the middle (:func:`fit`) if the estimate still
        overflowed."""
        text = self.tokenizer.apply_chat_template(req.messages, add_generation_prompt=True, tokenize=False)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return fit(ids, self.params.llm.max_model_len - self.answer_tokens(req))


def fit(ids: list[int], limit: int) -> list[int]:
    """``ids`` within ``limit`` tokens: the first and the last half kept. The head is the guideline text (and
    the shared prefix the engine caches), the tail the judged turn or the conversation's end and the
    generation prompt; a cut from the left lost the guidelines of the longest paper-mode prompts."""
    if len(ids) <= limit:
        return ids
    head = limit // 2
    return ids[:head] + ids[len(ids) - (limit - head):]
