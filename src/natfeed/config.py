"""Typed, validated pipeline parameters (``params.yaml``).

Every section is a frozen pydantic model with ``extra="forbid"``: an unknown or misspelt key is an
error that names the key, not a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from natfeed.categories import CATEGORIES
from natfeed.expectations import ExpectationsParams
from natfeed.extract.heuristic import HeuristicParams


class ParamsError(ValueError):
    """params.yaml is missing, malformed or has an unknown/invalid key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PathsParams(_Section):
    """Every file the pipeline reads or writes; dvc.yaml refers to these with ${paths.*}."""

    raw_dir: str = Field("data/raw", description="Folder tracked by data.dvc")
    raw_input: str = Field("data/raw/conversations.jsonl", description="File, folder or glob that ingest reads")
    gold_labels: str = Field("data/raw/gold_labels.csv", description="Gold labels per user turn")
    conversations: str = Field("data/interim/conversations.parquet", description="Ingest output")
    feedback: str = Field("data/processed/feedback.parquet", description="Extract output")
    natural_feedback_csv: str = Field("data/processed/natural_feedback.csv", description="Paper's format")
    kto_dir: str = Field("data/processed/kto", description="KTO/SFT train/test parquet files")
    reports_dir: str = Field("reports", description="Metrics JSON and plots")
    data_docs_dir: str = Field("reports/data_docs", description="great-expectations Data Docs HTML")
    expectations_baseline: str = Field(
        "reports/expectations_baseline.json", description="Profile of the last accepted dataset (drift)"
    )
    base_model_dir: str = Field("models/base", description="Embedded default base model (stage base_model)")
    sft_model_dir: str = Field("models/sft", description="SFT model (stage train)")
    policy_dir: str = Field("models/policy", description="KTO policy, the trained model (stage train)")


class IngestParams(_Section):
    """Reading, normalising and filtering conversations."""

    batch_size: int = Field(2000, gt=0, description="Rows per streamed batch (memory stays flat)")
    min_user_turns: int = Field(2, ge=1, description="Conversations with fewer user turns are filtered")
    languages: list[str] = Field(default_factory=list, description="Keep only these (LMSYS names); [] = all")
    max_chars: int = Field(200_000, gt=0, description="Conversations longer than this (all messages) are filtered")
    detect_language: bool = Field(True, description="Detect the language offline (lingua) where it is missing")


class LLMParams(_Section):
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


class OpenAIParams(_Section):
    """Backend openai: any OpenAI-compatible /v1/chat/completions server (vllm serve, TGI, a hosted API)."""

    base_url: str = Field("http://127.0.0.1:8000/v1", description="API root; requests go to "
                          "{base_url}/chat/completions")
    api_key_env: str | None = Field("OPENAI_API_KEY", description="NAME of the environment variable holding the "
                                    "key (never logged or stored); null or unset variable = no key")
    concurrency: int = Field(16, gt=0, description="Requests in flight at once")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout")
    max_retries: int = Field(5, ge=0, description="Retries on timeouts, connection errors, 429 and 5xx")
    backoff_s: float = Field(1.0, ge=0, description="First retry delay; doubles each retry (Retry-After wins)")
    max_backoff_s: float = Field(60.0, ge=0, description="Longest retry delay")
    structured: str = Field("vllm", description="Constrained answers: vllm (extra_body structured_outputs: "
                            "choice / json), json_schema (OpenAI response_format), none")
    logprobs: bool = Field(True, description="Ask for token log-probs (turn-mode confidence)")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Extra fields merged into each request")

    @field_validator("structured")
    @classmethod
    def _structured(cls, value: str) -> str:
        if value not in ("vllm", "json_schema", "none"):
            raise ValueError(f"structured {value!r} is not one of ['vllm', 'json_schema', 'none']")
        return value


class TransformersParams(_Section):
    """Backends transformers (batched generate / label scoring) and paper_loop (the paper's original loop)."""

    batch_size: int = Field(8, gt=0, description="Requests per forward/generate call")
    device: str = Field("auto", description="auto (cuda if available, else cpu), cpu, cuda, cuda:1, ...")
    dtype: str = Field("auto", description="auto (float32 on CPU, bfloat16 on GPU), float32, bfloat16, float16")
    paper_loop_temperature: float = Field(1.0, gt=0, description="paper_loop samples (do_sample=True) as the "
                                          "paper did, at this temperature")
    paper_loop_top_p: float = Field(1.0, gt=0, le=1, description="paper_loop nucleus sampling")

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str) -> str:
        if value not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"dtype {value!r} is not one of ['auto', 'float32', 'bfloat16', 'float16']")
        return value


