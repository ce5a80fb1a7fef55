"""The one HTTP client for OpenAI-compatible ``/v1/chat/completions`` servers (vllm serve, TGI, hosted APIs).

Used by the ``openai`` extract backend and by the LLM judge of ``evaluate``. Async (httpx) with at most
``concurrency`` requests in flight and a per-request timeout. What retrying can fix is retried with
exponential backoff and jitter (``Retry-After`` wins), one log line per retry: timeouts, a dropped
connection, HTTP 429 and 5xx. What it cannot fix fails on the first try with one line that says what to
do (:class:`EndpointError`): connection refused, an unknown host, HTTP 401/403 (the key) and 404 (the URL
or model). Any other 4xx is returned as a failed :class:`Reply` for the caller to keep.

The API key is read from the environment variable *named* by ``api_key_env`` and only ever put in the
Authorization header: it is never logged, stored or shown in an error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from natfeed.core.errors import ServerError

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
DNS_HINTS = ("name or service not known", "nodename nor servname", "temporary failure in name resolution",
             "no address associated", "getaddrinfo failed")


class EndpointError(ServerError):
    """The server cannot be used at all (unreachable, wrong key, URL or model): retrying will not help."""


def _httpx() -> Any:
    """httpx2 (pydantic's httpx fork, same API; comes with huggingface-hub), else httpx; imported on use."""
    try:
        import httpx2 as httpx
    except ImportError:  # pragma: no cover
        import httpx  # type: ignore[no-redef]
    return httpx


@dataclass(frozen=True)
class Reply:
    """The outcome of one request after its retries."""

    data: dict[str, Any] | None = None
    """The parsed JSON body of a 200 answer; None otherwise."""
    reason: str | None = None
    """Why it failed (``http_400``, ``timeout``, ``bad_json``, ...); None when it succeeded."""
    text: str = ""
    """The response text of a failed answer (first 2,000 characters)."""
    exhausted: bool = False
    """It failed with a retryable reason every time up to ``max_retries``."""
    attempts: int = 1


@dataclass(frozen=True)
class ClientConfig:
    """Where and how to send requests (the extract backend's and the judge's params both map to this)."""

    base_url: str
    api_key_env: str | None = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    concurrency: int = 8
    require_key: bool = False
    """Fail at once when ``api_key_env`` names an unset variable (a hosted judge always needs its key)."""
    label: str = "openai"
    """How log lines and errors name this client (``openai``, ``judge``)."""

    @classmethod
    def of(cls, endpoint: Any, label: str, require_key: bool = False) -> ClientConfig:
        """The settings of an endpoint's params (``natfeed.params.endpoint.EndpointParams``: extract.openai and
        evaluate.llm_judge share the names)."""
        return cls(base_url=endpoint.base_url, api_key_env=endpoint.api_key_env, timeout_s=endpoint.timeout_s,
                   max_retries=endpoint.max_retries, backoff_s=endpoint.backoff_s,
                   max_backoff_s=endpoint.max_backoff_s, concurrency=endpoint.concurrency,
                   require_key=require_key, label=label)


class OpenAIClient:
    """``client.run([body, ...])`` -> one :class:`Reply` per body, in order (bounded concurrency)."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.stats: Counter[str] = Counter({"requests": 0, "retries": 0, "failed": 0})
        self.in_flight = 0
        self.max_in_flight = 0
        self._headers = {"Content-Type": "application/json"}
        key = os.environ.get(config.api_key_env) if config.api_key_env else None
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        elif config.require_key and config.api_key_env:
            raise EndpointError(f"{config.label}: needs an API key in the environment variable "
                                f"{config.api_key_env} (set it, or set api_key_env: null for an endpoint "
                                "without authentication)")

    def __repr__(self) -> str:  # never the headers
        return f"OpenAIClient(url={self.url!r})"

    @property
    def has_key(self) -> bool:
        return "Authorization" in self._headers

    def run(self, bodies: Sequence[dict[str, Any]], what: Sequence[str] | None = None) -> list[Reply]:
        """Send every body (``what[i]`` names request i in log lines); raises :class:`EndpointError`."""
        return asyncio.run(self._run(bodies, what))

    async def _run(self, bodies: Sequence[dict[str, Any]], what: Sequence[str] | None) -> list[Reply]:
        httpx = _httpx()
        sem = asyncio.Semaphore(self.config.concurrency)
        limits = httpx.Limits(max_connections=self.config.concurrency)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.config.timeout_s), limits=limits) as http:
            tasks = [self._post(http, sem, body, what[i] if what else "") for i, body in enumerate(bodies)]
            return list(await asyncio.gather(*tasks))

    async def _post(self, http: Any, sem: asyncio.Semaphore, body: dict[str, Any], what: str) -> Reply:
        cfg = self.config
        reason, text = "no attempt", ""
        for attempt in range(cfg.max_retries + 1):
            async with sem:
                reason, text, retry_after, reply = await self._attempt(http, body, attempt)
            if reply is not None:
                return reply
            if attempt < cfg.max_retries:
                delay = self._delay(attempt, retry_after)
                self.stats["retries"] += 1
                log.warning("%s: %s%s; retry %d/%d in %.1fs", cfg.label, reason, f" on {what}" if what else "",
                            attempt + 1, cfg.max_retries, delay)
                await asyncio.sleep(delay)
        self.stats["failed"] += 1
        return Reply(reason=reason, text=text, exhausted=True, attempts=cfg.max_retries + 1)

    async def _attempt(self, http: Any, body: dict[str, Any], attempt: int
                       ) -> tuple[str, str, str | None, Reply | None]:
        """One try: (reason, text, Retry-After, None) to retry, or (.., a final Reply)."""
        httpx = _httpx()
        self.stats["requests"] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            response = await http.post(self.url, json=body, headers=self._headers)
        except httpx.TimeoutException:
            return "timeout", "", None, None
        except httpx.ConnectError as err:
            raise EndpointError(self._unreachable(err)) from None
        except httpx.TransportError as err:
            return f"connection error ({type(err).__name__})", "", None, None
        finally:
            self.in_flight -= 1
        status = response.status_code
        if status == 200:
            try:
                return "", "", None, Reply(data=response.json(), attempts=attempt + 1)
            except ValueError:
                return "bad_json", "", None, Reply(reason="bad_json", text=response.text[:2000],
                                                   attempts=attempt + 1)
        if status in (401, 403, 404):
            raise EndpointError(self._rejected(status, body.get("model")))
        if status in RETRY_STATUS:
            return f"http_{status}", response.text[:2000], response.headers.get("retry-after"), None
        self.stats["failed"] += 1
        return "", "", None, Reply(reason=f"http_{status}", text=response.text[:2000], attempts=attempt + 1)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        cfg = self.config
        try:
            if retry_after is not None:
                return max(0.0, min(cfg.max_backoff_s, float(retry_after)))
        except ValueError:  # an HTTP date: fall back to the exponential schedule
            pass
        return min(cfg.max_backoff_s, cfg.backoff_s * 2**attempt) * (0.5 + random.random() / 2)

    def _unreachable(self, err: Exception) -> str:
        base = self.config.base_url
        if any(hint in str(err).lower() for hint in DNS_HINTS):
            return (f"cannot reach {base}: unknown host {urlsplit(base).hostname!r} — check the base_url "
                    f"({self.config.label})")
        return f"cannot reach {base}: connection refused — is the server running? ({self.config.label})"

    def _rejected(self, status: int, model: Any) -> str:
        cfg = self.config
        if status == 404:
            return (f"{self.url} answered HTTP 404 for model {model!r}: check the base_url (it ends in /v1) and "
                    f"that the server serves this model ({cfg.label})")
        key = f"the key in {cfg.api_key_env}" if cfg.api_key_env else "the key (api_key_env is null: none sent)"
        return f"{self.url} answered HTTP {status} for model {model!r}: check {key} ({cfg.label})"
