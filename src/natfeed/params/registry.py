"""``register``: logging the policy to the MLflow model registry and the gate of its ``champion`` alias."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from natfeed.params.base import Section

LogWeights = Literal["auto", "full", "adapter", "reference"]


class GateParams(Section):
    """When a registered version may become the ``champion`` (natfeed.registry.promote.check_gate)."""

    require_validation: bool = Field(True, description="reports/validate.json must say passed: true")
    thresholds: dict[str, float] = Field(default_factory=dict, description="{metric: minimum}: a name from "
                                         "reports/evaluate.json `metrics` (dotted when nested) or the primary "
                                         "metric's name; a missing metric fails the gate")
    compare_champion: bool = Field(True, description="Refuse a version worse than the champion on the primary "
                                   "metric: value below the champion's and, where the evaluate report has a CI, "
                                   "its ci_high below the champion's value too")
    tolerance: float = Field(0.0, ge=0, description="Without a CI: a drop up to this is not 'worse'")
    min_examples: int = Field(30, ge=1, description="Replacing a champion needs the challenger's primary metric "
                              "measured on at least this many test examples (and on the champion's test set); "
                              "else the decision is keep. The first version needs only the thresholds")


class RegisterParams(Section):
    """Logging the policy to the MLflow model registry and promoting it (stage register)."""

    model_name: str = Field("natfeed-policy", min_length=1, description="Registered model name")
    log_weights: LogWeights = Field("auto", description="full (transformers flavor, weights copied), adapter (LoRA "
                             "adapter copied, base model referenced), reference (nothing copied: a path or Hub "
                             "id), auto (adapter if the policy is one, else full up to max_full_gb, else "
                             "reference)")
    max_full_gb: float = Field(2.0, gt=0, description="auto: largest policy whose weights are copied")
    reference: str | None = Field(None, description="reference: the Hub id or path the logged model loads "
                                  "from; null = the absolute path of paths.policy_dir")
    max_new_tokens: int = Field(64, gt=0, description="Default reply length of the logged model's predict")
    champion_branches: list[str] = Field(default_factory=lambda: ["main", "master"], description="Git branches "
                                         "whose runs may move champion through the gate; a run on another "
                                         "branch, a detached HEAD or a `dvc exp run` registers an "
                                         "experiment version (alias exp-<name>) and leaves champion alone")
    gate: GateParams = Field(default_factory=GateParams)
