"""validate: reads ${paths.conversations}, ${paths.feedback} and the accepted baseline
${paths.expectations_baseline}; writes reports/validate.json, reports/validate.txt and the Data Docs
in ${paths.data_docs_dir}. Exits 1 when any check fails (the CI gate)."""

import sys
from pathlib import Path

import pandas as pd

from natfeed.core.errors import run_stage
from natfeed.core.io import write_report
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.data.expectations import load_baseline
from natfeed.data.validate import summary, validate_tables
from natfeed.params import load_params
from natfeed.report.headline import write_headline


def main() -> int:
    setup_logging()
    params = load_params()
    paths, reports = params.paths, Path(params.paths.reports_dir)
    with stage_run("validate", params.tracking, params.validate_.model_dump()) as run:
        report = validate_tables(pd.read_parquet(paths.conversations), pd.read_parquet(paths.feedback),
                                 params.validate_, load_baseline(paths.expectations_baseline), paths.data_docs_dir)
        write_report(reports / "validate.json", report)
        write_headline(paths.metrics_dir, "validate", report)
        (reports / "validate.txt").write_text(summary(report) + "\n", encoding="utf-8")
        run.metrics({"passed": report["passed"], "failed_checks": report["failed_checks"],
                     "balance": report["balance"]})
        run.artifact(reports / "validate.json")
        run.dataset(paths.feedback, context="validated", name="feedback")
    print(summary(report), file=sys.stderr if not report["passed"] else sys.stdout)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    run_stage(main)
