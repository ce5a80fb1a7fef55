"""MLflow lineage helpers: ``git_dirty`` reflects the source tree, not the outputs a run rewrites."""

from __future__ import annotations

import subprocess
from pathlib import Path

from natfeed.core.tracking import flatten, git_commit, numeric_metrics


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_git_dirty_ignores_pipeline_outputs(tmp_path, monkeypatch):
    for rel in ("src/natfeed/x.py", "params.yaml", "dvc.lock", "reports/ingest.json", "data/processed/f.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("v1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "init")
    monkeypatch.chdir(tmp_path)
    for rel in ("dvc.lock", "reports/ingest.json", "data/processed/f.json"):  # what dvc repro rewrites
        (tmp_path / rel).write_text("v2\n")
    sha, dirty = git_commit()
    assert len(sha) == 40 and dirty is False
    (tmp_path / "params.yaml").write_text("v2\n")
    assert git_commit()[1] is True


def test_git_commit_outside_a_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert git_commit() == ("unknown", False)


def test_flatten_and_numeric_metrics():
    report = {"a": {"b": 1, "c": "x"}, "ok": True, "n": None}
    assert flatten(report) == {"a.b": 1, "a.c": "x", "ok": True, "n": None}
    assert numeric_metrics(report) == {"a.b": 1.0, "ok": 1.0}
