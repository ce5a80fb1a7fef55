"""The extracted dataset's card: ``data/processed/README.md`` in the Hugging Face dataset card format.

A YAML header (license, language, task_categories, size_categories, ``configs`` pointing at the parquet
files, so ``datasets.load_dataset`` and the Hub viewer find them), then what the data is, the five
categories with their counts, how it was extracted, its quality on real labelled data (validation
parts), the figures of :mod:`natfeed.report.figures`, and the citations of the paper and the sources.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import yaml

from natfeed.core.categories import CATEGORIES
from natfeed.params.report import DatasetCardParams
from natfeed.report.figures import FIGURES
from natfeed.report.summary import fmt

DESCRIPTIONS = {
    "repeat_or_rephrase": "the user repeats or rephrases the request: the reply missed (UR1)",
    "make_aware_with_correction": "the user says the reply is wrong and how to fix it (UR2)",
    "make_aware_without_correction": "the user says the reply is wrong or unhelpful, without the fix (UR3)",
    "ask_for_clarification": "the user questions the reply or asks what it means (UR4)",
    "positive_feedback": "the user thanks or praises the reply (UR5)",
}
PAPER_CITATION = """@article{donyehiya2024naturally,
  title   = {Learning from Naturally Occurring Feedback},
  author  = {Don-Yehiya, Shachar and Choshen, Leshem and Abend, Omri},
  journal = {arXiv preprint arXiv:2407.10944},
  year    = {2024}
}"""


def iso_code(language: str) -> str | None:
    """ISO 639-1 code of an LMSYS language name ("English" -> "en"); None when unknown."""
    from lingua import Language

    try:
        return Language.from_str(language.strip()).iso_code_639_1.name.lower()
    except (ValueError, AttributeError):
        return None


def size_category(n: int) -> str:
    """The Hub's size bucket of ``n`` rows."""
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def _configs(card_dir: Path, files: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """The header's ``configs``: paths relative to the card's folder, one split per file."""
    out = []
    for name, splits in files.items():
        data_files = [{"split": split, "path": Path(path).relative_to(card_dir).as_posix()}
                      for split, path in splits.items() if Path(path).exists()]
        if data_files:
            out.append({"config_name": name, "data_files": data_files})
    return out


def header(params: DatasetCardParams, feedback: pd.DataFrame, card_dir: Path,
           files: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """The card's YAML header."""
    codes = sorted({c for c in (iso_code(lang) for lang in feedback["language"].dropna().unique()) if c})
    meta: dict[str, Any] = {"pretty_name": params.pretty_name, "license": params.license}
    if params.license == "other":
        meta["license_name"] = params.license_name
        meta["license_link"] = params.license_link
    meta.update({
        "language": codes or ["en"],
        "multilinguality": "multilingual" if len(codes) > 1 else "monolingual",
        "task_categories": ["text-classification", "text-generation"],
        "tags": ["natural-feedback", "user-feedback", "kto", "sft", "rlhf", "chat"],
        "size_categories": [size_category(len(feedback))],
        "configs": _configs(card_dir, files),
    })
    return meta


def _quality_lines(quality: Mapping[str, Any] | None) -> list[str]:
    if not quality:
        return ["Not measured (the `extract_quality` stage has not run)."]
    never = quality.get("never_tuned") or quality
    if never.get("detection") is None:
        return ["Unknown: none of these conversations has gold labels, so the extractor's precision and recall "
                "on them were not measured. Label a sample (`natfeed review export` / `import`) to measure it."]
    lines = [f"Measured by the `extract_quality` stage on {fmt(never['n_turns'])} real user turns labelled by hand "
             "(`data/raw/gold_labels.csv`) in the gold set's **validation** parts: the rules were not written from "
             "them, but they decided which rule changes to keep and the confidence thresholds, so this is a "
             "validation set, not an untouched test set:", "",
             "| | precision | recall | F1 |", "|---|---|---|---|"]
    for key, name in (("detection", "feedback vs none"), ("micro", "category")):
        m = never[key]
        lines.append(f"| {name} | {fmt(m['precision'])} | {fmt(m['recall'])} | {fmt(m['f1'])} |")
    lines += ["", "| category | F1 | gold turns |", "|---|---|---|"]
    for cat in CATEGORIES:
        c = never["per_category"][cat]
        lines.append(f"| {cat} | {fmt(c['f1'])} | {fmt(c['support'])} |")
    lines += ["", "The paper's Mixtral extraction reached span precision 0.43 and recall 0.58 on its own set; the "
              "figures are not directly comparable (different data and unit)."]
    return lines


def study_lines(study: Mapping[str, Any] | None) -> list[str]:
    """The prevalence per corpus of the study (docs/STUDY.md), when it has run; else nothing."""
    if not study or not study.get("corpora"):
        return []
    lines = ["", "## Prevalence per corpus (the study)", "",
             f"The same extractor (`{study.get('extractor', '-')}`) on every conversation of each corpus, from "
             "`reports/study.json` (`make study`; details, intervals and limits in `docs/STUDY.md`). The paper "
             "found explicit feedback in about 30% of the chats it annotated by hand.", "",
             "| corpus | conversations | judged turns | with feedback | 95% CI |", "|---|---|---|---|---|"]
    for name, c in study["corpora"].items():
        wf = c["with_feedback"]
        ci = wf.get("ci") or [None, None]
        interval = "-" if ci[0] is None else f"{100 * ci[0]:.1f}–{100 * ci[1]:.1f}%"
        share = "-" if wf.get("share") is None else f"{100 * wf['share']:.1f}%"
        lines.append(f"| {name} | {fmt(c['conversations'])} | {fmt(c['judged_turns'])} | {share} | {interval} |")
    return lines


def render(params: DatasetCardParams, conversations: pd.DataFrame, feedback: pd.DataFrame,
           reports: Mapping[str, Any], card_path: str | Path, files: Mapping[str, Mapping[str, str]],
           figures: Mapping[str, str], undesirable: list[str]) -> str:
    """The card's text."""
    card_dir = Path(card_path).parent
    meta = header(params, feedback, card_dir, files)
    counts = feedback["category"].value_counts().reindex(CATEGORIES, fill_value=0)
    n_conv, n_with = len(conversations), feedback["conversation_id"].nunique()
    extract = reports.get("extract") or {}
    kto = reports.get("build_kto") or {}
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).strip(), "---", "",
             f"# {params.pretty_name}", "",
             f"{fmt(len(feedback))} turns of **naturally occurring feedback** — users telling a chat model how its "
             f"previous reply did — found in {fmt(n_with)} of {fmt(n_conv)} conversations "
             f"({100 * n_with / max(1, n_conv):.1f}%), with the reply they judged and the conversation before it, "
             "and the KTO/SFT training sets built from them. Made by natfeed, which implements *Learning from "
             "Naturally Occurring Feedback* (Don-Yehiya, Choshen, Abend, 2024).", "",
             "## The categories", "", "| category | rows | meaning |", "|---|---|---|"]
    lines += [f"| `{c}` | {fmt(int(counts[c]))} | {DESCRIPTIONS[c]} |" for c in CATEGORIES]
    lines += ["", "## Files", "", "| config | split | file | rows |", "|---|---|---|---|"]
    for cfg in meta["configs"]:
        for df in cfg["data_files"]:
            rows = pq.read_metadata(card_dir / df["path"]).num_rows
            lines.append(f"| {cfg['config_name']} | {df['split']} | `{df['path']}` | {fmt(rows)} |")
    folder = card_dir.as_posix()
    lines += ["", "```python", "from datasets import load_dataset",
              f"feedback = load_dataset(\"{folder}\", \"feedback\")  # the configs above; or, file by file:",
              f"kto = load_dataset(\"parquet\", data_files={{\"train\": \"{folder}/kto/kto_train.parquet\", "
              f"\"test\": \"{folder}/kto/kto_test.parquet\"}})",
              "```", "", "## How it was extracted", "",
              f"Extractor `{extract.get('extractor', '-')}` over {fmt(extract.get('judged_turns', extract.get('user_turns')))} "
              f"judged user turns (every user turn after the first, of {fmt(extract.get('user_turns'))} in all). The heuristic weighs multilingual cue lexicons, the shape of the "
              "turn and its similarity to the user's earlier turns; the LLM backends (vLLM, transformers, any "
              "OpenAI-compatible server) label each turn or use the paper's prompt. Ingest first drops malformed "
              "rows (kept with their reason in `conversations.rejected.parquet`) and duplicates.", "",
              "KTO data: `positive_feedback` replies are desirable; replies the user said were wrong "
              f"({', '.join(undesirable)}) are undesirable; "
              f"the larger side is downsampled to KTO's ratio guidance: {fmt(kto.get('desirable'))} desirable and "
              f"{fmt(kto.get('undesirable'))} undesirable examples.", "", "## Quality on real labelled data", ""]
    lines += _quality_lines(reports.get("extract_quality"))
    lines += study_lines(reports.get("study"))
    lines += ["", "## Figures", ""]
    for name in FIGURES:
        if name in figures:
            rel = Path(figures[name]).relative_to(card_dir).as_posix()
            lines.append(f"![{name.replace('_', ' ')}]({rel})")
            lines.append("")
    lines += ["## Sources and licence", "", params.sources.strip(), "", "## Citation", "",
              "The method (and, for the embedded sample, the sources of the conversations):", "", "```bibtex",
              PAPER_CITATION, *([params.source_citations.strip()] if params.source_citations.strip() else []), "```", ""]
    return "\n".join(lines)


