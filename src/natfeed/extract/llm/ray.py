"""``extract.vllm.engine: ray_data`` (formerly ``extract.vllm.executor: ray``): the vLLM backend's batches run
by Ray Data (``ray.data.llm``).

Past one machine: Ray starts ``extract.vllm.replicas`` vLLM engines (each ``tensor_parallel_size``
GPUs) across the cluster and streams the batch through them; the extract run, its resumable shards and
report stay in the calling process. Install ``ray[data,llm]`` and ``vllm`` on every node (not in the
default environment; nothing imports Ray unless this engine is chosen). See docs/SCALING.md.

The row functions (:func:`ray_rows`, :func:`ray_preprocess`, :func:`ray_postprocess`) are plain Python,
tested without Ray.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from natfeed.extract.llm.engine import Engine, Generated, tail_logprob

if TYPE_CHECKING:
    from natfeed.params import VLLMParams

log = logging.getLogger(__name__)


def ray_rows(texts: Sequence[str], specs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The input dataset: one row per request; the sampling spec travels as JSON text so that rows of
    different shapes stay one Arrow type."""
    return [{"idx": i, "prompt": text, "spec": json.dumps(spec)} for i, (text, spec) in
            enumerate(zip(texts, specs, strict=True))]


def ray_preprocess(row: dict[str, Any]) -> dict[str, Any]:
    """Row -> what the vLLM stage reads: the prompt text and ``sampling_params`` (Ray turns its
    ``guided_decoding`` entry into ``StructuredOutputsParams``). A label-scoring spec's ``score_ids`` (not a
    SamplingParams field) becomes a column that Ray carries to :func:`ray_postprocess`."""
    spec = json.loads(row["spec"])
    score_ids = spec.pop("score_ids", None)
    structured = spec.pop("structured", None)
    if structured is not None:
        spec["guided_decoding"] = structured
    out = {"idx": row["idx"], "prompt": row["prompt"], "sampling_params": spec}
    if score_ids is not None:
        out["score_ids"] = score_ids
    return out


def ray_postprocess(row: dict[str, Any]) -> dict[str, Any]:
    """The vLLM stage's output row -> the fields of :class:`Generated` (+ ``idx``). A scoring row's
    ``prompt_logprob`` is None where the stage gave no ``prompt_logprobs`` or the engine, which tokenizes the
    prompt text again, made other tokens of the label: the backend then refuses to calibrate."""
    logprob = None
    score_ids = row.get("score_ids")  # a list, or an array after Arrow
    steps = row.get("logprobs")
    if steps is not None and len(steps):
        total = 0.0
        for tok, step in zip(row.get("generated_tokens") or [], steps, strict=False):
            entry = (step or {}).get(int(tok)) or (step or {}).get(str(int(tok)))
            if entry is not None:
                total += float(entry["logprob"])
        logprob = total
    return {"idx": int(row["idx"]), "text": row.get("generated_text") or "",
            "prompt_tokens": int(row.get("num_input_tokens") or 0),
            "generated_tokens": int(row.get("num_generated_tokens") or 0), "logprob": logprob,
            "prompt_logprob": tail_logprob(row.get("prompt_token_ids"), row.get("prompt_logprobs"),
                                           [] if score_ids is None else list(score_ids))}


def processor_config(kwargs: dict[str, Any], cfg: VLLMParams) -> dict[str, Any]:
    """Keyword arguments of ``ray.data.llm.vLLMEngineProcessorConfig``: the prompt is already rendered
    with the chat template, so Ray neither applies one nor tokenizes."""
    engine = {k: v for k, v in kwargs.items() if k != "model" and v is not None}
    config: dict[str, Any] = {"model_source": kwargs["model"], "engine_kwargs": engine,
                              "concurrency": cfg.replicas, "batch_size": cfg.ray_batch_size,
                              "apply_chat_template": False, "tokenize": False, "detokenize": True}
    if cfg.ray_accelerator_type:
        config["accelerator_type"] = cfg.ray_accelerator_type
    return config


class RayExecutor(Engine):
    """Runs each batch as a Ray Dataset through ``build_llm_processor``."""

    def __init__(self, kwargs: dict[str, Any], cfg: VLLMParams, tokenizer: Any) -> None:
        try:
            import ray
            from ray.data.llm import build_llm_processor, vLLMEngineProcessorConfig
        except ImportError as err:
            raise ImportError("extract.vllm.engine: ray_data needs `pip install 'ray[data,llm]' vllm` on every "
                              "node") from err
        if not ray.is_initialized():
            ray.init(address=cfg.ray_address or None)
        self.ray = ray
        self.tokenizer = tokenizer
        config = vLLMEngineProcessorConfig(**processor_config(kwargs, cfg))
        self.processor = build_llm_processor(config, preprocess=ray_preprocess, postprocess=ray_postprocess)

    def text(self, ids: list[int]) -> str:
        """The prompt text of token ids (the engine tokenizes again; a BOS it adds itself is dropped)."""
        text = self.tokenizer.decode(ids, skip_special_tokens=False)
        bos = self.tokenizer.bos_token
        if bos and text.startswith(bos) and self.tokenizer("", add_special_tokens=True)["input_ids"]:
            text = text[len(bos):]
        return text

    def generate(self, prompts: Sequence[list[int]], specs: Sequence[dict[str, Any]],
                 keys: Sequence[str]) -> list[Generated]:
        rows = ray_rows([self.text(list(ids)) for ids in prompts], specs)
        done = self.processor(self.ray.data.from_items(rows)).take_all()
        by_idx = {int(r["idx"]): r for r in done}
        if len(by_idx) != len(rows):
            raise RuntimeError(f"ray: {len(by_idx)} answers for {len(rows)} requests")
        return [Generated(by_idx[i]["text"], by_idx[i]["prompt_tokens"], by_idx[i]["generated_tokens"],
                          by_idx[i]["logprob"], prompt_logprob=by_idx[i].get("prompt_logprob"))
                for i in range(len(rows))]
