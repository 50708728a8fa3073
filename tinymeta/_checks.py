"""Argument checks shared by the library. Each names the user's own argument in its error.

Flags of tinymeta's own API are True or False (Python's or NumPy's), never a string or a number
that would be read as one (``first_order="no"`` is refused, not taken as true); the ops that mirror
NumPy (``keepdims``, ``linalg.cholesky(upper=...)``) read their flags as NumPy does. Integers may
be Python or NumPy integers (``np.int64(3)`` wherever ``3`` is accepted), never bools or floats;
real settings may be any real number but NaN, and infinity only where it means something
(``max_norm=inf``: no clipping).
"""

from __future__ import annotations

import inspect
import math
import numbers
import operator
from typing import Any

import numpy


def flag(value: Any, name: str) -> bool:
    """``value`` as a bool: True or False, ``numpy.True_`` or ``numpy.False_``; TypeError naming ``name`` otherwise."""
    if not isinstance(value, (bool, numpy.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def integer(value: Any, name: str, minimum: int | None = None) -> int:
    """``value`` as an int, at least ``minimum``; TypeError or ValueError naming ``name`` otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {number}")
    return number


def real(
    value: Any, name: str, *, low: float = -math.inf, low_inclusive: bool = True, allow_inf: bool = False
) -> float:
    """``value`` as a float above ``low`` (or equal, when ``low_inclusive``); never NaN, and infinite
    only with ``allow_inf``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    number = float(value)
    ok = number >= low if low_inclusive else number > low
    if math.isnan(number) or not ok or (math.isinf(number) and not allow_inf):
        bound = "" if low == -math.inf else f" {'>=' if low_inclusive else '>'} {low:g}"
        kind = "a number" if allow_inf else "a finite number"
        raise ValueError(f"{name} must be {kind}{bound}, got {value!r}")
    return number


def callable_with(fn: Any, arguments: int, name: str, signature: str) -> Any:
    """``fn`` itself, checked to be callable with ``arguments`` positional arguments (as ``signature``
    says); a callable whose signature cannot be read (a builtin) is taken on trust."""
    if not callable(fn):
        raise TypeError(f"{name} must be a function {signature}, got {type(fn).__name__}")
    try:
        inspect.signature(fn).bind(*range(arguments))
    except TypeError:
        raise TypeError(
            f"{name} is called as {signature}, but {fn!r} does not take "
            f"{arguments} positional argument{'s' * (arguments != 1)}"
        ) from None
    except ValueError:
        pass
    return fn
