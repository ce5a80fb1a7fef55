"""build_kto: reads ${paths.feedback}; writes KTO and SFT train/test parquet into ${paths.kto_dir}
and reports/build_kto.json."""

from pathlib import Path

import pandas as pd

from natfeed.core.errors import run_stage
from natfeed.core.io import write_json
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.data.build_kto import build_kto, write_frames
from natfeed.params import load_params


def main() -> None:
    setup_logging()
    params = load_params()
    paths = params.paths
    with stage_run("build_kto", params.tracking, params.build_kto.model_dump()) as run:
        frames, report = build_kto(pd.read_parquet(paths.feedback), params.build_kto)
        for path in write_frames(frames, paths.kto_dir):
            run.dataset(path, context=path.stem, name=path.stem)
        write_json(Path(paths.reports_dir) / "build_kto.json", report)
        run.metrics(report)


if __name__ == "__main__":
    run_stage(main)
