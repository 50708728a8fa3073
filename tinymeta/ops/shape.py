"""Shape ops: reshape, transpose, broadcasting, indexing, concatenation.

``broadcast_to`` and ``sum_to`` are a pair whose backwards are each other; every broadcasting op
uses ``sum_to`` to bring a gradient back to its input's shape. Likewise indexing (a gather) has
a scatter-add as its backward, whose backward is the gather again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy

from ..backend import array_module, asarray_like, scatter_add, to_numpy
from ..engine import Function, Tensor, TensorLike, as_tensor

__all__ = [
    "reshape", "transpose", "swapaxes", "broadcast_to", "sum_to", "expand_dims", "squeeze",
    "concatenate", "stack", "getitem",
]  # fmt: skip  # this family's differentiable ops (the registry: ops/__init__.py)

Shape = tuple[int, ...]


def _as_shape(shape: int | Sequence[int]) -> Shape:
    return (shape,) if isinstance(shape, (int, numpy.integer)) else tuple(shape)


class Reshape(Function):
    """y = x.reshape(shape); the gradient is reshaped back."""

    __slots__ = ("shape",)

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def forward(self, x: Any) -> Any:
        return x.reshape(self.shape)

    def backward(self, gy: Tensor) -> Tensor:
        return reshape(gy, self.inputs[0].shape)


def reshape(x: TensorLike, shape: int | Sequence[int]) -> Tensor:
    """x with a new shape holding the same elements (one entry may be -1)."""
    x = as_tensor(x)
    shape = _as_shape(shape)
    if x.shape == shape:
        return x
    return Reshape(shape)(x)


def _axis(axis: Any, ndim: int) -> int:
    """``axis`` in range(ndim), counting from the end when negative; NumPy's AxisError if out of range."""
    if isinstance(axis, bool) or not isinstance(axis, (int, numpy.integer)):
        raise TypeError(f"an axis must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise numpy.exceptions.AxisError(int(axis), ndim)
    return int(axis) + ndim if axis < 0 else int(axis)


class Transpose(Function):
    """y = x.transpose(axes); the gradient is transposed by the inverse permutation."""

    __slots__ = ("axes",)

    def __init__(self, axes: Shape) -> None:
        self.axes = axes

    def forward(self, x: Any) -> Any:
        return x.transpose(self.axes)

    def backward(self, gy: Tensor) -> Tensor:
        inverse = tuple(int(i) for i in numpy.argsort(self.axes))
        return transpose(gy, inverse)


def transpose(x: TensorLike, axes: Sequence[int] | None = None) -> Tensor:
    """x with its axes permuted (reversed when ``axes`` is None), as ``numpy.transpose``."""
    x = as_tensor(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    else:
        if len(axes) != x.ndim:
            raise ValueError(f"axes {tuple(axes)} do not match the {x.ndim} axes of shape {x.shape}")
        axes = tuple(_axis(a, x.ndim) for a in axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"axes {axes} are not a permutation of the {x.ndim} axes of shape {x.shape}")
    return Transpose(axes)(x)


def swapaxes(x: TensorLike, axis1: int, axis2: int) -> Tensor:
    """x with two axes exchanged."""
    x = as_tensor(x)
    axis1, axis2 = _axis(axis1, x.ndim), _axis(axis2, x.ndim)
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return Transpose(tuple(axes))(x)


class BroadcastTo(Function):
    """y = broadcast_to(x, shape); the gradient is summed back: sum_to(gy, x.shape)."""

    __slots__ = ("shape",)

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def forward(self, x: Any) -> Any:
        return array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy: Tensor) -> Tensor:
        return sum_to(gy, self.inputs[0].shape)


def broadcast_to(x: TensorLike, shape: int | Sequence[int]) -> Tensor:
    """x broadcast to ``shape`` (NumPy rules)."""
    x = as_tensor(x)
    shape = _as_shape(shape)
    if x.shape == shape:
        return x
    if numpy.broadcast_shapes(x.shape, shape) != shape:
        raise ValueError(f"cannot broadcast a tensor of shape {x.shape} to shape {shape}")
    return BroadcastTo(shape)(x)


class SumTo(Function):
    """y = x summed over the axes that broadcasting ``shape`` to ``x.shape`` would create.

    The inverse of broadcasting, and its adjoint: the gradient is broadcast_to(gy, x.shape).
    """

    __slots__ = ("shape",)

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def forward(self, x: Any) -> Any:
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(self.shape) if n == 1 and x.shape[lead + i] != 1
        )
        y = x.sum(axis=axes, keepdims=True)
        return y.reshape(self.shape) if lead else y

    def backward(self, gy: Tensor) -> Tensor:
        return broadcast_to(gy, self.inputs[0].shape)


def sum_to(x: TensorLike, shape: int | Sequence[int]) -> Tensor:
    """x summed down to ``shape``, the shape it was broadcast from (the adjoint of broadcast_to)."""
    x = as_tensor(x)
    shape = _as_shape(shape)
    if x.shape == shape:
        return x
    if len(shape) > x.ndim or numpy.broadcast_shapes(x.shape, shape) != x.shape:
        raise ValueError(f"cannot sum a tensor of shape {x.shape} to shape {shape}")
    return SumTo(shape)(x)


