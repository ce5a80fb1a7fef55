"""The reward-model judge: a sequence-classification model scores every (prompt, reply) on its own, so the
order of the two replies cannot matter (the LLM judge, :mod:`natfeed.evaluate.llm_judge`, asks in both
orders). Outcomes are counted into win rates by :mod:`natfeed.evaluate.metrics`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from natfeed.core.errors import UsageError
from natfeed.evaluate.metrics import compare_scores
from natfeed.params import RmJudgeParams

log = logging.getLogger(__name__)

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
        raise UsageError(f"the reward model has {model.config.num_labels} outputs; a judge RM must have one "
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
