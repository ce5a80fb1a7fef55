"""extract_quality: reads ${paths.feedback}, ${paths.conversations} and the real gold labels
${paths.gold_labels} (every judged turn of the embedded real conversations, with the part it belongs to);
writes reports/extract_quality.json (overall, never-tuned and tuned-on figures), the plain report
reports/extract_quality_details.json (per part, per language group) and the DVC plot data
reports/extract_confusion.json (one record per judged turn) and reports/extract_per_category.csv."""

from pathlib import Path

import pandas as pd

from natfeed.core.errors import run_stage
from natfeed.core.io import write_json, write_report
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.data.extract_quality import load_gold, load_gold_parts, split_quality
from natfeed.params import load_params
from natfeed.report.headline import write_headline


def main() -> None:
    setup_logging()
    params = load_params()
    paths, reports = params.paths, Path(params.paths.reports_dir)
    with stage_run("extract_quality", params.tracking, params.extract_quality.model_dump()) as run:
        conv = pd.read_parquet(paths.conversations, columns=["conversation_id", "language"])
        languages = dict(zip(conv["conversation_id"], conv["language"], strict=True))
        gold = {k: v for k, v in load_gold(paths.gold_labels).items() if k[0] in languages}
        result = split_quality(pd.read_parquet(paths.feedback), gold, load_gold_parts(paths.gold_labels),
                               params.extract_quality.tuned_parts, languages)
        write_json(reports / "extract_confusion.json", result["records"])
        measured = result["report"].get("never_tuned") or result["report"]  # the plot: the validation parts
        rows = [{"category": c, **m} for c, m in (measured.get("per_category") or {}).items()]
        pd.DataFrame(rows, columns=["category", "precision", "recall", "f1", "support"]).to_csv(
            reports / "extract_per_category.csv", index=False)
        write_report(reports / "extract_quality.json", result["report"])
        write_headline(paths.metrics_dir, "extract_quality", result["report"])
        write_json(reports / "extract_quality_details.json", result["details"])
        run.metrics({k: result["report"][k] for k in ("detection", "micro", "macro_f1", "never_tuned")})
        run.artifact(reports / "extract_quality_details.json")
        run.dataset(paths.feedback, context="evaluation", name="feedback")
        run.dataset(paths.gold_labels, context="gold", name="gold_labels")


if __name__ == "__main__":
    run_stage(main)
