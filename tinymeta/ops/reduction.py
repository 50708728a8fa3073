"""Reductions along axes: sum, mean, max, min, prod, var, std, logsumexp, and the softmax family built
on them; running sums and products (cumsum, cumprod); choosing by value (sort, take_along_axis, and the
integer-valued argmax, argmin, argsort, constants outside the registry).

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

from .._checks import integer
from ..backend import array_module
from ..engine import Axis, Function, Tensor, TensorLike, as_tensor, binary_operands, wrap_array
from .elementwise import exp, log, sqrt, where
from .shape import _axis, broadcast_to, expand_dims, getitem, reshape, swapaxes, transpose

# this family's differentiable ops (their union is the registry: ops/__init__.py)
__all__ = [
    "sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax",
    "prod", "cumsum", "cumprod", "var", "std", "sort", "take_along_axis",
]  # fmt: skip


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


def logsumexp(x: TensorLike, axis: Axis = None, keepdims: bool = False, *, b: TensorLike | None = None) -> Tensor:
    """log(sum(exp(x))) over ``axis``, finite for any finite input (no overflow); -inf entries are
    ignored, so a row of -inf (or an empty axis) gives -inf.

    With weights ``b`` (broadcast with x), log(sum(b exp(x))) as ``scipy.special.logsumexp``'s ``b``,
    differentiable in b too: d/dx_i = b_i exp(x_i - y), d/db_i = exp(x_i - y). A weighted sum that is
    negative has no real log: NaN there."""
    x = as_tensor(x)
    if b is None:
        return LogSumExp(normalize_axes(axis, x.ndim), keepdims)(x)
    x, weights = binary_operands(x, b)
    shape = numpy.broadcast_shapes(x.shape, weights.shape)
    x, weights = broadcast_to(x, shape), broadcast_to(weights, shape)
    axes = normalize_axes(axis, len(shape))
    # a constant shift: log(sum(b exp(x - m))) + m is the same function of x and b for any constant m
    shift = as_tensor(_stable_shift(x.data, axes) if x.size else array_module(x.data).zeros((), x.dtype))
    with numpy.errstate(divide="ignore"):  # log(0) = -inf: an empty (or all-zero-weight) sum
        y = log(Sum(axes, keepdims=True)(weights * exp(x - shift))) + shift
    return y if keepdims else reshape(y, tuple(n for i, n in enumerate(shape) if i not in axes))


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


# ---- products, running sums and products, spread -------------------------------------------------


def _reduced_to_last(x: Tensor, axes: tuple[int, ...]) -> Tensor:
    """x with ``axes`` moved to the end and flattened into one last axis: (..., n)."""
    kept = [i for i in range(x.ndim) if i not in axes]
    moved = transpose(x, kept + list(axes))
    return reshape(moved, tuple(x.shape[i] for i in kept) + (math.prod(x.shape[i] for i in axes),))


class ProdLast(Function):
    """y = the product of x over its last axis;  dy/dx_i = prod over j != i of x_j.

    Without zeros that is y / x_i, written with the output (so higher derivatives follow), as PyTorch
    does; its second derivative in x_i, an exact 0, is then the difference of two terms of size
    y / x_i^2, so for an x_i near (not at) zero it carries their rounding error. Where a zero makes
    y / x_i undefined, it is the product of x with x_i replaced by 1, one row per i: an (n, n)
    product, so a zero costs O(n^2) per derivative order instead of O(n)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return x.prod(axis=-1)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        if not (x.data == 0).any():
            others = expand_dims(self.output(), -1) / x
        else:
            identity = array_module(x.data).eye(x.shape[-1], dtype=bool)
            others = ProdLast()(where(identity, 1, expand_dims(x, -2)))
        return expand_dims(gy, -1) * others


def prod(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Product over ``axis`` (all axes for None); 1 over an empty axis. Exact derivatives with zeros too:
    d prod / dx_i is the product of the others."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    y = ProdLast()(_reduced_to_last(x, axes))
    keep = _keepdims_shape(x.shape, axes)
    return reshape(y, keep if keepdims else tuple(n for i, n in enumerate(x.shape) if i not in axes))


def _reverse(x: Tensor, axis: int) -> Tensor:
    return getitem(x, (slice(None),) * axis + (slice(None, None, -1),))


def _running(x: TensorLike, axis: Any) -> tuple[Tensor, int]:
    """x and the one axis a running sum/product runs along (x flattened for None, as NumPy)."""
    x = as_tensor(x)
    if axis is None:
        return reshape(x, (-1,)), 0
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"axis must be an integer or None, got {axis!r}")
    if x.ndim == 0:
        raise numpy.exceptions.AxisError(axis, 0)
    return x, normalize_axes(axis, x.ndim)[0]


def _reverse_cumsum(x: Tensor, axis: int) -> Tensor:
    """z_i = x_i + ... + x_n along ``axis``: the running sum taken from the end."""
    return _reverse(Cumsum(axis)(_reverse(x, axis)), axis)


class Cumsum(Function):
    """y_k = x_1 + ... + x_k along ``axis``;  dy_k/dx_i = 1 for i <= k, so gx is the running sum of gy
    taken from the end (reverse, cumsum, reverse)."""

    __slots__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        return array_module(x).cumsum(x, axis=self.axis)

    def backward(self, gy: Tensor) -> Tensor:
        return _reverse_cumsum(gy, self.axis)


