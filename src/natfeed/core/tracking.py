"""All MLflow tracking goes through this module.

Each stage is one MLflow run named after the stage, a child of the pipeline run that groups one
``dvc repro`` (the ``dvc`` process the stages run under; outside DVC, the same git commit and params):
the runs share the tags ``natfeed.pipeline_run``, ``git_commit`` and ``params_md5``. The parent run is
named by short commit and start time, and its end moves with each stage's, so its duration spans them. Only parameters, metrics, reports and dataset digests are logged — never raw
conversation text. ``MLFLOW_TRACKING_URI`` overrides the local store for a team server.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from natfeed.core.gitinfo import git_commit
from natfeed.core.io import file_md5
from natfeed.core.mlflow_store import relativise, require_store, sqlite_path
from natfeed.params.tracking import TrackingParams

log = logging.getLogger(__name__)
PIPELINE_ENV = "NATFEED_PIPELINE_RUN"


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists become their string form."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def numeric_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The numeric leaves of a report, as MLflow metrics (booleans as 0/1)."""
    out = {}
    for key, value in flatten(report).items():
        if isinstance(value, bool | int | float) and value is not None:
            out[key.replace(" ", "_")[:250]] = float(value)
    return out


def dvc_process() -> tuple[int, float] | None:
    """(pid, start time) of the ``dvc repro`` / ``dvc exp run`` process this stage runs under, or None."""
    try:
        import psutil

        proc = psutil.Process().parent()
        while proc is not None:
            cmd = " ".join(proc.cmdline())
            if "dvc" in cmd and (" repro" in cmd or " exp" in cmd or " experiments" in cmd):
                return proc.pid, proc.create_time()
            proc = proc.parent()
    except Exception:  # noqa: BLE001 - no psutil, no permission: group by commit and params instead
        return None
    return None


def _pipeline_tags(params_file: str | Path) -> dict[str, str]:
    sha, dirty = git_commit()
    pmd5 = file_md5(params_file) if Path(params_file).exists() else "none"
    lock = file_md5("dvc.lock") if Path("dvc.lock").exists() else "none"
    repro = dvc_process()
    started = datetime.fromtimestamp(repro[1] if repro else time.time(), UTC)
    key = f"{sha[:10]}{'-dirty' if dirty else ''}-{pmd5[:8]}"
    if repro is not None:
        key += f"-dvc{repro[0]}-{int(repro[1])}"
    run = os.environ.get(PIPELINE_ENV) or key
    return {"natfeed.pipeline_run": run, "git_commit": sha, "git_dirty": str(dirty),
            "params_md5": pmd5, "dvc_lock_md5": lock,
            "natfeed.pipeline_name": f"{sha[:7]}{'+dirty' if dirty else ''} {started:%Y-%m-%d %H:%M:%S}"}


def _parent_run(mlflow: Any, experiment_id: str, tags: dict[str, str]) -> str:
    """The id of the pipeline's parent run, created on first use."""
    found = mlflow.search_runs(
        [experiment_id], filter_string=f"tags.`natfeed.pipeline_run` = '{tags['natfeed.pipeline_run']}' "
        "and tags.`natfeed.kind` = 'pipeline'", output_format="list", max_results=1)
    if found:
        return found[0].info.run_id
    client = mlflow.MlflowClient()
    run = client.create_run(experiment_id, run_name=f"pipeline {tags['natfeed.pipeline_name']}",
                            tags={**tags, "natfeed.kind": "pipeline"})
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _extend_parent(mlflow: Any, parent: str) -> None:
    """Move the pipeline run's end to now: its duration spans every stage run so far."""
    mlflow.MlflowClient().set_terminated(parent, end_time=int(time.time() * 1000))


def configure(params: TrackingParams, create: bool = True) -> str:
    """Point MLflow at the store and experiment; return the experiment id. With ``create=False`` a missing
    local store is an error (:class:`natfeed.core.mlflow_store.StoreError`) instead of a new empty one."""
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = os.environ.get("MLFLOW_TRACKING_URI") or params.tracking_uri
    db = sqlite_path(uri)
    if not create:
        require_store(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    relative = db is not None and not Path(params.artifact_location).is_absolute()
    exp = mlflow.get_experiment_by_name(params.experiment)
    if exp is None:
        location = Path(params.artifact_location).resolve().as_uri() if db is not None else None
        experiment_id = mlflow.create_experiment(params.experiment, artifact_location=location)
    else:
        experiment_id = exp.experiment_id
    if relative and db is not None and relativise(db, params.experiment, params.artifact_location):
        log.info("MLflow store %s: artifact locations made relative to the project (%s)", db,
                 params.artifact_location)
    return experiment_id


class StageRun:
    """Logging helpers bound to one active stage run (a no-op when tracking is off)."""

    def __init__(self, mlflow: Any | None) -> None:
        self.mlflow = mlflow

    def metrics(self, report: Mapping[str, Any], prefix: str = "") -> None:
        if self.mlflow:
            self.mlflow.log_metrics({f"{prefix}{k}": v for k, v in numeric_metrics(report).items()})

    def artifact(self, path: str | Path, folder: str | None = None) -> None:
        if self.mlflow and Path(path).exists():
            self.mlflow.log_artifact(str(path), artifact_path=folder)

    def dataset(self, path: str | Path, context: str, name: str | None = None) -> None:
        """Log a file as an MLflow dataset input whose digest is its DVC md5."""
        if not self.mlflow or not Path(path).is_file():
            return
        from mlflow.data.dataset_source_registry import resolve_dataset_source
        from mlflow.data.meta_dataset import MetaDataset

        with warnings.catch_warnings():  # a local path matches two equivalent local source types
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(str(Path(path).resolve()))
        ds = MetaDataset(source, name=name or Path(path).name, digest=file_md5(path)[:36])
        self.mlflow.log_input(ds, context=context)


@contextmanager
def stage_run(stage: str, params: TrackingParams, stage_params: Mapping[str, Any],
              params_file: str | Path = "params.yaml") -> Iterator[StageRun]:
    """One MLflow run for a pipeline stage, grouped under its pipeline run."""
    if not params.enabled:
        yield StageRun(None)
        return
    import mlflow

    experiment_id = configure(params)
    tags = _pipeline_tags(params_file)
    parent = _parent_run(mlflow, experiment_id, tags)
    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name=stage,
                              tags={**tags, "natfeed.stage": stage, "natfeed.kind": "stage",
                                    "mlflow.parentRunId": parent}):
            flat = {k: str(v)[:6000] for k, v in flatten(stage_params).items()}
            mlflow.log_params(flat)
            yield StageRun(mlflow)
    finally:
        _extend_parent(mlflow, parent)  # after the stage run ended: the parent spans it
