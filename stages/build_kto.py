"""build_kto: reads ${paths.feedback}; writes KTO and SFT train/test parquet into ${paths.kto_dir}
and reports/build_kto.json."""

from pathlib import Path

import pandas as pd

from natfeed.core.io import write_json
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.data.build_kto import build_kto
from natfeed.params import load_params


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
