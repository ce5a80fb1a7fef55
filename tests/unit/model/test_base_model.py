"""Stage base_model: the packaged SmolLM2-135M-Instruct, converted offline to a plain Hugging Face folder."""

from __future__ import annotations

import json

import pytest

from natfeed.model.base_model import SOURCE_FILE, BaseModelError, convert, locate_gguf
from natfeed.params import BaseModelParams

P = BaseModelParams()


def test_the_locked_wheel_holds_the_gguf_file():
    path = locate_gguf(P.gguf_package, P.gguf_file)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 90_000_000


def test_a_different_file_is_refused_before_anything_loads(tmp_path):
    with pytest.raises(BaseModelError, match="not base_model.sha256"):
        convert(P.model_copy(update={"sha256": "0" * 64}), tmp_path / "base")
    assert not (tmp_path / "base").exists()


def test_a_missing_package_says_how_to_install_it(tmp_path):
    with pytest.raises(BaseModelError, match="make install"):
        convert(P.model_copy(update={"gguf_package": "no_such_package_natfeed"}), tmp_path / "base")


@pytest.mark.slow
def test_conversion_gives_a_plain_folder_that_answers_like_the_gguf_model(tmp_path):
    """convert() itself compares the saved folder's greedy answer with the GGUF-loaded model's (and fails if
    they differ); here: the folder is complete, tied embeddings stay tied, and the model knows Paris."""
    from safetensors import safe_open

    result = convert(P, tmp_path / "base")
    out = tmp_path / "base"
    assert {"model.safetensors", "tokenizer.json", "config.json", "chat_template.jinja", SOURCE_FILE} <= {
        p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["tie_word_embeddings"] is True and "quantization_config" not in config
    with safe_open(out / "model.safetensors", "pt") as f:
        names = list(f.keys())
    assert "model.embed_tokens.weight" in names and not any(n.startswith("lm_head") for n in names)
    source = json.loads((out / SOURCE_FILE).read_text())
    assert source["sha256"] == P.sha256 and source["version"] == "0.1.2" and source["dtype"] == "torch.float32"
    assert "Paris" in source["sanity_answer"]
    assert 130e6 < result["report"]["parameters"] < 140e6 and result["report"]["sanity_answer_ok"] == 1
