"""``extract``: the extractor backend and the settings of each backend (heuristic, openai, transformers, vllm)."""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import Field, model_validator

from natfeed.params.base import Section
from natfeed.params.endpoint import EndpointParams
from natfeed.params.heuristic import HeuristicParams

log = logging.getLogger(__name__)

Backend = Literal["heuristic", "openai", "transformers", "paper_loop", "vllm"]
"""The extractor backends; natfeed.extract.base registers a factory for each (a test checks they agree)."""
TorchDtype = Literal["auto", "float32", "bfloat16", "float16"]


class LLMParams(Section):
    """The model and prompts shared by the LLM extract backends (openai, transformers, vllm)."""

    model: str = Field("", description="Hub id or local path (transformers, vllm), or the served model name "
                       "(openai); required for the LLM backends")
    max_model_len: int = Field(4096, gt=64, description="Context length: prompts are truncated to "
                               "max_model_len - max_new_tokens, always keeping the judged turn")
    max_new_tokens: int = Field(16, gt=0, description="Answer tokens in turn mode (one label)")
    paper_max_new_tokens: int = Field(512, gt=0, description="Answer tokens in paper mode (a JSON list)")
    temperature: float = Field(0.0, ge=0, description="0 = greedy")
    context_turns: int = Field(2, ge=1, description="Turn mode: user->assistant exchanges shown before the "
                               "judged turn (1 = only the request the previous reply answered)")
    system_prompt: bool = Field(False, description="Guidelines as a system message (Mixtral's template rejects "
                                "one: keep false for it)")
    ignore_eos: bool = Field(False, description="Always generate max_new_tokens (benchmarks with random weights)")
    seed: int = Field(0, description="Sampling seed")
    calibration: Literal["none", "content_free"] = Field("none", description="Turn mode, transformers and vllm "
                                                         "backends: content_free divides the label probabilities "
                                                         "by the model's prior (the same prompt with N/A as the "
                                                         "conversation; contextual calibration); vllm then scores "
                                                         "every label with its own engine request")
    shard_requests: int = Field(0, ge=0, description="Checkpoint a shard after this many requests (or "
                                "extract.batch_size conversations, or shard_seconds, whichever comes first); "
                                "0 = auto: 32 on CPU, 2048 with a CUDA device or a server (openai)")
    shard_seconds: float = Field(300.0, gt=0, description="... or after this many seconds of work: a kill loses "
                                 "at most this much")
    progress_seconds: float = Field(30.0, gt=0, description="Not on a terminal: a progress log line this often")
    max_requests: int | None = Field(None, ge=0, description="Budget: send at most this many new requests (cache "
                                     "hits are free), then stop with exit 3 keeping every finished shard and "
                                     "cached answer; a rerun sends the rest. null = no cap (flag --max-requests)")


class OpenAIParams(EndpointParams):
    """Backend openai: any OpenAI-compatible /v1/chat/completions server (vllm serve, TGI, a hosted API); the
    endpoint settings are :class:`EndpointParams`'s, shared with the LLM judge."""

    structured: Literal["vllm", "json_schema", "none"] = Field("vllm", description="Constrained answers: vllm (extra_body structured_outputs: "
                            "choice / json), json_schema (OpenAI response_format), none")
    logprobs: bool = Field(True, description="Ask for token log-probs (turn-mode confidence)")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Extra fields merged into each request")



class TransformersParams(Section):
    """Backends transformers (batched generate / label scoring) and paper_loop (the paper's original loop)."""

    batch_size: int = Field(8, gt=0, description="Requests per forward/generate call")
    device: str = Field("auto", description="auto (cuda if available, else cpu), cpu, cuda, cuda:1, ...")
    dtype: TorchDtype = Field("auto", description="auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16")
    paper_loop_temperature: float = Field(1.0, gt=0, description="paper_loop samples (do_sample=True) as the "
                                          "paper did, at this temperature")
    paper_loop_top_p: float = Field(1.0, gt=0, le=1, description="paper_loop nucleus sampling")



