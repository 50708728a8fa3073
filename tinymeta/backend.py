"""Array backends: NumPy on the CPU, CuPy on a GPU.

This is the only module that imports CuPy. Every op asks its data for the array module
(``array_module(a)`` returns ``numpy`` or ``cupy``, as ``cupy.get_array_module`` does), so one
code path serves both backends.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy

try:  # CuPy is optional: ``pip install tinymeta[gpu]``.
    import cupy
    import cupyx

    _CUPY_ERROR: str | None = None
except Exception as exc:  # ImportError, or a CUDA runtime that fails to load
    cupy = None
    cupyx = None
    _CUPY_ERROR = f"{type(exc).__name__}: {exc}"

BACKENDS = ("numpy", "cupy")


def array_module(a: Any) -> ModuleType:
    """The array module (``numpy`` or ``cupy``) that owns array ``a``."""
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy
    return numpy


def backend_name(a: Any) -> str:
    """``"cupy"`` for a CuPy array, ``"numpy"`` for anything else."""
    return array_module(a).__name__


def cupy_unavailable_reason() -> str | None:
    """None when CuPy and a GPU can be used, else a sentence saying why not."""
    if cupy is None:
        return f"CuPy is not importable ({_CUPY_ERROR}); install it with `pip install tinymeta[gpu]`"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # no driver, no device
        return f"CuPy is installed but no GPU can be used ({type(exc).__name__}: {exc})"
    if count < 1:
        return "CuPy is installed but it sees no GPU"
    return None


def get_backend(name: str | None) -> ModuleType:
    """The array module called ``name`` ("numpy" or "cupy"); None means the default.

    The default is NumPy unless the environment variable ``TINYMETA_BACKEND`` names another.
    """
    if name is None:
        name = os.environ.get("TINYMETA_BACKEND", "numpy")
    if name == "numpy":
        return numpy
    if name == "cupy":
        reason = cupy_unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"backend 'cupy' was requested but {reason}")
        return cupy
    raise ValueError(f"unknown backend {name!r}; expected one of {BACKENDS}")


def to_numpy(a: Any) -> numpy.ndarray:
    """A host (NumPy) copy of array ``a``."""
    if cupy is not None and isinstance(a, cupy.ndarray):
        return cupy.asnumpy(a)
    return numpy.array(a, copy=True)


def asarray_like(a: Any, like: Any) -> Any:
    """``a`` (an array or nested sequence) as an array of ``like``'s backend, copied if it must move."""
    if array_module(like) is numpy:
        return to_numpy(a) if cupy is not None and isinstance(a, cupy.ndarray) else numpy.asarray(a)
    return cupy.asarray(a)


def scatter_add(target: Any, index: Any, values: Any) -> None:
    """``target[index] += values`` in place, adding repeated indices once per occurrence."""
    if cupy is not None and isinstance(target, cupy.ndarray):
        cupyx.scatter_add(target, index, values)
    else:
        numpy.add.at(target, index, values)
