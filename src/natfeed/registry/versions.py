"""``natfeed models``: the registered versions of a model, with their aliases, gate decision and lineage."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from natfeed.registry.promote import RegistryError

COLUMNS = ("version", "aliases", "decision", "primary_metric", "created", "git_commit", "data_md5", "experiment")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def version_row(mv: Any, aliases: list[str] | None = None) -> dict[str, Any]:
    """One version as plain data (``--json``) from its MLflow ModelVersion; ``aliases`` from the registered model
    (MLflow's version search returns versions without their aliases)."""
    tags = dict(mv.tags or {})
    decision = json.loads(tags["natfeed.decision"]) if tags.get("natfeed.decision") else {}
    primary = json.loads(tags["natfeed.primary_metric"]) if tags.get("natfeed.primary_metric") else None
    created = datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, UTC).isoformat(timespec="seconds")
    return {"version": int(mv.version), "aliases": sorted(set(mv.aliases or []) | set(aliases or [])),
            "decision": decision.get("action"), "decision_reason": decision.get("reason") or None,
            "gate_failures": decision.get("failures") or [], "primary_metric": primary, "created": created,
            "git_commit": tags.get("natfeed.git_commit"), "git_dirty": tags.get("natfeed.git_dirty") == "true",
            "data_md5": tags.get("natfeed.data.kto_train.md5"), "experiment": tags.get("natfeed.experiment")}


def list_versions(name: str, client: Any = None) -> list[dict[str, Any]]:
    """Every version of registered model ``name``, newest first."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = client or mlflow.MlflowClient()
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        raise RegistryError(f"no registered model {name!r} in this store: run the pipeline (dvc repro) to "
                            "register one, or check register.model_name") from None
    by_version: dict[int, list[str]] = {}
    for alias, version in (model.aliases or {}).items():  # the registry's truth: {alias: version}
        by_version.setdefault(int(version), []).append(alias)
    versions = client.search_model_versions(f"name = '{name}'")
    return sorted((version_row(mv, by_version.get(int(mv.version))) for mv in versions), key=lambda r: -r["version"])


def _primary(row: dict[str, Any]) -> str:
    pm = row["primary_metric"]
    if not pm:
        return "-"
    ci = f" [{_fmt(pm.get('ci_low'))}, {_fmt(pm.get('ci_high'))}]" if pm.get("ci_low") is not None else ""
    return f"{pm['name']} {_fmt(pm.get('value'))}{ci}"


def table(rows: list[dict[str, Any]]) -> str:
    """The versions as an aligned text table (newest first)."""
    cells = [["v" + str(r["version"]), ",".join(r["aliases"]) or "-", r["decision"] or "-", _primary(r),
              r["created"].replace("T", " ").removesuffix("+00:00"),
              (r["git_commit"] or "-")[:10] + ("*" if r["git_dirty"] else ""), (r["data_md5"] or "-")[:10],
              r["experiment"] or "-"] for r in rows]
    head = ["version", "aliases", "decision", "primary metric [95% CI]", "created (UTC)", "commit", "data md5",
            "experiment"]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *cells, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
             for line in [head, *cells]]
    return "\n".join(lines)
