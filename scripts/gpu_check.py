"""GPU smoke check of the train stage: SFT then KTO with natfeed.model.train on CUDA in bf16.

    python scripts/gpu_check.py [--steps 20] [--big-layers 16] [--out /tmp/gpu_check] [--only tiny,big,big-lora]
    accelerate launch --config_file configs/accelerate/fsdp.yaml --num_processes N scripts/gpu_check.py --only big

Builds the tiny test model and a larger random Llama (~200M parameters, head_dim 64), runs natfeed's
SFT → KTO (and a LoRA SFT → KTO on the larger one) for a few steps each on a synthetic conversational
set, and prints one table: model, parameters, run, device, steps, steps/s, final loss, weights changed.
Offline; imports torch, transformers, trl, datasets, peft and natfeed (from ./src). Exits 1 when CUDA is
missing or a run's weights did not change. Under 3 minutes on one H100. It then runs natfeed's evaluate
(log-likelihoods, KTO implicit reward, greedy replies) on CUDA for the last trained model and prints its
figures. Under ``accelerate launch`` (FSDP, ZeRO-3) every rank trains and rank 0 prints.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO)]  # natfeed, and tests.support.scratch (the from-scratch model)

import pandas as pd  # noqa: E402
import torch  # noqa: E402

from natfeed.model.train import ADAPTER_CONFIG, load_model, train  # noqa: E402
from natfeed.params import TrainParams  # noqa: E402
from tests.support.scratch import DEMO_CONVERSATIONS, TINY, build_base_model, tiny_model  # noqa: E402

SENTENCES = [m["content"] for conv in DEMO_CONVERSATIONS for m in conv]


def synthetic_data(out: Path, n: int = 64, seed: int = 0) -> Path:
    """sft_train / kto_train parquet files (build_kto's shape) with prompts of a few hundred tokens."""
    rng = random.Random(seed)

    def text(k: int) -> str:
        return " ".join(rng.choice(SENTENCES) for _ in range(k))

    prompts = [[{"role": "user", "content": text(rng.randint(3, 12))}] for _ in range(n)]
    good = [[{"role": "assistant", "content": text(rng.randint(2, 6))}] for _ in range(n)]
    bad = [[{"role": "assistant", "content": "I don't know. " * rng.randint(1, 4)}] for _ in range(n)]
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"prompt": prompts, "completion": good}).to_parquet(out / "sft_train.parquet")
    rows = [(p, c, lab) for p, g, b in zip(prompts, good, bad, strict=True) for c, lab in ((g, True), (b, False))]
    kto = pd.DataFrame(rows, columns=["prompt", "completion", "label"])
    kto["conversation_id"] = [f"c{i // 2}" for i in range(len(kto))]
    kto.to_parquet(out / "kto_train.parquet")
    return out


def _device() -> str:
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def _weights(path: Path) -> dict[str, torch.Tensor]:
    model = load_model(path)
    if (path / ADAPTER_CONFIG).exists():
        model = model.merge_and_unload()
    return {k: v.float().cpu() for k, v in model.state_dict().items()}


def _changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a if k in b)


