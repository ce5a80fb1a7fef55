"""Backend ``openai``: the prompts sent to any OpenAI-compatible ``/v1/chat/completions`` server.

Async (aiohttp) with at most ``extract.openai.concurrency`` requests in flight, a per-request timeout,
and retries with exponential backoff (``Retry-After`` wins) on timeouts, connection errors, 429 and 5xx.
A request that still fails after ``max_retries`` stops the run with :class:`BackendError` (finished shards
are kept, so a rerun continues); any other 4xx is kept as a per-request failure and the run goes on.
The API key is read from the environment variable *named* by ``api_key_env`` and only ever put in the
Authorization header: it is never logged, stored in params, reports or MLflow.

Answers are constrained where the server can: ``structured: vllm`` sends vLLM's ``structured_outputs``
(``choice`` in turn mode, ``json`` in paper mode), ``json_schema`` sends OpenAI's ``response_format``.
In turn mode ``logprobs`` gives the label's probability (the sum of its tokens' log-probs) as confidence.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from typing import TYPE_CHECKING, Any

from natfeed.extract.llm import Answer, LLMExtractor
from natfeed.extract.prompts import Request

if TYPE_CHECKING:
    import aiohttp

    from natfeed.config import ExtractParams

log = logging.getLogger(__name__)


class BackendError(RuntimeError):
    """The server kept failing; rerun to continue (finished shards are kept)."""


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class OpenAIExtractor(LLMExtractor):
    backend = "openai"

    def __init__(self, params: ExtractParams) -> None:
        super().__init__(params)
        self.cfg = params.openai
        self.url = self.cfg.base_url.rstrip("/") + "/chat/completions"
        self.in_flight = 0
        self.max_in_flight = 0
        """The most requests that were in flight at once (the concurrency bound is checked in tests)."""

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.cfg.api_key_env) if self.cfg.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

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
        return asyncio.run(self._generate(requests))

    async def _generate(self, requests: list[Request]) -> list[Answer]:
        import aiohttp

        sem = asyncio.Semaphore(self.cfg.concurrency)
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_s)
        connector = aiohttp.TCPConnector(limit=self.cfg.concurrency)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            return list(await asyncio.gather(*(self._one(session, sem, r) for r in requests)))

    async def _one(self, session: aiohttp.ClientSession, sem: asyncio.Semaphore, req: Request) -> Answer:
        import aiohttp

        body, headers = self.body(req), self._headers()
        reason = ""
        for attempt in range(self.cfg.max_retries + 1):
            retry_after: float | None = None
            async with sem:
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    async with session.post(self.url, json=body, headers=headers) as resp:
                        if resp.status == 200:
                            return _answer(await resp.json(content_type=None), req)
                        text = await resp.text()
                        if not _retryable(resp.status):
                            return Answer(text=text[:2000], error=f"http_{resp.status}")
                        reason, retry_after = f"http_{resp.status}", _seconds(resp.headers.get("Retry-After"))
                except (TimeoutError, aiohttp.ClientError, ValueError) as err:
                    reason = type(err).__name__
                finally:
                    self.in_flight -= 1
            if attempt < self.cfg.max_retries:
                delay = min(self.cfg.max_backoff_s, self.cfg.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
                delay = retry_after if retry_after is not None else delay
                log.warning("openai: %s on %s turn %s; retry %d/%d in %.1fs", reason, req.conversation_id,
                            req.user_turn, attempt + 1, self.cfg.max_retries, delay)
                await asyncio.sleep(delay)
        raise BackendError(f"{self.url}: {reason} after {self.cfg.max_retries + 1} attempts "
                           f"(conversation {req.conversation_id}); rerun to continue from the finished shards")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


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
