"""study_report: reads the three step reports and the scores; writes reports/study.json (with the computed
verdict), docs/STUDY.md and docs/figures/study_*.png."""

from natfeed.core.errors import run_stage
from natfeed.core.logs import setup_logging
from natfeed.params.study import load_study_params
from natfeed.study.report import report_step


def main() -> None:
    setup_logging()
    report_step(load_study_params())


if __name__ == "__main__":
    run_stage(main)
