"""Validate: pandera schemas (row rules), balance rules and great-expectations distribution checks.

Validation is lazy: the report lists every failed check at once, each with a message naming the rule,
the column and examples (``share of positive_feedback 0.71 > max 0.6``; ``2 rows share the key
(conversation_id, feedback_turn), e.g. ('a1', 3) at rows 0, 358``). The input index is ignored. A table
that lacks the feedback columns is not "failed data" but the wrong input: :class:`TableError`. This is
the CI gate: a failing dataset makes the stage and ``natfeed validate`` exit 1.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.errors

from natfeed.core.categories import CATEGORIES
from natfeed.core.errors import NatfeedError
from natfeed.core.tables import FEEDBACK_SCHEMA
from natfeed.data.schemas import ConversationModel, balance_failures, feedback_schema
from natfeed.params import ValidateParams

log = logging.getLogger(__name__)

KEYS = {"feedback": ["conversation_id", "feedback_turn"], "conversations": ["conversation_id"]}
REQUIRED = {"feedback": [c for c in FEEDBACK_SCHEMA.names if c not in ("flagged", "cue")],
            "conversations": ["conversation_id", "conversation", "turn", "language", "model"]}
"""Columns without which a table is not that table (older feedback files may lack flagged and cue)."""


class TableError(NatfeedError, ValueError):
    """The input is not the table it should be (missing columns): an input error, not failed data."""


def require_columns(df: pd.DataFrame, table: str, source: str = "") -> None:
    """Raise :class:`TableError` listing the columns of ``table`` that ``df`` lacks."""
    missing = [c for c in REQUIRED[table] if c not in df.columns]
    if missing:
        where = f"{source} " if source else ""
        raise TableError(f"{where}is not a {table} table: missing column(s) {', '.join(missing)} "
                         f"(it has {', '.join(map(str, df.columns[:8]))}{' ...' if len(df.columns) > 8 else ''})")


def _examples(table: str, df: pd.DataFrame, rows: list[int], columns: list[str], cases: pd.DataFrame) -> list[str]:
    """Example values of a failed check: the failing values of a column check, the rows' keys otherwise."""
    if len(columns) == 1 and cases["schema_context"].iloc[0] == "Column":
        return [str(v)[:80] for v in cases["failure_case"].head(3)]
    keys = [k for k in KEYS[table] if k in df.columns]
    found = [tuple(_plain(v) for v in df.loc[r, keys]) for r in rows[:6] if r in df.index]
    return [str(k if len(k) > 1 else k[0])[:80] for k in dict.fromkeys(found)][:3]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _message(table: str, check: str, columns: list[str], n: int, examples: list[str], rows: list[int]) -> str:
    shown = ", ".join(map(str, rows[:5])) + (" ..." if len(rows) > 5 else "")
    where = f" (row{'s' if len(rows) > 1 else ''} {shown})" if rows else ""
    eg = f", e.g. {', '.join(examples)}" if examples else ""
    if check == "multiple_fields_uniqueness" or check.startswith("field_uniqueness"):
        return f"[{table}] {n} rows share the key ({', '.join(columns)}){eg}{where}"
    if check.startswith("isin("):
        return f"[{table}] {', '.join(columns)}: {n} row(s) not one of the allowed values{eg}{where}"
    what = f" on {', '.join(columns)}" if columns else ""
    return f"[{table}] {n} row(s) fail {check[:70]}{what}{eg}{where}"