class VLLMParams(_Section):
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
    paper_structured: str = Field("json", description="Paper-mode answers: json (JSON schema, no free "
                                  "whitespace), regex (the same shape as a regex), none (free text)")
    replicas: int = Field(1, ge=1, description="Engines (data parallel), each on its own device group; "
                          "requests go to replica hash(conversation_id) % replicas")
    devices: list[str] = Field(default_factory=list, description="CUDA_VISIBLE_DEVICES per replica, e.g. "
                               "['0,1', '2,3']; [] = consecutive groups of tensor_parallel_size")
    executor: str = Field("local", description="local (engines in this machine's processes) or ray (Ray "
                          "Data ray.data.llm, across a cluster)")
    ray_address: str | None = Field(None, description="executor ray: cluster address; null = local/auto")
    ray_batch_size: int = Field(64, ge=1, description="executor ray: rows per Ray Data batch")
    ray_accelerator_type: str | None = Field(None, description="executor ray: e.g. H100; null = any")
    tokenizer: str | None = Field(None, description="Tokenizer path/id if not the model's")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="Extra vllm.LLM(...) arguments")

    @field_validator("paper_structured")
    @classmethod
    def _paper_structured(cls, value: str) -> str:
        if value not in ("json", "regex", "none"):
            raise ValueError(f"paper_structured {value!r} is not one of ['json', 'regex', 'none']")
        return value

    @field_validator("executor")
    @classmethod
    def _executor(cls, value: str) -> str:
        if value not in ("local", "ray"):
            raise ValueError(f"executor {value!r} is not one of ['local', 'ray']")
        return value


class ExtractParams(_Section):
    """Feedback extraction."""

    backend: str = Field("heuristic", description="Extractor backend: heuristic (CPU default)")
    batch_size: int = Field(500, gt=0, description="Conversations per batch handed to the extractor")
    workers: int = Field(0, ge=0, description="Processes for per-turn backends (heuristic): 0 = one per CPU "
                         "core, 1 = in-process")
    detect_language: bool = Field(True, description="When extracting raw logs, detect missing languages (lingua)")
    heuristic: HeuristicParams = Field(default_factory=HeuristicParams)
    mode: str = Field("turn", description="LLM backends: turn (one constrained label per user turn) or paper "
                      "(the paper's prompt, one JSON answer per conversation)")
    shard_dir: str = Field("data/interim/extract_shards", description="LLM backends: resumable shards + "
                           "manifest, keyed by input and params (not a DVC out, so a rerun finds them)")
    llm: LLMParams = Field(default_factory=LLMParams)
    openai: OpenAIParams = Field(default_factory=OpenAIParams)
    transformers: TransformersParams = Field(default_factory=TransformersParams)
    vllm: VLLMParams = Field(default_factory=VLLMParams)

    @field_validator("mode")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in ("turn", "paper"):
            raise ValueError(f"unknown extract mode {value!r}; choose turn or paper")
        return value

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from natfeed.extract.base import available_backends

        if value not in available_backends():
            raise ValueError(f"unknown backend {value!r}; available: {sorted(available_backends())}")
        return value


class BalanceParams(_Section):
    """Balance checks on the feedback set (the CI gate)."""

    min_rows: int = Field(50, ge=0, description="Fewest feedback rows accepted")
    min_category_share: float = Field(0.02, ge=0, le=1, description="Each category's share must be at least")
    max_category_share: float = Field(0.8, ge=0, le=1, description="No category may exceed this share")
    min_pos_neg_ratio: float = Field(0.05, ge=0, description="positive:negative rows at least")
    max_pos_neg_ratio: float = Field(5.0, gt=0, description="positive:negative rows at most")


class ValidateParams(_Section):
    balance: BalanceParams = Field(default_factory=BalanceParams)
    expectations: ExpectationsParams = Field(default_factory=ExpectationsParams)


