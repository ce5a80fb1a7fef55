"""How many examples TRL actually trains on: TRL 1.16 drops an example whose prompt alone fills
``max_length`` (KTO: "fully truncated"; SFT: "fully masked"), after natfeed's ``trim_prompt``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from natfeed.model.train import _prompt_tokens, load_tokenizer, trim_prompt
from natfeed.params import TrainParams


def _messages(value: Any) -> list[dict[str, str]]:
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]


def kept_by_trl(frame: pd.DataFrame, tokenizer: Any, max_prompt_tokens: int | None, max_length: int) -> int:
    """The rows of a prompt/completion frame whose trimmed prompt leaves room for a completion token."""
    kept = 0
    for prompt in frame["prompt"]:
        msgs = _messages(prompt)
        if max_prompt_tokens is not None:
            msgs = trim_prompt(msgs, tokenizer, max_prompt_tokens)
        kept += _prompt_tokens(msgs, tokenizer) < max_length
    return kept


def trained_examples(frames: dict[str, pd.DataFrame], train: TrainParams) -> dict[str, dict[str, int]]:
    """Per training set of the arms: rows given to TRL and rows TRL keeps (the rest are dropped)."""
    tokenizer = load_tokenizer(train.base_model)
    sets = {"kto_train": (frames["kto_train"], train.kto), "kto_shuffled": (frames["kto_shuffled"], train.kto),
            "sft_praised": (frames["kto_train"][frames["kto_train"]["label"]], train.sft),
            "sft_random": (frames["random"], train.sft)}
    out = {}
    for name, (frame, cfg) in sets.items():
        kept = kept_by_trl(frame, tokenizer, train.max_prompt_tokens, int(cfg.get("max_length", 1024)))
        out[name] = {"given": len(frame), "kept": kept, "steps_x_batch": int(cfg.get("max_steps", 0)) *
                     int(cfg.get("per_device_train_batch_size", 8))}
    return out
