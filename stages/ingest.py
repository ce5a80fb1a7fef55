"""ingest: reads ${paths.raw_input}; writes ${paths.conversations} (+ .rejected/.filtered parquet)
and reports/ingest.json."""

from pathlib import Path

from natfeed.config import load_params
from natfeed.ingest import run_ingest
from natfeed.io import sibling, write_json
from natfeed.logs import setup_logging
from natfeed.tracking import stage_run


def main() -> None:
    setup_logging()
    params = load_params()
    paths = params.paths
    with stage_run("ingest", params.tracking, params.ingest.model_dump()) as run:
        report = run_ingest(paths.raw_input, paths.conversations, params.ingest)
        out = Path(paths.reports_dir) / "ingest.json"
        write_json(out, report)
        run.metrics(report)
        run.artifact(out)
        run.dataset(paths.conversations, context="output", name="conversations")
        run.dataset(sibling(paths.conversations, "rejected.parquet"), context="rejected", name="rejected")


if __name__ == "__main__":
    main()
