"""study_arms: reads ${paths.work_dir}/kto/ and the base model; trains the four arms (${paths.models_dir}),
scores them and the base on the same test split; writes ${paths.work_dir}/scores.parquet and
reports/study_arms.json. One MLflow run per arm (experiment natfeed-study)."""

from natfeed.core.errors import run_stage
from natfeed.core.logs import setup_logging
from natfeed.params.study import load_study_params
from natfeed.study.arms import arms_step


def main() -> None:
    setup_logging()
    arms_step(load_study_params())


if __name__ == "__main__":
    run_stage(main)