def _shape_of(op: Any, shape: Shape) -> Shape:
    """The shape NumPy gives ``op`` applied to an array of ``shape`` (without allocating one)."""
    return op(numpy.broadcast_to(numpy.empty((), dtype=bool), shape)).shape


def expand_dims(x: TensorLike, axis: int | Sequence[int]) -> Tensor:
    """x with new size-1 axes inserted at ``axis``."""
    x = as_tensor(x)
    return reshape(x, _shape_of(lambda a: numpy.expand_dims(a, axis), x.shape))


def squeeze(x: TensorLike, axis: int | Sequence[int] | None = None) -> Tensor:
    """x without its size-1 axes (only those in ``axis`` when given)."""
    x = as_tensor(x)
    return reshape(x, _shape_of(lambda a: numpy.squeeze(a, axis), x.shape))


class Concatenate(Function):
    """y = concatenate(xs, axis); each input's gradient is its slice of gy."""

    __slots__ = ("axis",)

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs: Any) -> Any:
        return array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        grads = []
        start = 0
        lead = (slice(None),) * self.axis
        for x in self.inputs:
            stop = start + x.shape[self.axis]
            grads.append(getitem(gy, lead + (slice(start, stop),)) if x.requires_grad else None)
            start = stop
        return tuple(grads)


def concatenate(xs: Sequence[TensorLike], axis: int = 0) -> Tensor:
    """The tensors joined along an existing axis."""
    tensors = [as_tensor(x) for x in xs]
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("concatenate needs tensors with at least one axis, got 0-d tensors")
    axis = numpy.lib.array_utils.normalize_axis_index(axis, ndim)
    for i, t in enumerate(tensors):
        if (
            t.ndim != ndim
            or t.shape[:axis] + t.shape[axis + 1 :] != tensors[0].shape[:axis] + tensors[0].shape[axis + 1 :]
        ):
            raise ValueError(
                f"concatenate along axis {axis}: tensor {i} has shape {t.shape}, "
                f"incompatible with tensor 0 of shape {tensors[0].shape}"
            )
    return Concatenate(axis)(*tensors)


def stack(xs: Sequence[TensorLike], axis: int = 0) -> Tensor:
    """The tensors (all of one shape) joined along a new axis."""
    tensors = [as_tensor(x) for x in xs]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, tensor 0 has shape {tensors[0].shape}")
    return concatenate([expand_dims(t, axis) for t in tensors], axis)


def _index_array(part: Any, x: Tensor) -> Any:
    """An index part as NumPy reads it; arrays (and lists) live where the data lives."""
    if isinstance(part, Tensor):
        part = part.data
    if isinstance(part, list):
        part = numpy.asarray(part) if part else numpy.zeros(0, dtype=numpy.intp)  # [] selects nothing
    if hasattr(part, "dtype") and not isinstance(part, numpy.generic):
        part = asarray_like(part, x.data)
    return part


def _check_masks(parts: tuple[Any, ...], shape: Shape) -> None:
    """IndexError, NumPy's own, for a boolean mask whose shape does not fit the axes it indexes: the
    index is tried on a dummy array of ``shape`` (a zero-stride view of one boolean)."""
    if any(_is_mask(p) for p in parts):
        host = tuple(to_numpy(p) if hasattr(p, "ndim") and not isinstance(p, numpy.generic) else p for p in parts)
        numpy.broadcast_to(numpy.empty((), dtype=bool), shape)[host]


def _is_mask(part: Any) -> bool:
    return getattr(part, "dtype", None) is not None and part.dtype.kind == "b" and part.ndim > 0


class GetItem(Function):
    """y = x[index] (basic slicing or integer-array indexing); backward is a scatter-add."""

    __slots__ = ("index",)

    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, x: Any) -> Any:
        return x[self.index]

    def backward(self, gy: Tensor) -> Tensor:
        return ScatterAdd(self.index, self.inputs[0].shape)(gy)


def getitem(x: TensorLike, index: Any) -> Tensor:
    """x[index]: basic slicing, integer-array or boolean-mask indexing (gradient: scatter-add).

    A boolean mask is replaced by the indices of its true entries (``mask.nonzero()``, NumPy's own
    definition), after checking its shape against the axes it covers: a mask of the wrong length is
    an IndexError, as in NumPy.
    """
    x = as_tensor(x)
    parts = index if isinstance(index, tuple) else (index,)
    parts = tuple(_index_array(p, x) for p in parts)
    _check_masks(parts, x.shape)
    converted: list[Any] = []
    for p in parts:
        converted.extend(p.nonzero() if _is_mask(p) else (p,))
    return GetItem(tuple(converted) if isinstance(index, tuple) or len(converted) != 1 else converted[0])(x)


def _has_array_index(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(not isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts)


class ScatterAdd(Function):
    """y = zeros(shape) with ``y[index] += g`` (repeated indices add up); backward is g = gy[index]."""

    __slots__ = ("index", "shape")

    def __init__(self, index: Any, shape: Shape) -> None:
        self.index = index
        self.shape = shape

    def forward(self, g: Any) -> Any:
        y = array_module(g).zeros(self.shape, dtype=g.dtype)
        if _has_array_index(self.index):
            scatter_add(y, self.index, g)
        else:  # basic indexing selects each element at most once
            y[self.index] = g
        return y

    def backward(self, gy: Tensor) -> Tensor:
        return GetItem(self.index)(gy)
