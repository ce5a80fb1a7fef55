"""Tiny hand-made chat models for the evaluate / judges tests: a word-level tokenizer (one token per
word, so token counts are obvious) with a chat template, and Llama models small enough to build in
milliseconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

WORDS = ["yes", "no", "maybe", "hello", "world", "good", "bad", "GOOD", "BAD", "the", "cat", "answer"]
SPECIAL = ["<pad>", "<s>", "<|end|>", "<unk>", "<|user|>", "<|assistant|>", "<|system|>"]
TEMPLATE = ("{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> "
            "{% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}")


def word_tokenizer() -> Any:
    """Vocabulary = SPECIAL + WORDS (19 tokens); bos <s>, eos <|end|>, pad <pad>."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(SPECIAL + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(SPECIAL)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="<|end|>",
                                   pad_token="<pad>", unk_token="<unk>", chat_template=TEMPLATE)


def llama_config(tokenizer: Any, **extra: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=1, num_key_value_heads=1, head_dim=64, max_position_embeddings=128,
                       tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                       eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **extra)


def random_lm(tokenizer: Any, seed: int = 0) -> Any:
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    return LlamaForCausalLM(llama_config(tokenizer)).eval()


def biased_lm(tokenizer: Any, bias: dict[str, float] | None = None) -> Any:
    """An LM whose next-token logits are a constant vector: zero lm_head weights plus ``bias`` (by token),
    so log p(token) = bias[token] - logsumexp(bias) whatever the context: computable by hand."""
    import torch

    model = random_lm(tokenizer)
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        for token, value in (bias or {}).items():
            head.bias[tokenizer.convert_tokens_to_ids(token)] = value
    model.lm_head = head
    return model.eval()


def save_lm(model: Any, tokenizer: Any, path: Path) -> Path:
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
