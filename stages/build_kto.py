"""build_kto: reads ${paths.feedback} and, when build_kto.min_confidence is auto, the gold labels
${paths.gold_labels} (thresholds chosen on the parts not in extract_quality.tuned_parts); writes KTO and SFT
train/test parquet into ${paths.kto_dir}, reports/build_kto.json (totals, the thresholds applied) and
reports/build_kto_details.json (per category: role, rows used, rows dropped below the confidence threshold,
for a flagged conversation or for the desirable:undesirable ratio; how each threshold was chosen)."""

from pathlib import Path

import pandas as pd

from natfeed.core.errors import run_stage
from natfeed.core.io import write_json, write_report
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.data.build_kto import build_kto, resolve_min_confidence, write_frames
from natfeed.params import load_params
from natfeed.report.headline import write_headline


def main() -> None:
    setup_logging()
    params = load_params()
    paths, p = params.paths, params.build_kto
    with stage_run("build_kto", params.tracking, p.model_dump()) as run:
        feedback = pd.read_parquet(paths.feedback)
        thresholds, chosen = resolve_min_confidence(p, feedback, paths.gold_labels, params.extract_quality.tuned_parts)
        frames, report = build_kto(feedback, p, thresholds)
        run.dataset(paths.feedback, context="input", name="feedback")
        for path in write_frames(frames, paths.kto_dir):
            run.dataset(path, context=path.stem, name=path.stem)
        details = {"per_category": report.pop("per_category"), "thresholds": chosen, "params": p.model_dump()}
        write_report(Path(paths.reports_dir) / "build_kto.json", report)
        write_headline(paths.metrics_dir, "build_kto", report)
        write_json(Path(paths.reports_dir) / "build_kto_details.json", details)
        run.metrics(report)


if __name__ == "__main__":
    run_stage(main)