class VLLMParams(Section):
    """Backend vllm: in-process vllm.LLM offline batches (the model and prompts come from extract.llm)."""

    quantization: str | None = Field(None, description="null (the checkpoint's own), fp8 (on-the-fly FP8 "
                                     "weights, Hopper/Ada), awq, gptq, ... (vLLM's quantization)")
    dtype: str = Field("auto", description="Weights/activations dtype: auto, bfloat16, float16, float32")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per engine (one model split across them)")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Fraction of GPU memory an engine "
                                          "takes (weights + KV cache); on CPU, of RAM")
    max_num_seqs: int = Field(256, ge=1, description="Batch size: sequences an engine runs at once")
    max_num_batched_tokens: int | None = Field(None, ge=1, description="Tokens per engine step; null = vLLM's")
    enable_prefix_caching: bool = Field(True, description="Reuse the shared guideline prefix's KV cache")
    enforce_eager: bool = Field(False, description="Skip torch.compile / CUDA graphs (faster start, slower "
                                "steps; for tests)")
    paper_structured: Literal["json", "regex", "none"] = Field("json", description="Paper-mode answers: json (JSON schema, no free "
                                  "whitespace), regex (the same shape as a regex), none (free text)")
    replicas: int = Field(1, ge=1, description="Engines (data parallel), each on its own device group; "
                          "requests go to replica hash(conversation_id) % replicas")
    devices: list[str] = Field(default_factory=list, description="CUDA_VISIBLE_DEVICES per replica, e.g. "
                               "['0,1', '2,3']; [] = consecutive groups of tensor_parallel_size")
    engine: Literal["auto", "local", "replicas", "ray_data"] = Field(
        "auto", description="The vllm backend's engine choice (the run's executor is extract.executor): local (one "
        "engine in this process), replicas (extract.vllm.replicas engine processes on this machine), ray_data "
        "(Ray Data's ray.data.llm across a cluster); auto = replicas when replicas > 1, else local. The old key "
        "extract.vllm.executor (local / ray) is read as engine (auto / ray_data) with a deprecation line")
    ray_address: str | None = Field(None, description="engine ray_data: cluster address; null = local/auto")
    ray_batch_size: int = Field(64, ge=1, description="engine ray_data: rows per Ray Data batch")
    ray_accelerator_type: str | None = Field(None, description="engine ray_data: e.g. H100; null = any")
    tokenizer: str | None = Field(None, description="Tokenizer path/id if not the model's")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="Extra vllm.LLM(...) arguments")

    @model_validator(mode="before")
    @classmethod
    def _old_executor_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "executor" in data:
            if "engine" in data:
                raise ValueError("extract.vllm.executor is the old name of extract.vllm.engine: keep only engine")
            old = data["executor"]
            if old not in ("local", "ray"):
                raise ValueError(f"executor (the old name of extract.vllm.engine) is local or ray, not {old!r}")
            new = {"local": "auto", "ray": "ray_data"}[old]
            log.warning("params: extract.vllm.executor: %s is deprecated, read as extract.vllm.engine: %s "
                        "(extract.executor is the run's executor): rename it", old, new)
            data = {**{k: v for k, v in data.items() if k != "executor"}, "engine": new}
        return data

    @property
    def engine_kind(self) -> str:
        """``engine`` with ``auto`` decided: local, replicas or ray_data."""
        if self.engine == "auto":
            return "replicas" if self.replicas > 1 else "local"
        return self.engine

    @property
    def executor(self) -> str:
        """The old name's values (ray for ray_data, else local), for code and scripts that read it."""
        return "ray" if self.engine_kind == "ray_data" else "local"




