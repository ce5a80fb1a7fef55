"""great-expectations checks on the *distribution* of the conversations and the feedback.

Row rules (types, category set, uniqueness) are pandera's, in :mod:`natfeed.data.schemas`; here: null
rates, language mix, user turns, feedback rate and category shares against bounds in params, and
drift against the profile of the last accepted dataset (the baseline). Shares are validated as the
mean of 0/1 indicator columns (``language=English``, ``category=positive_feedback``), so each Data
Docs row shows the share itself. great_expectations is imported inside the functions (slow import).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from natfeed.core.categories import CATEGORIES
from natfeed.core.io import atomic_write
from natfeed.core.readers import InputError
from natfeed.params.data import Bounds, ExpectationsParams

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

PROFILE_VERSION = 1
TOP_LANGUAGES = 20
"""Languages kept by name in the profile's ``language_share`` (the rest are summed as ``<other>``)."""

@dataclass
class ExpectationsResult:
    """Outcome of :func:`run_expectations`; ``statistics`` is the :func:`profile` (the baseline to save)."""

    success: bool
    failures: list[dict[str, Any]]
    statistics: dict[str, Any]
    docs_index: Path
    evaluated: dict[str, int] = field(default_factory=dict)


def _num(value: Any, digits: int = 6) -> float | None:
    """A plain, rounded float for JSON (None for missing/NaN)."""
    try:
        number = float(value)
    except (TypeError, ValueError):  # None, pd.NA
        return None
    return None if math.isnan(number) else round(number, digits)


def _column(df: pd.DataFrame, name: str) -> pd.Series:
    import pandas as pd

    return df[name] if name in df.columns else pd.Series([None] * len(df), index=df.index, dtype=object)


def _feedback_per_conversation(conversations: pd.DataFrame, feedback: pd.DataFrame) -> pd.Series:
    counts = _column(feedback, "conversation_id").value_counts()
    return _column(conversations, "conversation_id").map(counts).fillna(0).astype(float)


def _shares(values: pd.Series, n: int) -> pd.Series:
    """Share of all ``n`` rows (nulls included in the denominator) per value, largest first."""
    import pandas as pd

    return values.value_counts() / n if n else pd.Series(dtype=float)


def profile(conversations: pd.DataFrame, feedback: pd.DataFrame) -> dict[str, Any]:
    """Distribution statistics of both tables (JSON-serialisable); also the drift baseline."""
    import pandas as pd

    n_conv, n_fb = len(conversations), len(feedback)
    langs = _shares(_column(conversations, "language"), n_conv)
    top = {str(k): _num(v) for k, v in langs.head(TOP_LANGUAGES).items()}
    if len(langs) > TOP_LANGUAGES:
        top["<other>"] = _num(langs.iloc[TOP_LANGUAGES:].sum())
    turns = pd.to_numeric(_column(conversations, "turn"), errors="coerce")
    per_conv = _feedback_per_conversation(conversations, feedback)
    cats = _shares(_column(feedback, "category"), n_fb)
    return {
        "version": PROFILE_VERSION,
        "conversations": n_conv,
        "feedback_rows": n_fb,
        "null_rate": {f"{t}.{c}": _num(_column(df, c).isna().mean()) if len(df) else None
                      for t, df in (("conversations", conversations), ("feedback", feedback))
                      for c in ("language", "model")},
        "languages": int(_column(conversations, "language").nunique()),
        "language_share": top,
        "user_turns": {"mean": _num(turns.mean()), "p50": _num(turns.quantile(0.5)),
                       "p90": _num(turns.quantile(0.9)), "p99": _num(turns.quantile(0.99)), "max": _num(turns.max())},
        "feedback_rate": _num(per_conv.mean()),
        "conversations_with_feedback": _num((per_conv > 0).mean()),
        "category_share": {c: _num(cats.get(c, 0.0)) if n_fb else None for c in CATEGORIES},
        "mean_confidence": _num(pd.to_numeric(_column(feedback, "confidence"), errors="coerce").mean()),
        "mean_feedback_turn": _num(pd.to_numeric(_column(feedback, "feedback_turn"), errors="coerce").mean()),
        "flagged_share": _num(_column(conversations, "flagged").astype(float).mean()),
        "redacted_share": _num(_column(conversations, "redacted").astype(float).mean()),
    }


