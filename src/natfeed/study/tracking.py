"""One MLflow run per study arm, in the study's own experiment (``natfeed-study``); the study registers
nothing. Runs carry the arm's params, its training curve, its metrics and its datasets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from natfeed.core.tracking import StageRun, configure, flatten, git_commit, numeric_metrics
from natfeed.params.study import StudyParams


class ArmRun:
    """Logging helpers of one arm's run (no-ops when tracking is off)."""

    def __init__(self, mlflow: Any | None) -> None:
        self.mlflow = mlflow
        self.stage = StageRun(mlflow)

    def log_step(self, values: dict[str, float], step: int) -> None:
        if self.mlflow:
            self.mlflow.log_metrics(values, step=step)

    def finish(self, entry: dict[str, Any]) -> None:
        if self.mlflow:
            self.mlflow.log_metrics(numeric_metrics({k: v for k, v in entry.items() if k != "training"}))


_ARM_DATA = {"kto": ["kto_train"], "kto_shuffled": ["kto_shuffled"], "sft_feedback": ["kto_train"],
             "sft_random": ["random"]}


@contextmanager
def arm_run(arm: str, p: StudyParams, data: dict[str, pd.DataFrame]) -> Iterator[ArmRun]:
    """An MLflow run named after ``arm`` with the study's train/evaluate params and the arm's datasets."""
    if not p.tracking.enabled:
        yield ArmRun(None)
        return
    import mlflow

    experiment_id = configure(p.tracking)
    sha, dirty = git_commit()
    tags = {"natfeed.kind": "study_arm", "natfeed.arm": arm, "git_commit": sha, "git_dirty": str(dirty)}
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"study-{arm}", tags=tags):
        params = {"arm": arm, "train": p.train.model_dump(), "evaluate.beta": p.evaluate.beta,
                  "evaluate.max_length": p.evaluate.max_length, "kto.target_precision": p.kto.build.target_precision,
                  "corpus.sha256": p.corpus.sha256, "corpus.max_conversations": p.corpus.max_conversations}
        mlflow.log_params({k: str(v)[:6000] for k, v in flatten(params).items()})
        run = ArmRun(mlflow)
        for name in [*_ARM_DATA.get(arm, []), "kto_test"]:
            path = Path(p.paths.work_dir) / "kto" / f"{name}.parquet"
            run.stage.dataset(path, context="test" if name == "kto_test" else "train", name=name)
        yield run
