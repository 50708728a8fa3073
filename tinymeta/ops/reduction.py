"""Reductions along axes: sum, mean, max, min, logsumexp, and the softmax family built on them.

A reduction without ``keepdims`` removes the reduced axes, so its backward first reshapes the
gradient to the ``keepdims`` shape (re-inserting size-1 axes) and then broadcasts it back.

``sum``, ``max`` and ``min`` shadow Python's builtins in this module, so its code calls none of
them by name: a gradient is summed by the class (``Sum(axes, keepdims=True)(g)``), an array by its
own method (``x.sum(...)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy

from ..backend import array_module
from ..engine import Axis, Function, Tensor, TensorLike, as_tensor
from .elementwise import exp, where
from .shape import broadcast_to, reshape

# this family's differentiable ops (their union is the registry: ops/__init__.py)
__all__ = ["sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax"]


def normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """``axis`` as a sorted tuple of non-negative axes (all axes for None), with NumPy's checks: an
    integer or a tuple of integers (TypeError otherwise), in range (AxisError), none repeated. As
    NumPy's sum and max, a 0-d tensor accepts the integer axis 0 or -1, which reduces nothing."""
    if axis is None:
        return tuple(range(ndim))
    parts = axis if isinstance(axis, (tuple, list)) else (axis,)
    if any(isinstance(a, bool) or not isinstance(a, (int, numpy.integer)) for a in parts):
        raise TypeError(f"axis must be an integer or a tuple of integers, got {axis!r}")
    if ndim == 0 and not isinstance(axis, (tuple, list)) and axis in (0, -1):
        return ()
    return tuple(sorted(numpy.lib.array_utils.normalize_axis_tuple(parts, ndim)))


def _floating(dtype: numpy.dtype) -> numpy.dtype:
    """The dtype exp and log give for ``dtype`` (float64 for integers, as NumPy's)."""
    return numpy.result_type(dtype, numpy.float16)


def _keepdims_shape(shape: Sequence[int], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """y = sum of x over ``axes``;  dy/dx = 1, so the gradient is gy broadcast back to x's shape."""

    __slots__ = ("axes", "keepdims")

    def __init__(self, axes: tuple[int, ...], keepdims: bool) -> None:
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, x: Any) -> Any:
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy: Tensor) -> Tensor:
        shape = self.inputs[0].shape
        return broadcast_to(reshape(gy, _keepdims_shape(shape, self.axes)), shape)


def sum(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all axes for None)."""
    x = as_tensor(x)
    return Sum(normalize_axes(axis, x.ndim), keepdims)(x)


def mean(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis`` (all axes for None); NaN over an empty axis (as NumPy, without its warning)."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    count = math.prod(x.shape[a] for a in axes)
    return Sum(axes, keepdims)(x) * (1.0 / count if count else math.nan)  # the mean of nothing is NaN


class MaxMin(Function):
    """y = max (or min) of x over ``axes``.

    dy/dx is 1 at the position of the extremum and 0 elsewhere; where several entries tie, the
    gradient is shared equally among them (and among the NaNs of a NaN result). The mask is a
    constant: the second derivative is 0.
    """

    __slots__ = ("axes", "keepdims", "is_max")

    def __init__(self, axes: tuple[int, ...], keepdims: bool, is_max: bool) -> None:
        self.axes = axes
        self.keepdims = keepdims
        self.is_max = is_max

    def forward(self, x: Any) -> Any:
        reduce = x.max if self.is_max else x.min
        return reduce(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0].data
        xp = array_module(x)
        keep = _keepdims_shape(x.shape, self.axes)
        y = self.output().data.reshape(keep)
        mask = (x == y) | (xp.isnan(x) & xp.isnan(y))  # a NaN is the extremum it produced
        share = mask / mask.sum(axis=self.axes, keepdims=True)
        return reshape(gy, keep) * as_tensor(share.astype(gy.dtype, copy=False))


def max(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Maximum over ``axis`` (all axes for None); ties share the gradient equally."""
    x = as_tensor(x)
    return MaxMin(normalize_axes(axis, x.ndim), keepdims, is_max=True)(x)


