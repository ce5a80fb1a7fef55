"""The project's MLflow store keeps project-relative artifact locations: a copied repository writes into its
own mlruns/, and registry commands never create a store in a random folder."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from natfeed.core.mlflow_store import StoreError, require_store, sqlite_path
from natfeed.core.tracking import configure
from natfeed.params import TrackingParams

pytestmark = pytest.mark.slow  # real MLflow round trips


def _log_run(experiment_id: str, name: str) -> str:
    import mlflow

    Path(f"{name}.txt").write_text(name)
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifact(f"{name}.txt")
    return run.info.artifact_uri


def _params(root: Path) -> TrackingParams:
    # an absolute URI per test: MLflow caches stores by URI, and these tests change the working directory
    return TrackingParams(experiment="e", tracking_uri=f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")


def _artifacts(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "mlruns" / "artifacts").rglob("*.txt"))


def test_a_copied_project_writes_into_its_own_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first, copy = tmp_path / "first", tmp_path / "copy"
    first.mkdir()
    monkeypatch.chdir(first)
    uri = _log_run(configure(_params(first)), "one")
    assert uri.startswith("mlruns/artifacts/") and _artifacts(first) == ["one.txt"]
    shutil.copytree(first, copy)
    monkeypatch.chdir(copy)
    _log_run(configure(_params(copy)), "two")
    assert _artifacts(copy) == ["one.txt", "two.txt"] and _artifacts(first) == ["one.txt"]


def test_an_older_store_with_absolute_locations_is_made_relative(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlruns").mkdir()
    mlflow.set_tracking_uri(_params(tmp_path).tracking_uri)
    eid = mlflow.create_experiment("e", artifact_location=(tmp_path / "mlruns/artifacts").as_uri())
    assert _log_run(eid, "old").startswith("file://")
    configure(_params(tmp_path))
    con = sqlite3.connect("mlruns/mlflow.db")
    assert con.execute("select artifact_location from experiments where name = 'e'").fetchone()[0] == "mlruns/artifacts"
    assert all(u.startswith("mlruns/artifacts/") for (u,) in con.execute("select artifact_uri from runs"))
    assert mlflow.artifacts.download_artifacts(run_id=mlflow.search_runs([eid], output_format="list")[0].info.run_id,
                                               artifact_path="old.txt")


def test_registry_commands_need_an_existing_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError, match="no MLflow store at mlruns/mlflow.db"):
        require_store("sqlite:///mlruns/mlflow.db")
    assert not (tmp_path / "mlruns").exists()
    assert sqlite_path("sqlite:////abs/x.db") == Path("/abs/x.db") and sqlite_path("http://h:5000") is None


def test_cli_registry_commands_outside_a_project_fail_without_creating_a_store(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from natfeed.cli import app

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    for args in (["rollback"], ["promote", "--version", "1"], ["models"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 2 and "no natfeed project here" in res.output, res.output
        assert len(res.output.strip().splitlines()) <= 2
    (tmp_path / "params.yaml").write_text("{}\n")
    res = CliRunner().invoke(app, ["models"])
    assert res.exit_code == 2 and "no MLflow store" in res.output
    assert not (tmp_path / "mlruns").exists()


def test_an_older_store_with_mlflows_default_locations_is_made_relative(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlruns").mkdir()
    uri = _params(tmp_path).tracking_uri
    mlflow.set_tracking_uri(uri)
    eid = mlflow.create_experiment("d", artifact_location=str(tmp_path / "mlruns" / "7"))  # MLflow's default shape
    _log_run(eid, "old")
    configure(TrackingParams(experiment="d", tracking_uri=uri))
    con = sqlite3.connect("mlruns/mlflow.db")
    assert con.execute("select artifact_location from experiments where name = 'd'").fetchone()[0] == "mlruns/7"
    assert all(u.startswith("mlruns/7/") for (u,) in con.execute("select artifact_uri from runs"))