class BuildKtoParams(_Section):
    """KTO/SFT dataset construction."""

    undesirable_categories: list[str] = Field(
        default_factory=lambda: ["make_aware_with_correction", "make_aware_without_correction"],
        description="Categories whose replies are undesirable (paper: both make_aware categories)",
    )
    exclude_flagged: bool = Field(True, description="Drop conversations flagged by openai_moderation")
    desirable_weight: float = Field(1.0, gt=0, description="KTO desirable_weight used in the ratio")
    undesirable_weight: float = Field(1.0, gt=0, description="KTO undesirable_weight used in the ratio")
    ratio_min: float = Field(1.0, gt=0, description="Lower bound of wd*n_d/(wu*n_u) (KTO guidance: 1)")
    ratio_max: float = Field(4 / 3, gt=0, description="Upper bound of wd*n_d/(wu*n_u) (KTO guidance: 4/3)")
    test_size: float = Field(0.2, gt=0, lt=1, description="Share of conversations in the test split")
    seed: int = Field(42, description="Seed for downsampling and the split")

    @field_validator("undesirable_categories")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if c not in CATEGORIES or c == "positive_feedback"]
        if bad:
            raise ValueError(f"not negative feedback categories: {bad}; choose from {CATEGORIES[:4]}")
        return value

    @model_validator(mode="after")
    def _ratio_order(self) -> BuildKtoParams:
        if self.ratio_min > self.ratio_max:
            raise ValueError(f"ratio_min {self.ratio_min} > ratio_max {self.ratio_max}")
        return self


class TrackingParams(_Section):
    """MLflow; MLFLOW_TRACKING_URI in the environment overrides tracking_uri."""

    enabled: bool = Field(True, description="Log stages to MLflow")
    tracking_uri: str = Field("sqlite:///mlruns/mlflow.db", description="Local store (not in git)")
    artifact_location: str = Field("mlruns/artifacts", description="Artifacts folder of the local store")
    experiment: str = Field("natfeed", description="MLflow experiment name")


class BaseModelParams(_Section):
    """The embedded default base model: a small Llama built offline from the sample (stage base_model)."""

    vocab_size: int = Field(2048, ge=300, description="Byte-level BPE vocabulary trained on the sample "
                            "(special tokens included; the embedding is padded to a multiple of 64)")
    min_frequency: int = Field(2, ge=1, description="Fewest occurrences for a BPE merge")
    hidden_size: int = Field(256, gt=0, description="Model width; a multiple of head_dim")
    head_dim: int = Field(64, gt=0, description="Attention head size (64: vLLM's CPU kernels accept it)")
    num_layers: int = Field(2, gt=0, description="Decoder layers")
    num_key_value_heads: int | None = Field(None, gt=0, description="Grouped-query heads; null = one per head")
    intermediate_size: int = Field(512, gt=0, description="MLP width")
    max_position_embeddings: int = Field(1024, gt=0, description="Longest sequence (RoPE)")
    pretrain_steps: int = Field(100, ge=0, description="Causal-LM steps on the chat-formatted sample; 0 = "
                                "random weights")
    pretrain_batch_size: int = Field(8, gt=0, description="Sequences per pre-training step")
    pretrain_seq_len: int = Field(128, gt=1, description="Tokens per pre-training sequence")
    learning_rate: float = Field(1e-3, gt=0, description="Peak AdamW learning rate (warm-up, then cosine)")
    seed: int = Field(42, description="Seed for initialisation and batch sampling")
    torch_threads: int = Field(1, ge=0, description="CPU threads for torch; 0 = torch's default (all cores). "
                               "Small models run several times faster on 1 thread on a busy machine")

    @model_validator(mode="after")
    def _heads(self) -> BaseModelParams:
        if self.hidden_size % self.head_dim:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of head_dim {self.head_dim}")
        heads = self.hidden_size // self.head_dim
        if self.num_key_value_heads is not None and heads % self.num_key_value_heads:
            raise ValueError(f"{heads} attention heads are not a multiple of num_key_value_heads "
                             f"{self.num_key_value_heads}")
        return self


class LoraParams(_Section):
    """Optional LoRA adapters (peft) for SFT and KTO."""

    enabled: bool = Field(False, description="Train LoRA adapters instead of all weights")
    r: int = Field(16, gt=0, description="Adapter rank")
    alpha: int = Field(32, gt=0, description="lora_alpha (scaling = alpha / r)")
    dropout: float = Field(0.05, ge=0, lt=1, description="lora_dropout")
    target_modules: list[str] | str = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="Module names, or 'all-linear'")
    merge: bool = Field(False, description="Save merged full weights instead of the adapter (small models)")


def _sft_defaults() -> dict[str, Any]:
    return {"num_train_epochs": 1, "per_device_train_batch_size": 8, "learning_rate": 5e-4,
            "lr_scheduler_type": "cosine", "warmup_steps": 1, "max_length": 256, "logging_steps": 1}


