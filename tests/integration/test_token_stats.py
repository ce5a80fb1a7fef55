"""scripts/token_stats.py on a few sample conversations (the figures themselves live in docs/SCALING.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from natfeed.core.conversation import judged_turns
from natfeed.extract.inputs import ConversationReader
from natfeed.extract.llm.prompts import TURN_CHOICES
from tests.support.helpers import sample_head
from tests.support.tiny_lm import word_tokenizer

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _run(tmp_path: Path, corpus: Path, tokenizer: str) -> dict:
    params = tmp_path / "params.yaml"
    params.write_text("{}\n")  # built-in defaults, not the project's params.yaml
    out = tmp_path / f"stats-{Path(tokenizer).name}.json"
    res = subprocess.run([sys.executable, str(REPO / "scripts/token_stats.py"), "--input", str(corpus), "--params",
                          str(params), "--tokenizer", tokenizer, "--json", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "| shared prefix tokens |" in res.stdout
    return json.loads(out.read_text())


def test_token_stats_counts_the_backend_requests(tmp_path):
    corpus = sample_head(tmp_path, 12)
    tok_dir = tmp_path / "word-tok"
    word_tokenizer().save_pretrained(tok_dir)
    stats = _run(tmp_path, corpus, str(tok_dir))
    convs = [c for batch in ConversationReader(corpus, 100).batches() for c in batch]
    turns = sum(1 for c in convs for _ in judged_turns(c))
    turn, paper = stats["modes"]["turn"], stats["modes"]["paper"]
    assert stats["conversations"] == len(convs) and turn["requests"] == turns > 0
    assert paper["requests"] == sum(1 for c in convs if next(judged_turns(c), None) is not None)
    # one word-level token per label (underscores are word characters) + EOS
    assert turn["output_tokens_by_label"] == dict.fromkeys(TURN_CHOICES, 2) and turn["output_tokens_max"] == 2
    assert paper["output_tokens_max"] == paper["answer_token_cap"] == 512 and paper["output_is_cap"]
    for s in (turn, paper):
        assert 0 < s["shared_prefix_tokens"] < s["prompt_tokens"]["p50"]
        assert s["prefill_tokens_with_cache"]["mean"] <= s["prompt_tokens"]["mean"] - s["shared_prefix_tokens"] + 16
        assert s["per_conversation"]["requests"] == round(s["requests"] / len(convs), 3)


def test_token_stats_mixtral_tokenizer_is_offline(tmp_path):
    pytest.importorskip("mistral_common")
    stats = _run(tmp_path, sample_head(tmp_path, 6), "mixtral")
    turn = stats["modes"]["turn"]
    assert turn["output_tokens_by_label"]["none"] == 2  # "▁none" + </s>
    assert turn["shared_prefix_tokens"] > 500  # the guideline text