def run(name: str, model_dir: Path, data: Path, out: Path, steps: int, batch: int, lora: bool) -> list[dict]:
    """SFT then KTO from ``model_dir``; one table row per trainer."""
    conf = {"max_steps": steps, "per_device_train_batch_size": batch, "learning_rate": 1e-4 if lora else 1e-5,
            "logging_steps": 1, "max_length": 512}
    params = TrainParams(base_model=str(model_dir), sft=conf, kto=conf, max_prompt_tokens=384,
                         lora={"enabled": lora, "r": 16, "alpha": 32, "dropout": 0.0})
    logs: dict[str, dict[str, float]] = {"sft": {}, "kto": {}}

    def on_log(values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            kind, metric = key.split("/", 1)
            logs[kind][metric] = value

    start = time.perf_counter()
    report = train(params, data, out / "sft", out / "policy", on_log=on_log)
    wall = time.perf_counter() - start
    before, after_sft, after_kto = _weights(model_dir), _weights(out / "sft"), _weights(out / "policy")
    n_params = sum(v.numel() for k, v in before.items() if k != "lm_head.weight")
    rows = []
    for kind, a, b in (("sft", before, after_sft), ("kto", after_sft, after_kto)):
        rows.append({"model": name, "params_M": round(n_params / 1e6, 1), "run": kind + ("+lora" if lora else ""),
                     "device": _device(),
                     "bf16": torch.cuda.is_available() and torch.cuda.is_bf16_supported(),
                     "steps": report[kind]["steps"],
                     "steps_per_s": round(logs[kind].get("train_steps_per_second", float("nan")), 2),
                     "final_loss": round(report[kind].get("loss_last", float("nan")), 4),
                     "weights_changed": "yes" if _changed(a, b) else "NO",
                     "margin": round(report[kind].get("rewards_margins", float("nan")), 4) if kind == "kto" else "",
                     "wall_s": round(wall, 1)})
    return rows


def _main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def evaluate_row(data: Path, base: Path, run_dir: Path) -> pd.DataFrame:
    """natfeed's evaluate (device auto: CUDA, bf16) on the synthetic KTO set: base vs SFT vs policy."""
    from natfeed.evaluate.evaluate import run_evaluate
    from natfeed.params import EvaluateParams

    test = pd.read_parquet(data / "kto_train.parquet").head(32)
    start = time.perf_counter()
    ev = run_evaluate(test, {"base": base, "sft": run_dir / "sft", "policy": run_dir / "policy"},
                      EvaluateParams(max_prompts=8, max_new_tokens=32))
    r = ev.report
    return pd.DataFrame([{"evaluate": run_dir.name, "device": _device(), "examples": r["test_examples"],
                          "kto_reward_accuracy": round(r["kto_reward_accuracy"], 3),
                          "kto_reward_margin": round(r["kto_reward_margin"], 4),
                          "reply_chars_policy": r["mean_reply_chars"]["policy"],
                          "seconds": round(time.perf_counter() - start, 1)}])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--big-layers", type=int, default=16, help="layers of the larger model (hidden 1024)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--allow-cpu", action="store_true", help="smoke-test the script itself without a GPU")
    parser.add_argument("--only", default="tiny,big,big-lora", help="runs, comma-separated: tiny, big, big-lora")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available() and not args.allow_cpu:
        print(f"CUDA is not available: this check needs a GPU (torch {torch.__version__})", file=sys.stderr)
        return 1
    import peft
    import transformers
    import trl

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}, "
          f"peft {peft.__version__}, device {_device()}", flush=True)
    root = args.out or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    data = synthetic_data(root / "data")
    tiny = tiny_model(root / "tiny")
    big_params = TINY.model_copy(update={"vocab_size": 4096, "hidden_size": 1024, "num_layers": args.big_layers,
                                         "intermediate_size": 2816, "num_key_value_heads": 4,
                                         "max_position_embeddings": 1024})
    if any(k.startswith("big") for k in args.only.split(",")):
        convs = [[{"role": "user", "content": s}, {"role": "assistant", "content": s}] for s in SENTENCES] * 20
        build_base_model(convs, big_params, root / "big")
    runs = {"tiny": ("tiny", tiny, False), "big": ("random-llama", root / "big", False),
            "big-lora": ("random-llama", root / "big", True)}
    rows, last = [], None
    for key in args.only.split(","):
        name, model_dir, lora = runs[key]
        rows += run(name, model_dir, data, root / f"{key}_run", args.steps, 8, lora=lora)
        last = (model_dir, root / f"{key}_run")
    if not _main_process():
        return 0
    table = pd.DataFrame(rows)
    print(table.to_string(index=False), flush=True)
    if torch.cuda.is_available():
        print(f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    if last is not None:
        print(evaluate_row(data, *last).to_string(index=False), flush=True)
    return 0 if (table["weights_changed"] == "yes").all() else 1


if __name__ == "__main__":
    sys.exit(main())
