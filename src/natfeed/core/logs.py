"""Logging set-up for entry points (stages and the CLI); library modules only get loggers."""

from __future__ import annotations

import logging
import os

NOISE = {
    # natfeed trims prompts to the model's length itself; counting the tokens of a long text first is expected
    "transformers.tokenization_utils_base": ("Token indices sequence length is longer than the specified",),
}
"""Warnings a user cannot act on, by logger: dropped."""


class _DropNoise(logging.Filter):
    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(f in text for f in self.fragments)


def silence_noise() -> None:
    """Drop the :data:`NOISE` warnings (idempotent)."""
    for name, fragments in NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise(fragments))


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once: ``NATFEED_LOG_LEVEL`` or INFO."""
    logging.basicConfig(
        level=(level or os.environ.get("NATFEED_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("mlflow", "alembic", "great_expectations", "urllib3", "filelock", "httpx", "httpx2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    silence_noise()
