"""evaluate: the trained policy against the base model, and SFT-only against KTO, on the KTO test split.

Intrinsic figures use teacher forcing over the completion tokens only (``natfeed.evaluate.likelihood``):

- per model (base, sft, policy): mean log-likelihood of desirable and of undesirable completions, summed
  over the completion's tokens (``logp_sum_*``) and per token (``logp_per_token_*``, the mean over
  examples of sum / tokens);
- KTO's implicit reward ``r = beta * (log pi(y|x) - log pi_ref(y|x))`` for the pairs policy|sft (what KTO
  optimised when it started from the SFT model), policy|base and sft|base: ``accuracy`` is the share of
  examples whose reward sign matches the label (r > 0 desirable, r < 0 undesirable); a zero log-ratio
  (|log-ratio| <= 1e-6) counts half, so a model scored against itself gets exactly 0.5. 95% Wilson
  interval. ``margin`` = mean r of desirable - mean r of undesirable (TRL's rewards/margins), with a
  95% normal (Welch) interval.

Judged figures: greedy replies of every model to the held-out prompts (the distinct prompts of the test
split, whose conversations were never trained on), compared by a reward model and/or an LLM judge for
policy vs base and policy vs sft (``natfeed.evaluate.rm_judge``: ties count half, 95% Wilson interval).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from natfeed.core.device import cpu_threads, resolve_device, resolve_dtype
from natfeed.core.errors import UsageError
from natfeed.core.io import write_report
from natfeed.evaluate.likelihood import completion_logps, generate_replies, load_causal_lm
from natfeed.evaluate.metrics import Z95, wilson_interval, win_rate
from natfeed.evaluate.rm_judge import rm_judge
from natfeed.evaluate.side_by_side import build_sheet, write_csv, write_html
from natfeed.params import EvaluateParams

log = logging.getLogger(__name__)

MODELS = ("base", "sft", "policy")
REWARD_PAIRS = (("policy", "sft"), ("policy", "base"), ("sft", "base"))
JUDGED_PAIRS = (("policy", "base"), ("policy", "sft"))
LOGRATIO_TIE = 1e-6


@dataclass
class Evaluation:
    report: dict[str, Any]
    sheet: pd.DataFrame
    prompts: pd.DataFrame
    plots: dict[str, pd.DataFrame]


def _messages(value: Any) -> list[dict[str, str]]:
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in value]


def heldout_prompts(test: pd.DataFrame, max_prompts: int | None = None) -> pd.DataFrame:
    """The distinct prompts of the test split in first-seen order: prompt_id, conversation_id, prompt."""
    seen: dict[str, tuple[str, list[dict[str, str]]]] = {}
    for cid, prompt in zip(test["conversation_id"], test["prompt"], strict=True):
        messages = _messages(prompt)
        seen.setdefault(json.dumps(messages, ensure_ascii=False), (str(cid), messages))
    rows = list(seen.values())[: max_prompts if max_prompts is not None else None]
    return pd.DataFrame({"prompt_id": range(len(rows)), "conversation_id": [r[0] for r in rows],
                         "prompt": [r[1] for r in rows]})


def _mean(values: np.ndarray) -> float | None:
    return float(values.mean()) if len(values) else None


def loglik_metrics(logps: np.ndarray, ntokens: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """Mean completion log-likelihood (summed and per token) of desirable and undesirable examples."""
    per_token = logps / np.maximum(ntokens, 1)
    out = {"logp_sum_desirable": _mean(logps[labels]), "logp_sum_undesirable": _mean(logps[~labels]),
           "logp_per_token_desirable": _mean(per_token[labels]),
           "logp_per_token_undesirable": _mean(per_token[~labels]),
           "tokens_desirable": _mean(ntokens[labels].astype(float)),
           "tokens_undesirable": _mean(ntokens[~labels].astype(float))}
    d, u = out["logp_per_token_desirable"], out["logp_per_token_undesirable"]
    out["logp_per_token_gap"] = d - u if d is not None and u is not None else None
    return out


def reward_metrics(policy_logps: np.ndarray, ref_logps: np.ndarray, labels: np.ndarray,
                   beta: float) -> dict[str, float | int | None]:
    """KTO implicit-reward accuracy (zero log-ratio = half) and margin, each with a 95% interval."""
    logratio = policy_logps - ref_logps
    rewards = beta * logratio
    sign = np.where(np.abs(logratio) <= LOGRATIO_TIE, 0, np.sign(logratio))
    correct = np.where(sign == 0, 0.5, ((sign > 0) == labels).astype(float))
    low, high = wilson_interval(float(correct.sum()), len(correct))
    des, und = rewards[labels], rewards[~labels]
    margin = margin_low = margin_high = None
    if len(des) and len(und):
        margin = float(des.mean() - und.mean())
        var = (des.var(ddof=1) / len(des) if len(des) > 1 else 0.0) + (und.var(ddof=1) / len(und)
                                                                       if len(und) > 1 else 0.0)
        margin_low, margin_high = margin - Z95 * math.sqrt(var), margin + Z95 * math.sqrt(var)
    return {"accuracy": _mean(correct), "ci_low": low, "ci_high": high, "n": len(correct),
            "accuracy_desirable": _mean(correct[labels]), "accuracy_undesirable": _mean(correct[~labels]),
            "margin": margin, "margin_ci_low": margin_low, "margin_ci_high": margin_high,
            "reward_desirable": _mean(des), "reward_undesirable": _mean(und),
            "zero_logratio": int((sign == 0).sum())}


def device_and_dtype(params: EvaluateParams) -> tuple[Any, Any]:
    """``evaluate.device`` and ``evaluate.dtype`` resolved (``auto`` decided) once for the whole stage."""
    device = resolve_device(params.device)
    return device, resolve_dtype(params.dtype, device)


def score_models(test: pd.DataFrame, prompts: pd.DataFrame, model_dirs: Mapping[str, str | Path],
                 params: EvaluateParams, device: Any = None, dtype: Any = None,
                 ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, list[str]], dict[str, list[str]]]:
    """Load each model in turn: completion log-probs on the test split, greedy replies to the held-out
    prompts and to the sanity prompts (on ``device`` in ``dtype``: :func:`device_and_dtype` when not given)."""
    if device is None or dtype is None:
        device, dtype = device_and_dtype(params)
    prompt_msgs = [_messages(p) for p in test["prompt"]]
    completions = [_messages(c) for c in test["completion"]]
    sanity = [[{"role": "user", "content": s.prompt}] for s in params.sanity]
    logps, replies, answers = {}, {}, {}
    for name in MODELS:
        start = time.perf_counter()
        model, tokenizer = load_causal_lm(str(model_dirs[name]), device, dtype)
        logps[name] = completion_logps(model, tokenizer, prompt_msgs, completions, params.batch_size,
                                       params.max_length)
        replies[name] = generate_replies(model, tokenizer, list(prompts["prompt"]), params.max_new_tokens,
                                         params.batch_size, params.max_length, params.repetition_penalty
                                         ) if len(prompts) else []
        answers[name] = generate_replies(model, tokenizer, sanity, params.sanity_max_new_tokens,
                                         params.batch_size, params.max_length) if sanity else []
        del model
        gc.collect()
        log.info("%s: scored %d completions, %d replies, %d sanity answers in %.1fs", name, len(test),
                 len(prompts), len(sanity), time.perf_counter() - start)
    return logps, replies, answers


def sanity_report(params: EvaluateParams, answers: Mapping[str, list[str]]) -> dict[str, Any]:
    """Per model: how many sanity prompts it answered right (the expected word in its reply)."""
    out: dict[str, Any] = {}
    for name in MODELS:
        right = [s.expect.lower() in a.lower() for s, a in zip(params.sanity, answers.get(name, []), strict=True)]
        out[name] = {"right": int(sum(right)), "n": len(right), "rate": _mean(np.array(right, dtype=float))}
    return out


def sanity_sheet(params: EvaluateParams, answers: Mapping[str, list[str]]) -> pd.DataFrame:
    """The sanity prompts with each model's answer (the side-by-side sheet's last rows)."""
    prompts = pd.DataFrame({"prompt_id": [f"sanity-{i}" for i in range(len(params.sanity))],
                            "conversation_id": [""] * len(params.sanity),
                            "prompt": [[{"role": "user", "content": s.prompt}] for s in params.sanity]})
    return build_sheet(prompts, answers, {"expected": [s.expect for s in params.sanity]})


def run_judges(prompts: pd.DataFrame, replies: Mapping[str, list[str]], params: EvaluateParams,
               device: Any = None, dtype: Any = None) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The configured judges' report sections and the sheet columns of their scores and verdicts (the reward
    model on ``device`` in ``dtype``: :func:`device_and_dtype` when not given)."""
    report: dict[str, Any] = {"rm_judge": None, "llm_judge": None, "rm_win_rate": None, "llm_win_rate": None}
    columns: dict[str, list[Any]] = {}
    msgs = list(prompts["prompt"])
    if params.rm_judge is not None and len(prompts):
        if device is None or dtype is None:
            device, dtype = device_and_dtype(params)
        scores, outcomes = rm_judge(params.rm_judge, msgs, replies, JUDGED_PAIRS, device, dtype)
        report["rm_judge"] = {"model": params.rm_judge.model,
                              "mean_score": {k: float(np.nanmean(v)) for k, v in scores.items()},
                              **{pair: win_rate(o) for pair, o in outcomes.items()}}
        report["rm_win_rate"] = report["rm_judge"]["policy_vs_base"]["win_rate"]
        columns |= {f"rm_score_{k}": list(v) for k, v in scores.items()}
        columns |= {f"rm_{pair}": o for pair, o in outcomes.items()}
    if params.llm_judge is not None and len(prompts):
        from natfeed.evaluate.llm_judge import judge_pairs, position_stats

        items = [(p, replies[a][i], replies[b][i]) for a, b in JUDGED_PAIRS for i, p in enumerate(msgs)]
        judgements, stats = judge_pairs(params.llm_judge, items)
        section: dict[str, Any] = {"model": params.llm_judge.model, **stats}
        for k, (a, b) in enumerate(JUDGED_PAIRS):
            chunk = judgements[k * len(msgs): (k + 1) * len(msgs)]
            section[f"{a}_vs_{b}"] = {**win_rate([j.outcome for j in chunk]), **position_stats(chunk)}
            columns[f"llm_{a}_vs_{b}"] = [j.outcome for j in chunk]
            columns[f"llm_{a}_vs_{b}_orders"] = [f"{j.candidate_first or '-'}/{j.candidate_second or '-'}"
                                                 for j in chunk]
        report["llm_judge"] = section
        report["llm_win_rate"] = section["policy_vs_base"]["win_rate"]
    return report, columns


