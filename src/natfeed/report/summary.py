"""The run summary `make run` ends with: what came in, what was found, how good it is, what was decided.

It reads only the stages' full reports (``paths.reports_dir``) and the feedback table, so it works in
any checkout after ``dvc repro`` (or ``dvc pull``); a stage that has not run shows as such. At most
:data:`MAX_LINES` lines, none wider than :data:`WIDTH` characters.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from natfeed.core.categories import CATEGORIES
from natfeed.core.io import read_report
from natfeed.params.paths import PathsParams
from natfeed.report.headline import lookup

MAX_LINES = 25
WIDTH = 160
_LABEL = 10  # width of the first column


def fmt(value: Any) -> str:
    """A figure for people: 3 significant digits for floats, thousands separators for integers."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


UPSTREAM: dict[str, tuple[str, ...]] = {
    "ingest": (), "extract": ("ingest",), "extract_quality": ("extract",), "validate": ("extract",),
    "build_kto": ("extract", "validate"), "train": ("build_kto",), "evaluate": ("train",),
    "register": ("evaluate", "validate"),
}
"""The reports' stages and the stages whose reports each one is computed from (dvc.yaml's DAG)."""


def _read(reports: Path, name: str) -> dict[str, Any] | None:
    """The stage's report with its timings and run facts (``written_at``, ``git_commit``) merged back."""
    try:
        return read_report(reports / f"{name}.json")
    except (OSError, ValueError):
        return None


def stale_stages(r: Mapping[str, Mapping[str, Any] | None]) -> dict[str, str]:
    """Stages whose report was written before a report upstream of it (a partial ``dvc repro``), each with
    the upstream stage that ran since. Reports without run facts (a fresh checkout) are never called stale."""
    written = {name: str(rep.get("written_at")) for name, rep in r.items() if rep and rep.get("written_at")}
    order = {name: i for i, name in enumerate(UPSTREAM)}  # ties go to the stage nearest downstream
    newest: dict[str, tuple[str, int, str]] = {}  # stage -> (newest written_at upstream of it, order, that stage)
    stale: dict[str, str] = {}
    for name, ups in UPSTREAM.items():
        candidates = [newest[u] for u in ups if u in newest] + [(written[u], order[u], u) for u in ups
                                                                if u in written]
        if candidates:
            newest[name] = max(candidates)
            if name in written and written[name] < newest[name][0]:
                stale[name] = newest[name][2]
    return stale


def _mark_stale(lines: list[str], report: Mapping[str, Any], rerun: str) -> list[str]:
    commit = str(report.get("git_commit") or "unknown")[:7] + ("+dirty" if report.get("git_dirty") else "")
    first = lines[0]
    label, text = first[:_LABEL], first[_LABEL + 1:]
    return [_line(label.strip(), f"[stale: from {commit}, before {rerun} reran] {text}"), *lines[1:]]


def _feedback_conversations(feedback: str) -> int | None:
    """How many conversations have at least one feedback row (None when the table cannot be read)."""
    try:
        import pyarrow.parquet as pq

        table = pq.read_table(feedback, columns=["conversation_id"])
    except Exception:  # noqa: BLE001 - a missing or foreign table only leaves the share out
        return None
    return len(set(table.column("conversation_id").to_pylist()))


def _line(label: str, text: str) -> str:
    line = f"{label:<{_LABEL}} {text}"
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def _not_run(label: str, name: str) -> str:
    return _line(label, f"not run (no reports/{name}.json; `dvc repro` runs it)")


