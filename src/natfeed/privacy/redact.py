"""Redaction of personal data and secrets with Microsoft Presidio, before anything is written.

:class:`Redactor` finds entities with Presidio's analyzer (its recognizers for e-mail, phone numbers —
``phonenumbers`` —, credit cards with the Luhn check, IBANs with their checksum, IP addresses and US SSNs,
plus the secrets recognizers of :mod:`natfeed.privacy.recognizers`) and replaces them with Presidio's
anonymizer by placeholders that keep a conversation readable and consistent: ``<EMAIL_1>`` is the same
address in every message of a conversation, never the value or a hash of it.

Speed: the analyzer (a spaCy pipeline and the phone matcher) costs milliseconds per text, so it only reads
*windows* around candidates, and the phone matcher (``phonenumbers``, most of the cost) only the digit runs: a cheap scan finds the places an entity could start (an ``@``, a run of 7+
digits, a dotted quad, a key prefix, ``-----BEGIN``); a text with none is left as it is (and is
byte-identical), and only the windows around the candidates go through Presidio. Person names need an NER
model: ``ingest.redact.names`` loads an installed spaCy model (e.g. ``en_core_web_sm`` from the package
registry) and then reads whole texts; it is off by default.

A text the analyzer cannot process (it raised, or it holds more than ``max_chars`` to analyse) raises
:class:`RedactionFailed`: the caller rejects its row with the reason ``redaction_failed``; nothing passes
through unredacted.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from natfeed.core.conversation import Conversation
    from natfeed.params.data import RedactParams

log = logging.getLogger(__name__)

CANDIDATE = re.compile(
    r"@"                                        # e-mail addresses, credentials in URLs
    r"|\d(?:[ ().+/-]{0,3}\d){6,}"              # 7+ digits with separators: phone, card, IBAN, SSN
    r"|\b\d{1,3}(?:\.\d{1,3}){3}\b"             # IPv4
    r"|\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){2,7}"  # IPv6
    r"|\b[A-Z]{2}\d{2}[ ]?[A-Z0-9]{4}"          # IBAN
    r"|sk-|AKIA|ASIA|\bgh[pousr]_|github_pat_|xox[abposr]-|[Bb]earer\s|-----BEGIN"  # secrets
)
"""Where an entity could be: only windows around these go through the analyzer."""
PHONE_CANDIDATE = re.compile(r"\+?\(?\d(?:[ ().+/-]{0,3}\d){6,}")
"""What the phone matcher reads (with a few characters around it): ``phonenumbers`` is most of Presidio's cost,
so it sees only the digit runs, not the windows."""
WINDOW = 160
"""Characters read on each side of a candidate (an entity longer than this is cut: keys are found whole)."""
_PEM_END = re.compile(r"-----END [A-Z ]*-----")


class RedactionFailed(ValueError):
    """A text the analyzer could not process: its row is rejected (``redaction_failed``), never passed on."""


@dataclass
class Redacted:
    """What redaction changed in one conversation (or one rejected row's raw text)."""

    counts: Counter[str] = field(default_factory=Counter)
    """Entities replaced, per Presidio entity type."""
    placeholders: dict[tuple[str, str], str] = field(default_factory=dict)
    """(entity type, normalised value) -> its placeholder, for this conversation only."""


def _normalise(entity: str, value: str) -> str:
    """The value a placeholder stands for: the same address or number however it was written."""
    if entity == "PHONE_NUMBER":  # +1 415-555-0132 and (415) 555 0132 are one number
        return re.sub(r"\D", "", value)[-9:]
    if entity in ("CREDIT_CARD", "IBAN_CODE", "US_SSN"):
        return re.sub(r"[^0-9A-Za-z]", "", value).upper()
    return value.strip().lower() if entity == "EMAIL_ADDRESS" else value.strip()


def windows(text: str, width: int = WINDOW) -> list[tuple[int, int]]:
    """Merged ``[start, end)`` spans of ``text`` around every candidate (a PEM block is taken whole)."""
    spans: list[tuple[int, int]] = []
    for m in CANDIDATE.finditer(text):
        end = m.end() + width
        if m.group(0) == "-----BEGIN":
            pem = _PEM_END.search(text, m.end())
            end = (pem.end() if pem else len(text)) + width
        start, end = max(0, m.start() - width), min(len(text), end)
        while start > 0 and not text[start - 1].isspace() and m.start() - start < 4 * width:
            start -= 1  # start at a word boundary: never inside the entity
        while end < len(text) and not text[end].isspace() and end - m.end() < 4 * width:
            end += 1
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


class Redactor:
    """Presidio analyzer + anonymizer with ``ingest.redact``'s entities, threshold and placeholders."""

    def __init__(self, params: RedactParams) -> None:
        self.params = params
        self.entities = list(params.entities) + (["PERSON"] if params.names else [])
        self.phone = "PHONE_NUMBER" in self.entities
        self.window_entities = [e for e in self.entities if e != "PHONE_NUMBER"]
        self._analyzer: Any = None
        self._phone: Any = None
        self._anonymizer: Any = None

    def __getstate__(self) -> dict[str, Any]:  # worker processes build their own engines
        return {**self.__dict__, "_analyzer": None, "_anonymizer": None, "_phone": None}

    @property
    def phone_recognizer(self) -> Any:
        if self._phone is None:
            from presidio_analyzer.predefined_recognizers import PhoneRecognizer

            self._phone = PhoneRecognizer()
        return self._phone

    @property
    def analyzer(self) -> Any:
        if self._analyzer is None:
            self._analyzer = _analyzer(self.params.names, self.params.spacy_model)
        return self._analyzer

    @property
    def anonymizer(self) -> Any:
        if self._anonymizer is None:
            from presidio_anonymizer import AnonymizerEngine

            self._anonymizer = AnonymizerEngine()
        return self._anonymizer

    def placeholder(self, entity: str, value: str, state: Redacted) -> str:
        key = (entity, _normalise(entity, value))
        if key not in state.placeholders:
            label = self.params.placeholders.get(entity, entity)
            n = 1 + sum(1 for e, _ in state.placeholders if e == entity)
            state.placeholders[key] = f"<{label}_{n}>"
        return state.placeholders[key]

    def find(self, text: str) -> list[Any]:
        """Presidio's results for ``text`` above the threshold (offsets in ``text``)."""
        spans = [(0, len(text))] if self.params.names else windows(text)
        if sum(end - start for start, end in spans) > self.params.max_chars:
            raise RedactionFailed(f"a message with {sum(e - s for s, e in spans)} characters to analyse "
                                  f"(ingest.redact.max_chars {self.params.max_chars})")
        results: list[Any] = []
        try:
            for start, end in spans:
                found = self.analyzer.analyze(text=text[start:end], language="en", entities=self.window_entities,
                                              score_threshold=self.params.score_threshold)
                if self.phone:
                    found += self._phones(text, start, end)
                for r in found:
                    r.start, r.end = r.start + start, r.end + start
                    if _personal(r.entity_type, text[r.start:r.end], text[max(0, r.start - 1):r.start]):
                        results.append(r)
        except RedactionFailed:
            raise
        except Exception as err:  # noqa: BLE001 - any analyzer failure: the row is rejected, not passed on
            raise RedactionFailed(f"the analyzer failed ({type(err).__name__}: {str(err)[:200]})") from err
        return results

    def _phones(self, text: str, start: int, end: int) -> list[Any]:
        """Presidio's phone recognizer on each digit run of ``text[start:end]`` (offsets relative to ``start``)."""
        out: list[Any] = []
        window = text[start:end]
        for m in PHONE_CANDIDATE.finditer(window):
            digits = sum(ch.isdigit() for ch in m.group(0))
            if digits > 15 or not _personal("PHONE_NUMBER", m.group(0), window[max(0, m.start() - 1):m.start()]):
                continue  # longer than any phone number (E.164: 15 digits), or a decimal: not worth the matcher
            a, b = max(0, m.start() - 3), min(len(window), m.end() + 3)
            for r in self.phone_recognizer.analyze(window[a:b], ["PHONE_NUMBER"], None):
                if r.score >= self.params.score_threshold:
                    r.start, r.end = r.start + a, r.end + a
                    out.append(r)
        return out

    def text(self, text: str, state: Redacted) -> str:
        """``text`` with every entity replaced (``state``: the conversation's placeholders and counts)."""
        if not text:
            return text
        results = self.find(text)
        if not results:
            return text
        from presidio_anonymizer.entities import OperatorConfig

        kept = _resolve(results)
        for r in kept:  # numbered in reading order (the anonymizer replaces from the end)
            state.counts[r.entity_type] += 1
            self.placeholder(r.entity_type, text[r.start:r.end], state)
        operators = {e: OperatorConfig("custom", {"lambda": (lambda v, e=e: self.placeholder(e, v, state))})
                     for e in {r.entity_type for r in kept}}
        from presidio_anonymizer.entities import RecognizerResult

        items = [RecognizerResult(r.entity_type, r.start, r.end, r.score) for r in kept]
        return str(self.anonymizer.anonymize(text=text, analyzer_results=items, operators=operators).text)

    def texts(self, texts: Sequence[str]) -> tuple[list[str], Redacted]:
        """The texts of one conversation, redacted with one set of placeholders."""
        state = Redacted()
        return [self.text(t, state) for t in texts], state

    def conversation(self, conv: Conversation) -> tuple[Conversation, Redacted]:
        """``conv`` with every message redacted (the same object when nothing was found); raises
        :class:`RedactionFailed` for a message the analyzer cannot process."""
        texts, state = self.texts([m["content"] for m in conv.messages])
        if not state.counts:
            return conv, state
        messages = [{**m, "content": t} for m, t in zip(conv.messages, texts, strict=True)]
        return replace(conv, messages=messages, redacted=True), state

    def raw(self, raw: str | None, counts: Counter[str]) -> str | None:
        """A rejected row's raw text (or an error's detail) redacted; one the analyzer cannot process is
        replaced by its length, never kept."""
        if not raw:
            return raw
        try:
            out, state = self.texts([raw])
        except RedactionFailed:
            return f"<{len(raw)} characters not kept: they could not be redacted>"
        counts.update(state.counts)
        return out[0]


_DECIMAL = re.compile(r"(?:^|\s)[-+]?\d*[.,]\d+(?:\s|$)|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$")


def _personal(entity: str, value: str, before: str = "") -> bool:
    """False for matches that are not personal data: what the phone matcher read in decimals, dates and
    tables of figures (fewer than 7 digits, a decimal in it or just before it), a loopback, private,
    link-local or documentation IP address (``127.0.0.1``, ``192.168.1.1``)."""
    if entity == "PHONE_NUMBER":
        digits = sum(ch.isdigit() for ch in value)
        return digits >= 7 and before not in (".", ",") and not _DECIMAL.search(value.strip())
    if entity == "IP_ADDRESS":
        import ipaddress

        try:
            ip = ipaddress.ip_address(value.strip())
        except ValueError:
            return True
        return ip.is_global
    return True


def _resolve(results: Iterable[Any]) -> list[Any]:
    """Non-overlapping results: the higher score wins an overlap, then a secret over a built-in entity (the
    password of ``https://user:pass@host`` is not an e-mail address), then the longer span (a card number is
    not also a phone number)."""
    from natfeed.privacy.recognizers import SECRETS

    out: list[Any] = []
    for r in sorted(results, key=lambda r: (-r.score, r.entity_type not in SECRETS, -(r.end - r.start), r.start)):
        if all(r.end <= o.start or r.start >= o.end for o in out):
            out.append(r)
    return sorted(out, key=lambda r: r.start)


@cache
def _analyzer(names: bool, spacy_model: str) -> Any:
    """Presidio's AnalyzerEngine over a spaCy pipeline: a blank English one (tokens only), or ``spacy_model``
    with its NER when person names are wanted; our recognizers, nothing fetched from the network."""
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        IbanRecognizer,
        IpRecognizer,
        SpacyRecognizer,
        UsSsnRecognizer,
    )

    from natfeed.privacy.recognizers import OfflineEmailRecognizer, secret_recognizers

    class _Engine(SpacyNlpEngine):
        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "en", "model_name": spacy_model if names else "blank:en"}])
            self.load()

        def load(self) -> None:
            if names:
                try:
                    self.nlp = {"en": spacy.load(spacy_model)}
                except OSError as err:
                    from natfeed.core.errors import UsageError

                    raise UsageError(f"ingest.redact.names needs the spaCy model {spacy_model}, which is not "
                                     "installed (pip install it from the package registry, or set names: "
                                     "false)") from err
            else:
                self.nlp = {"en": spacy.blank("en")}

    logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)  # one INFO line per recognizer otherwise
    registry = RecognizerRegistry(supported_languages=["en"])
    for rec in (OfflineEmailRecognizer(), CreditCardRecognizer(), IbanRecognizer(),
                IpRecognizer(), UsSsnRecognizer(), *secret_recognizers()):
        registry.add_recognizer(rec)
    if names:
        registry.add_recognizer(SpacyRecognizer(supported_entities=["PERSON"]))
    return AnalyzerEngine(nlp_engine=_Engine(), registry=registry, supported_languages=["en"])
