"""The few numeric headline figures each stage declares as DVC metrics.

A stage's full report (``reports/<stage>.json``) keeps every figure and is a plain output; the DVC
metrics file (``<paths.metrics_dir>/<stage>.json``) holds only the keys below, so that
``dvc metrics show`` and ``dvc metrics diff`` stay one short line per stage (about 20 keys in all, short
names: DVC prints one column per key name across all files). Timings stay out: they differ on every run.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import floor, log10
from typing import Any

HEADLINES: dict[str, dict[str, str]] = {
    "ingest": {"rows_in": "rows_read", "kept": "rows_kept", "rejected": "rows_rejected"},
    "extract": {"feedback": "rows"},
    "extract_quality": {  # on the validation gold turns (key never_tuned): the honest figures
        "det_f1": "never_tuned.detection.f1",
        "cat_f1": "never_tuned.micro.f1",
    },
    "validate": {"passed": "passed", "failed": "failed_checks"},
    "build_kto": {"kto_train": "kto_train_rows", "kto_test": "kto_test_rows"},
    "train": {"sft_loss": "sft.loss_last", "kto_loss": "kto.loss_last"},
    "evaluate": {  # the primary metric (evaluate.primary_metric) with its 95% CI, and the sanity answers
        "acc": "primary_metric.value",
        "ci_low": "primary_metric.ci_low",
        "ci_high": "primary_metric.ci_high",
        "sanity": "sanity.policy.rate",
    },
    "register": {"version": "version", "champion": "champion_version", "promoted": "promoted"},
}
"""stage -> {metric key: dotted path in the stage's full report}."""


def lookup(report: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted path of a nested report (None when any part is missing)."""
    node: Any = report
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def rounded(value: float, digits: int = 3) -> float:
    """``value`` to ``digits`` significant digits (integers and 0 unchanged)."""
    if value == 0 or float(value).is_integer():
        return value
    return round(value, digits - 1 - floor(log10(abs(value))))


def headline(stage: str, report: Mapping[str, Any]) -> dict[str, int | float]:
    """The stage's DVC metrics: numbers only (booleans as 0/1, version strings as ints), 3 significant digits.

    Keys whose value the report lacks (a judge that did not run, no champion yet) are left out.
    """
    out: dict[str, int | float] = {}
    for key, dotted in HEADLINES[stage].items():
        value = lookup(report, dotted)
        if isinstance(value, bool):
            out[key] = int(value)
        elif isinstance(value, int):
            out[key] = value
        elif isinstance(value, float):
            out[key] = rounded(value)
        elif isinstance(value, str) and value.isdigit():
            out[key] = int(value)
    return out


def write_headline(metrics_dir: str, stage: str, report: Mapping[str, Any]) -> str:
    """Write the stage's headline metrics to ``<metrics_dir>/<stage>.json`` (atomically); the path."""
    from pathlib import Path

    from natfeed.core.io import write_json

    path = Path(metrics_dir) / f"{stage}.json"
    write_json(path, headline(stage, report))
    return str(path)
