"""The one device and dtype resolver of every torch user (extract backends, train, evaluate).

``auto`` means CUDA when available, else CPU; the ``auto`` dtype is bfloat16 on a GPU that supports it and
float32 otherwise (float16 is never chosen silently: it needs loss scaling). torch is imported inside the
functions, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def resolve_device(device: Any) -> Any:
    """``auto``, ``cpu``, ``cuda``, ``cuda:1`` ... as a ``torch.device`` (a ``torch.device`` as it is)."""
    import torch

    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def bf16_supported(device: Any = None) -> bool:
    """Whether bfloat16 runs natively: a CUDA device that supports it (CPU bf16 is emulated and slow)."""
    import torch

    if device is not None and resolve_device(str(device)).type != "cuda":
        return False
    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def resolve_dtype(dtype: Any, device: Any) -> Any:
    """``auto`` (bfloat16 where :func:`bf16_supported`, else float32) or a torch dtype name (a ``torch.dtype``
    as it is)."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if bf16_supported(device) else torch.float32
    return getattr(torch, dtype)


@contextmanager
def cpu_threads(threads: int | None, device: Any = "auto") -> Iterator[None]:
    """Run with ``threads`` torch intra-op threads when computing on CPU (restored afterwards); tiny
    models gain nothing from more, and on a busy machine extra threads spin against each other."""
    import torch

    if threads is None or resolve_device(device).type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
