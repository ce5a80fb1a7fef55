"""check_params: reads the whole params.yaml; writes reports/check_params.json. Runs first (ingest depends
on its output), so a typo anywhere in params.yaml — any section, TRL's train.sft / train.kto fields
included — stops `dvc repro` before any other stage runs. Its output does not change while the params
stay valid, so editing one value reruns only the stages that read it."""

from pathlib import Path

from natfeed.core.errors import run_stage
from natfeed.core.io import write_json
from natfeed.core.logs import setup_logging
from natfeed.params import load_params
from natfeed.params.model import check_train_params

PARAMS_FILE = "params.yaml"


def main() -> None:
    setup_logging()
    params = load_params(PARAMS_FILE)
    check_train_params(params.train)
    write_json(Path(params.paths.reports_dir) / "check_params.json", {"params_file": PARAMS_FILE, "valid": True})


if __name__ == "__main__":
    run_stage(main)
