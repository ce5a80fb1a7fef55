"""A stand-in engine for :class:`natfeed.extract.llm.replicas.ReplicaPool` (no vLLM) that shows the routing."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from natfeed.extract.llm.engine import Generated


def echo_engine(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The "engine": the devices and pid of the replica process it runs in."""
    return {"devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "pid": os.getpid(), **kwargs}


def echo_run(engine: dict[str, Any], prompts: Sequence[list[int]], specs: Sequence[dict[str, Any]]
             ) -> list[Generated]:
    """Answers ``<devices>|<pid>|<first prompt id>`` for every prompt."""
    return [Generated(f"{engine['devices']}|{engine['pid']}|{ids[0] if ids else ''}", len(ids), 0)
            for ids in prompts]
