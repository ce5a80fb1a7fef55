"""evaluate: reads ${paths.kto_dir}/kto_test.parquet and the models ${train.base_model} (the embedded
default ${paths.base_model_dir}, or a preset's Hub model), ${paths.sft_model_dir} and ${paths.policy_dir};
writes reports/evaluate.json (every figure and the primary metric), the side-by-side sheet
reports/side_by_side.{html,csv} and the DVC plot tables reports/evaluate_{loglik,rates}.csv."""

import logging
from pathlib import Path

import pandas as pd

from natfeed.core.errors import run_stage
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.evaluate.evaluate import run_evaluate, write_outputs
from natfeed.params import load_params
from natfeed.report.headline import write_headline


def main() -> None:
    setup_logging()
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per judge request otherwise
    params = load_params()
    paths = params.paths
    models = {"base": params.train.base_model, "sft": paths.sft_model_dir, "policy": paths.policy_dir}
    with stage_run("evaluate", params.tracking, params.evaluate.model_dump()) as run:
        test_file = Path(paths.kto_dir) / "kto_test.parquet"
        run.dataset(test_file, context="evaluation", name="kto_test")
        evaluation = run_evaluate(pd.read_parquet(test_file), models, params.evaluate)
        files = write_outputs(evaluation, paths.reports_dir)
        write_headline(paths.metrics_dir, "evaluate", evaluation.report)
        run.metrics(evaluation.report)
        for name in ("report", "html", "csv"):
            run.artifact(files[name], "evaluate")


if __name__ == "__main__":
    run_stage(main)
