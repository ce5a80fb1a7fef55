"""A small Llama-architecture causal LM built from scratch, offline, in seconds: the model of the unit
tests, the GPU check (scripts/gpu_check.py) and the speed benchmarks (bench/), random or briefly
pre-trained weights. Not part of the package: the pipeline's base model is a real pretrained one
(:mod:`natfeed.model.base_model`); its chat template lives in :mod:`natfeed.model.chat_template`.

A byte-level BPE tokenizer is trained on the sample's messages and given a chat template (system / user
/ assistant turns, ``add_generation_prompt`` and TRL's ``{% generation %}`` markers, so both
``completion_only_loss`` and ``assistant_only_loss`` work); a randomly initialised Llama (head_dim 64,
which vLLM's CPU attention kernels accept) is then pre-trained briefly on the chat-formatted
conversations so that its replies are less random. Everything is seeded and runs on CPU in under a
minute. ``tiny_model`` builds a smaller one in seconds for tests.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from natfeed.core.errors import UsageError
from natfeed.model.chat_template import BOS, CHAT_TEMPLATE, EOS, PAD, ROLE_TOKENS, SPECIAL_TOKENS
from natfeed.params.model import ScratchParams

log = logging.getLogger(__name__)

Message = Mapping[str, str]

DEMO_CONVERSATIONS: list[list[dict[str, str]]] = [
    [{"role": "user", "content": "How do I reverse a list in Python?"},
     {"role": "assistant", "content": "Use slicing: `items[::-1]` returns a reversed copy, and "
      "`items.reverse()` reverses the list in place."},
     {"role": "user", "content": "Thanks, that works!"}],
    [{"role": "system", "content": "You are a helpful assistant."},
     {"role": "user", "content": "What is the capital of France?"},
     {"role": "assistant", "content": "The capital of France is Paris."},
     {"role": "user", "content": "No, I meant the largest city."},
     {"role": "assistant", "content": "Paris is also the largest city of France."}],
    [{"role": "user", "content": "Explique la photosynthèse en une phrase."},
     {"role": "assistant", "content": "Les plantes transforment la lumière, l'eau et le CO2 en sucres et "
      "en oxygène."}],
    [{"role": "user", "content": "为什么天是蓝的？"},
     {"role": "assistant", "content": "因为瑞利散射：蓝光比红光更容易被空气分子散射。"}],
]


def load_conversations(path: str | Path, exclude_ids: Iterable[str] = ()) -> list[list[dict[str, str]]]:
    """The ``conversation`` column of an ingested parquet file as lists of {role, content} messages,
    without the conversations in ``exclude_ids`` (the evaluation split's: never seen in training)."""
    frame = pd.read_parquet(path, columns=["conversation_id", "conversation"])
    frame = frame[~frame["conversation_id"].isin(set(exclude_ids))]
    return [[{"role": str(m["role"]), "content": str(m["content"])} for m in conv]
            for conv in frame["conversation"]]


def heldout_ids(kto_dir: str | Path) -> set[str]:
    """Conversation ids of the KTO/SFT test split files in ``kto_dir`` (empty when absent)."""
    ids: set[str] = set()
    for name in ("kto_test.parquet", "sft_test.parquet"):
        f = Path(kto_dir) / name
        if f.exists():
            ids |= set(pd.read_parquet(f, columns=["conversation_id"])["conversation_id"])
    return ids


def _texts(conversations: Iterable[Sequence[Message]]) -> Iterator[str]:
    for conv in conversations:
        for message in conv:
            yield message["content"]


def train_tokenizer(conversations: Sequence[Sequence[Message]], vocab_size: int, min_frequency: int = 2,
                    model_max_length: int = 1024) -> Any:
    """A byte-level BPE tokenizer (any text round-trips) with pad/bos/eos/role tokens and the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_texts(conversations), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS.values()), chat_template=CHAT_TEMPLATE,
        padding_side="left", model_max_length=model_max_length, clean_up_tokenization_spaces=False,
    )


def make_model(tokenizer: Any, params: ScratchParams) -> Any:
    """A randomly initialised (seeded) LlamaForCausalLM sized by ``params``."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    heads = params.hidden_size // params.head_dim
    config = LlamaConfig(
        vocab_size=64 * math.ceil(len(tokenizer) / 64), hidden_size=params.hidden_size,
        intermediate_size=params.intermediate_size, num_hidden_layers=params.num_layers,
        num_attention_heads=heads, num_key_value_heads=params.num_key_value_heads or heads,
        head_dim=params.head_dim, max_position_embeddings=params.max_position_embeddings,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, rms_norm_eps=1e-5,
    )
    torch.manual_seed(params.seed)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, max_new_tokens=128)
    return model


