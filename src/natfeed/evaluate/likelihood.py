"""Teacher-forced completion log-probabilities and greedy replies of chat models.

Tokenisation follows TRL's KTO trainer, so the log-ratios here are the ones KTO optimises: the prompt is
rendered by the tokenizer's chat template with ``add_generation_prompt=True``, the prompt+completion
without it, and the completion is what follows their longest common prefix of token ids. Only the
completion's tokens are scored. Sequences are sorted by length and batched with left padding, so CPU
runs stay short.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from natfeed.core.decode import decode_reply
from natfeed.core.device import resolve_device, resolve_dtype
from natfeed.core.errors import NatfeedError

log = logging.getLogger(__name__)

Messages = Sequence[Mapping[str, str]]


class ChatTemplateError(NatfeedError, ValueError):
    """The tokenizer cannot render conversations."""


def chat_ids(tokenizer: Any, messages: Messages, add_generation_prompt: bool = False) -> list[int]:
    """Token ids of ``messages`` rendered by the tokenizer's chat template (special tokens included)."""
    if not getattr(tokenizer, "chat_template", None):
        raise ChatTemplateError(f"{type(tokenizer).__name__} has no chat_template: evaluate a chat model, or "
                                "set tokenizer.chat_template and save it with the model")
    out = tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=True, return_dict=True,
                                        add_generation_prompt=add_generation_prompt)
    return list(out["input_ids"])


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode_completion(tokenizer: Any, prompt: Messages, completion: Messages) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids) as TRL's KTO trainer tokenises a conversational example."""
    prompt_ids = chat_ids(tokenizer, prompt, add_generation_prompt=True)
    full_ids = chat_ids(tokenizer, [*prompt, *completion])
    n = common_prefix_length(prompt_ids, full_ids)
    return full_ids[:n], full_ids[n:]


def truncate(prompt_ids: list[int], completion_ids: list[int],
             max_length: int) -> tuple[list[int], list[int]]:
    """Fit ``max_length``: cut the prompt's head first, then the completion's tail; keep >= 1 prompt token
    (the first completion token is predicted from the position before it)."""
    if len(prompt_ids) + len(completion_ids) <= max_length:
        return prompt_ids, completion_ids
    keep_prompt = max(1, max_length - len(completion_ids))
    prompt_ids = prompt_ids[-keep_prompt:]
    return prompt_ids, completion_ids[: max_length - len(prompt_ids)]


def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]


def _device(model: Any) -> Any:
    return next(model.parameters()).device


def _pad_id(tokenizer: Any) -> int:
    pad = tokenizer.pad_token_id
    return int(pad if pad is not None else (tokenizer.eos_token_id or 0))


def model_max_length(model: Any, max_length: int) -> int:
    """``max_length`` capped by the model's position limit, where it has one."""
    limit = getattr(model.config, "max_position_embeddings", None)
    return min(max_length, int(limit)) if limit else max_length


def _left_padded(seqs: Sequence[Sequence[int]], pad: int) -> tuple[Any, Any, Any]:
    """(input_ids, attention_mask, position_ids) with left padding; positions count real tokens only."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    attention = torch.zeros_like(ids)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, width - len(seq):] = torch.tensor(list(seq))
            attention[row, width - len(seq):] = 1
    return ids, attention, (attention.cumsum(-1) - 1).clamp(min=0)


def completion_logps(model: Any, tokenizer: Any, prompts: Sequence[Messages], completions: Sequence[Messages],
                     batch_size: int = 8, max_length: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per example: sum over the completion's tokens of log p(token | everything before it), and the number
    of completion tokens scored. Teacher forcing, no gradients; left padding, so only the last
    (longest completion + 1) positions of a batch need logits."""
    import torch
    from tqdm.auto import tqdm

    max_length = model_max_length(model, max_length)
    encoded = [truncate(*encode_completion(tokenizer, p, c), max_length)
               for p, c in zip(prompts, completions, strict=True)]
    sums, counts = np.zeros(len(encoded)), np.array([len(c) for _, c in encoded], dtype=np.int64)
    pad, device = _pad_id(tokenizer), _device(model)
    batches = _batches([len(p) + len(c) for p, c in encoded], batch_size)
    with torch.inference_mode():
        for batch in tqdm(batches, desc="scoring completions", leave=False, disable=len(batches) < 5):
            ids, attention, positions = _left_padded([encoded[i][0] + encoded[i][1] for i in batch], pad)
            keep = int(counts[batch].max()) + 1
            logits = model(input_ids=ids.to(device), attention_mask=attention.to(device),
                           position_ids=positions.to(device), logits_to_keep=keep).logits[:, :-1].float()
            targets = ids[:, -keep + 1:].to(device) if keep > 1 else ids[:, :0].to(device)
            # log softmax gathered without a second vocabulary-sized tensor
            token_logps = logits.gather(-1, targets[..., None]).squeeze(-1) - torch.logsumexp(logits, -1)
            scored = torch.arange(keep - 1, device=device)[None, :] >= (keep - 1 - torch.as_tensor(
                counts[batch], device=device))[:, None]
            sums[batch] = (token_logps * scored).sum(-1).double().cpu().numpy()
    return sums, counts


def generate_replies(model: Any, tokenizer: Any, prompts: Sequence[Messages], max_new_tokens: int,
                     batch_size: int = 8, max_length: int = 1024, repetition_penalty: float = 1.0) -> list[str]:
    """Greedy replies (special tokens stripped) to each prompt, rendered with the chat template; a prompt
    longer than ``max_length - max_new_tokens`` tokens keeps its end. ``repetition_penalty`` > 1 discourages
    the loops that small models fall into under greedy decoding."""
    import torch
    from tqdm.auto import tqdm

    keep = max(1, model_max_length(model, max_length) - max_new_tokens)
    encoded = [chat_ids(tokenizer, p, add_generation_prompt=True)[-keep:] for p in prompts]
    replies = [""] * len(encoded)
    pad, device = _pad_id(tokenizer), _device(model)
    batches = _batches([len(e) for e in encoded], batch_size)
    with torch.inference_mode():
        for batch in tqdm(batches, desc="generating replies", leave=False, disable=len(batches) < 3):
            ids, attention, _ = _left_padded([encoded[i] for i in batch], pad)
            out = model.generate(input_ids=ids.to(device), attention_mask=attention.to(device),
                                 do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=pad,
                                 repetition_penalty=repetition_penalty)
            for row, i in enumerate(batch):
                replies[i] = decode_reply(tokenizer, out[row, ids.shape[1]:])
    return replies


def load_causal_lm(path: str, device: Any = "auto", dtype: Any = "auto") -> tuple[Any, Any]:
    """(model in eval mode on ``device``, tokenizer) from a local directory or Hub id; ``device`` and ``dtype``
    as params name them or as already resolved (``torch.device``, ``torch.dtype``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dev = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype(dtype, dev)).to(dev).eval()
    return model, AutoTokenizer.from_pretrained(path)