def load_baseline(path: str | Path) -> dict[str, Any] | None:
    """The accepted profile saved by :func:`save_baseline`, or None when there is none yet."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InputError(f"{path} is not valid JSON ({err}); delete it and re-accept a baseline") from None
    if not isinstance(data, dict) or data.get("version") != PROFILE_VERSION:
        raise InputError(f"{path} is not a version-{PROFILE_VERSION} profile; delete it and re-accept a baseline")
    return data


def save_baseline(profile_: dict[str, Any], path: str | Path) -> Path:
    """Save ``profile_`` as the last accepted version (``natfeed validate --accept-baseline``)."""
    path = Path(path)
    atomic_write(path, (json.dumps(profile_, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return path


def _indicators(values: pd.Series, prefix: str, names: list[str]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({f"{prefix}={v}": (values == v).astype(float) for v in names}, index=values.index)


def _within(center: float, tol: float, lo: float | None = 0.0, hi: float | None = 1.0) -> Bounds:
    low, high = center - tol, center + tol
    return (max(low, lo) if lo is not None else low, min(high, hi) if hi is not None else high)


def _mean(column: str, bounds: tuple[float | None, float | None], notes: str) -> Any:
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnMeanToBeBetween(column=column, min_value=bounds[0], max_value=bounds[1], notes=notes)


def _completeness(params: ExpectationsParams, min_rows: int, what: str) -> list[Any]:
    import great_expectations.expectations as gxe

    mostly = 1.0 - params.max_null_rate
    return [gxe.ExpectTableRowCountToBeBetween(min_value=min_rows, notes=f"at least {min_rows} {what}")] + [
        gxe.ExpectColumnValuesToNotBeNull(column=c, mostly=mostly, notes=f"null share of {c} at most "
                                          f"{params.max_null_rate}") for c in ("language", "model")]


def _conversation_checks(conv: pd.DataFrame, feedback: pd.DataFrame, params: ExpectationsParams,
                         base: dict[str, Any]) -> tuple[pd.DataFrame, list[Any]]:
    """The lean frame GX validates (no message lists) and its expectations."""
    import great_expectations.expectations as gxe
    import pandas as pd

    lang = _column(conv, "language")
    top = lang.mode().tolist()[:1]
    drift_langs = [k for k, v in base.get("language_share", {}).items() if k != "<other>" and v is not None
                   and v >= params.drift_min_language_share]
    names = list(dict.fromkeys(top + ["unknown"] + drift_langs))
    view = pd.concat([pd.DataFrame({"language": lang, "model": _column(conv, "model"),
                                    "turn": pd.to_numeric(_column(conv, "turn"), errors="coerce"),
                                    "feedback_rows": _feedback_per_conversation(conv, feedback)}),
                      _indicators(lang, "language", names)], axis=1)
    checks = _completeness(params, params.min_conversations, "conversations")
    if not len(conv):
        return view, checks[:1]
    checks += [gxe.ExpectColumnUniqueValueCountToBeBetween(column="language", min_value=params.min_languages,
                                                           notes="distinct languages"),
               _mean("language=unknown", (None, params.max_unknown_language_share), "share of language 'unknown'"),
               _mean("turn", params.mean_user_turns, "mean user turns per conversation"),
               _mean("feedback_rows", params.feedback_rate, "feedback rows per conversation")]
    checks += [_mean(f"language={t}", (None, params.max_share_one_language), "share of the most common language")
               for t in top]
    turns = base.get("user_turns", {}).get("mean")
    if turns is not None:
        tol = turns * params.drift_mean_turns_tolerance
        checks.append(_mean("turn", _within(turns, tol, lo=None, hi=None), f"drift: baseline mean turns {turns}"))
    if base.get("feedback_rate") is not None:
        rate = base["feedback_rate"]
        checks.append(_mean("feedback_rows", _within(rate, params.drift_tolerance, hi=None),
                            f"drift: baseline feedback rate {rate}"))
    checks += [_mean(f"language={k}", _within(base["language_share"][k], params.drift_tolerance),
                     f"drift: baseline share {base['language_share'][k]}") for k in drift_langs]
    return view, checks


def _feedback_checks(fb: pd.DataFrame, params: ExpectationsParams,
                     base: dict[str, Any]) -> tuple[pd.DataFrame, list[Any]]:
    import pandas as pd

    view = pd.concat([pd.DataFrame({"language": _column(fb, "language"), "model": _column(fb, "model"),
                                    "confidence": pd.to_numeric(_column(fb, "confidence"), errors="coerce")}),
                      _indicators(_column(fb, "category"), "category", list(CATEGORIES))], axis=1)
    checks = _completeness(params, params.min_feedback_rows, "feedback rows")
    if not len(fb):
        return view, checks[:1]
    checks += [_mean(f"category={c}", b, "share of the feedback rows") for c, b in params.category_share.items()]
    if params.mean_confidence is not None:
        checks.append(_mean("confidence", params.mean_confidence, "mean extractor confidence"))
    shares = base.get("category_share", {})
    checks += [_mean(f"category={c}", _within(shares[c], params.drift_tolerance), f"drift: baseline share {shares[c]}")
               for c in CATEGORIES if shares.get(c) is not None]
    return view, checks


def _observed(value: Any) -> Any:
    if isinstance(value, int | float) or value is None or hasattr(value, "item"):  # numpy scalars too
        number = value.item() if hasattr(value, "item") else value
        return int(number) if isinstance(number, int) else _num(number)
    return str(value)


def _failures(suite: str, result: Any) -> list[dict[str, Any]]:
    """One readable dict per failed expectation: what, column, observed value and bounds."""
    out = []
    for r in result.results:
        if r.success:
            continue
        kw, res = r.expectation_config.kwargs, r.result or {}
        observed = res.get("observed_value")
        if observed is None and "unexpected_percent" in res:
            observed = (res.get("unexpected_percent") or 0.0) / 100  # null share
        bounds = ([None, _num(1 - kw["mostly"])] if "mostly" in kw
                  else [_num(kw.get("min_value")), _num(kw.get("max_value"))])
        f = {"suite": suite, "expectation": r.expectation_config.type, "column": kw.get("column", "<table>"),
             "observed": _observed(observed),
             "bounds": bounds, "notes": r.expectation_config.notes}
        if r.exception_info and r.exception_info.get("raised_exception"):
            f["error"] = r.exception_info.get("exception_message")
        f["message"] = (f"{suite}: {f['expectation']} on {f['column']!r} ({f['notes']}): observed {f['observed']}, "
                        f"expected within [{bounds[0]}, {bounds[1]}]" + (f"; error: {f['error']}" if "error" in f else ""))
        out.append(f)
    return out


def _context(docs_dir: Path) -> Any:
    """An in-memory GX context (no gx/ folder) whose one Data Docs site is ``docs_dir``."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    site = {"class_name": "SiteBuilder", "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"}}
    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(), data_docs_sites={"natfeed": site},
                               analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False))
    return gx.get_context(mode="ephemeral", project_config=config)