def _data(r: Mapping[str, Any] | None) -> list[str]:
    if r is None:
        return [_not_run("data", "ingest")]
    lines = [_line("data", f"{fmt(r['rows_read'])} rows read: {fmt(r['rows_kept'])} kept, {fmt(r['rows_rejected'])} "
                   f"rejected, {fmt(r['rows_filtered'])} filtered, {fmt(r.get('rows_duplicate', 0))} duplicate")]
    if "redaction" in r:  # reports before redaction have no such key
        found = r.get("redacted") or {}
        what = (f"{fmt(sum(found.values()))} personal data / secrets replaced in "
                f"{fmt(r.get('conversations_redacted', 0))} conversations: "
                + ", ".join(f"{k} {fmt(v)}" for k, v in sorted(found.items(), key=lambda kv: -kv[1]))
                if found else "nothing to replace found")
        lines.append(_line("privacy", what if r["redaction"] != "off" else "redaction OFF (ingest.redact.enabled: "
                           "false): personal data flows into every output"))
    return lines


def _feedback(r: Mapping[str, Any] | None, with_feedback: int | None) -> list[str]:
    if r is None:
        return [_not_run("feedback", "extract")]
    convs = r.get("conversations") or 0
    share = (f" ({100 * with_feedback / convs:.1f}% of {fmt(convs)} conversations have feedback)"
             if with_feedback is not None and convs else "")
    judged = r.get("judged_turns", r.get("user_turns"))  # reports before judged_turns counted judged turns there
    head = f"{fmt(r['rows'])} feedback rows in {fmt(judged)} judged user turns{share}, {r['extractor']}"
    per = r.get("rows_per_category", {})
    cats = " · ".join(f"{c} {fmt(per.get(c, 0))}" for c in CATEGORIES)
    lines = [_line("feedback", head), _line("", cats)]
    if r.get("requests") or r.get("cache_hits"):  # an LLM backend ran: what it cost
        cost = r.get("estimated_cost")
        price = f", ~{cost:.4f} {r.get('cost_currency', '')}".rstrip() if cost is not None else ""
        lines.append(_line("llm", f"{fmt(r.get('requests', 0))} requests sent, {fmt(r.get('cache_hits', 0))} "
                           f"answered from the cache, {fmt(r.get('prompt_tokens', 0))} prompt + "
                           f"{fmt(r.get('generated_tokens', 0))} generated tokens{price}"))
    return lines


def _quality(r: Mapping[str, Any] | None) -> list[str]:
    if r is None:
        return [_not_run("quality", "extract_quality")]
    never, tuned = r.get("never_tuned") or r, r.get("tuned")
    if never.get("detection") is None:
        return [_line("quality", "unknown: no gold labels for these conversations (label some with `natfeed review`, "
                      "then add them to paths.gold_labels)")]
    text = (f"validation gold, {fmt(never['n_turns'])} turns: detection F1 {fmt(never['detection']['f1'])}, "
            f"category F1 {fmt(never['micro']['f1'])}")
    if tuned:
        text += (f" (parts tuned on, {fmt(tuned['n_turns'])} turns: {fmt(tuned['detection']['f1'])} / "
                 f"{fmt(tuned['micro']['f1'])})")
    return [_line("quality", text)]


def _validate(r: Mapping[str, Any] | None) -> list[str]:
    if r is None:
        return [_not_run("validate", "validate")]
    if r["passed"]:
        return [_line("validate", f"PASSED: schema, balance and expectations on {fmt(r['feedback_rows'])} rows "
                      "(reports/validate.txt)")]
    lines = [_line("validate", f"FAILED: {r['failed_checks']} check(s) (reports/validate.txt)")]
    return lines + [_line("", f"- {f['message']}") for f in r.get("failures", [])[:3]]


def _kto(r: Mapping[str, Any] | None) -> list[str]:
    if r is None:
        return [_not_run("kto data", "build_kto")]
    return [_line("kto data", f"{fmt(r['kto_train_rows'])} train / {fmt(r['kto_test_rows'])} test examples "
                  f"({fmt(r['desirable'])} desirable, {fmt(r['undesirable'])} undesirable after the ratio rule) · "
                  f"SFT {fmt(r['sft_train_rows'])} / {fmt(r['sft_test_rows'])} (reports/build_kto_details.json)")]