def kto_files(kto_dir: str) -> dict[str, dict[str, str]]:
    """The KTO and SFT parquet files by config and split."""
    return {name: {split: str(Path(kto_dir) / f"{name}_{split}.parquet") for split in ("train", "test")}
            for name in ("kto", "sft")}


def write_card(params: DatasetCardParams, paths: Any, undesirable: list[str]) -> dict[str, Any]:
    """Draw the figures, write the card (``paths.dataset_card``) and the prevalence report; what was written."""
    import json

    from natfeed.core.io import atomic_write, write_json
    from natfeed.report.figures import prevalence, write_figures

    conversations = pd.read_parquet(paths.conversations, columns=["conversation_id", "language", "model"])
    feedback = pd.read_parquet(paths.feedback, columns=["conversation_id", "feedback_turn", "category",
                                                        "language", "model"])
    reports = {}
    for name in ("extract", "build_kto", "extract_quality", "study"):  # study: make study's, when it has run
        path = Path(paths.reports_dir) / f"{name}.json"
        reports[name] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
    figures = write_figures(conversations, feedback, paths.figures_dir)
    files = {"feedback": {"train": paths.feedback}, **kto_files(paths.kto_dir)}
    text = render(params, conversations, feedback, reports, paths.dataset_card, files, figures, undesirable)
    atomic_write(paths.dataset_card, text.encode("utf-8"))
    tables = {col: prevalence(conversations, feedback, col).reset_index(names=col).to_dict("records")
              for col in ("language", "model")}
    report = {"conversations": len(conversations), "with_feedback": int(feedback["conversation_id"].nunique()),
              "rows_per_category": {c: int((feedback["category"] == c).sum()) for c in CATEGORIES},
              "by_language": tables["language"], "by_model": tables["model"],
              "feedback_turn": {str(k): int(v) for k, v in feedback["feedback_turn"].value_counts().sort_index().items()}}
    write_json(Path(paths.reports_dir) / "prevalence.json", report)
    return {"card": paths.dataset_card, "figures": figures, "report": report}
