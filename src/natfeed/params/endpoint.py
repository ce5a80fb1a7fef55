"""One set of settings for every OpenAI-compatible endpoint natfeed talks to: the extract backend ``openai``
(``extract.openai``) and the LLM judge (``evaluate.llm_judge``) share these names; each keeps its own
defaults. ``natfeed.core.openai_client.ClientConfig.of`` builds the client's settings from them.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import Field, model_validator

from natfeed.params.base import Section

log = logging.getLogger(__name__)

RENAMED = {"max_concurrency": "concurrency"}
"""Old key -> the shared name (evaluate.llm_judge.max_concurrency was the judge's own name)."""


class EndpointParams(Section):
    """Where an OpenAI-compatible /v1/chat/completions endpoint is and how to talk to it."""

    base_url: str = Field("http://127.0.0.1:8000/v1", description="API root; requests go to "
                          "{base_url}/chat/completions")
    api_key_env: str | None = Field("OPENAI_API_KEY", description="NAME of the environment variable holding the "
                                    "key (never in params, logs or reports); null or unset variable = no key")
    concurrency: int = Field(16, gt=0, description="Requests in flight at once")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout")
    max_retries: int = Field(5, ge=0, description="Retries on timeouts, connection errors, 429 and 5xx")
    backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles each retry (Retry-After wins)")
    max_backoff_s: float = Field(60.0, ge=0, description="Longest retry delay")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for old, new in RENAMED.items():
            if old in data:
                if new in data:
                    raise ValueError(f"{old} and {new} are the same setting: keep only {new}")
                log.warning("params: %s is deprecated, read as %s (the name every endpoint shares): rename it",
                            old, new)
                data = {**{k: v for k, v in data.items() if k != old}, new: data[old]}
        return data
