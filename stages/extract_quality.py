"""extract_quality: reads ${paths.feedback}, ${paths.conversations} and ${paths.gold_labels}; writes
reports/extract_quality.json and the DVC plot data reports/extract_confusion.json and
reports/extract_per_category.csv."""

from pathlib import Path

import pandas as pd

from natfeed.core.errors import run_stage
from natfeed.core.io import write_json
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.data.extract_quality import compare, load_gold
from natfeed.params import load_params


def main() -> None:
    setup_logging()
    params = load_params()
    paths, reports = params.paths, Path(params.paths.reports_dir)
    with stage_run("extract_quality", params.tracking, {"gold_labels": paths.gold_labels}) as run:
        kept = set(pd.read_parquet(paths.conversations, columns=["conversation_id"])["conversation_id"])
        gold = {k: v for k, v in load_gold(paths.gold_labels).items() if k[0] in kept}
        quality = compare(pd.read_parquet(paths.feedback), gold)
        write_json(reports / "extract_confusion.json", quality.pop("confusion_rows"))
        rows = [{"category": c, **m} for c, m in quality["per_category"].items()]
        pd.DataFrame(rows).to_csv(reports / "extract_per_category.csv", index=False)
        write_json(reports / "extract_quality.json", quality)
        run.metrics({k: quality[k] for k in ("detection", "micro", "per_category", "macro_f1")})
        run.artifact(reports / "extract_quality.json")


if __name__ == "__main__":
    run_stage(main)
