"""Logging set-up for entry points (stages and the CLI); library modules only get loggers."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str | None = None) -> None:
    """Configure the root logger once: ``NATFEED_LOG_LEVEL`` or INFO."""
    logging.basicConfig(
        level=(level or os.environ.get("NATFEED_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("mlflow", "alembic", "great_expectations", "urllib3", "filelock", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
