"""build_kto: reads ${paths.feedback}; writes KTO and SFT train/test parquet into ${paths.kto_dir}
and reports/build_kto.json."""

from pathlib import Path

import pandas as pd

from natfeed.config import load_params
from natfeed.io import write_json
from natfeed.kto_dataset import build_kto
from natfeed.logs import setup_logging
from natfeed.tracking import stage_run


def main() -> None:
    setup_logging()
    params = load_params()
    paths = params.paths
    with stage_run("build_kto", params.tracking, params.build_kto.model_dump()) as run:
        frames, report = build_kto(pd.read_parquet(paths.feedback), params.build_kto)
        out_dir = Path(paths.kto_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            frame.to_parquet(out_dir / f"{name}.parquet", index=False)
            run.dataset(out_dir / f"{name}.parquet", context=name, name=name)
        write_json(Path(paths.reports_dir) / "build_kto.json", report)
        run.metrics(report)


if __name__ == "__main__":
    main()
