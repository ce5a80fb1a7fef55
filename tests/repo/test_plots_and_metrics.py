"""Every declared DVC plot has the shape its template expects; the DVC metrics files are few short numbers.

Reads the committed outputs under reports/ (git-tracked, `cache: false`), so a stage that changes what
it writes fails here before anyone sees a blank or wrong chart.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from tests.repo.imports import REPO

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def _resolve(path: str) -> Path:
    return REPO / re.sub(r"\$\{paths\.(\w+)\}", lambda m: PARAMS["paths"][m.group(1)], path)


def _declared(kind: str) -> list[tuple[str, Path, dict]]:
    out = []
    for name, stage in STAGES.items():
        for entry in stage.get(kind, []):
            path, props = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
            out.append((name, _resolve(path), props or {}))
    return out


def _records(path: Path) -> list[dict]:
    if path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(data, list), f"{path}: a DVC plot needs a list of records"
        return data
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _number(value: object) -> bool:
    try:
        float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


@pytest.mark.parametrize(("stage", "path", "props"), _declared("plots"), ids=lambda v: getattr(v, "name", None))
def test_declared_plot_has_its_templates_shape(stage: str, path: Path, props: dict) -> None:
    assert path.exists(), f"{stage}: plot data {path.relative_to(REPO)} missing (run dvc repro and commit it)"
    rows = _records(path)
    x, y, template = props.get("x"), props.get("y"), props.get("template", "linear")
    assert rows and x and y, f"{path.name}: needs records and explicit x/y fields"
    assert all(x in r and y in r for r in rows), f"{path.name}: every record needs {x!r} and {y!r}"
    if template == "confusion":  # DVC counts records: one per judged turn, categorical labels
        assert all(isinstance(r[x], str) and isinstance(r[y], str) for r in rows)
        assert not any(_number(r[x]) for r in rows), "confusion cells must be labels, not counts"
    elif template in ("bar_horizontal", "bar_horizontal_sorted"):  # numeric x, one bar per label
        assert all(_number(r[x]) for r in rows), f"{path.name}: {x} must be numeric"
        assert len({r[y] for r in rows}) == len(rows), f"{path.name}: one bar per {y}"
    else:
        assert all(_number(r[y]) for r in rows)


def test_confusion_records_match_the_quality_report() -> None:
    """The plot's records are the validation parts' turns, less those gold and extractor both call none."""
    quality = json.loads((REPO / "reports/extract_quality.json").read_text(encoding="utf-8"))
    records = json.loads((REPO / "reports/extract_confusion.json").read_text(encoding="utf-8"))
    confusion = quality["never_tuned"]["confusion"]
    assert len(records) == quality["never_tuned"]["n_turns"] - confusion["none"]["none"]
    cells: dict[tuple[str, str], int] = {}
    for r in records:
        cells[(r["actual"], r["predicted"])] = cells.get((r["actual"], r["predicted"]), 0) + 1
    assert ("none", "none") not in cells
    for actual, row in confusion.items():
        for predicted, count in row.items():
            if (actual, predicted) != ("none", "none"):
                assert cells.get((actual, predicted), 0) == count


def test_dvc_metrics_are_about_twenty_short_numbers() -> None:
    declared = _declared("metrics")
    assert declared and all(path.parent == _resolve("${paths.metrics_dir}") for _, path, _ in declared)
    total = 0
    for stage, path, _ in declared:
        assert path.exists(), f"{stage}: {path.relative_to(REPO)} missing (run dvc repro and commit it)"
        data = json.loads(path.read_text(encoding="utf-8"))
        assert all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in data.values()), (stage, data)
        total += len(data)
    assert 12 <= total <= 25, total
