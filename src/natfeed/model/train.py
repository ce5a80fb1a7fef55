"""SFT on the positive-feedback examples, then KTO on the KTO set, with TRL's SFTTrainer and KTOTrainer.

``train.sft`` / ``train.kto`` in params.yaml hold TRL's own ``SFTConfig`` / ``KTOConfig`` field names;
``trainer_config`` checks every key against the class's dataclass fields and raises
:class:`natfeed.params.ParamsError` naming a misspelt one before any model is loaded. natfeed fills
only what the user did not set: ``output_dir``, ``seed``, ``report_to="none"`` (the stage logs the
trainers' metrics to its own MLflow run through ``on_log``), ``save_strategy="no"``, no gradient
checkpointing, and bf16 only where a CUDA GPU supports it. LoRA (peft) is optional: SFT trains an
adapter and KTO goes on training the same adapter against a frozen copy of it (TRL's "ref" adapter).
The code is the same on one CPU and under ``accelerate launch`` (FSDP / DeepSpeed): TRL and
Accelerate place the model; only rank 0 writes reports.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import time
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from natfeed.core.errors import UsageError
from natfeed.params import LoraParams, ParamsError, TrainParams
from natfeed.params.model import check_keys, trl_config_class

log = logging.getLogger(__name__)

LogFn = Callable[[dict[str, float], int], None]
SFT_COLUMNS = ["prompt", "completion"]
KTO_COLUMNS = ["prompt", "completion", "label"]
ADAPTER_CONFIG = "adapter_config.json"


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def coerce_numbers(values: Mapping[str, Any], cls: type) -> dict[str, Any]:
    """Numbers written as strings (PyYAML reads ``5e-07``, as DVC's ``-S`` writes it, as a string) become
    the float / int that the dataclass field ``cls.<key>`` is annotated with."""
    hints = typing.get_type_hints(cls)
    out = dict(values)
    for key, value in values.items():
        if not isinstance(value, str) or not _NUMBER.fullmatch(value.strip()):
            continue
        kinds = typing.get_args(hints.get(key)) or (hints.get(key),)
        if str not in kinds and float in kinds:
            out[key] = float(value)
        elif str not in kinds and int in kinds and float(value).is_integer():
            out[key] = int(float(value))
    return out


def _runtime_defaults(output_dir: Path, seed: int) -> dict[str, Any]:
    import torch

    from natfeed.core.device import bf16_supported

    gpu_bf16 = bf16_supported()
    return {"output_dir": str(output_dir), "seed": seed, "data_seed": seed, "report_to": "none",
            "save_strategy": "no", "gradient_checkpointing": False, "bf16": gpu_bf16,
            "dataloader_pin_memory": torch.cuda.is_available(), "logging_first_step": True}


def trainer_config(kind: str, params: TrainParams, output_dir: str | Path) -> Any:
    """``train.sft`` or ``train.kto`` (``kind``) as a validated SFTConfig / KTOConfig."""
    cls = trl_config_class(kind)
    values: dict[str, Any] = dict(getattr(params, kind))
    section = f"train.{kind}"
    check_keys(values, cls, section)
    values = coerce_numbers(values, cls)
    merged = {**_runtime_defaults(Path(output_dir), params.seed), **values}
    if "fp16" in values and "bf16" not in values:
        merged["bf16"] = False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # accelerate launch: each rank loads whole, then shards
        merged["model_init_kwargs"] = {"device_map": None, **(merged.get("model_init_kwargs") or {})}
    if kind == "kto" and merged.get("loss_type", "kto") != "apo_zero_unpaired" \
            and merged.get("per_device_train_batch_size", 8) < 2:
        raise ParamsError(f"{section}.per_device_train_batch_size must be > 1: KTO's KL estimate pairs each "
                          "completion with another prompt of the same batch")
    try:
        return cls(**merged)
    except (TypeError, ValueError) as err:
        raise ParamsError(f"{section}: {err}") from None


def lora_config(lora: LoraParams) -> Any | None:
    """A peft LoraConfig for causal LMs, or None when LoRA is off."""
    if not lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM")


def load_dataset(path: str | Path, columns: list[str]) -> Any:
    """The TRL columns of a build_kto parquet file as an in-memory ``datasets.Dataset``."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    table = pq.read_table(path, columns=columns)
    if table.num_rows == 0:
        raise UsageError(f"{path} has no rows: nothing to train on (check the extract and build_kto reports)")
    return Dataset(table)


def _prompt_tokens(messages: list[dict[str, str]], tokenizer: Any) -> int:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def trim_prompt(messages: list[dict[str, str]], tokenizer: Any, max_tokens: int) -> list[dict[str, str]]:
    """Drop the oldest user/assistant exchanges (a leading system message stays, turns keep alternating)
    until the rendered prompt has at most ``max_tokens`` tokens; the last user message always stays."""
    msgs = list(messages)
    first = 1 if msgs and msgs[0]["role"] == "system" else 0
    while len(msgs) - first > 2 and _prompt_tokens(msgs, tokenizer) > max_tokens:
        del msgs[first:first + 2]
    return msgs


def trim_prompts(dataset: Any, tokenizer: Any, max_tokens: int | None) -> Any:
    """``trim_prompt`` on every row of a conversational dataset (unchanged when ``max_tokens`` is None)."""
    if max_tokens is None:
        return dataset
    return dataset.map(lambda row: {"prompt": trim_prompt(row["prompt"], tokenizer, max_tokens)},
                       desc="trimming long prompts")


def load_tokenizer(name_or_path: str) -> Any:
    """The model's tokenizer; a base model without a chat template gets natfeed's (see base_model)."""
    from transformers import AutoTokenizer

    from natfeed.model.chat_template import CHAT_TEMPLATE

    tok = AutoTokenizer.from_pretrained(name_or_path)
    # transformers saves how it was loaded (HF_HUB_OFFLINE=1 under `make run`, not under a bare `dvc repro`):
    # left in, the saved tokenizer_config.json and so the models' md5 in dvc.lock would depend on the shell
    getattr(tok, "init_kwargs", {}).pop("local_files_only", None)
    if not tok.chat_template:
        log.warning("%s has no chat template: using natfeed's <|user|>/<|assistant|> template", name_or_path)
        tok.chat_template = CHAT_TEMPLATE
        tok.bos_token = tok.bos_token or tok.eos_token
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(path: str | Path, trainable: bool = False) -> Any:
    """A causal LM saved by this module: full weights, or a LoRA adapter over its base model."""
    if (Path(path) / ADAPTER_CONFIG).exists():
        from peft import AutoPeftModelForCausalLM

        return AutoPeftModelForCausalLM.from_pretrained(str(path), is_trainable=trainable)
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path))


