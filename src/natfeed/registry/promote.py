"""The trained policy in the MLflow model registry: logging, lineage, the promotion gate, rollback.

Every registered version gets the alias ``challenger`` and lineage tags (``natfeed.*``: git commit,
DVC md5 of the KTO/SFT parquet files, params md5, extractor, validation result, eval metrics). It
becomes ``champion`` only when :func:`check_gate` passes. Registry stages are deprecated in MLflow:
only aliases are used.

Decisions are append-only: each one is a new JSON tag ``natfeed.decision.<UTC time>.<random>`` on every
version it concerns (a key nobody else writes, so two promotes at once both land and nothing is
overwritten); ``natfeed.decision`` holds the version's first decision, the gate's at registration, and is
never rewritten. :func:`history` reads them all back in order; the champion's past holders, which
:func:`rollback` needs, are replayed from them. Nothing is written to the registered model's own tags
(two writers of one such tag collide in SQL stores: ``registered_model_tag_pk``).

A champion is replaced only on evidence: the challenger's primary metric must be measured on at least
``gate.min_examples`` test examples, and on the champion's test set (the kto_test md5 both versions record)
to be compared with the champion's; otherwise the decision is ``keep``, with the reason. The first version
(no champion yet) needs only the thresholds, so a fresh clone serves one.

"Worse than the champion" (the gate's comparison on the primary metric, higher is better): with
``c`` the challenger's primary metric and ``v`` the champion's value of the same metric, the
challenger is refused when ``c.value < v`` and ``c.ci_high < v`` (its 95% CI lies wholly below the
champion's value); without a CI, when ``c.value < v - gate.tolerance``. A challenger whose CI
reaches the champion's value is not distinguishably worse and is promoted.
"""

from __future__ import annotations

import getpass
import json
import logging
import math
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from natfeed.core.errors import NatfeedError
from natfeed.core.tracking import flatten
from natfeed.params import GateParams

log = logging.getLogger(__name__)

CHAMPION, CHALLENGER = "champion", "challenger"
PREFIX = "natfeed."
DECISION_TAG = "natfeed.decision"  # the version's first decision (at registration): written once
EVENT_PREFIX = "natfeed.decision."  # + "<UTC time>.<random>": one tag per decision, never rewritten
HISTORY_TAG = "natfeed.champion_history"  # written by natfeed < 0.2: read only, for old stores
TEST_MD5_TAG = "natfeed.data.kto_test.md5"
APPLIED = ("promote", "forced-promote", "rollback", "forced-rollback")


class RegistryError(NatfeedError, RuntimeError):
    """A registry operation cannot be done (missing version, nothing to roll back to, bad input)."""


@dataclass(frozen=True)
class PrimaryMetric:
    """The evaluate report's ``primary_metric``: higher is better; the CI may be absent."""

    name: str
    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None  # the examples (or judged prompts) it was measured on