class CostParams(Section):
    """``extract.cost``: the rates ``natfeed extract --estimate`` and the reports price a run at (null = unknown).
    Per-token prices (a hosted API) and a GPU-hour price (your own engine) add up; a GPU price needs a rate."""

    input_per_million: float | None = Field(None, ge=0, description="Price per million prompt tokens")
    output_per_million: float | None = Field(None, ge=0, description="Price per million generated tokens")
    gpu_hour: float | None = Field(None, ge=0, description="Price of one GPU-hour (needs tokens_per_second)")
    tokens_per_second: float | None = Field(None, gt=0, description="Throughput, prompt + generated tokens per "
                                            "second (the time estimate; with gpu_hour, its cost)")
    currency: str = Field("USD", description="Shown beside the cost")


class ExtractParams(Section):
    """Feedback extraction."""

    backend: Backend = Field("heuristic", description="Extractor backend: heuristic (CPU default), openai, "
                             "transformers, paper_loop or vllm")
    batch_size: int = Field(500, gt=0, description="Conversations per batch handed to the extractor")
    workers: int = Field(0, ge=0, description="Processes for per-turn backends (heuristic): 0 = one per CPU "
                         "core, 1 = in-process")
    executor: Literal["local", "ray"] = Field("local", description="local (this process, or worker processes "
                                              "for the heuristic) or ray (Ray Data map_batches over an actor "
                                              "pool, on one machine or a cluster; docs/SCALING.md)")
    ray_address: str | None = Field(None, description="executor ray: null = start a local Ray (or join "
                                    "$RAY_ADDRESS); auto or ray://head:10001 = a running cluster")
    ray_actors: int = Field(0, ge=0, description="executor ray: actors; 0 = one per CPU (heuristic), one per "
                            "ray_gpus_per_actor GPUs (model backends), 4 (openai)")
    ray_gpus_per_actor: float | None = Field(None, ge=0, description="executor ray: GPUs per actor; null = "
                                             "vllm.tensor_parallel_size (vllm) or 1 (transformers) when the "
                                             "cluster has GPUs, else 0")
    ray_object_store_mb: int = Field(512, ge=64, description="executor ray, local Ray only: object store size "
                                     "(the batches waiting for an actor; Ray spills the rest to disk)")
    detect_language: bool = Field(True, description="When extracting raw logs, detect missing languages (lingua)")
    language_min_confidence: float = Field(0.5, ge=0, le=1, description="As ingest.language_min_confidence")
    language_min_letters: int = Field(2, ge=0, description="As ingest.language_min_letters")
    heuristic: HeuristicParams = Field(default_factory=HeuristicParams)
    mode: Literal["turn", "paper"] = Field("turn", description="LLM backends: turn (one constrained label per user turn) or paper "
                      "(the paper's prompt, one JSON answer per conversation)")
    shard_dir: str | None = Field(None, description="LLM backends: resumable shards + manifest, keyed by input "
                                  "and params (not a DVC out, so a rerun finds them); null = "
                                  "<output folder>/.<output stem>.shards")
    cache: bool = Field(True, description="LLM backends: answer from the judgement cache where it holds the answer "
                        "(keyed by model, params that change answers, prompt version and the exact request; never "
                        "the input file) and store every new answer there")
    cache_dir: str | None = Field(None, description="The judgement cache's folder (not a DVC out; flag --cache-dir); "
                                  "null = <shard dir>/cache")
    cost: CostParams = Field(default_factory=CostParams)
    llm: LLMParams = Field(default_factory=LLMParams)
    openai: OpenAIParams = Field(default_factory=OpenAIParams)
    transformers: TransformersParams = Field(default_factory=TransformersParams)
    vllm: VLLMParams = Field(default_factory=VLLMParams)

    @model_validator(mode="after")
    def _one_scale_out(self) -> ExtractParams:
        if self.executor == "ray" and self.backend == "vllm" and self.vllm.engine_kind != "local":
            raise ValueError("extract.executor: ray runs one vLLM engine per Ray actor: leave extract.vllm.engine "
                             "auto or local and replicas 1, and set extract.ray_actors (and vllm.tensor_parallel_size)")
        return self
