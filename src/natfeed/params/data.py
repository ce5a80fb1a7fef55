"""Params of the data stages: ``ingest``, ``validate`` (balance + expectations) and ``build_kto``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from natfeed.core.categories import CATEGORIES
from natfeed.params.base import Section, did_you_mean

Bounds = tuple[float, float]
NegativeCategory = Literal["repeat_or_rephrase", "make_aware_with_correction", "make_aware_without_correction",
                           "ask_for_clarification"]


REDACT_ENTITIES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS", "US_SSN",
                   "URL_CREDENTIALS", "OPENAI_KEY", "AWS_ACCESS_KEY", "GITHUB_TOKEN", "SLACK_TOKEN", "BEARER_TOKEN",
                   "PRIVATE_KEY"]
PLACEHOLDERS = {"EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "CREDIT_CARD": "CARD", "IBAN_CODE": "IBAN",
                "IP_ADDRESS": "IP", "US_SSN": "SSN", "URL_CREDENTIALS": "CREDENTIALS", "OPENAI_KEY": "API_KEY",
                "AWS_ACCESS_KEY": "AWS_KEY", "GITHUB_TOKEN": "GITHUB_TOKEN", "SLACK_TOKEN": "SLACK_TOKEN",
                "BEARER_TOKEN": "TOKEN", "PRIVATE_KEY": "PRIVATE_KEY", "PERSON": "NAME"}


class RedactParams(Section):
    """``ingest.redact``: personal data and secrets replaced (Presidio) as logs are read, by ``ingest`` and by
    ``natfeed extract`` on raw logs, before anything is written or sent."""

    enabled: bool = Field(True, description="Redact (the default); false passes personal data into every output")
    entities: list[str] = Field(default_factory=lambda: list(REDACT_ENTITIES), description="Presidio entity "
                                "types to replace (natfeed's secrets recognizers included)")
    score_threshold: float = Field(0.35, ge=0, le=1, description="Presidio results below this score are kept "
                                   "as text (phone numbers score 0.4, cards/IBANs/e-mails 1.0)")
    placeholders: dict[str, str] = Field(default_factory=lambda: dict(PLACEHOLDERS), description="Entity type -> "
                                         "placeholder label: <LABEL_n>, numbered per conversation")
    names: bool = Field(False, description="Also person names, with the NER of spacy_model (installed offline "
                        "from the package registry); reads whole texts, so much slower")
    spacy_model: str = Field("en_core_web_sm", description="names: the spaCy model")
    max_chars: int = Field(1_000_000, gt=0, description="A message with more to analyse (the windows around "
                           "candidates; whole texts with names) is not analysed: its row is rejected "
                           "(redaction_failed), never passed on")

    @field_validator("entities")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if e not in REDACT_ENTITIES]
        if unknown:
            raise ValueError(f"unknown entities {unknown}{did_you_mean(unknown[0], REDACT_ENTITIES)}; known: "
                             f"{REDACT_ENTITIES} (PERSON: set names: true)")
        return value


class IngestParams(Section):
    """Reading, normalising and filtering conversations."""

    batch_size: int = Field(2000, gt=0, description="Rows per streamed batch (memory stays flat)")
    min_user_turns: int = Field(2, ge=1, description="Conversations with fewer user turns are filtered")
    languages: list[str] = Field(default_factory=list, description="Keep only these (LMSYS names); [] = all")
    max_chars: int = Field(200_000, gt=0, description="Conversations longer than this (all messages) are filtered")
    detect_language: bool = Field(True, description="Detect the language offline (lingua) where it is missing")
    language_min_confidence: float = Field(0.5, ge=0, le=1, description="Detected languages below this lingua "
                                           "confidence become 'unknown' (short texts: 'ok thanks' is not "
                                           "Afrikaans)")
    language_min_letters: int = Field(2, ge=0, description="Texts with fewer letters get 'unknown'")
    redact: RedactParams = Field(default_factory=RedactParams)


class ExpectationsParams(Section):
    """Bounds of the distribution checks (``validate.expectations`` in params.yaml)."""

    enabled: bool = Field(True, description="Run the great-expectations checks and build the Data Docs")
    # size and completeness
    min_conversations: int = Field(1, ge=0, description="Fewest ingested conversations accepted")
    min_feedback_rows: int = Field(1, ge=0, description="Fewest feedback rows accepted (0 = allow none)")
    max_null_rate: float = Field(0.01, ge=0, le=1, description="Largest share of null language/model, each table")
    # language mix
    min_languages: int = Field(2, ge=1, description="Fewest distinct languages among the conversations")
    max_share_one_language: float = Field(
        0.95, gt=0, le=1, description="Largest share of the most common language (1.0 if ingest keeps one language)")
    max_unknown_language_share: float = Field(0.2, ge=0, le=1, description="Largest share of language 'unknown'")
    # conversations and feedback
    mean_user_turns: Bounds = Field((1.0, 20.0), description="[min, max] of the mean user turns per conversation")
    feedback_rate: Bounds = Field((0.05, 2.0), description="[min, max] feedback rows per conversation")
    category_share: dict[str, Bounds] = Field(
        default_factory=dict, description="Optional {category: [min, max]} share of the feedback rows")
    mean_confidence: Bounds | None = Field(None, description="Optional [min, max] mean extractor confidence")
    # drift against the accepted baseline
    drift_tolerance: float = Field(
        0.15, ge=0, le=1, description="Largest absolute change of a share or of the feedback rate vs the baseline")
    drift_mean_turns_tolerance: float = Field(
        0.25, ge=0, description="Largest relative change of the mean user turns vs the baseline")
    drift_min_language_share: float = Field(
        0.02, ge=0, le=1, description="Only languages with at least this baseline share are drift-checked")

    @field_validator("mean_user_turns", "feedback_rate", "mean_confidence")
    @classmethod
    def _ordered(cls, value: Bounds | None) -> Bounds | None:
        if value is not None and value[0] > value[1]:
            raise ValueError(f"bounds {list(value)} are not [min, max]")
        return value

    @model_validator(mode="after")
    def _known_categories(self) -> ExpectationsParams:
        unknown = sorted(set(self.category_share) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"category_share: unknown categories {unknown}; choose from {list(CATEGORIES)}")
        bad = {c: list(b) for c, b in self.category_share.items() if not 0 <= b[0] <= b[1] <= 1}
        if bad:
            raise ValueError(f"category_share: bounds must satisfy 0 <= min <= max <= 1, got {bad}")
        return self


class BalanceParams(Section):
    """Balance checks on the feedback set (the CI gate)."""

    min_rows: int = Field(50, ge=0, description="Fewest feedback rows accepted")
    min_category_share: float = Field(0.02, ge=0, le=1, description="Each category's share must be at least")
    max_category_share: float = Field(0.8, ge=0, le=1, description="No category may exceed this share")
    min_pos_neg_ratio: float = Field(0.05, ge=0, description="positive:negative rows at least")
    max_pos_neg_ratio: float = Field(5.0, gt=0, description="positive:negative rows at most")


class ValidateParams(Section):
    """The CI gate: pandera row rules and balance, great-expectations distribution and drift."""

    balance: BalanceParams = Field(default_factory=BalanceParams)
    expectations: ExpectationsParams = Field(default_factory=ExpectationsParams)


class BuildKtoParams(Section):
    """KTO/SFT dataset construction."""

    undesirable_categories: list[NegativeCategory] = Field(
        default_factory=lambda: ["make_aware_with_correction", "make_aware_without_correction"],
        description="Categories whose replies are undesirable (paper: both make_aware categories)",
    )
    exclude_flagged: bool = Field(True, description="Drop conversations flagged by openai_moderation")
    desirable_weight: float = Field(1.0, gt=0, description="KTO desirable_weight used in the ratio")
    undesirable_weight: float = Field(1.0, gt=0, description="KTO undesirable_weight used in the ratio")
    ratio_min: float = Field(1.0, gt=0, description="Lower bound of wd*n_d/(wu*n_u) (KTO guidance: 1)")
    ratio_max: float = Field(4 / 3, gt=0, description="Upper bound of wd*n_d/(wu*n_u) (KTO guidance: 4/3)")
    test_size: float = Field(0.2, gt=0, lt=1, description="Share of conversations in the test split")
    seed: int = Field(42, description="Seed for downsampling and the split")
    # extractor confidence
    min_confidence: Literal["auto"] | dict[str, float] | None = Field(
        "auto", description="Rows of a category whose extractor confidence is below its threshold are dropped "
        "first. auto = per KTO category, the lowest confidence whose precision on the validation gold parts "
        "(paths.gold_labels, parts not in extract_quality.tuned_parts) reaches target_precision; or "
        "{category: threshold in [0, 1]} by hand; {} or null = no thresholds")
    target_precision: float = Field(0.8, gt=0, le=1, description="min_confidence auto: the precision each KTO "
                                    "category should reach on the validation gold")

    def kto_categories(self) -> list[str]:
        """The categories KTO uses: positive_feedback (desirable), then the undesirable ones."""
        return ["positive_feedback", *self.undesirable_categories]

    @model_validator(mode="after")
    def _ratio_order(self) -> BuildKtoParams:
        if self.ratio_min > self.ratio_max:
            raise ValueError(f"ratio_min {self.ratio_min} > ratio_max {self.ratio_max}")
        return self

    @field_validator("min_confidence", mode="before")
    @classmethod
    def _auto_or_mapping(cls, value: object) -> object:
        if value is not None and not isinstance(value, dict) and value != "auto":
            raise ValueError(f"{value!r} is neither auto, a {{category: threshold}} mapping nor {{}} (no thresholds)")
        return value

    @field_validator("min_confidence")
    @classmethod
    def _known_categories(cls, value: dict[str, float] | str | None, info: ValidationInfo) -> object:
        if not isinstance(value, dict):
            return value
        used = ["positive_feedback", *info.data.get("undesirable_categories", [])]
        for cat, threshold in value.items():
            if cat not in CATEGORIES:
                raise ValueError(f"unknown category {cat!r}{did_you_mean(cat, list(CATEGORIES))}")
            if cat not in used:
                raise ValueError(f"{cat!r} is not used by KTO (positive_feedback and undesirable_categories "
                                 f"{used[1:]}): remove it")
            if not 0 <= threshold <= 1:
                raise ValueError(f"{cat}: {threshold} is not in [0, 1]")
        return value


class ExtractQualityParams(Section):
    """Stage extract_quality: which gold parts the heuristic's rules were tuned on (the rest were never looked
    at while tuning: their figures are the honest ones)."""

    tuned_parts: list[str] = Field(default_factory=lambda: [f"dev_part{i}" for i in (1, 2, 3, 6, 7, 8)],
                                   description="Gold parts (the `part` column of paths.gold_labels) used to tune "
                                   "the rules; every other part counts as never tuned on")