@dataclass(frozen=True)
class VersionInfo:
    """What the gate looks at, as recorded in a version's tags."""

    version: str
    validation_passed: bool | None
    metrics: dict[str, float]
    primary: PrimaryMetric | None
    test_md5: str | None = None  # md5 of the test set the metrics were measured on (kto_test.parquet)

    def metric(self, name: str) -> float | None:
        """A metric by its full dotted name, the primary metric's name, or a unique ``.name`` suffix."""
        if name in self.metrics:
            return self.metrics[name]
        if self.primary and self.primary.name == name:
            return self.primary.value
        hits = [v for k, v in self.metrics.items() if k.endswith(f".{name}")]
        return hits[0] if len(hits) == 1 else None

    @classmethod
    def from_reports(cls, evaluate: Mapping[str, Any], validate: Mapping[str, Any] | None) -> VersionInfo:
        """Read ``reports/evaluate.json`` and ``reports/validate.json``. The metrics are the numeric leaves
        of the report's ``metrics`` section where it has one, else of the whole report (dotted names),
        less ``primary_metric`` and ``seconds``."""
        section = evaluate.get("metrics")
        if not isinstance(section, Mapping):
            section = {k: v for k, v in evaluate.items() if k not in ("primary_metric", "seconds")}
        metrics = {k: float(v) for k, v in flatten(section).items()
                   if isinstance(v, int | float) and not isinstance(v, bool)}
        pm = evaluate.get("primary_metric") or None
        primary = None
        if pm and pm.get("value") is not None:
            n = pm.get("n", evaluate.get("test_examples"))
            primary = PrimaryMetric(str(pm["name"]), float(pm["value"]), _opt_float(pm.get("ci_low")),
                                    _opt_float(pm.get("ci_high")), None if n is None else int(n))
        passed = None if validate is None else bool(validate.get("passed"))
        return cls("", passed, metrics, primary)

    @classmethod
    def from_tags(cls, version: str, tags: Mapping[str, str]) -> VersionInfo:
        metrics = json.loads(tags.get("natfeed.metrics") or "{}")
        raw = tags.get("natfeed.validation_passed")
        pm = json.loads(tags["natfeed.primary_metric"]) if tags.get("natfeed.primary_metric") else None
        fields = set(PrimaryMetric.__dataclass_fields__)
        primary = PrimaryMetric(**{k: v for k, v in pm.items() if k in fields}) if pm else None
        return cls(str(version), None if raw is None else raw == "true", metrics, primary, tags.get(TEST_MD5_TAG))

    def to_tags(self) -> dict[str, str]:
        """All metrics in one JSON tag (``natfeed.metrics``, what the gate reads); the top-level ones also
        one per tag (``natfeed.metric.<name>``), to read and search in the MLflow UI."""
        tags = {f"natfeed.metric.{k}"[:250]: repr(v) for k, v in self.metrics.items() if "." not in k}
        tags["natfeed.metrics"] = json.dumps(self.metrics)
        if self.validation_passed is not None:
            tags["natfeed.validation_passed"] = str(self.validation_passed).lower()
        if self.primary:
            tags["natfeed.primary_metric"] = json.dumps(asdict(self.primary))
        return tags


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True)
class GateResult:
    passed: bool
    failures: list[str]
    compared: dict[str, Any]
    evidence_only: bool = False  # it failed only for want of evidence (too few examples, another test set)


def check_gate(cand: VersionInfo, champion: VersionInfo | None, gate: GateParams,
               compare: bool = True) -> GateResult:
    """Validation passed, every threshold met, and (``compare``) not worse than the champion."""
    failures: list[str] = []
    compared: dict[str, Any] = {}
    if gate.require_validation:
        compared["validation_passed"] = cand.validation_passed
        if cand.validation_passed is not True:
            failures.append("validation did not pass" if cand.validation_passed is False
                            else "no validation result recorded (reports/validate.json missing)")
    for name, minimum in gate.thresholds.items():
        value = cand.metric(name)
        compared[name] = {"value": value, "min": minimum}
        if value is None:
            have = sorted(k for k in cand.metrics if "." not in k) or sorted(cand.metrics)[:20]
            failures.append(f"metric {name!r} missing from the evaluate report (top-level: {have or 'none'})")
        elif math.isnan(value) or value < minimum:
            failures.append(f"{name} = {value:.4g} is below its threshold {minimum:.4g}")
    evidence: list[str] = []
    if compare and champion is not None and champion.version != cand.version:
        evidence = _evidence(cand, champion, gate.min_examples, compared)
        if gate.compare_champion and not evidence:
            failures += _compare_champion(cand, champion, gate.tolerance, compared)
    return GateResult(not (failures or evidence), failures + evidence, compared,
                      evidence_only=bool(evidence) and not failures)


def _evidence(cand: VersionInfo, champion: VersionInfo, min_examples: int, compared: dict[str, Any]) -> list[str]:
    """Why the challenger's figures cannot replace the champion (too few examples, another test set)."""
    n = cand.primary.n if cand.primary else None
    compared["evidence"] = {"n": n, "min_examples": min_examples, "test_md5": cand.test_md5,
                            "champion_test_md5": champion.test_md5}
    out = []
    if n is None or n < min_examples:
        out.append(f"not enough evidence (n={'unknown' if n is None else n} < {min_examples}): "
                   f"register.gate.min_examples test examples are needed to replace champion v{champion.version}")
    if cand.test_md5 != champion.test_md5:
        mine, theirs = (x[:10] if x else "unknown" for x in (cand.test_md5, champion.test_md5))
        out.append(f"not comparable: measured on another test set than champion v{champion.version} "
                   f"(kto_test md5 {mine} vs {theirs})")
    return out


