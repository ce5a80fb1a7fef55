"""Builders of small, valid frames for unit tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

from natfeed.core.categories import CODES, label_of


def feedback_frame(spec: list[tuple[str, int, str]], flagged: set[str] | None = None) -> pd.DataFrame:
    """Feedback rows from (conversation_id, feedback_turn, category) triples."""
    rows = []
    for cid, ft, cat in spec:
        prompt = []
        for k in range(1, ft + 1):
            prompt += [{"role": "user", "content": f"question {k}"}, {"role": "assistant", "content": f"answer {k}"}]
        prompt = prompt[:-1]
        rows.append({
            "conversation_id": cid, "feedback_turn": ft, "category": cat, "code": CODES[cat],
            "label": label_of(cat), "feedback_text": f"feedback on {ft}", "prompt": prompt,
            "response": f"answer {ft}", "extractor": "heuristic-test", "confidence": 0.8,
            "language": "English", "model": "m", "flagged": cid in (flagged or set()), "cue": "test"})
    return pd.DataFrame(rows)


def conversations_frame(turns: dict[str, int]) -> pd.DataFrame:
    """Conversations with the given number of user turns each."""
    rows = []
    for cid, n in turns.items():
        msgs = []
        for k in range(1, n + 1):
            msgs += [{"role": "user", "content": f"question {k}"}, {"role": "assistant", "content": f"answer {k}"}]
        rows.append({"conversation_id": cid, "model": "m", "conversation": msgs, "turn": n, "language": "English",
                     "openai_moderation": "[]", "flagged": False, "redacted": False, "source": "test"})
    return pd.DataFrame(rows)


REPO = Path(__file__).resolve().parents[2]


def pull_sample() -> Path:
    """data/raw (the embedded sample), pulled once from the in-repo DVC remote (offline) where a fresh clone lacks
    it, as ``make run`` does; xdist workers take a file lock so only one pulls."""
    from filelock import FileLock

    raw = REPO / "data/raw"
    (REPO / ".dvc" / "tmp").mkdir(exist_ok=True)
    with FileLock(str(REPO / ".dvc" / "tmp" / "natfeed-sample-pull.lock")):
        if not (raw / "conversations.jsonl").exists():
            subprocess.run([sys.executable, "-m", "dvc", "pull", "--quiet", "--remote", "sample", "data.dvc"],
                           cwd=REPO, check=True, capture_output=True)
    return raw


def sample_head(tmp_path: Path, n: int = 60) -> Path:
    """The first ``n`` lines of the embedded sample as ``tmp_path/raw.jsonl`` (pulled first where it is missing)."""
    lines = (pull_sample() / "conversations.jsonl").read_bytes().splitlines()[:n]
    path = tmp_path / "raw.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path
