"""Paths and files shared by the study's steps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from natfeed.params.study import StudyParams


def work_dir(p: StudyParams) -> Path:
    return Path(p.paths.work_dir)


def report_path(p: StudyParams, name: str) -> Path:
    """reports/study_<name>.json (the step reports)."""
    return Path(p.paths.reports_dir) / f"study_{name}.json"


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
