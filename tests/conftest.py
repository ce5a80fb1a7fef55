"""Shared fixtures: repository paths and the optional ../shared corpora."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NATFEED_SHARED", REPO.parent / "shared"))
CORPORA = SHARED / "corpora"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def corpora() -> Path:
    """../shared/corpora; the test is skipped where it is absent (users do not have it)."""
    if not (CORPORA / "wildchat_sample.jsonl").exists():
        pytest.skip("../shared/corpora is not available")
    return CORPORA


@pytest.fixture(scope="session")
def sample_raw() -> Path:
    """data/raw, the embedded sample: pulled once for the whole suite where a clone has not pulled it yet."""
    from tests.support.helpers import pull_sample

    return pull_sample()


def conv(cid: str, *turns: str, **extra: object) -> dict:
    """An LMSYS-shaped row from alternating user/assistant texts."""
    msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    row = {"conversation_id": cid, "model": "vicuna-13b", "conversation": msgs,
           "turn": sum(m["role"] == "user" for m in msgs), "language": "English",
           "openai_moderation": [{"flagged": False}] * len(msgs), "redacted": False}
    row.update(extra)
    return row


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path
