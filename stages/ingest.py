"""ingest: reads ${paths.raw_input}; writes ${paths.conversations} (+ .rejected/.filtered parquet)
and reports/ingest.json."""

from pathlib import Path

from natfeed.core.errors import run_stage
from natfeed.core.io import write_report
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.data.ingest import run_ingest
from natfeed.params import load_params
from natfeed.report.headline import write_headline


def main() -> None:
    setup_logging()
    params = load_params()
    paths = params.paths
    with stage_run("ingest", params.tracking, params.ingest.model_dump()) as run:
        report = run_ingest(paths.raw_input, paths.conversations, params.ingest)
        out = Path(paths.reports_dir) / "ingest.json"
        write_report(out, report)
        write_headline(paths.metrics_dir, "ingest", report)
        run.metrics(report)
        run.artifact(out)
        run.dataset(paths.conversations, context="output", name="conversations")
        run.dataset(paths.conversations_rejected, context="rejected", name="rejected")


if __name__ == "__main__":
    run_stage(main)
