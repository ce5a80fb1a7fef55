"""Win rates of a candidate model against a baseline: outcome counting, 95% intervals, the RM judge.

Outcomes are from the candidate's side: ``win``, ``loss``, ``tie`` or ``failed`` (the judge gave no
usable verdict; left out of the rate and counted). The win rate counts a tie as half a win:
``(wins + ties / 2) / (wins + losses + ties)``, with a 95% Wilson score interval on that (fractional)
success count. The reward-model judge scores every (prompt, reply) on its own, so the order of the two
replies cannot matter; the LLM judge (``natfeed.llm_judge``) asks in both orders.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from natfeed.config import RmJudgeParams

log = logging.getLogger(__name__)

OUTCOMES = ("win", "loss", "tie", "failed")
Z95 = 1.959963984540054


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval for a proportion (``successes`` may be fractional: ties count half)."""
    if n <= 0:
        return None, None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p) / n + z * z / (4 * n * n), 0.0)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate(outcomes: Sequence[str]) -> dict[str, Any]:
    """Counts, the win rate (ties half) and its 95% Wilson interval; failed verdicts are excluded."""
    unknown = set(outcomes) - set(OUTCOMES)
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)}; expected {OUTCOMES}")
    counts = {k: int(sum(o == k for o in outcomes)) for k in OUTCOMES}
    n = counts["win"] + counts["loss"] + counts["tie"]
    successes = counts["win"] + 0.5 * counts["tie"]
    low, high = wilson_interval(successes, n)
    return {"wins": counts["win"], "losses": counts["loss"], "ties": counts["tie"],
            "failed": counts["failed"], "n": n, "win_rate": successes / n if n else None,
            "ci_low": low, "ci_high": high,
            "tie_rate": counts["tie"] / n if n else None}


def compare_scores(candidate: Sequence[float], baseline: Sequence[float],
                   tie_margin: float = 0.0) -> list[str]:
    """Outcome per item from two scores (higher is better); NaN scores give ``failed``."""
    out = []
    for a, b in zip(candidate, baseline, strict=True):
        if math.isnan(a) or math.isnan(b):
            out.append("failed")
        elif abs(a - b) <= tie_margin:
            out.append("tie")
        else:
            out.append("win" if a > b else "loss")
    return out


def _rm_text_ids(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    else:  # an RM without a template: plain "role: content" turns
        text = "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    return list(ids)[-max_length:]


def rm_scores(model: Any, tokenizer: Any, prompts: Sequence[Sequence[Mapping[str, str]]],
              replies: Sequence[str], batch_size: int = 4, max_length: int = 2048) -> np.ndarray:
    """The reward model's score (its single logit) for each prompt followed by the assistant reply."""
    import torch

    if model.config.num_labels != 1:
        raise ValueError(f"the reward model has {model.config.num_labels} outputs; a judge RM must have one "
                         "(num_labels=1), its score")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if model.config.pad_token_id is None:
        model.config.pad_token_id = pad  # the classifier pools the last non-pad token
    conversations = [[*(dict(m) for m in p), {"role": "assistant", "content": r}]
                     for p, r in zip(prompts, replies, strict=True)]
    encoded = [_rm_text_ids(tokenizer, c, max_length) for c in conversations]
    scores = np.full(len(encoded), np.nan)
    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = order[start: start + batch_size]
            width = max(len(encoded[i]) for i in batch)
            ids = torch.full((len(batch), width), int(pad), dtype=torch.long)
            attention = torch.zeros_like(ids)
            for row, i in enumerate(batch):
                ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                attention[row, : len(encoded[i])] = 1
            logits = model(input_ids=ids.to(device), attention_mask=attention.to(device)).logits
            scores[batch] = logits[:, 0].float().cpu().numpy()
    return scores


def load_reward_model(params: RmJudgeParams, device: Any, dtype: Any) -> tuple[Any, Any]:
    """(sequence-classification model in eval mode, tokenizer) from a Hub id or local path."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(
        params.model, dtype=dtype, trust_remote_code=params.trust_remote_code).to(device).eval()
    return model, AutoTokenizer.from_pretrained(params.model, trust_remote_code=params.trust_remote_code)


def rm_judge(params: RmJudgeParams, prompts: Sequence[Sequence[Mapping[str, str]]],
             replies: Mapping[str, Sequence[str]], pairs: Sequence[tuple[str, str]], device: Any,
             dtype: Any) -> tuple[dict[str, np.ndarray], dict[str, list[str]]]:
    """Score every model's replies with the RM: (scores per model, outcomes per "a_vs_b" pair)."""
    model, tokenizer = load_reward_model(params, device, dtype)
    scores = {name: rm_scores(model, tokenizer, prompts, texts, params.batch_size, params.max_length)
              for name, texts in replies.items()}
    del model
    outcomes = {f"{a}_vs_{b}": compare_scores(scores[a], scores[b], params.tie_margin) for a, b in pairs}
    return scores, outcomes
