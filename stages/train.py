"""train: reads ${paths.kto_dir}/{sft,kto}_train.parquet and the model train.base_model (default: the
base_model stage's ${paths.base_model_dir}); SFT into ${paths.sft_model_dir}, then KTO from the SFT
model into ${paths.policy_dir}; writes reports/train.json. The trainers' step metrics go to this
stage's MLflow run as sft/* and kto/*. Runs unchanged under
``accelerate launch --config_file configs/accelerate/fsdp.yaml stages/train.py`` (rank 0 logs)."""

import os
from pathlib import Path

from natfeed.core.errors import run_stage
from natfeed.core.io import write_report
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.model.train import train
from natfeed.params import load_params
from natfeed.report.headline import write_headline


def main() -> None:
    setup_logging()
    params = load_params()
    paths = params.paths
    main_process = int(os.environ.get("RANK", "0")) == 0
    tracking = params.tracking if main_process else params.tracking.model_copy(update={"enabled": False})
    with stage_run("train", tracking, params.train.model_dump()) as run:
        on_log = (lambda values, step: run.mlflow.log_metrics(values, step=step)) if run.mlflow else None
        report = train(params.train, paths.kto_dir, paths.sft_model_dir, paths.policy_dir, on_log=on_log)
        if main_process:
            out = Path(paths.reports_dir) / "train.json"
            write_report(out, report)
            write_headline(paths.metrics_dir, "train", report)
            run.metrics(report)
            run.artifact(out)
            for name in ("sft_train", "kto_train"):
                run.dataset(Path(paths.kto_dir) / f"{name}.parquet", context="training", name=name)


if __name__ == "__main__":
    run_stage(main)
