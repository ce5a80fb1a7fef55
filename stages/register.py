"""register: reads ${paths.policy_dir}, reports/evaluate.json, reports/validate.json (and extract.json,
the KTO/SFT parquet files for lineage); logs the policy to MLflow, registers a version of
register.model_name with alias challenger, promotes it to champion when register.gate passes; writes
reports/register.json (version, aliases, the gate's decision and reasons; git-ignored: it is the registry's
state, which MLflow holds) and ${paths.register_record} beside the store (the model's identity only, so
dvc.lock is the same on every run that registers the same model). A refused promotion is not a failure of
the stage: it is recorded."""

from pathlib import Path

from natfeed.core.errors import run_stage
from natfeed.core.io import write_json
from natfeed.core.logs import setup_logging
from natfeed.core.tracking import stage_run
from natfeed.params import load_params
from natfeed.registry.promote import RegistryError
from natfeed.registry.register import register_policy, register_record
from natfeed.report.headline import write_headline


def main() -> None:
    setup_logging()
    params = load_params()
    paths, reg = params.paths, params.register_
    if not params.tracking.enabled:
        raise RegistryError("the register stage needs MLflow: set tracking.enabled: true")
    with stage_run("register", params.tracking, reg.model_dump()) as run:
        report = register_policy(paths.policy_dir, paths.reports_dir, paths.kto_dir, reg)
        write_json(Path(paths.reports_dir) / "register.json", report)  # registry state: untracked, not a DVC out
        write_headline(paths.metrics_dir, "register", report)  # untracked too: a top-level DVC metric
        write_json(paths.register_record, register_record(report))  # the same for the same model: dvc.lock stays
        run.metrics({"version": report["version"], "promoted": report["promoted"], **report["seconds"]})
        run.artifact(Path(paths.reports_dir) / "register.json")


if __name__ == "__main__":
    run_stage(main)
