"""The heuristic's version, derived from what decides its output: its code, its lexicons and its params.

``1.2.0+<digest>``: the release (1.0.0 at the first commit, then two rule passes) and the first 10 hex digits
of a sha256 over the package's own source files (rules and lexicons are Python modules here) and the
params, so a rule change, a new cue or another threshold gives rows, reports and MLflow tags a new version;
``.minilm`` is added when the embeddings signal takes part.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from natfeed.params.heuristic import HeuristicParams

RELEASE = "1.2.0"
PACKAGE = Path(__file__).resolve().parent


@cache
def _sources() -> tuple[tuple[str, bytes], ...]:
    """(file name, bytes) of every module of the heuristic package, this one included, in name order."""
    return tuple((p.name, p.read_bytes().replace(b"\r\n", b"\n")) for p in sorted(PACKAGE.glob("*.py")))


def digest(params: HeuristicParams, sources: Mapping[str, bytes] | None = None) -> str:
    """10 hex digits of the sha256 of ``sources`` (default: the package's files) and ``params``."""
    h = hashlib.sha256()
    for name, data in sorted((sources if sources is not None else dict(_sources())).items()):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    h.update(json.dumps(params.model_dump(mode="json"), sort_keys=True).encode())
    return h.hexdigest()[:10]


def heuristic_version(params: HeuristicParams, sources: Mapping[str, bytes] | None = None) -> str:
    """``RELEASE+digest``, with ``.minilm`` when ``params.use_embeddings``."""
    return f"{RELEASE}+{digest(params, sources)}" + (".minilm" if params.use_embeddings else "")
