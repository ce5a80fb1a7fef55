"""Backend ``openai``: the prompts sent to any OpenAI-compatible ``/v1/chat/completions`` server.

Requests go through the shared client (:mod:`natfeed.core.openai_client`): at most
``extract.openai.concurrency`` in flight, a per-request timeout, retries with backoff on timeouts, 429
and 5xx, and an immediate one-line error for what retrying cannot fix (connection refused, unknown host,
401/403/404). A request that still fails after ``max_retries`` stops the run with :class:`BackendError`
(finished shards are kept, so a rerun continues); any other 4xx is kept as a per-request failure and the
run goes on. The API key is read from the environment variable *named* by ``api_key_env``.

Answers are constrained where the server can: ``structured: vllm`` sends vLLM's ``structured_outputs``
(``choice`` in turn mode, ``json`` in paper mode), ``json_schema`` sends OpenAI's ``response_format``.
In turn mode ``logprobs`` gives the label's probability (the sum of its tokens' log-probs) as confidence.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from natfeed.core.errors import ServerError
from natfeed.core.openai_client import ClientConfig, OpenAIClient, Reply
from natfeed.extract.llm.base import Answer, LLMExtractor
from natfeed.extract.llm.prompts import Request

if TYPE_CHECKING:
    from natfeed.params import ExtractParams

log = logging.getLogger(__name__)


class BackendError(ServerError):
    """The server kept failing; rerun to continue (finished shards are kept)."""


class OpenAIExtractor(LLMExtractor):
    backend = "openai"

    def __init__(self, params: ExtractParams) -> None:
        super().__init__(params)
        self.cfg = params.openai
        self.client = OpenAIClient(ClientConfig.of(self.cfg, label="openai"))
        self.url = self.client.url

    @property
    def max_in_flight(self) -> int:
        """The most requests that were in flight at once (the concurrency bound is checked in tests)."""
        return self.client.max_in_flight

    def body(self, req: Request) -> dict[str, Any]:
        """The JSON body of one request."""
        llm = self.params.llm
        max_tokens = llm.max_new_tokens if req.mode == "turn" else llm.paper_max_new_tokens
        body: dict[str, Any] = {"model": llm.model, "messages": req.messages, "max_tokens": max_tokens,
                                "temperature": llm.temperature}
        if llm.temperature > 0:
            body["seed"] = llm.seed
        if req.mode == "turn" and self.cfg.logprobs:
            body["logprobs"] = True
        if self.cfg.structured == "vllm":
            body["structured_outputs"] = ({"choice": list(req.choices)} if req.choices
                                          else {"json": req.json_schema})
            if llm.ignore_eos:
                body["ignore_eos"] = True
        elif self.cfg.structured == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": _openai_schema(req)}
        body.update(self.cfg.extra_body)
        return body

    def generate(self, requests: list[Request]) -> list[Answer]:
        names = [f"{r.conversation_id} turn {r.user_turn}" for r in requests]
        replies = self.client.run([self.body(r) for r in requests], names)
        return [self._answer(req, reply) for req, reply in zip(requests, replies, strict=True)]

    def _answer(self, req: Request, reply: Reply) -> Answer:
        if reply.exhausted:
            raise BackendError(f"{self.url}: {reply.reason} after {reply.attempts} attempts (conversation "
                               f"{req.conversation_id}); rerun to continue from the finished shards")
        if reply.reason is not None:
            return Answer(text=reply.text, error=reply.reason)
        return _answer(reply.data or {}, req)


def _openai_schema(req: Request) -> dict[str, Any]:
    if req.choices:
        schema = {"type": "object", "properties": {"label": {"type": "string", "enum": list(req.choices)}},
                  "required": ["label"], "additionalProperties": False}
    else:
        schema = {"type": "object", "properties": {"feedback": req.json_schema}, "required": ["feedback"],
                  "additionalProperties": False}
    return {"name": f"natfeed_{req.mode}", "schema": schema, "strict": True}


def _answer(data: dict[str, Any], req: Request) -> Answer:
    """An Answer from a chat-completions response body."""
    try:
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
    except (KeyError, IndexError, TypeError, AttributeError):
        return Answer(text=str(data)[:2000], error="bad_response")
    usage = data.get("usage") or {}
    logprob = None
    content = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
    if req.mode == "turn" and content:
        try:
            logprob = float(sum(tok["logprob"] for tok in content))
        except (KeyError, TypeError, ValueError):
            logprob = None
    return Answer(text=text, logprob=logprob, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                  generated_tokens=int(usage.get("completion_tokens") or 0))