def cumsum(x: TensorLike, axis: int | None = None) -> Tensor:
    """Running sum along ``axis`` (over the flattened tensor for None, as ``numpy.cumsum``)."""
    x, axis = _running(x, axis)
    return Cumsum(axis)(x)


class Cumprod(Function):
    """y_k = x_1 ... x_k along ``axis`` (x without zeros);  dy_k/dx_i = y_k / x_i for i <= k, so gx is the
    reverse running sum of gy y, divided by x."""

    __slots__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        return array_module(x).cumprod(x, axis=self.axis)

    def backward(self, gy: Tensor) -> Tensor:
        return _reverse_cumsum(gy * self.output(), self.axis) / self.inputs[0]


def cumprod(x: TensorLike, axis: int | None = None) -> Tensor:
    """Running product along ``axis`` (over the flattened tensor for None, as ``numpy.cumprod``). With a
    zero in x, y / x_i is undefined, so there y_k is taken as the product of the (n, n) lower-triangular
    array of x (ones above the diagonal): exact derivatives, at O(n^2) cost."""
    x, axis = _running(x, axis)
    if not (x.data == 0).any():
        return Cumprod(axis)(x)
    last = swapaxes(x, axis, -1)
    n = last.shape[-1]
    lower = array_module(x.data).tri(n, dtype=bool)  # row k keeps x_1 ... x_k
    running = ProdLast()(where(lower, expand_dims(last, -2), 1))
    return swapaxes(running, axis, -1)


def var(x: TensorLike, axis: Axis = None, *, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Variance over ``axis``: sum((x - mean(x))^2) / (n - ddof), n the number of elements reduced;
    NaN where n - ddof <= 0 (NumPy: inf or NaN, with a warning).
    d var / dx_i = 2 (x_i - mean(x)) / (n - ddof)."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    ddof = integer(ddof, "ddof")
    n = math.prod(x.shape[a] for a in axes)
    deviation = x - Sum(axes, keepdims=True)(x) * (1.0 / n if n else math.nan)
    return Sum(axes, keepdims)(deviation * deviation) * (1.0 / (n - ddof) if n > ddof else math.nan)


def std(x: TensorLike, axis: Axis = None, *, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """Standard deviation over ``axis``: sqrt(var(x, axis, ddof=ddof));  d std / dx_i = (x_i - mean(x)) /
    ((n - ddof) std), infinite (a NaN gradient) where std = 0."""
    return sqrt(var(x, axis, ddof=ddof, keepdims=keepdims))


# ---- choosing by value: argmax, argmin, sort, take_along_axis ------------------------------------


def argmax(x: TensorLike, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """The index of the maximum along ``axis`` (of the flattened tensor for None), as ``numpy.argmax``:
    an integer tensor, a constant (an index has no derivative)."""
    x = as_tensor(x)
    return wrap_array(array_module(x.data).asarray(x.data.argmax(axis=axis, keepdims=keepdims)))


def argmin(x: TensorLike, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """The index of the minimum along ``axis`` (of the flattened tensor for None), as ``numpy.argmin``:
    an integer tensor, a constant."""
    x = as_tensor(x)
    return wrap_array(array_module(x.data).asarray(x.data.argmin(axis=axis, keepdims=keepdims)))


def argsort(x: TensorLike, axis: int | None = -1) -> Tensor:
    """The indices that sort x along ``axis`` (stable: ties keep their order), as ``numpy.argsort(kind="stable")``;
    a constant integer tensor."""
    x = as_tensor(x)
    return wrap_array(array_module(x.data).argsort(x.data, axis=axis, kind="stable"))


def take_along_axis(arr: TensorLike, indices: TensorLike, axis: int | None = -1) -> Tensor:
    """arr's entries at ``indices`` along ``axis``, as ``numpy.take_along_axis``: the other axes broadcast
    between the two; None reads the flattened arr with 1-D indices. A gather: its gradient scatter-adds
    gy back to the positions read (an index read twice gets both)."""
    arr = as_tensor(arr)
    index = as_tensor(indices, arr).data
    if index.dtype.kind not in "iu":
        raise TypeError(f"take_along_axis: indices must be integers, got dtype {index.dtype}")
    if axis is None:
        if index.ndim != 1:
            raise ValueError(f"take_along_axis with axis=None needs 1-D indices, got shape {index.shape}")
        return getitem(reshape(arr, (-1,)), index)
    if index.ndim != arr.ndim:
        raise ValueError(
            f"take_along_axis: indices ({index.ndim}-D, shape {index.shape}) must have as many axes as arr "
            f"({arr.ndim}-D, shape {arr.shape})"
        )
    (axis,) = normalize_axes(axis, arr.ndim) if arr.ndim else (_axis(axis, 0),)
    xp = array_module(arr.data)
    parts = []
    for d, n in enumerate(arr.shape):
        if d == axis:
            parts.append(index)
        else:
            parts.append(xp.arange(n).reshape((1,) * d + (n,) + (1,) * (arr.ndim - d - 1)))
    return getitem(arr, tuple(parts))


def sort(x: TensorLike, axis: int | None = -1) -> Tensor:
    """x sorted along ``axis`` (the flattened x for None), as ``numpy.sort``: differentiable through the
    permutation (each entry's gradient is that of the position it moved to; ties keep their order)."""
    x = as_tensor(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), -1
    return take_along_axis(x, argsort(x, axis), axis)