def _kto_defaults() -> dict[str, Any]:
    return {"num_train_epochs": 1, "per_device_train_batch_size": 8, "learning_rate": 5e-5, "beta": 0.1,
            "desirable_weight": 1.0, "undesirable_weight": 1.0, "max_length": 256, "logging_steps": 1}


class TrainParams(_Section):
    """SFT then KTO with TRL. ``sft`` / ``kto`` hold TRL's own SFTConfig / KTOConfig fields; their keys are
    checked against those classes when the stage builds them (natfeed.train), so a typo fails."""

    base_model: str = Field("models/base", description="Hub id or local path of the model to train "
                            "(default: the base_model stage's output, paths.base_model_dir)")
    seed: int = Field(42, description="Seed for both trainers (unless sft/kto set their own)")
    torch_threads: int = Field(1, ge=0, description="CPU threads for torch (CPU runs); 0 = torch's default "
                               "(all cores). 1 suits the embedded tiny model")
    max_prompt_tokens: int | None = Field(128, gt=0, description="Drop a prompt's oldest exchanges (a leading "
                                          "system message stays) until it fits; null = keep whole prompts")
    sft: dict[str, Any] = Field(default_factory=_sft_defaults, description="trl.SFTConfig fields")
    kto: dict[str, Any] = Field(default_factory=_kto_defaults, description="trl.KTOConfig fields")
    lora: LoraParams = Field(default_factory=LoraParams)


class RmJudgeParams(_Section):
    """Reward-model judge: a Hugging Face sequence-classification model scores each (prompt, reply)."""

    model: str = Field(..., description="Hub id or local path of an AutoModelForSequenceClassification RM "
                       "with one output (e.g. sfairXC/FsfairX-LLaMA3-RM-v0.1)")
    batch_size: int = Field(4, gt=0, description="(prompt, reply) pairs per forward pass")
    max_length: int = Field(2048, gt=1, description="Tokens per scored conversation (the end is kept)")
    tie_margin: float = Field(0.0, ge=0, description="|score difference| at or below this is a tie")
    trust_remote_code: bool = Field(False, description="Allow the RM's own modelling code (e.g. Eurus-RM)")


class LlmJudgeParams(_Section):
    """LLM judge over an OpenAI-compatible chat-completions API (vllm serve, a hosted model)."""

    base_url: str = Field(..., description="API root, e.g. http://localhost:8000/v1; requests go to "
                          "{base_url}/chat/completions")
    model: str = Field(..., description="Model name the endpoint serves")
    api_key_env: str | None = Field("OPENAI_API_KEY", description="NAME of the environment variable holding "
                                    "the key (never in params, logs or reports); null = no key")
    max_concurrency: int = Field(8, gt=0, description="Requests in flight at once")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout")
    max_retries: int = Field(4, ge=0, description="Retries on timeouts, connection errors, 429 and 5xx")
    backoff_s: float = Field(1.0, ge=0, description="First retry delay, doubled each retry; Retry-After wins")
    max_backoff_s: float = Field(30.0, ge=0, description="Longest retry delay")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature of the judge")
    max_tokens: int = Field(16, gt=0, description="Judge answer length (raise for reasoning models)")


EVALUATE_PRIMARY_METRICS = ("auto", "kto_reward_accuracy", "kto_reward_margin", "rm_win_rate", "llm_win_rate")


