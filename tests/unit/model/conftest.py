"""Fixtures shared by the model tests: one torch thread, one tiny Llama per module."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def one_thread():
    """Tiny models: threads only contend (tests run in parallel workers)."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from tests.support.scratch import tiny_model

    return tiny_model(tmp_path_factory.mktemp("tiny"))
