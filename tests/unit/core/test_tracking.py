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


def test_parent_run_is_named_by_commit_and_time_and_spans_its_stages(tmp_path, monkeypatch):
    import time

    import mlflow

    from natfeed.core.tracking import PIPELINE_ENV, dvc_process, stage_run
    from natfeed.params.tracking import TrackingParams

    assert dvc_process() is None  # pytest does not run under `dvc repro`
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow.set_tracking_uri in other tests sets it
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(PIPELINE_ENV, "one-repro")
    params = TrackingParams(experiment="e", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    for stage in ("ingest", "extract"):
        with stage_run(stage, params, {"x": 1}):
            time.sleep(0.3)
    mlflow.set_tracking_uri(params.tracking_uri)
    runs = mlflow.search_runs(experiment_names=["e"], output_format="list")
    parents = [r for r in runs if r.data.tags["natfeed.kind"] == "pipeline"]
    children = [r for r in runs if r.data.tags["natfeed.kind"] == "stage"]
    assert len(parents) == 1 and {r.info.run_name for r in children} == {"ingest", "extract"}
    parent = parents[0]
    assert parent.info.run_name.startswith("pipeline ") and parent.info.run_name.count(":") == 2  # commit + time
    assert parent.info.end_time >= max(r.info.end_time for r in children)
    assert parent.info.end_time - parent.info.start_time >= 600  # both stages' 0.3 s, not a few ms
