"""natfeed's own Presidio recognizers: secrets people paste into chats, and an e-mail recognizer that never
touches the network (Presidio's validates the domain with ``tldextract``, which downloads the public suffix
list on first use; here the list bundled with tldextract is used)."""

from __future__ import annotations

from functools import cache
from typing import Any

from presidio_analyzer import Pattern, PatternRecognizer
from presidio_analyzer.predefined_recognizers import EmailRecognizer

SECRETS: dict[str, list[tuple[str, str]]] = {
    "OPENAI_KEY": [("openai", r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}")],
    "AWS_ACCESS_KEY": [("aws key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")],
    "GITHUB_TOKEN": [("classic", r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), ("fine-grained", r"\bgithub_pat_[A-Za-z0-9_]{22,}")],
    "SLACK_TOKEN": [("slack", r"\bxox[abposr]-[A-Za-z0-9-]{10,}")],
    "BEARER_TOKEN": [("bearer", r"(?<=[Bb]earer )[A-Za-z0-9._~+/=-]{16,}")],
    "PRIVATE_KEY": [("pem", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----")],
    "URL_CREDENTIALS": [("user:password@", r"(?<=://)[^\s/:@]+:[^\s/@]+(?=@)")],
}
"""Entity -> (name, regex): the secrets natfeed finds (the values are replaced, never kept)."""


def secret_recognizers() -> list[PatternRecognizer]:
    return [PatternRecognizer(supported_entity=entity, name=f"natfeed {entity.lower()}",
                              patterns=[Pattern(name, regex, 1.0) for name, regex in patterns])
            for entity, patterns in SECRETS.items()]


@cache
def _offline_tld() -> Any:
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer with the domain checked against tldextract's bundled suffix list."""

    def validate_result(self, pattern_text: str) -> bool:
        return bool(_offline_tld()(pattern_text).fqdn)