def min(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Minimum over ``axis`` (all axes for None); ties share the gradient equally."""
    x = as_tensor(x)
    return MaxMin(normalize_axes(axis, x.ndim), keepdims, is_max=False)(x)


def _stable_shift(x: Any, axes: tuple[int, ...]) -> Any:
    """max(x) over ``axes`` (keepdims), the shift that keeps exp(x - shift) from overflowing; 0 where the
    maximum is infinite, so that a row of -inf (or one holding +inf) never computes inf - inf."""
    xp = array_module(x)
    m = x.max(axis=axes, keepdims=True)
    infinite = xp.isinf(m)
    return xp.where(infinite, 0, m) if infinite.any() else m


class LogSumExp(Function):
    """y = log(sum(exp(x))) over ``axes``, computed as m + log(sum(exp(x - m))) with m = max(x).

    dy/dx = exp(x - y) = softmax(x). Written with the output y, so higher derivatives follow.

    Infinite entries: -inf entries contribute nothing (a row of -inf gives y = -inf, and an empty
    axis too, the log of an empty sum); a row holding +inf gives y = +inf. The derivative is then
    that of the finite limit: 0 for a row of -inf (no entry carries weight) and, for a row holding
    +inf, the weight shared by its +inf entries (PyTorch gives NaN in both cases).
    """

    __slots__ = ("axes", "keepdims")

    def __init__(self, axes: tuple[int, ...], keepdims: bool) -> None:
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, x: Any) -> Any:
        xp = array_module(x)
        keep = _keepdims_shape(x.shape, self.axes)
        if x.size == 0:  # an empty sum: log 0 = -inf
            y = xp.full(keep, -numpy.inf, dtype=_floating(x.dtype))
        else:
            m = _stable_shift(x, self.axes)
            with numpy.errstate(divide="ignore"):  # log(0) = -inf for a row of -inf: the right value
                y = xp.log(xp.exp(x - m).sum(axis=self.axes, keepdims=True)) + m
        return y if self.keepdims else y.reshape([n for i, n in enumerate(keep) if i not in self.axes])

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        keep = _keepdims_shape(x.shape, self.axes)
        y = reshape(self.output(), keep)
        infinite = array_module(y.data).isinf(y.data)
        if not infinite.any():
            return reshape(gy, keep) * exp(x - y)
        # Rows of -inf: exp(x - 0) = 0. Rows holding +inf: their +inf entries share the weight (a
        # constant), and x is replaced by 0 there so that the unused branch stays finite.
        plus = y.data == numpy.inf
        weights = exp(where(plus, 0, x) - where(infinite, 0, y))
        if plus.any():
            top = x.data == numpy.inf
            share = top / numpy.maximum(top.sum(axis=self.axes, keepdims=True), 1)
            weights = where(plus, as_tensor(share.astype(x.dtype)), weights)
        return reshape(gy, keep) * weights


def logsumexp(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``axis``, finite for any finite input (no overflow); -inf entries are
    ignored, so a row of -inf (or an empty axis) gives -inf."""
    x = as_tensor(x)
    return LogSumExp(normalize_axes(axis, x.ndim), keepdims)(x)


class Softmax(Function):
    """y = exp(x) / sum(exp(x)) along ``axes``;  vjp: gx = y * (gy - sum(gy * y)).

    An empty axis gives an empty result. A row of -inf gives NaN (0/0), as in PyTorch; in a row
    holding +inf, the +inf entries give NaN (inf/inf) and the finite ones 0 (PyTorch: all NaN).
    """

    __slots__ = ("axes",)

    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x: Any) -> Any:
        if x.size == 0:
            return x.astype(_floating(x.dtype))
        with numpy.errstate(invalid="ignore"):
            e = array_module(x).exp(x - _stable_shift(x, self.axes))
            return e / e.sum(axis=self.axes, keepdims=True)

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return y * (gy - Sum(self.axes, keepdims=True)(gy * y))


def softmax(x: TensorLike, axis: Axis = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis`` (the last by default); stable for large |x|."""
    x = as_tensor(x)
    return Softmax(normalize_axes(axis, x.ndim))(x)


class LogSoftmax(Function):
    """y = x - logsumexp(x) along ``axes``;  vjp: gx = gy - exp(y) * sum(gy).

    An empty axis gives an empty result. A row of -inf gives NaN, as in PyTorch; in a row holding
    +inf, the +inf entries give NaN (inf - inf) and the finite ones -inf (PyTorch: all NaN).
    """

    __slots__ = ("axes",)

    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x: Any) -> Any:
        if x.size == 0:
            return x.astype(_floating(x.dtype))
        xp = array_module(x)
        with numpy.errstate(divide="ignore", invalid="ignore"):
            shifted = x - _stable_shift(x, self.axes)
            return shifted - xp.log(xp.exp(shifted).sum(axis=self.axes, keepdims=True))

    def backward(self, gy: Tensor) -> Tensor:
        return gy - exp(self.output()) * Sum(self.axes, keepdims=True)(gy)


def log_softmax(x: TensorLike, axis: Axis = -1) -> Tensor:
    """x - logsumexp(x) along ``axis`` (the last by default); stable for large |x|."""
    x = as_tensor(x)
    return LogSoftmax(normalize_axes(axis, x.ndim))(x)
