"""study_kto: reads the embedded feedback + gold (thresholds on the validation parts) and the study corpus's
feedback; writes ${paths.work_dir}/kto/ (kto_train/test, kto_shuffled, random replies) and
reports/study_kto.json (thresholds, sizes, per-category flow)."""

from natfeed.core.errors import run_stage
from natfeed.core.logs import setup_logging
from natfeed.params.study import load_study_params
from natfeed.study.kto_data import kto_step


def main() -> None:
    setup_logging()
    kto_step(load_study_params())


if __name__ == "__main__":
    run_stage(main)
