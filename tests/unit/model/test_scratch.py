"""The embedded base model: tokenizer, chat template, model shape, seeded pre-training."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from natfeed.params import ParamsError, parse_params
from tests.support.scratch import (
    DEMO_CONVERSATIONS,
    EOS,
    TINY,
    build_base_model,
    load_conversations,
    tiny_model,
)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


pytestmark = pytest.mark.usefixtures("one_thread")  # `tiny` and `one_thread`: conftest.py


@pytest.fixture(scope="module")
def tok(tiny):
    return transformers.AutoTokenizer.from_pretrained(tiny)


@given(text=st.text(max_size=200))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_tokenizer_round_trips_any_text(tok, text):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text


def test_special_tokens_are_single_distinct_ids(tok):
    ids = {tok.pad_token_id, tok.bos_token_id, tok.eos_token_id}
    assert None not in ids and len(ids) == 3
    assert tok.eos_token == EOS
    for marker in ("<|user|>", "<|assistant|>", "<|system|>"):
        assert len(tok(marker, add_special_tokens=False)["input_ids"]) == 1


def test_chat_template_renders_turns_and_generation_prompt(tok):
    conv = DEMO_CONVERSATIONS[1]  # system, user, assistant, user, assistant
    prompt = tok.apply_chat_template(conv[:2], tokenize=False, add_generation_prompt=True)
    assert prompt == ("<|bos|><|system|>\nYou are a helpful assistant.<|end|>"
                      "<|user|>\nWhat is the capital of France?<|end|><|assistant|>\n")
    full = tok.apply_chat_template(conv[:3], tokenize=False)
    assert full.startswith(prompt)  # TRL finds the completion where the two renderings diverge
    assert full == prompt + "The capital of France is Paris.<|end|>"
    assert not tok.apply_chat_template(conv[:2], tokenize=False).endswith("<|assistant|>\n")


def test_assistant_mask_covers_replies_and_their_end_token(tok):
    out = tok.apply_chat_template(DEMO_CONVERSATIONS[1], return_dict=True, return_assistant_tokens_mask=True)
    kept = [i for i, m in zip(out["input_ids"], out["assistant_masks"], strict=True) if m]
    assert tok.decode(kept) == "The capital of France is Paris.<|end|>Paris is also the largest city of France.<|end|>"


def test_trl_accepts_the_template_for_assistant_only_loss(tok):
    from trl.chat_template_utils import has_generation_markers, is_chat_template_stop_token_trained

    assert has_generation_markers(tok.chat_template)
    assert is_chat_template_stop_token_trained(tok)


def test_unknown_role_is_an_error(tok):
    with pytest.raises(Exception, match="unsupported role: tool"):
        tok.apply_chat_template([{"role": "tool", "content": "x"}], tokenize=False)


def test_model_config_is_llama_with_head_dim_64(tiny, tok):
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny)
    cfg = model.config
    assert cfg.model_type == "llama"
    assert cfg.head_dim == 64
    assert cfg.num_attention_heads * cfg.head_dim == cfg.hidden_size == TINY.hidden_size
    assert cfg.vocab_size % 64 == 0 and cfg.vocab_size >= len(tok)
    assert (cfg.pad_token_id, cfg.eos_token_id, cfg.bos_token_id) == (tok.pad_token_id, tok.eos_token_id,
                                                                      tok.bos_token_id)
    assert model.generation_config.eos_token_id == tok.eos_token_id
    assert tok.model_max_length == cfg.max_position_embeddings == TINY.max_position_embeddings
    assert tok.padding_side == "left"  # batched generation; TRL's KTOTrainer expects it


def test_generation_runs_from_the_chat_template(tiny, tok):
    model = transformers.AutoModelForCausalLM.from_pretrained(tiny)
    inputs = tok.apply_chat_template(DEMO_CONVERSATIONS[0][:1], add_generation_prompt=True, return_tensors="pt",
                                     return_dict=True)
    out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def _weights(path: Path) -> dict:
    return transformers.AutoModelForCausalLM.from_pretrained(path).state_dict()


def test_build_is_seeded_and_pretraining_lowers_the_loss(tmp_path):
    params = TINY.model_copy(update={"pretrain_steps": 25, "pretrain_seq_len": 32, "pretrain_batch_size": 4,
                                     "learning_rate": 3e-3})
    convs = DEMO_CONVERSATIONS * 3
    first = build_base_model(convs, params, tmp_path / "a")
    second = build_base_model(convs, params, tmp_path / "b")
    assert first["pretrain"]["loss_last"] < first["pretrain"]["loss_first"] - 0.5
    assert first["pretrain"] == second["pretrain"]
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()
    assert first["parameters"] == sum(v.numel() for k, v in wa.items() if k != "lm_head.weight")
    assert first["vocab_size"] <= params.vocab_size and first["head_dim"] == 64


def test_pretraining_changes_the_random_weights(tmp_path):
    random = tiny_model(tmp_path / "random")
    trained = tiny_model(tmp_path / "trained", pretrain_steps=2)
    wr, wt = _weights(random), _weights(trained)
    assert not torch.equal(wr["model.embed_tokens.weight"], wt["model.embed_tokens.weight"])


def test_load_conversations_reads_the_ingest_format(tmp_path):
    import pandas as pd

    path = tmp_path / "c.parquet"
    pd.DataFrame({"conversation_id": ["a"], "conversation": [DEMO_CONVERSATIONS[0]]}).to_parquet(path)
    assert load_conversations(path) == [DEMO_CONVERSATIONS[0]]


def test_empty_input_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no conversations"):
        build_base_model([], TINY, tmp_path)


@pytest.mark.parametrize("bad", [{"hidden_size": 200}, {"hidden_size": 256, "num_key_value_heads": 3},
                                 {"vocab_sise": 100}])
def test_bad_base_model_params_fail(bad):
    with pytest.raises(ParamsError, match="base_model"):
        parse_params({"base_model": bad})


def test_test_split_conversations_are_held_out_of_pretraining(tmp_path):
    import pandas as pd

    from tests.support.scratch import heldout_ids, load_conversations

    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    pd.DataFrame({"conversation_id": ["a", "b", "c"], "conversation": [msgs] * 3}).to_parquet(tmp_path / "c.parquet")
    kto = tmp_path / "kto"
    kto.mkdir()
    pd.DataFrame({"conversation_id": ["b"]}).to_parquet(kto / "kto_test.parquet")
    pd.DataFrame({"conversation_id": ["c"]}).to_parquet(kto / "sft_test.parquet")
    assert heldout_ids(kto) == {"b", "c"}
    assert len(load_conversations(tmp_path / "c.parquet", heldout_ids(kto))) == 1
    assert len(load_conversations(tmp_path / "c.parquet")) == 3
    assert heldout_ids(tmp_path / "missing") == set()