def _compare_champion(cand: VersionInfo, champion: VersionInfo, tolerance: float,
                      compared: dict[str, Any]) -> list[str]:
    pm = cand.primary
    if pm is None:
        return ["no primary_metric in the evaluate report: cannot compare with the champion"]
    theirs = champion.metric(pm.name)
    compared["primary_metric"] = {"name": pm.name, "challenger": pm.value, "ci_low": pm.ci_low,
                                  "ci_high": pm.ci_high, "champion": theirs,
                                  "champion_version": champion.version}
    if theirs is None:
        return [f"champion v{champion.version} has no {pm.name!r}: not comparable (use --force to promote)"]
    if math.isnan(pm.value):
        return [f"{pm.name} is NaN"]
    if pm.ci_high is not None:
        worse = pm.value < theirs and pm.ci_high < theirs
        low = "?" if pm.ci_low is None else f"{pm.ci_low:.4g}"
        why = f"its 95% CI [{low}, {pm.ci_high:.4g}] lies below"
    else:
        worse = pm.value < theirs - tolerance
        why = f"more than the tolerance {tolerance:g} below"
    if not worse:
        return []
    return [f"{pm.name} = {pm.value:.4g} is worse than champion v{champion.version}'s {theirs:.4g} "
            f"({why} it)"]


@dataclass
class Decision:
    """One promotion / rollback decision, recorded as a JSON tag."""

    action: str  # promote | forced-promote | reject | keep (not enough evidence) | unchanged | rollback
    #              | forced-rollback | rollback-refused
    #              | experiment (gated, never applied: a `dvc exp run` or a run off the champion branches)
    version: str
    champion_before: str | None
    champion_after: str | None
    passed: bool
    failures: list[str]
    compared: dict[str, Any]
    reason: str = ""
    source: str = "cli"
    by: str = field(default_factory=lambda: current_user())
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="microseconds"))

    @property
    def applied(self) -> bool:
        """The champion alias now points at ``version`` because of this decision."""
        return self.action in ("promote", "forced-promote", "rollback", "forced-rollback", "unchanged")

    def to_json(self) -> str:
        return json.dumps(asdict(self), default=str)


def current_user() -> str:
    """Who decided: ``NATFEED_USER``, else the login name."""
    try:
        return os.environ.get("NATFEED_USER") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


def _client() -> Any:
    import mlflow

    return mlflow.MlflowClient()


def champion_version(client: Any, name: str) -> str | None:
    """The version holding ``champion``, or None (no alias, or no such registered model)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def read_version(client: Any, name: str, version: str | int) -> VersionInfo:
    """A version's gate inputs from its tags; RegistryError when it does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException as err:
        raise RegistryError(f"{name} has no version {version}: {err.message}") from None
    return VersionInfo.from_tags(str(version), mv.tags)


def history(client: Any, name: str) -> list[dict[str, Any]]:
    """Every recorded decision about ``name``'s versions, oldest first (each once, however many versions
    it concerns)."""
    seen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for mv in client.search_model_versions(f"name = '{name}'"):
        for key, value in (mv.tags or {}).items():
            if not (key.startswith(EVENT_PREFIX) or key == DECISION_TAG):
                continue
            try:
                event = json.loads(value)
            except json.JSONDecodeError:
                log.warning("%s v%s: tag %s is not JSON; left out of the history", name, mv.version, key)
                continue
            seen.setdefault((str(event.get("at")), str(event.get("action")), str(event.get("version"))), event)
    return sorted(seen.values(), key=lambda e: str(e.get("at")))


def champion_history(client: Any, name: str) -> list[dict[str, str]]:
    """Past and present champions, oldest first (a stack: the last entry holds the alias), replayed from
    the decisions: a promote pushes its version, a rollback pops back to its target."""
    stack: list[dict[str, str]] = []
    for event in history(client, name):
        action, version = event.get("action"), str(event.get("version"))
        if action not in APPLIED:
            continue
        before = event.get("champion_before")
        if action in ("rollback", "forced-rollback"):
            while stack and stack[-1]["version"] != version:
                stack.pop()
            if stack:
                continue
        elif before and (not stack or stack[-1]["version"] != str(before)):  # alias set outside natfeed
            stack.append({"version": str(before), "at": "", "action": "external"})
        stack.append({"version": version, "at": str(event.get("at")), "action": str(action)})
    return stack


def _record(client: Any, name: str, decision: Decision, *versions: str) -> None:
    stamp = decision.at.replace("-", "").replace(":", "").replace("+0000", "Z")
    key = f"{EVENT_PREFIX}{stamp}.{secrets.token_hex(3)}"
    value = decision.to_json()
    for version in versions or (decision.version,):
        if not client.get_model_version(name, version).tags.get(DECISION_TAG):
            retry_conflicts(client.set_model_version_tag, name, version, DECISION_TAG, value)
        retry_conflicts(client.set_model_version_tag, name, version, key, value)


