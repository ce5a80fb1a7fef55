"""Which commit a run is built from (no natfeed imports: every module may use it)."""

from __future__ import annotations

import os
import subprocess

SOURCE_PATHS = ("src", "stages", "params.yaml", "dvc.yaml", "data.dvc", "pyproject.toml", "requirements.lock",
                "configs")
"""What a run is built from. ``git_dirty`` looks only here: pipeline outputs (dvc.lock, reports/, models/)
change during every run and say nothing about whether the code and params are committed."""


def git_commit() -> tuple[str, bool]:
    """(commit sha or 'unknown', whether the source tree (:data:`SOURCE_PATHS`) has uncommitted changes)."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", *SOURCE_PATHS],
                               capture_output=True, text=True, check=True).stdout
        return sha.strip(), bool(dirty.strip())
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False


def git_branch() -> str | None:
    """The checked-out branch; ``GITHUB_REF_NAME`` on GitHub Actions push runs; None outside git; ``HEAD`` when
    detached."""
    if os.environ.get("GITHUB_REF_TYPE") == "branch" and os.environ.get("GITHUB_EVENT_NAME") == "push":
        return os.environ.get("GITHUB_REF_NAME")
    try:
        out = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return out or None
