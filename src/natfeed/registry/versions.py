"""``natfeed models``: the registered versions of a model, with their aliases, gate decision and lineage."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from natfeed.registry.promote import DECISION_TAG, EVENT_PREFIX, RegistryError, history

COLUMNS = ("version", "aliases", "decision", "primary_metric", "created", "git_commit", "data_md5", "experiment")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def version_row(mv: Any, aliases: list[str] | None = None) -> dict[str, Any]:
    """One version as plain data (``--json``) from its MLflow ModelVersion; ``aliases`` from the registered model
    (MLflow's version search returns versions without their aliases)."""
    tags = dict(mv.tags or {})
    decision = json.loads(tags[DECISION_TAG]) if tags.get(DECISION_TAG) else {}
    events = sorted((k for k in tags if k.startswith(EVENT_PREFIX)), key=lambda k: json.loads(tags[k]).get("at", ""))
    last = json.loads(tags[events[-1]]) if events else decision
    primary = json.loads(tags["natfeed.primary_metric"]) if tags.get("natfeed.primary_metric") else None
    created = datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, UTC).isoformat(timespec="seconds")
    return {"version": int(mv.version), "aliases": sorted(set(mv.aliases or []) | set(aliases or [])),
            "decision": decision.get("action"), "decision_reason": decision.get("reason") or None,
            "last_decision": last.get("action"), "decisions": len(events) or (1 if decision else 0),
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


def _decisions(row: dict[str, Any]) -> str:
    first, last = row["decision"] or "-", row.get("last_decision")
    return first if not last or (last == first and row.get("decisions", 1) <= 1) else f"{first} > {last}"


def history_rows(name: str, client: Any = None) -> list[dict[str, Any]]:
    """Every decision about ``name``'s versions, oldest first: when, who, action, version, champion
    before and after, the primary metric with its CI, the reasons."""
    import mlflow

    client = client or mlflow.MlflowClient()
    list_versions(name, client)  # the clear error when there is no such model
    out = []
    for e in history(client, name):
        pm = (e.get("compared") or {}).get("primary_metric") or {}
        out.append({"at": e.get("at"), "by": e.get("by"), "action": e.get("action"), "version": e.get("version"),
                    "champion_before": e.get("champion_before"), "champion_after": e.get("champion_after"),
                    "source": e.get("source"), "passed": e.get("passed"), "failures": e.get("failures") or [],
                    "reason": e.get("reason") or None,
                    "metric": {k: pm.get(k) for k in ("challenger", "ci_low", "ci_high", "champion",
                                                      "champion_version")} if pm else None})
    return out


def history_table(rows: list[dict[str, Any]]) -> str:
    """The decisions as text, oldest first: one line each, its reasons indented below."""
    lines = []
    for r in rows:
        when = str(r["at"] or "-").replace("T", " ")[:19]
        champ = f"champion {_v(r['champion_before'])} -> {_v(r['champion_after'])}"
        m = r["metric"]
        metric = ""
        if m and m.get("challenger") is not None:
            ci = f" [{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]" if m.get("ci_low") is not None else ""
            vs = f" vs champion v{m['champion_version']} {_fmt(m['champion'])}" if m.get("champion") is not None else ""
            metric = f" · {_fmt(m['challenger'])}{ci}{vs}"
        lines.append(f"{when}  {r['by'] or '-'}  {r['action']:<16} v{r['version']}  {champ} ({r['source']}){metric}")
        lines += [f"    {why}" for why in [*r["failures"], *([r["reason"]] if r["reason"] else [])]]
    return "\n".join(lines) if lines else "no decisions recorded"


def _v(version: Any) -> str:
    return f"v{version}" if version else "unset"


def table(rows: list[dict[str, Any]]) -> str:
    """The versions as an aligned text table (newest first)."""
    cells = [["v" + str(r["version"]), ",".join(r["aliases"]) or "-", _decisions(r), _primary(r),
              r["created"].replace("T", " ").removesuffix("+00:00"),
              (r["git_commit"] or "-")[:10] + ("*" if r["git_dirty"] else ""), (r["data_md5"] or "-")[:10],
              r["experiment"] or "-"] for r in rows]
    head = ["version", "aliases", "decision (at registration > latest)", "primary metric [95% CI]", "created (UTC)", "commit", "data md5",
            "experiment"]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *cells, strict=True)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip()
             for line in [head, *cells]]
    return "\n".join(lines)