CONFLICT_MARKERS = ("UniqueViolation", "duplicate key", "UNIQUE constraint failed", "RESOURCE_ALREADY_EXISTS",
                    "database is locked")


def retry_conflicts(call: Any, *args: Any, tries: int = 6, **kwargs: Any) -> Any:
    """``call(*args, **kwargs)``, retried with backoff when the store reports a write conflict (two
    registrations at once on a SQL store insert the same key; the second insert fails, a retry updates)."""
    from mlflow.exceptions import MlflowException

    for attempt in range(tries):
        try:
            return call(*args, **kwargs)
        except MlflowException as err:
            if attempt == tries - 1 or not any(m in str(err) for m in CONFLICT_MARKERS):
                raise
            log.info("registry write conflict (%s): retry %d", str(err)[:80], attempt + 1)
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")


def _check_force(force: bool, reason: str | None) -> str:
    if force and not (reason or "").strip():
        raise RegistryError("--force needs a non-empty --reason (it is recorded with the decision)")
    return (reason or "").strip()


def promote(name: str, version: str | int, gate: GateParams, *, force: bool = False, reason: str | None = None,
            source: str = "cli", client: Any = None) -> Decision:
    """Make ``version`` the champion if the gate passes (or ``force`` with a reason); record the decision."""
    reason = _check_force(force, reason)
    client = client or _client()
    cand = read_version(client, name, version)
    before = champion_version(client, name)
    champ = read_version(client, name, before) if before and before != cand.version else None
    result = check_gate(cand, champ, gate)
    if before == cand.version:
        action = "unchanged"
    elif result.passed:
        action = "promote"
    else:
        action = "forced-promote" if force else "keep" if result.evidence_only else "reject"
    decision = Decision(action, cand.version, before, cand.version if action not in ("reject", "keep") else before,
                        result.passed, result.failures, result.compared, reason, source)
    if action in ("promote", "forced-promote"):
        retry_conflicts(client.set_registered_model_alias, name, CHAMPION, cand.version)
    _record(client, name, decision)
    log.info("%s v%s: %s%s", name, cand.version, action, f" ({'; '.join(result.failures)})"
             if result.failures else "")
    return decision


def gate_only(name: str, version: str | int, gate: GateParams, why: str, *, source: str = "stage",
              client: Any = None) -> Decision:
    """Check ``version`` against the gate and record the result without touching ``champion`` (experiments)."""
    client = client or _client()
    cand = read_version(client, name, version)
    before = champion_version(client, name)
    champ = read_version(client, name, before) if before and before != cand.version else None
    result = check_gate(cand, champ, gate)
    verdict = "would pass the gate" if result.passed else "would not pass the gate"
    command = f"natfeed promote --version {cand.version}" + ("" if result.passed else ' --force --reason "..."')
    reason = f"{why}: champion stays {f'v{before}' if before else 'unset'} ({verdict}); promote it with `{command}`"
    decision = Decision("experiment", cand.version, before, before, result.passed, result.failures, result.compared,
                        reason, source)
    _record(client, name, decision)
    log.info("%s v%s: %s", name, cand.version, reason)
    return decision


def rollback(name: str, gate: GateParams, *, force: bool = False, reason: str | None = None,
             source: str = "cli", client: Any = None) -> Decision:
    """Give ``champion`` back to the version that held it before the current one (the same checks as
    promote, except the comparison with the champion being replaced)."""
    reason = _check_force(force, reason)
    client = client or _client()
    current = champion_version(client, name)
    if current is None:
        raise RegistryError(f"{name} has no champion: nothing to roll back")
    stack = champion_history(client, name)
    while stack and stack[-1]["version"] == current:
        stack.pop()
    while stack and not _version_exists(client, name, stack[-1]["version"]):
        stack.pop()
    if not stack:
        raise RegistryError(f"no earlier champion than v{current} in {name}'s history")
    target = read_version(client, name, stack[-1]["version"])
    result = check_gate(target, None, gate, compare=False)
    action = "rollback" if result.passed else "forced-rollback" if force else "rollback-refused"
    decision = Decision(action, target.version, current, target.version if action != "rollback-refused"
                        else current, result.passed, result.failures, result.compared, reason, source)
    if action != "rollback-refused":
        retry_conflicts(client.set_registered_model_alias, name, CHAMPION, target.version)
    _record(client, name, decision, target.version, current)
    log.info("%s: %s v%s -> v%s", name, action, current, decision.champion_after)
    return decision


def _version_exists(client: Any, name: str, version: str) -> bool:
    try:
        read_version(client, name, version)
    except RegistryError:
        return False
    return True
