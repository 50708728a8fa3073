"""Memory questions the tests ask of an array on either backend (NumPy or CuPy)."""

from __future__ import annotations

from typing import Any

from tinymeta import backend


def shares_memory(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` overlap in memory; a GPU array and a host array never do."""
    if type(a) is not type(b):
        return False
    return bool(backend.array_module(a).shares_memory(a, b))


def writeable(a: Any) -> bool:
    """Whether a caller may write into ``a`` (CuPy arrays have no read-only flag: always)."""
    return getattr(a.flags, "writeable", True)
