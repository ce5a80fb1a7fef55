"""An MLflow pyfunc chat model over a Hugging Face causal LM, for weights MLflow does not copy.

Logged "from code" by ``natfeed.registry.promote`` when ``register.log_weights`` is ``adapter`` (the LoRA
adapter folder is the artifact; the base model is a reference) or ``reference`` (no artifact: the
model folder or Hub id is a reference in the model config). MLflow copies this file into the
logged model, so loading needs only mlflow, transformers and torch (and peft for an adapter), not
natfeed. ``predict`` follows MLflow's chat convention, like the transformers flavor's
``llm/v1/chat`` task: ``{"messages": [{"role": "user", "content": "..."}], "max_tokens": 32}`` in,
a list with one chat-completions response per conversation out.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel

GENERATION_KEYS = ("max_tokens", "temperature", "top_p", "top_k", "stop")


def _records(model_input: Any) -> list[dict[str, Any]]:
    """The requests in a pyfunc input: a dict, a list of dicts or a DataFrame of them."""
    if isinstance(model_input, dict):
        return [model_input]
    if hasattr(model_input, "to_dict"):
        return model_input.to_dict(orient="records")
    if isinstance(model_input, list) and all(isinstance(r, dict) for r in model_input):
        return model_input
    raise TypeError('expected {"messages": [{"role": ..., "content": ...}, ...]} (or a list / DataFrame of them)')


def _plain(value: Any) -> Any:
    """numpy arrays and scalars from a DataFrame row as plain Python values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _missing(value: Any) -> bool:
    """None, or NaN where a DataFrame of requests lacks an optional field."""
    return value is None or (isinstance(value, float) and value != value)


class HFChatModel(PythonModel):
    """Chat completions with ``tokenizer.apply_chat_template`` and ``model.generate``."""

    def load_context(self, context: Any) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        config = dict(context.model_config or {})
        artifacts = dict(context.artifacts or {})
        self.defaults = {k: config[k] for k in GENERATION_KEYS if config.get(k) is not None}
        adapter = artifacts.get("adapter") or config.get("adapter_ref")
        source = artifacts.get("model") or config.get("model_ref")
        base = config.get("base_model") if adapter else source
        if not base:
            raise ValueError("model_config needs model_ref, or base_model with an adapter")
        self.model_name = config.get("model_name") or str(source)
        self.model = AutoModelForCausalLM.from_pretrained(base)
        if adapter:
            from peft import PeftModel

            self.model = PeftModel.from_pretrained(self.model, adapter)
        self.model.eval()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(adapter or base)
        except (OSError, ValueError):  # an adapter folder saved without its tokenizer
            self.tokenizer = AutoTokenizer.from_pretrained(base)

    def _generate(self, messages: list[dict[str, Any]], options: dict[str, Any]) -> dict[str, Any]:
        import torch

        tok = self.tokenizer
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        temperature = float(options.get("temperature") or 0.0)
        kwargs: dict[str, Any] = {"max_new_tokens": int(options.get("max_tokens") or 64),
                                  "do_sample": temperature > 0,
                                  "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None
                                  else tok.eos_token_id}
        if temperature > 0:
            kwargs.update(temperature=temperature, top_p=float(options.get("top_p") or 1.0))
            if options.get("top_k"):
                kwargs["top_k"] = int(options["top_k"])
        if options.get("stop"):
            kwargs.update(stop_strings=list(options["stop"]), tokenizer=tok)
        with torch.no_grad():
            out = self.model.generate(**ids, **kwargs)
        n_prompt = ids["input_ids"].shape[1]
        new = out[0, n_prompt:]
        hit_eos = len(new) > 0 and int(new[-1]) == tok.eos_token_id
        return {
            "id": str(uuid.uuid4()), "object": "chat.completion", "created": int(time.time()),
            "model": self.model_name,
            "choices": [{"index": 0, "finish_reason": "stop" if hit_eos or len(new) < kwargs["max_new_tokens"]
                         else "length",
                         "message": {"role": "assistant", "content": tok.decode(new, skip_special_tokens=True).rstrip("\ufffd")}}],
            "usage": {"prompt_tokens": n_prompt, "completion_tokens": len(new),
                      "total_tokens": n_prompt + len(new)},
        }

    # model_input's hint: a DataFrame (what the chat signature makes of a request) is the one hint MLflow
    # neither turns into a schema nor warns about; no return hint, for the same reason.
    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None):
        """One chat-completions response per request in ``model_input``."""
        responses = []
        for record in _records(model_input):
            record = {k: _plain(v) for k, v in record.items() if not _missing(v)}
            messages = [{k: v for k, v in m.items() if v is not None} for m in record["messages"]]
            options = {**self.defaults, **{k: record[k] for k in GENERATION_KEYS if k in record},
                       **(params or {})}
            responses.append(self._generate(messages, options))
        return responses


mlflow.models.set_model(HFChatModel())