def _train(r: Mapping[str, Any] | None) -> list[str]:
    if r is None:
        return [_not_run("train", "train")]
    parts = []
    for name in ("sft", "kto"):
        t = r.get(name) or {}
        if t:
            parts.append(f"{name.upper()} {fmt(t.get('steps'))} steps, loss {fmt(t.get('loss_first'))} → "
                         f"{fmt(t.get('loss_last'))}")
    return [_line("train", " · ".join(parts) + f" · {fmt(r.get('seconds'))} s, from {r.get('base_model')}")]


def _evaluate(r: Mapping[str, Any] | None) -> list[str]:
    if r is None:
        return [_not_run("evaluate", "evaluate")]
    pm = r.get("primary_metric") or {}
    n = lookup(r, f"kto_reward.{pm.get('comparison')}.n")
    text = (f"{pm.get('name')} {fmt(pm.get('value'))} (95% CI {fmt(pm.get('ci_low'))}–{fmt(pm.get('ci_high'))}, "
            f"{fmt(n)} held-out examples, {pm.get('comparison')})")
    sanity = lookup(r, "sanity.policy")
    if sanity:
        text += f" · sanity answers right {sanity['right']}/{sanity['n']}"
    lines = [_line("evaluate", text)]
    others = [c for c in ("policy_vs_base", "policy_vs_sft", "sft_vs_base") if c != pm.get("comparison")]
    rows = [(c, lookup(r, f"kto_reward.{c}")) for c in others]
    shown = [f"{c} {fmt(k.get('accuracy'))} (CI {fmt(k.get('ci_low'))}–{fmt(k.get('ci_high'))})" for c, k in rows if k]
    if shown:
        lines.append(_line("", "reward accuracy " + " · ".join(shown)))
    return lines + [_line("", "side by side: reports/side_by_side.html")]


def _registry(r: Mapping[str, Any] | None) -> list[str]:
    if r is None:
        return [_not_run("registry", "register")]
    d = r.get("decision") or {}
    if r.get("registered") is False:
        text = (f"{r['model_name']} v{r['version']} again: identical weights, data and params, not registered "
                f"· aliases {', '.join(r.get('aliases') or []) or '-'} · champion v{r.get('champion_version') or '-'}")
        return [_line("registry", text), _line("", "`natfeed models --history` lists every decision")]
    verdict = "gate passed" if d.get("passed") else "gate failed: " + "; ".join(d.get("failures", []))[:80]
    text = (f"{r['model_name']} v{r['version']} registered, aliases {', '.join(r.get('aliases') or []) or '-'} · "
            f"{d.get('action', '-')} ({verdict}) · champion v{r.get('champion_version') or '-'}")
    return [_line("registry", text), _line("", "`natfeed models` lists every version, --history every decision")]


def build_summary(paths: PathsParams, tracking_uri: str, commit: str | None = None) -> list[str]:
    """The summary's lines."""
    reports = Path(paths.reports_dir)
    r = {name: _read(reports, name) for name in UPSTREAM}
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"natfeed run summary · {when}" + (f" · commit {commit}" if commit else "")]
    sections = {
        "ingest": _data(r["ingest"]),
        "extract": _feedback(r["extract"], _feedback_conversations(paths.feedback) if r["extract"] else None),
        "extract_quality": _quality(r["extract_quality"]), "validate": _validate(r["validate"]),
        "build_kto": _kto(r["build_kto"]), "train": _train(r["train"]), "evaluate": _evaluate(r["evaluate"]),
        "register": _registry(r["register"]),
    }
    stale = stale_stages(r)
    for name, section in sections.items():
        report = r[name]
        lines += _mark_stale(section, report, stale[name]) if name in stale and report else section
    lines += [
        _line("next", f". .venv/bin/activate && mlflow ui --backend-store-uri {tracking_uri}"),
        _line("", f"full reports in {paths.reports_dir}/ · dvc metrics show · dvc plots show · "
              f"dataset card {Path(paths.feedback).parent}/README.md"),
    ]
    return lines[:MAX_LINES]
