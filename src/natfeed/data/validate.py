"""Validate: pandera schemas (row rules + balance) and great-expectations distribution checks.

Lazy validation collects every failure; the report names each failed check, column and an example
value. This is the CI gate: a failing dataset makes the stage and ``natfeed validate`` exit non-zero.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.errors

from natfeed.core.categories import CATEGORIES
from natfeed.data.schemas import ConversationModel, feedback_schema
from natfeed.params import ValidateParams

log = logging.getLogger(__name__)


class ValidationFailed(RuntimeError):
    """The dataset failed validation; the message lists every failed check."""


def _failures(table: str, err: pandera.errors.SchemaErrors) -> list[dict[str, Any]]:
    """Group pandera's failure cases by (column, check): count and first examples."""
    cases = err.failure_cases
    out = []
    for (column, check), grp in cases.groupby([cases["column"].fillna("<table>"), cases["check"].astype(str)],
                                              sort=False, dropna=False):
        examples = [str(v)[:120] for v in grp["failure_case"].head(3).tolist()]
        index = [i for i in grp["index"].head(3).tolist() if i is not None and not pd.isna(i)]
        out.append({"table": table, "column": str(column), "check": check, "count": int(len(grp)),
                    "examples": examples, "rows": [int(i) for i in index]})
    return out


def _validate(table: str, schema: Any, df: pd.DataFrame) -> list[dict[str, Any]]:
    try:
        schema.validate(df, lazy=True)
    except pandera.errors.SchemaErrors as err:
        return _failures(table, err)
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


def validate_tables(conversations: pd.DataFrame | None, feedback: pd.DataFrame, params: ValidateParams,
                    baseline: dict[str, Any] | None = None, docs_dir: str | Path | None = None
                    ) -> dict[str, Any]:
    """Run every check; return the report (``passed``, ``failures``, balance, expectations).

    Without ``conversations`` only the feedback table is checked (no turn-range check, no
    distribution expectations)."""
    failures: list[dict[str, Any]] = []
    fb = feedback
    if conversations is not None:
        turns = conversations.drop_duplicates("conversation_id").set_index("conversation_id")["turn"]
        fb = feedback.assign(conversation_turns=feedback["conversation_id"].map(turns))
        failures += _validate("conversations", ConversationModel.to_schema(), conversations)
    schema = feedback_schema(params.balance, with_turns=conversations is not None)
    failures += _validate("feedback", schema, fb)
    report: dict[str, Any] = {
        "conversations": None if conversations is None else int(len(conversations)),
        "feedback_rows": int(len(feedback)), "balance": balance_summary(feedback)}
    if params.expectations.enabled and docs_dir is not None and conversations is not None:
        from natfeed.data.expectations import run_expectations

        result = run_expectations(conversations, feedback, params.expectations, baseline, Path(docs_dir))
        report["expectations"] = {"success": result.success, "failures": result.failures,
                                  "statistics": result.statistics, "data_docs": str(result.docs_index)}
        failures += [{"table": "expectations", **f} for f in result.failures]
    report["failures"] = failures
    report["failed_checks"] = len(failures)
    report["passed"] = not failures
    return report


def summary(report: dict[str, Any]) -> str:
    """A readable summary: one line per failed check, column and example."""
    head = (f"validation {'PASSED' if report['passed'] else 'FAILED'}: {report['conversations']} conversations, "
            f"{report['feedback_rows']} feedback rows, {report['failed_checks']} failed checks")
    lines = [head]
    for f in report["failures"]:
        example = f.get("examples", [f.get("observed")])
        lines.append(f"  - [{f['table']}] check {f.get('check', f.get('expectation'))!r} on column "
                     f"{f.get('column')!r}: {f.get('count', 1)} failure(s), e.g. {example}")
    return "\n".join(lines)