def _token_stream(conversations: Sequence[Sequence[Message]], tokenizer: Any) -> list[int]:
    ids: list[int] = []
    for conv in conversations:
        text = tokenizer.apply_chat_template(list(conv), tokenize=False)
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids


def pretrain(model: Any, token_ids: list[int], params: ScratchParams) -> dict[str, float]:
    """Plain causal-LM training on random windows of the token stream (warm-up, cosine decay)."""
    import torch
    from tqdm.auto import tqdm

    steps, seq = params.pretrain_steps, params.pretrain_seq_len
    if steps == 0 or len(token_ids) <= seq + 1:
        return {"steps": 0}
    data = torch.tensor(token_ids, dtype=torch.long)
    gen = torch.Generator().manual_seed(params.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=params.learning_rate, weight_decay=0.01)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5
                                              * (1 + math.cos(math.pi * min(1.0, s / steps))))
    model.train()
    losses = []
    for _ in tqdm(range(steps), desc="pre-training base model", leave=False):
        starts = torch.randint(0, len(data) - seq, (params.pretrain_batch_size,), generator=gen)
        batch = torch.stack([data[s: s + seq] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()
    tail = losses[-10:]
    return {"steps": steps, "loss_first": losses[0], "loss_last": sum(tail) / len(tail)}


def build_base_model(conversations: Sequence[Sequence[Message]], params: ScratchParams,
                     out_dir: str | Path) -> dict[str, Any]:
    """Train the tokenizer, initialise and pre-train the model, save both to ``out_dir``; return a report."""
    import torch

    if not conversations:
        raise UsageError("no conversations to build the base model from: run the ingest stage first")
    start = time.perf_counter()
    if params.torch_threads:
        torch.set_num_threads(params.torch_threads)
    torch.manual_seed(params.seed)
    tokenizer = train_tokenizer(conversations, params.vocab_size, params.min_frequency,
                                params.max_position_embeddings)
    model = make_model(tokenizer, params)
    token_ids = _token_stream(conversations, tokenizer)
    log.info("base model: %d parameters, vocabulary %d, %d training tokens",
             model.num_parameters(), len(tokenizer), len(token_ids))
    pre = pretrain(model, token_ids, params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return {
        "parameters": model.num_parameters(), "vocab_size": len(tokenizer),
        "embedding_rows": model.config.vocab_size, "hidden_size": params.hidden_size,
        "num_layers": params.num_layers, "head_dim": params.head_dim,
        "num_attention_heads": model.config.num_attention_heads, "conversations": len(conversations),
        "tokens": len(token_ids), "pretrain": pre, "seconds": round(time.perf_counter() - start, 2),
    }


TINY = ScratchParams(vocab_size=400, min_frequency=1, hidden_size=128, num_layers=1, intermediate_size=256,
                       max_position_embeddings=512, pretrain_steps=0)


def tiny_model(out_dir: str | Path, conversations: Sequence[Sequence[Message]] | None = None,
               pretrain_steps: int = 0) -> Path:
    """A tiny Llama (~0.2M parameters, head_dim 64) + tokenizer + chat template saved to ``out_dir``, for tests:
    built in a second or two from ``conversations`` (default: a few built-in multilingual ones)."""
    params = TINY.model_copy(update={"pretrain_steps": pretrain_steps})
    build_base_model(conversations or DEMO_CONVERSATIONS, params, out_dir)
    return Path(out_dir)