class EvaluateParams(_Section):
    """Policy vs base and SFT-only vs KTO: intrinsic KTO metrics, judged win rates, a side-by-side sheet."""

    reference: str = Field("sft", description="Reference model of the policy's KTO implicit reward: sft (the "
                           "model KTO started from, TRL's ref) or base")
    beta: float = Field(0.1, gt=0, description="KTO beta scaling the implicit reward; keep = train.kto.beta")
    batch_size: int = Field(8, gt=0, description="Sequences per forward pass / generate call")
    max_length: int = Field(512, gt=1, description="Tokens per scored sequence (prompt head cut first); "
                            "as train.kto.max_length")
    max_new_tokens: int = Field(64, gt=0, description="Greedy reply length on held-out prompts")
    repetition_penalty: float = Field(1.0, gt=0, description="Greedy replies: >1 discourages repeating tokens "
                                      "(transformers' repetition_penalty; 1.0 = off)")
    max_prompts: int | None = Field(None, ge=0, description="Cap on held-out prompts (first N); null = all")
    device: str = Field("auto", description="auto (cuda if available, else cpu), cpu, cuda, cuda:1, ...")
    dtype: str = Field("auto", description="auto (float32 on CPU, bfloat16 on GPU) or a torch dtype name")
    cpu_threads: int | None = Field(1, ge=1, description="torch threads while evaluating on CPU: 1 suits the "
                                    "tiny default (more threads contend on a busy machine); null = torch's default")
    primary_metric: str = Field("auto", description=f"One of {EVALUATE_PRIMARY_METRICS[1:]}; auto = "
                                "llm_win_rate if the LLM judge is on, else rm_win_rate if the RM judge is "
                                "on, else kto_reward_accuracy (win rates: policy vs base)")
    rm_judge: RmJudgeParams | None = Field(None, description="Reward-model judge; null = off")
    llm_judge: LlmJudgeParams | None = Field(None, description="LLM judge; null = off")

    @model_validator(mode="after")
    def _choices(self) -> EvaluateParams:
        checks = {"reference": (self.reference, ("sft", "base")),
                  "dtype": (self.dtype, ("auto", "float32", "bfloat16", "float16")),
                  "primary_metric": (self.primary_metric, EVALUATE_PRIMARY_METRICS)}
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"{name} {value!r} is not one of {list(allowed)}")
        judge = {"rm_win_rate": self.rm_judge, "llm_win_rate": self.llm_judge}
        if self.primary_metric in judge and judge[self.primary_metric] is None:
            raise ValueError(f"primary_metric {self.primary_metric} needs "
                             f"{self.primary_metric.split('_')[0]}_judge to be configured")
        return self


LOG_WEIGHTS = ("auto", "full", "adapter", "reference")


class GateParams(_Section):
    """When a registered version may become the ``champion`` (natfeed.registry.check_gate)."""

    require_validation: bool = Field(True, description="reports/validate.json must say passed: true")
    thresholds: dict[str, float] = Field(default_factory=dict, description="{metric: minimum}: a name from "
                                         "reports/evaluate.json `metrics` (dotted when nested) or the primary "
                                         "metric's name; a missing metric fails the gate")
    compare_champion: bool = Field(True, description="Refuse a version worse than the champion on the primary "
                                   "metric: value below the champion's and, where the evaluate report has a CI, "
                                   "its ci_high below the champion's value too")
    tolerance: float = Field(0.0, ge=0, description="Without a CI: a drop up to this is not 'worse'")


class RegisterParams(_Section):
    """Logging the policy to the MLflow model registry and promoting it (stage register)."""

    model_name: str = Field("natfeed-policy", min_length=1, description="Registered model name")
    log_weights: str = Field("auto", description="full (transformers flavor, weights copied), adapter (LoRA "
                             "adapter copied, base model referenced), reference (nothing copied: a path or Hub "
                             "id), auto (adapter if the policy is one, else full up to max_full_gb, else "
                             "reference)")
    max_full_gb: float = Field(2.0, gt=0, description="auto: largest policy whose weights are copied")
    reference: str | None = Field(None, description="reference: the Hub id or path the logged model loads "
                                  "from; null = the absolute path of paths.policy_dir")
    max_new_tokens: int = Field(64, gt=0, description="Default reply length of the logged model's predict")
    gate: GateParams = Field(default_factory=GateParams)

    @field_validator("log_weights")
    @classmethod
    def _known_mode(cls, value: str) -> str:
        if value not in LOG_WEIGHTS:
            raise ValueError(f"log_weights {value!r} is not one of {list(LOG_WEIGHTS)}")
        return value


class Params(_Section):
    """The whole params.yaml."""

    paths: PathsParams = Field(default_factory=PathsParams)
    ingest: IngestParams = Field(default_factory=IngestParams)
    extract: ExtractParams = Field(default_factory=ExtractParams)
    validate_: ValidateParams = Field(default_factory=ValidateParams, alias="validate")
    build_kto: BuildKtoParams = Field(default_factory=BuildKtoParams)
    tracking: TrackingParams = Field(default_factory=TrackingParams)
    base_model: BaseModelParams = Field(default_factory=BaseModelParams)
    train: TrainParams = Field(default_factory=TrainParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    register_: RegisterParams = Field(default_factory=RegisterParams, alias="register")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def parse_params(data: dict[str, Any] | None) -> Params:
    """Validate a params mapping; raise ParamsError naming every bad key."""
    try:
        return Params.model_validate(data or {})
    except ValidationError as err:
        lines = [f"  {'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        raise ParamsError("invalid params.yaml:\n" + "\n".join(lines)) from None


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path} not found: run from the repository root or pass --params")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from None
    return parse_params(data)
