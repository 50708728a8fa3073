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

from ..backend import array_module
from ..engine import Axis, Function, Tensor, TensorLike, as_tensor, binary_operands, wrap_array
from .elementwise import astype, exp, sqrt, where
from .shape import _axis, _broadcast_to, _reshape, concatenate, expand_dims, getitem, transpose

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
        return _broadcast_to(_reshape(gy, _keepdims_shape(shape, self.axes)), shape)


def sum(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Sum over ``axis`` (all axes for None)."""
    x = as_tensor(x)
    return Sum(normalize_axes(axis, x.ndim), keepdims)(x)


def _counted_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """``normalize_axes`` for the reductions that count what they reduce (mean, var, std): as NumPy's, these
    take no integer axis on a 0-d tensor (AxisError), only None or ()."""
    axes = normalize_axes(axis, ndim)
    if ndim == 0 and axis is not None and not isinstance(axis, (tuple, list)):
        raise numpy.exceptions.AxisError(int(axis), 0)
    return axes


def mean(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis`` (all axes for None); NaN over an empty axis (as NumPy, without its warning)."""
    x = as_tensor(x)
    axes = _counted_axes(axis, x.ndim)
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
        return _reshape(gy, keep) * as_tensor(share.astype(gy.dtype, copy=False))


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
    """y = log(sum(b exp(x))) over ``axes``, b = 1 without weights (inputs x, or x and b of one shape),
    computed as m + log(sum(b exp(x - m))) with m the largest x that takes part.

    dy/dx = b exp(x - y) (softmax(x) without weights), dy/db = exp(x - y): written with the output y, so
    higher derivatives follow.

    As ``scipy.special.logsumexp``, an entry of weight 0 takes no part in the value, whatever its x (x is
    taken as -inf there: masking a huge or infinite x with b = 0 leaves the others' value alone); its
    dy/dx is an exact 0 (never 0 * an overflowed exp(x - y)), its dy/db exp(x - y), the true one. Where
    that overflows (x_i - y > ~709 in float64) dy/db_i is +inf and the derivatives of dy/dx_i and dy/db_i
    through that entry are taken as 0 (exp is never evaluated there). A weighted sum that is negative has
    no real log: NaN.

    Infinite values, with or without weights: -inf entries contribute nothing (y does not depend on them,
    nor on their weights: their derivatives are 0). A row with nothing to sum (every entry -inf or of
    weight 0, or an empty axis) gives y = -inf, and every derivative there is taken as 0 (no entry
    carries weight). A row holding +inf (of non-zero weight) gives y = +inf, and the derivative is that of
    the finite limit: its +inf entries share the weight in proportion to b (dy/dx_i = b_i / B, dy/db_i =
    1 / B, B the sum of their weights; 1/k each without weights), the others get 0; the derivatives of
    these in x are 0, in b those of b_i / B and 1 / B. (PyTorch, without weights, gives NaN in both cases.)
    """

    __slots__ = ("axes", "keepdims")

    def __init__(self, axes: tuple[int, ...], keepdims: bool) -> None:
        self.axes = axes
        self.keepdims = keepdims

    def forward(self, x: Any, b: Any = None) -> Any:
        xp = array_module(x)
        keep = _keepdims_shape(x.shape, self.axes)
        if x.size == 0:  # an empty sum: log 0 = -inf
            y = xp.full(keep, -numpy.inf, dtype=_floating(x.dtype if b is None else xp.result_type(x, b)))
        else:
            if b is not None and (b == 0).any():
                x = xp.where(b == 0, -numpy.inf, x)  # SciPy's rule: a weight-0 entry takes no part
            m = _stable_shift(x, self.axes)
            with numpy.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, log(negative) = NaN
                e = xp.exp(x - m)
                y = xp.log((e if b is None else b * e).sum(axis=self.axes, keepdims=True)) + m
        return y if self.keepdims else y.reshape([n for i, n in enumerate(keep) if i not in self.axes])

    def backward(self, gy: Tensor) -> Any:
        x, b = self.inputs[0], (self.inputs[1] if len(self.inputs) == 2 else None)
        xp = array_module(x.data)
        if b is not None and not b.requires_grad and (b.data == 0).any():
            x = where(b.data == 0, -numpy.inf, x)  # as forward: their weights exp(x - y) are never computed
        keep = _keepdims_shape(x.shape, self.axes)
        y = _reshape(self.output(), keep)
        gy = _reshape(gy, keep)
        dead, plus = y.data == -numpy.inf, y.data == numpy.inf  # nothing summed; a +inf taking part
        special = dead | plus
        ignored = None  # weight-0 entries whose dy/db = exp(x - y) overflows (b differentiable)
        if b is not None and b.requires_grad:
            with numpy.errstate(over="ignore", invalid="ignore"):
                ignored = (b.data == 0) & ~xp.isfinite(xp.exp(x.data - y.data)) & ~special
            if ignored.any():  # exp is never evaluated there (its backward would give 0 * inf = NaN)
                x = where(ignored, y, x)
            else:
                ignored = None
        if not special.any():
            w = exp(x - y)  # dy/db; 0 at -inf entries
        else:  # the limit's weights there, and 0 in place of x and y, so that no inf - inf is computed
            top = plus & (x.data == numpy.inf)  # the +inf entries of the +inf rows
            if b is None:  # 1/k each: constants
                share = as_tensor((top / xp.maximum(top.sum(axis=self.axes, keepdims=True), 1)).astype(y.dtype))
            else:  # 1/B, B = the sum of their weights (a function of b, so its b-derivatives follow)
                total = Sum(self.axes, keepdims=True)(where(top, b, 0))
                share = where(top, 1 / where(plus, total, 1), 0)
            w = where(special, share, exp(where(special, 0, x) - where(special, 0, y)))
        if b is None:
            return gy * w
        # With b differentiable, w is exp(x - y) at weight-0 entries too (their dy/db); where that overflows
        # dy/db is +inf, dy/dx an exact 0, and their own derivatives through those entries are taken as 0
        weighted = b * w if ignored is None else where(ignored, 0, b * w)  # dy/dx
        if ignored is not None:
            w = where(ignored, numpy.inf, w)
        return (gy * weighted if self.inputs[0].requires_grad else None), (gy * w if b.requires_grad else None)


def logsumexp(x: TensorLike, axis: Axis = None, keepdims: bool = False, *, b: TensorLike | None = None) -> Tensor:
    """log(sum(exp(x))) over ``axis``, finite for any finite input (no overflow); -inf entries are
    ignored, so a row of -inf (or an empty axis) gives -inf.

    With weights ``b`` (broadcast with x), log(sum(b exp(x))) as ``scipy.special.logsumexp``'s ``b``: an
    entry of weight 0 takes no part, whatever its x (the usual masking). Differentiable in b too:
    d/dx_i = b_i exp(x_i - y), d/db_i = exp(x_i - y). A weighted sum that is negative has no real log:
    NaN there. The conventions at infinite values are the same with weights as without (see LogSumExp)."""
    x = as_tensor(x)
    if b is None:
        return LogSumExp(normalize_axes(axis, x.ndim), keepdims)(x)
    x, weights = binary_operands(x, b)
    shape = numpy.broadcast_shapes(x.shape, weights.shape)
    axes = normalize_axes(axis, len(shape))
    return LogSumExp(axes, keepdims)(_broadcast_to(x, shape), _broadcast_to(weights, shape))


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
    return _reshape(moved, tuple(x.shape[i] for i in kept) + (math.prod(x.shape[i] for i in axes),))


class ProdLast(Function):
    """y = the product of x over its last axis;  dy/dx_i = prod over j != i of x_j.

    Without zeros that is y / x_i, written with the output (so higher derivatives follow), as PyTorch
    does; its second derivative in x_i, an exact 0, is then the difference of two terms of size
    y / x_i^2, so for an x_i near (not at) zero it carries their rounding error. Where a zero makes
    y / x_i undefined, it is the product of the entries before i times that of the entries after it
    (``products_of_the_others``: running products from both ends), O(n) and exact to every order."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return x.prod(axis=-1)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        if not (x.data == 0).any():
            others = expand_dims(self.output(), -1) / x
        else:
            others = products_of_the_others(x, x.ndim - 1)
        return expand_dims(gy, -1) * others


def prod(x: TensorLike, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Product over ``axis`` (all axes for None); 1 over an empty axis. Exact derivatives with zeros too:
    d prod / dx_i is the product of the others (O(n) per derivative order)."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    y = ProdLast()(_reduced_to_last(x, axes))
    keep = _keepdims_shape(x.shape, axes)
    return _reshape(y, keep if keepdims else tuple(n for i, n in enumerate(x.shape) if i not in axes))


def products_of_the_others(x: Tensor, axis: int) -> Tensor:
    """Entry i along ``axis`` (non-negative): the product of the other entries, x_1 ... x_(i-1) times
    x_(i+1) ... x_n, as the exclusive running products from both ends (cumprods of x and of x reversed,
    moved one place). No division, so exact where entries are zero or tiny, and differentiable to every
    order; O(n) time and memory."""
    before = _shifted(Cumprod(axis)(x), axis, 1, 1.0)
    after = _reverse(_shifted(Cumprod(axis)(_reverse(x, axis)), axis, 1, 1.0), axis)
    return before * after


def _reverse(x: Tensor, axis: int) -> Tensor:
    return getitem(x, (slice(None),) * axis + (slice(None, None, -1),))


def _shifted(x: Tensor, axis: int, by: int, fill: float) -> Tensor:
    """x moved one place along ``axis`` (non-negative): toward the end for ``by`` = 1 (entry k holds
    x_(k-1)), toward the start for -1 (entry k holds x_(k+1)); the place left empty holds ``fill``."""
    n, lead = x.shape[axis], (slice(None),) * axis
    edge = wrap_array(array_module(x.data).full(x.shape[:axis] + (1,) + x.shape[axis + 1 :], fill, dtype=x.dtype))
    if by > 0:
        return concatenate([edge, getitem(x, lead + (slice(0, n - 1),))], axis)
    return concatenate([getitem(x, lead + (slice(1, n),)), edge], axis)


def _running(x: TensorLike, axis: Any) -> tuple[Tensor, int]:
    """x and the one axis a running sum/product runs along (x flattened for None, as NumPy)."""
    x = as_tensor(x)
    if axis is None:
        return _reshape(x, (x.size,)), 0
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
    """y_k = x_1 ... x_k along ``axis``;  dy_k/dx_i = x_1 ... x_(i-1) x_(i+1) ... x_k for i <= k.

    Without zeros that is y_k / x_i, so gx is the reverse running sum of gy y, divided by x (as
    PyTorch). With a zero in x, gx_i = y_(i-1) t_i (y_0 = 1), where t_i = sum over k >= i of
    gy_k x_(i+1) ... x_k is the running sum of gy from the end with coefficients x, t_i = gy_i +
    x_(i+1) t_(i+1) (a ``LinearRecurrence``): no division, O(n), exact to every order."""

    __slots__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x: Any) -> Any:
        return array_module(x).cumprod(x, axis=self.axis)

    def backward(self, gy: Tensor) -> Tensor:
        x, y = self.inputs[0], self.output()
        if not (x.data == 0).any():
            return _reverse_cumsum(gy * y, self.axis) / x
        t = LinearRecurrence(self.axis, reverse=True)(gy, _shifted(x, self.axis, -1, 0.0))
        return _shifted(y, self.axis, 1, 1.0) * t


def cumprod(x: TensorLike, axis: int | None = None) -> Tensor:
    """Running product along ``axis`` (over the flattened tensor for None, as ``numpy.cumprod``). Exact
    derivatives where x holds zeros too, at O(n) cost (see Cumprod)."""
    x, axis = _running(x, axis)
    return Cumprod(axis)(x)


class LinearRecurrence(Function):
    """s_k = h_k + c_k s_(k-1) along ``axis`` (s_1 = h_1), or taken from the end with ``reverse``:
    s_k = h_k + c_k s_(k+1) (s_n = h_n). That is, s_k is the sum over i <= k of h_i c_(i+1) ... c_k
    (over i >= k of h_i c_k ... c_(i-1) from the end): linear in h, a running sum of products of c.

    The vjp is a recurrence of the same kind run the other way, with c moved one place: for the forward
    direction, t_i = gs_i + c_(i+1) t_(i+1) (from the end), then dL/dh = t and dL/dc_k = s_(k-1) t_k
    (s_0 = 0); for the reverse one, u_k = gs_k + c_(k-1) u_(k-1), dL/dh = u, dL/dc_k = s_(k+1) u_k.
    No division anywhere, so exact to every order where c holds zeros (cumprod's gradient).

    The forward pass steps along the axis (n vectorised steps, O(n) memory): the order in which a
    scalar recurrence is evaluated, so s never overflows unless its own value does."""

    __slots__ = ("axis", "reverse")

    def __init__(self, axis: int, reverse: bool) -> None:
        self.axis = axis
        self.reverse = reverse

    def forward(self, h: Any, c: Any) -> Any:
        xp = array_module(h)
        s = xp.array(xp.moveaxis(h, self.axis, 0), dtype=xp.result_type(h, c), order="C")  # a copy, rows contiguous
        coefficients = xp.moveaxis(c, self.axis, 0)
        n = s.shape[0]
        for k in range(n - 2, -1, -1) if self.reverse else range(1, n):
            previous = k + 1 if self.reverse else k - 1
            s[k] += coefficients[k] * s[previous]
        return xp.moveaxis(s, 0, self.axis)

    def backward(self, gs: Tensor) -> tuple[Tensor | None, Tensor | None]:
        h, c = self.inputs
        by = 1 if self.reverse else -1  # where the other direction's coefficients come from
        t = LinearRecurrence(self.axis, not self.reverse)(gs, _shifted(c, self.axis, by, 0.0))
        gc = _shifted(self.output(), self.axis, -by, 0.0) * t if c.requires_grad else None
        return (t if h.requires_grad else None), gc


def _spread_input(x: TensorLike, dtype: Any, out: Any, op: str) -> Tensor:
    x = as_tensor(x)
    if out is not None:
        raise TypeError(f"{op}: out= is not supported (tinymeta's ops return new tensors); call it without out")
    return x if dtype is None else astype(x, dtype, copy=False)


def _ddof(ddof: Any) -> float:
    if isinstance(ddof, (bool, numpy.bool_)) or not isinstance(ddof, (int, float, numpy.integer, numpy.floating)):
        raise TypeError(f"ddof must be a real number, got {ddof!r}")
    return float(ddof)


def var(
    x: TensorLike, axis: Axis = None, dtype: Any = None, out: None = None, ddof: float = 0, keepdims: bool = False
) -> Tensor:
    """Variance over ``axis``: sum((x - mean(x))^2) / (n - ddof), n the number of elements reduced;
    NaN where n - ddof <= 0 (NumPy: inf or NaN, with a warning). NumPy's signature: ``dtype`` is the
    dtype computed in, ``ddof`` any real number (positional after ``out``, which must be None).
    d var / dx_i = 2 (x_i - mean(x)) / (n - ddof)."""
    x = _spread_input(x, dtype, out, "var")
    axes = _counted_axes(axis, x.ndim)
    ddof = _ddof(ddof)
    n = math.prod(x.shape[a] for a in axes)
    deviation = x - Sum(axes, keepdims=True)(x) * (1.0 / n if n else math.nan)
    return Sum(axes, keepdims)(deviation * deviation) * (1.0 / (n - ddof) if n > ddof else math.nan)


def std(
    x: TensorLike, axis: Axis = None, dtype: Any = None, out: None = None, ddof: float = 0, keepdims: bool = False
) -> Tensor:
    """Standard deviation over ``axis``: sqrt(var(x, axis, dtype, out, ddof, keepdims)), NumPy's signature;
    d std / dx_i = (x_i - mean(x)) / ((n - ddof) std), infinite (a NaN gradient) where std = 0."""
    return sqrt(var(x, axis, dtype, out, ddof, keepdims))


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
        return getitem(_reshape(arr, (arr.size,)), index)
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
        x, axis = _reshape(x, (x.size,)), -1
    return take_along_axis(x, argsort(x, axis), axis)
