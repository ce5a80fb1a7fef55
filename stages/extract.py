"""extract: reads ${paths.conversations}; writes ${paths.feedback} (+ .report.json), the paper's
${paths.natural_feedback_csv} and reports/extract.json."""

from pathlib import Path

from natfeed.core.errors import run_stage
from natfeed.core.io import write_report
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.extract.run import extract_file, write_paper_csv
from natfeed.params import load_params
from natfeed.report.headline import write_headline


def main() -> None:
    setup_logging()
    params = load_params()
    paths = params.paths
    with stage_run("extract", params.tracking, params.extract.model_dump()) as run:
        report = extract_file(paths.conversations, paths.feedback, params.extract)
        report["natural_feedback_rows"] = write_paper_csv(paths.feedback, paths.natural_feedback_csv)
        out = Path(paths.reports_dir) / "extract.json"
        write_report(out, report)
        write_headline(paths.metrics_dir, "extract", report)
        run.metrics(report)
        run.artifact(out)
        run.dataset(paths.conversations, context="input", name="conversations")
        run.dataset(paths.feedback, context="output", name="feedback")


if __name__ == "__main__":
    run_stage(main)