def _metrics_callback(prefix: str, on_log: LogFn | None) -> Any:
    from transformers import TrainerCallback

    class _Forward(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if on_log and logs and state.is_world_process_zero:
                values = {f"{prefix}/{k}": float(v) for k, v in logs.items()
                          if isinstance(v, int | float) and not isinstance(v, bool)}
                on_log(values, state.global_step)

    return _Forward()


def summarize(log_history: list[dict[str, Any]], seconds: float, examples: int) -> dict[str, Any]:
    """Report figures from a trainer's log history: steps, first/last step loss, mean train loss, last KTO
    rewards (keys' '/' become '_')."""
    steps = [e for e in log_history if "loss" in e]
    final = next((e for e in reversed(log_history) if "train_loss" in e), {})
    out: dict[str, Any] = {"examples": examples, "steps": int(final.get("step", steps[-1]["step"] if steps else 0)),
                           "train_loss": final.get("train_loss"), "seconds": round(seconds, 2)}
    if steps:
        out["loss_first"], out["loss_last"] = steps[0]["loss"], steps[-1]["loss"]
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins", "kl", "logps/chosen", "logps/rejected"):
        logged = [e[key] for e in steps if key in e]
        if logged:
            out[key.replace("/", "_")] = logged[-1]
            out[key.replace("/", "_") + "_mean"] = sum(logged) / len(logged)
    return out


def _save(trainer: Any, out_dir: Path, lora: LoraParams) -> None:
    from accelerate import PartialState

    if lora.enabled and lora.merge:
        merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
        if trainer.accelerator.is_main_process:
            merged.save_pretrained(out_dir)
            trainer.processing_class.save_pretrained(out_dir)
    else:
        trainer.save_model(str(out_dir))
    PartialState().wait_for_everyone()


def _fit(trainer: Any, out_dir: Path, lora: LoraParams, start: float, examples: int) -> dict[str, Any]:
    """Train, save (adapter or full/merged weights), summarise the log history, free the memory."""
    trainer.train()
    _save(trainer, out_dir, lora)
    report = summarize(trainer.state.log_history, time.perf_counter() - start, examples)
    del trainer
    _free_memory()
    return report


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_sft(model: str, dataset: Any, params: TrainParams, out_dir: str | Path,
            on_log: LogFn | None = None) -> dict[str, Any]:
    """SFT from ``model`` (Hub id or path) on a prompt/completion dataset; save to ``out_dir``."""
    from trl import SFTTrainer

    start, out_dir = time.perf_counter(), Path(out_dir)
    args = trainer_config("sft", params, out_dir)
    tokenizer = load_tokenizer(model)
    trainer = SFTTrainer(model=model, args=args, processing_class=tokenizer,
                         train_dataset=trim_prompts(dataset, tokenizer, params.max_prompt_tokens),
                         peft_config=lora_config(params.lora), callbacks=[_metrics_callback("sft", on_log)])
    trained = len(trainer.train_dataset)
    report = _fit(trainer, out_dir, params.lora, start, trained)
    report["examples_given"] = len(dataset)
    return report


def run_kto(model: str | Path, dataset: Any, params: TrainParams, out_dir: str | Path,
            on_log: LogFn | None = None) -> dict[str, Any]:
    """KTO from ``model`` (the SFT output: full weights or a LoRA adapter) on a prompt/completion/label
    dataset; the reference model is the starting model. Save to ``out_dir``."""
    from trl import KTOTrainer

    start, out_dir = time.perf_counter(), Path(out_dir)
    args = trainer_config("kto", params, out_dir)
    adapter = (Path(model) / ADAPTER_CONFIG).exists()
    policy = load_model(model, trainable=True) if adapter else str(model)
    tokenizer = load_tokenizer(str(model))
    data = trim_prompts(dataset, tokenizer, params.max_prompt_tokens)
    if args.max_length is not None:  # what TRL would drop as fully truncated, dropped (and counted) here
        data = data.filter(lambda row: _prompt_tokens(row["prompt"], tokenizer) < args.max_length)
    labels = [bool(x) for x in data["label"]]
    n_d, n_u = sum(labels), len(labels) - sum(labels)
    weight = args.desirable_weight
    if params.kto_weights == "advised":
        weight = advised_desirable_weight(n_d, n_u, args.desirable_weight, args.undesirable_weight)
        if weight != args.desirable_weight:
            log.info("KTO trains on %d desirable / %d undesirable examples: desirable_weight %s -> %s (TRL's "
                     "advised range; train.kto_weights: as_set keeps it)", n_d, n_u, args.desirable_weight, weight)
            args.desirable_weight = weight
    trainer = KTOTrainer(model=policy, args=args, processing_class=tokenizer, train_dataset=data,
                         peft_config=None if adapter else lora_config(params.lora),
                         callbacks=[_metrics_callback("kto", on_log)])
    trained = len(trainer.train_dataset)
    report = _fit(trainer, out_dir, params.lora, start, trained)
    report.update({"examples_given": len(dataset), "dropped_truncated": len(dataset) - trained,
                   "desirable": n_d, "undesirable": n_u, "desirable_weight": weight,
                   "undesirable_weight": args.undesirable_weight})
    return report


def advised_desirable_weight(n_d: int, n_u: int, w_d: float, w_u: float) -> float:
    """``w_d`` when ``w_d * n_d / (w_u * n_u)`` is in [1, 4/3] (the KTO paper's Eq. 8, which TRL checks, with its
    bounds rounded to 2 decimals) or one label is missing; otherwise the middle of that range, rounded."""
    if not n_d or not n_u or n_d == n_u and w_d == w_u:
        return w_d
    low, high = round(n_u * w_u / n_d, 2), round(n_u * w_u / n_d * 1.33, 2)
    if low <= w_d <= high:
        return w_d
    return round((low + high) / 2, 2)


def train(params: TrainParams, kto_dir: str | Path, sft_dir: str | Path, policy_dir: str | Path,
          on_log: LogFn | None = None) -> dict[str, Any]:
    """The train stage: SFT (``sft_train.parquet``) from ``params.base_model`` into ``sft_dir``, then KTO
    (``kto_train.parquet``) from the SFT model into ``policy_dir``. Returns the report."""
    import torch

    start = time.perf_counter()
    trainer_config("sft", params, sft_dir)  # fail on a typo before anything heavy runs
    trainer_config("kto", params, policy_dir)
    sft_data = load_dataset(Path(kto_dir) / "sft_train.parquet", SFT_COLUMNS)
    # KTO samples sequentially (its KL term pairs neighbours); one seeded shuffle mixes the labels.
    kto_data = load_dataset(Path(kto_dir) / "kto_train.parquet", KTO_COLUMNS).shuffle(seed=params.seed)
    if params.torch_threads:
        torch.set_num_threads(params.torch_threads)
    sft = run_sft(params.base_model, sft_data, params, sft_dir, on_log)
    kto = run_kto(sft_dir, kto_data, params, policy_dir, on_log)
    return {"base_model": params.base_model, "lora": params.lora.enabled, "sft": sft, "kto": kto,
            "seconds": round(time.perf_counter() - start, 2)}
