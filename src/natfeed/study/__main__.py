"""``python -m natfeed.study [--smoke]``: the study's four steps in order (``make study-smoke`` runs this with
``--smoke``; ``make study`` runs the same steps as the stages of study/dvc.yaml). Exit 2 for a missing or
different corpus, 1 when the report lacks a key the study promises."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from natfeed.core.errors import run_stage
from natfeed.core.logs import setup_logging
from natfeed.params.study import load_study_params
from natfeed.study.arms import arms_step
from natfeed.study.corpus import corpus_step
from natfeed.study.kto_data import kto_step
from natfeed.study.report import report_step

log = logging.getLogger("natfeed.study")

KEYS = {
    "corpora": ["sharegpt", "wildchat", "oasst"],
    "corpora.*": ["conversations", "judged_turns", "with_feedback", "per_category"],
    "kto": ["train", "test"],
    "arms": ["kto", "kto_shuffled", "sft_feedback", "sft_random"],
    "arms.*": ["n", "reward_accuracy", "ci", "margin", "sanity"],
    "verdict": ["kto_vs_kto_shuffled", "sft_feedback_vs_sft_random"],
    "": ["extractable", "seconds"],
}
"""The keys reports/study.json promises (issue 19), checked after every run, smoke or full."""


def missing_keys(study: dict) -> list[str]:
    """The promised keys absent from ``study`` (dotted)."""
    out = []
    for where, keys in KEYS.items():
        if where.endswith(".*"):
            parent = where[:-2]
            nodes = {f"{parent}.{k}": v for k, v in study.get(parent, {}).items()}
        else:
            nodes = {where: study.get(where, {}) if where else study}
        out += [f"{name}.{k}".lstrip(".") for name, node in nodes.items() for k in keys if k not in node]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m natfeed.study", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="apply study/params.yaml's smoke overrides")
    parser.add_argument("--params", default="study/params.yaml")
    args = parser.parse_args(argv)
    setup_logging()
    p = load_study_params(args.params, smoke=args.smoke)
    for step in (corpus_step, kto_step, arms_step, report_step):
        log.info("study: %s", step.__name__)
        step(p)
    study = json.loads((Path(p.paths.reports_dir) / "study.json").read_text(encoding="utf-8"))
    missing = missing_keys(study)
    if missing:
        print(f"error: {p.paths.reports_dir}/study.json lacks {', '.join(missing)}", file=sys.stderr)
        return 1
    log.info("study: %s/study.json and %s written", p.paths.reports_dir, p.paths.study_md)
    return 0


if __name__ == "__main__":
    run_stage(main)