def primary_metric(report: Mapping[str, Any], params: EvaluateParams) -> dict[str, Any]:
    """{name, value, ci_low, ci_high, comparison, n} of the metric that params name (auto: see config); ``n``
    is what it was measured on (test examples, or judged prompts), which the registry's gate checks."""
    name = params.primary_metric
    if name == "auto":
        name = ("llm_win_rate" if params.llm_judge else "rm_win_rate" if params.rm_judge
                else "kto_reward_accuracy")
    if name in ("kto_reward_accuracy", "kto_reward_margin"):
        comparison = f"policy_vs_{params.reference}"
        r = report["kto_reward"][comparison]
        if name == "kto_reward_accuracy":
            return {"name": name, "value": r["accuracy"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                    "comparison": comparison, "n": report["test_examples"]}
        return {"name": name, "value": r["margin"], "ci_low": r["margin_ci_low"],
                "ci_high": r["margin_ci_high"], "comparison": comparison, "n": report["test_examples"]}
    judged = report[name.replace("_win_rate", "_judge")]["policy_vs_base"]
    return {"name": name, "value": judged["win_rate"], "ci_low": judged["ci_low"],
            "ci_high": judged["ci_high"], "comparison": "policy_vs_base",
            "n": judged.get("n", report.get("heldout_prompts"))}


def _plots(report: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    loglik = pd.DataFrame([{"model_completion": f"{m} {kind}",
                            "logp_per_token": report["loglik"][m][f"logp_per_token_{kind}"]}
                           for m in MODELS for kind in ("desirable", "undesirable")])
    rates = [{"metric": f"kto_reward_accuracy {pair}", "value": r["accuracy"]}
             for pair, r in report["kto_reward"].items()]
    for judge in ("rm_judge", "llm_judge"):
        if report[judge]:
            rates += [{"metric": f"{judge.replace('_judge', '')}_win_rate {a}_vs_{b}",
                       "value": report[judge][f"{a}_vs_{b}"]["win_rate"]} for a, b in JUDGED_PAIRS]
    sanity = pd.DataFrame([{"model": m, "rate": s["rate"], "right": s["right"], "n": s["n"]}
                           for m, s in (report.get("sanity") or {}).items()], columns=["model", "rate", "right", "n"])
    return {"evaluate_loglik.csv": loglik, "evaluate_rates.csv": pd.DataFrame(rates), "evaluate_sanity.csv": sanity}


def run_evaluate(test: pd.DataFrame, model_dirs: Mapping[str, str | Path],
                 params: EvaluateParams) -> Evaluation:
    """Every figure of the evaluate stage, the side-by-side sheet and the DVC plot tables."""
    if test.empty:
        raise UsageError("the KTO test split is empty: build_kto needs more conversations "
                         "(or a larger build_kto.test_size)")
    start = time.perf_counter()
    labels = test["label"].astype(bool).to_numpy()
    prompts = heldout_prompts(test, params.max_prompts)
    device, dtype = device_and_dtype(params)
    log.info("evaluating on %s in %s", device, str(dtype).removeprefix("torch."))
    with cpu_threads(params.cpu_threads, device):
        logps, replies, answers = score_models(test, prompts, model_dirs, params, device, dtype)
        scored = time.perf_counter()
        judged, columns = run_judges(prompts, replies, params, device, dtype)
    report: dict[str, Any] = {
        "reference": params.reference, "beta": params.beta, "test_examples": len(test),
        "desirable": int(labels.sum()), "undesirable": int((~labels).sum()), "heldout_prompts": len(prompts),
        "loglik": {m: loglik_metrics(*logps[m], labels) for m in MODELS},
        "kto_reward": {f"{a}_vs_{b}": reward_metrics(logps[a][0], logps[b][0], labels, params.beta)
                       for a, b in REWARD_PAIRS},
        "mean_reply_chars": {m: _mean(np.array([len(r) for r in replies[m]], dtype=float)) for m in MODELS},
        "sanity": sanity_report(params, answers),
        **judged,
    }
    ref = report["kto_reward"][f"policy_vs_{params.reference}"]
    report["kto_reward_accuracy"], report["kto_reward_margin"] = ref["accuracy"], ref["margin"]
    report["primary_metric"] = primary_metric(report, params)
    report["seconds"] = {"models": round(scored - start, 2), "judges": round(time.perf_counter() - scored, 2),
                         "total": round(time.perf_counter() - start, 2)}
    sheet = pd.concat([build_sheet(prompts, replies, columns), sanity_sheet(params, answers)], ignore_index=True)
    all_prompts = pd.concat([prompts, pd.DataFrame({"prompt": [[{"role": "user", "content": s.prompt}]
                                                                for s in params.sanity]})], ignore_index=True)
    return Evaluation(report, sheet, all_prompts, _plots(report))


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def summary_facts(report: Mapping[str, Any]) -> dict[str, str]:
    """The headline figures of the HTML sheet, rounded to 3 significant digits."""
    pm = report["primary_metric"]
    ci = f" [{_g(pm.get('ci_low'))}, {_g(pm.get('ci_high'))}]" if pm.get("ci_low") is not None else ""
    facts = {"primary metric": f"{pm['name']} ({pm.get('comparison', '')}) = {_g(pm['value'])}{ci}",
             "KTO reward accuracy (policy vs " + report["reference"] + ")": _g(report["kto_reward_accuracy"])}
    for key, label in (("rm_win_rate", "RM win rate policy vs base"), ("llm_win_rate", "LLM win rate policy vs base")):
        if report.get(key) is not None:
            facts[label] = _g(report[key])
    if report.get("sanity"):
        facts["sanity prompts answered right"] = ", ".join(f"{m} {s['right']}/{s['n']}" for m, s in report["sanity"].items())
    return facts


def write_outputs(evaluation: Evaluation, reports_dir: str | Path) -> dict[str, Path]:
    """reports/evaluate.json, side_by_side.{html,csv} and the plot CSVs; returns their paths by name."""
    out = Path(reports_dir)
    report = evaluation.report
    summary = summary_facts(report)
    paths = {"report": out / "evaluate.json",
             "csv": write_csv(evaluation.sheet, out / "side_by_side.csv"),
             "html": write_html(evaluation.sheet, list(evaluation.prompts["prompt"]),
                                out / "side_by_side.html", summary)}
    write_report(paths["report"], report)
    for name, frame in evaluation.plots.items():
        frame.to_csv(out / name, index=False)
        paths[name] = out / name
    return paths
