"""Claim 3, *useful*: four arms from the same base model, scored on the same KTO test split.

- ``kto``: the pipeline's own path, SFT on the desirable replies then KTO (:func:`natfeed.model.train`);
- ``kto_shuffled``: the same with the labels shuffled inside the train split (is there signal in them?);
- ``sft_feedback``: SFT on the replies users praised — the ``kto`` arm's first half, the same model;
- ``sft_random``: SFT on as many random assistant replies of the same corpus (the paper's §5.3 baseline).

Each arm's score on a test example is the sign of ``log p_arm(completion | prompt) - log p_base(...)``
against the label (a zero log-ratio counts half): the reward accuracy, with a Wilson 95% interval and the
mean margin desirable − undesirable of ``beta * log-ratio``.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from natfeed.core.io import atomic_path, write_json
from natfeed.evaluate.evaluate import reward_metrics
from natfeed.evaluate.likelihood import completion_logps, generate_replies, load_causal_lm
from natfeed.params import EvaluateParams, TrainParams
from natfeed.params.study import StudyParams
from natfeed.study.common import report_path, work_dir

log = logging.getLogger(__name__)

ARMS = ("kto", "kto_shuffled", "sft_feedback", "sft_random")


def _dataset(frame: pd.DataFrame, columns: list[str]) -> Any:
    from datasets import Dataset

    return Dataset.from_pandas(frame[columns].reset_index(drop=True), preserve_index=False)


def train_arm(arm: str, data: dict[str, pd.DataFrame], train: TrainParams, models_dir: Path,
              on_log: Callable[[dict[str, float], int], None] | None = None) -> tuple[Path, dict[str, Any]]:
    """Train one arm from ``train.base_model``; (its final model dir, the training report). ``sft_feedback``
    reuses the ``kto`` arm's SFT model when it exists (the same data, params and seed)."""
    from natfeed.model.train import run_kto, run_sft

    sft_cols, kto_cols = ["prompt", "completion"], ["prompt", "completion", "label"]
    start = time.perf_counter()
    if arm == "sft_random":
        out = models_dir / arm
        return out, {"sft": run_sft(train.base_model, _dataset(data["random"], sft_cols), train, out, on_log)}
    if arm == "sft_feedback":
        out = models_dir / "kto" / "sft"
        if (out / "config.json").exists():
            return out, {"sft": {"reused": "the kto arm's SFT model"}}
        praised = data["kto_train"][data["kto_train"]["label"]]
        return out, {"sft": run_sft(train.base_model, _dataset(praised, sft_cols), train, out, on_log)}
    kto = data["kto_train"] if arm == "kto" else data["kto_shuffled"]
    sft = kto[kto["label"]]  # the desirable replies (after the shuffle, for kto_shuffled)
    sft_dir, policy_dir = models_dir / arm / "sft", models_dir / arm / "policy"
    report = {"sft": run_sft(train.base_model, _dataset(sft, sft_cols), train, sft_dir, on_log)}
    shuffled = _dataset(kto, kto_cols).shuffle(seed=train.seed)  # KTO's KL term pairs neighbours: mix labels
    report["kto"] = run_kto(sft_dir, shuffled, train, policy_dir, on_log)
    report["seconds"] = round(time.perf_counter() - start, 2)
    return policy_dir, report


def _messages(value: Any) -> list[dict[str, str]]:
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]


def score(model_dir: str | Path, test: pd.DataFrame, params: EvaluateParams) -> dict[str, Any]:
    """Completion log-probs of the test examples and the sanity answers of one model."""
    start = time.perf_counter()
    model, tokenizer = load_causal_lm(str(model_dir), params.device, params.dtype)
    logps, ntokens = completion_logps(model, tokenizer, [_messages(p) for p in test["prompt"]],
                                      [_messages(c) for c in test["completion"]], params.batch_size,
                                      params.max_length)
    sanity = [[{"role": "user", "content": s.prompt}] for s in params.sanity]
    answers = generate_replies(model, tokenizer, sanity, params.sanity_max_new_tokens, params.batch_size,
                               params.max_length) if sanity else []
    del model
    gc.collect()
    right = [s.expect.lower() in a.lower() for s, a in zip(params.sanity, answers, strict=True)]
    return {"logps": logps, "ntokens": ntokens, "seconds": round(time.perf_counter() - start, 2),
            "sanity": {"right": int(sum(right)), "n": len(right), "rate": float(np.mean(right)) if right else None,
                       "answers": answers}}



def arm_metrics(arm_logps: np.ndarray, base_logps: np.ndarray, labels: np.ndarray, beta: float) -> dict[str, Any]:
    """``n``, ``reward_accuracy`` with ``ci``, the mean margin desirable − undesirable and its interval."""
    m = reward_metrics(arm_logps, base_logps, labels, beta)
    return {"n": m["n"], "reward_accuracy": m["accuracy"], "ci": [m["ci_low"], m["ci_high"]],
            "accuracy_desirable": m["accuracy_desirable"], "accuracy_undesirable": m["accuracy_undesirable"],
            "margin": m["margin"], "margin_ci": [m["margin_ci_low"], m["margin_ci_high"]],
            "zero_logratio": m["zero_logratio"]}


def _frames(p: StudyParams) -> dict[str, pd.DataFrame]:
    d = work_dir(p) / "kto"
    return {name: pd.read_parquet(d / f"{name}.parquet") for name in ("kto_train", "kto_test", "kto_shuffled",
                                                                       "random")}


def arms_step(p: StudyParams) -> dict[str, Any]:
    """Train every arm, score it and the base model on the test split; per-example scores in
    ``work_dir/scores.parquet``."""
    from natfeed.study.tracking import arm_run

    start = time.perf_counter()
    data = _frames(p)
    test = data["kto_test"].iloc[: p.arms.max_test] if p.arms.max_test else data["kto_test"]
    labels = test["label"].to_numpy(dtype=bool)
    base = score(p.train.base_model, test, p.evaluate)
    scores = pd.DataFrame({"conversation_id": test["conversation_id"], "label": labels, "base": base["logps"],
                           "tokens": base["ntokens"]})
    report: dict[str, Any] = {"base": {"sanity": base["sanity"], "seconds": base["seconds"]}, "arms": {}}
    for arm in p.arms.arms:
        with arm_run(arm, p, data) as run:
            arm_start = time.perf_counter()
            model_dir, training = train_arm(arm, data, p.train, Path(p.paths.models_dir), run.log_step)
            scored = score(model_dir, test, p.evaluate)
            scores[arm] = scored["logps"]
            metrics = arm_metrics(scored["logps"], base["logps"], labels, p.evaluate.beta)
            entry = {**metrics, "sanity": scored["sanity"], "training": training,
                     "seconds": round(time.perf_counter() - arm_start, 2)}
            run.finish(entry)
            report["arms"][arm] = entry
            log.info("arm %s: reward accuracy %.3f (n=%d) in %.0fs", arm, metrics["reward_accuracy"] or 0,
                     metrics["n"], entry["seconds"])
    with atomic_path(work_dir(p) / "scores.parquet") as tmp:
        scores.to_parquet(tmp, index=False)
    report["seconds"] = round(time.perf_counter() - start, 2)
    write_json(report_path(p, "arms"), report)
    return report