def _failures(table: str, err: pandera.errors.SchemaErrors, df: pd.DataFrame) -> list[dict[str, Any]]:
    """One failure per failed check (not per column of a failing row), with its rows and examples."""
    cases = err.failure_cases
    out = []
    for check, grp in cases.groupby(cases["check"].astype(str), sort=False):
        columns = [str(c) for c in dict.fromkeys(grp["column"].dropna()) if str(c) in df.columns]
        if grp["schema_context"].iloc[0] != "Column":  # a row check reports every column of its rows
            columns = [c for c in KEYS[table] if c in columns] or columns[:1]
        rows = sorted({int(i) for i in grp["index"].dropna()})
        examples = _examples(table, df, rows, columns, grp)
        message = _message(table, check, columns, len(rows) or int(len(grp)), examples, rows)
        out.append({"table": table, "column": ", ".join(columns) or "<table>", "check": check,
                    "count": len(rows) or int(len(grp)), "examples": examples, "rows": rows[:20], "message": message})
    return out


def _validate(table: str, schema: Any, df: pd.DataFrame) -> list[dict[str, Any]]:
    try:
        schema.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as err:
        return _failures(table, err, df)
    return []


def balance_summary(feedback: pd.DataFrame) -> dict[str, Any]:
    shares = feedback["category"].value_counts(normalize=True) if len(feedback) else pd.Series(dtype=float)
    pos, neg = int((feedback["label"] == 1).sum()), int((feedback["label"] == -1).sum())
    return {
        "rows": int(len(feedback)),
        "category_share": {c: round(float(shares.get(c, 0.0)), 4) for c in CATEGORIES},
        "positive": pos,
        "negative": neg,
        "pos_neg_ratio": round(pos / neg, 4) if neg else None,
    }


def _with_turns(feedback: pd.DataFrame, conversations: pd.DataFrame) -> pd.DataFrame:
    turns = conversations.drop_duplicates("conversation_id").set_index("conversation_id")["turn"]
    # float: an empty map keeps the ids' str dtype, and comparing it failed the turn check on an empty table
    return feedback.assign(conversation_turns=feedback["conversation_id"].map(turns).astype("float64"))


def validate_tables(conversations: pd.DataFrame | None, feedback: pd.DataFrame, params: ValidateParams,
                    baseline: dict[str, Any] | None = None, docs_dir: str | Path | None = None
                    ) -> dict[str, Any]:
    """Run every check; return the report (``passed``, ``failures``, balance, expectations).

    Without ``conversations`` only the feedback table is checked (no turn-range check, no distribution
    expectations). Raises :class:`TableError` when a table lacks its columns."""
    require_columns(feedback, "feedback")
    feedback = feedback.reset_index(drop=True)
    failures: list[dict[str, Any]] = []
    fb = feedback
    if conversations is not None:
        require_columns(conversations, "conversations")
        conversations = conversations.reset_index(drop=True)
        fb = _with_turns(feedback, conversations)
        failures += _validate("conversations", ConversationModel.to_schema(), conversations)
    failures += _validate("feedback", feedback_schema(with_turns=conversations is not None), fb)
    failures += balance_failures(feedback, params.balance)
    report: dict[str, Any] = {
        "conversations": None if conversations is None else int(len(conversations)),
        "feedback_rows": int(len(feedback)), "balance": balance_summary(feedback)}
    if params.expectations.enabled and docs_dir is not None and conversations is not None:
        from natfeed.data.expectations import run_expectations

        result = run_expectations(conversations, feedback, params.expectations, baseline, Path(docs_dir))
        report["expectations"] = {"success": result.success, "failures": result.failures,
                                  "statistics": result.statistics,
                                  "data_docs": (Path(docs_dir) / result.docs_index.name).as_posix()}
        failures += [{"table": "expectations", **f} for f in result.failures]
    report["failures"] = failures
    report["failed_checks"] = len(failures)
    report["passed"] = not failures
    return report


def summary(report: dict[str, Any]) -> str:
    """A readable summary: the verdict, then one line per failed check."""
    conv = report["conversations"]
    head = (f"validation {'PASSED' if report['passed'] else 'FAILED'}: "
            + (f"{conv} conversations, " if conv is not None else "")
            + f"{report['feedback_rows']} feedback rows, {report['failed_checks']} failed check(s)")
    return "\n".join([head, *(f"  - {f['message']}" for f in report["failures"])])