def _clear_docs(docs_dir: Path) -> None:
    """Remove a previous Data Docs build (only what GX writes), so stale runs are not listed."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    (docs_dir / "index.html").unlink(missing_ok=True)
    for sub in ("validations", "expectations", "static"):
        shutil.rmtree(docs_dir / sub, ignore_errors=True)


def run_expectations(conversations: pd.DataFrame, feedback: pd.DataFrame, params: ExpectationsParams,
                     baseline: dict[str, Any] | None, docs_dir: Path) -> ExpectationsResult:
    """Validate both tables (bounds and drift vs ``baseline``) and build Data Docs in ``docs_dir``."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"  # before the first import; no usage statistics, no network
    import great_expectations as gx

    docs_dir = Path(docs_dir).resolve()
    _clear_docs(docs_dir)
    context, base = _context(docs_dir), baseline or {}
    source = context.data_sources.add_pandas("natfeed")
    run_id = gx.RunIdentifier(run_name="natfeed-validate")
    tables = {"conversations": _conversation_checks(conversations, feedback, params, base),
              "feedback": _feedback_checks(feedback, params, base)}
    failures: list[dict[str, Any]] = []
    evaluated: dict[str, int] = {}
    for name, (view, checks) in tables.items():
        suite = context.suites.add(gx.ExpectationSuite(name=name, expectations=checks))
        batch = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
        definition = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result = definition.run(batch_parameters={"dataframe": view}, run_id=run_id)
        evaluated[name] = len(result.results)
        failures += _failures(name, result)
    context.build_data_docs()
    index = docs_dir / "index.html"
    if not index.exists():
        raise RuntimeError(f"great-expectations did not write {index}; check that {docs_dir} is writable")
    log.info("expectations: %d evaluated, %d failed; Data Docs at %s", sum(evaluated.values()), len(failures), index)
    return ExpectationsResult(success=not failures, failures=failures, statistics=profile(conversations, feedback),
                              docs_index=index, evaluated=evaluated)
