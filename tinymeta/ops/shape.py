"""Shape ops: reshape, transpose, broadcasting, indexing, concatenation, and NumPy's shape
functions built on them (flip, roll, repeat, tile, pad, split, diagonal, ...).

``broadcast_to`` and ``sum_to`` are a pair whose backwards are each other; every broadcasting op
uses ``sum_to`` to bring a gradient back to its input's shape. Likewise indexing (a gather) has
a scatter-add as its backward, whose backward is the gather again.

Most of NumPy's shape functions are compositions of these few Functions, so they need no
derivative of their own: ``flip`` is a reversed slice, ``repeat``, ``pad``'s edge and reflect
modes and ``diagonal`` are gathers with an index array (their gradients scatter-add), ``tile`` is
``broadcast_to`` then ``reshape``, constant ``pad`` and ``diag`` of a vector are scatters into
zeros. Only ``tril``/``triu`` (a mask) and ``Copy`` are Functions of their own.

Every op returns a new Tensor, never one of its inputs. Where NumPy's function returns a view
(reshape, ravel, squeeze, transpose, moveaxis, basic slicing, split, atleast_*), so may tinymeta's;
where NumPy's returns an array of its own (roll, pad, tile, repeat, concatenate, ...), so does
tinymeta's, in the degenerate cases too (a roll by the axis length, a pad of width 0, a tile by 1).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy

from ..backend import array_module, asarray_like, scatter_add, to_numpy
from ..engine import Function, Tensor, TensorLike, as_tensor

__all__ = [
    "reshape", "transpose", "swapaxes", "broadcast_to", "sum_to", "expand_dims", "squeeze",
    "concatenate", "stack", "getitem",
    "ravel", "flip", "roll", "moveaxis", "repeat", "tile", "pad", "split", "array_split",
    "atleast_1d", "atleast_2d", "atleast_3d", "hstack", "vstack", "diff", "diagonal", "diag", "tril", "triu",
]  # fmt: skip  # this family's differentiable ops (the registry: ops/__init__.py)

Shape = tuple[int, ...]


def _as_shape(shape: int | Sequence[int]) -> Shape:
    return (shape,) if isinstance(shape, (int, numpy.integer)) else tuple(shape)


class Copy(Function):
    """y = a copy of x (an array of its own);  dy/dx = 1, so the gradient is gy itself."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return x.copy()

    def backward(self, gy: Tensor) -> Tensor:
        return gy


class Reshape(Function):
    """y = x.reshape(shape); the gradient is reshaped back."""

    __slots__ = ("shape",)

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def forward(self, x: Any) -> Any:
        return x.reshape(self.shape)

    def backward(self, gy: Tensor) -> Tensor:
        return _reshape(gy, self.inputs[0].shape)


def reshape(x: TensorLike, shape: int | Sequence[int]) -> Tensor:
    """x with a new shape holding the same elements (one entry may be -1); a new tensor (a view of x's
    data where NumPy's reshape gives one), even when the shape is x's own."""
    return Reshape(_as_shape(shape))(as_tensor(x))


# tinymeta's own code reshapes, broadcasts and sums gradients and intermediate results to shapes
# they often have already: these three return such a tensor itself instead of recording an
# identity op. Never used on an op's input to make its result (the public functions are for that).


def _reshape(x: Tensor, shape: Shape) -> Tensor:
    return x if x.shape == shape else Reshape(shape)(x)


def _broadcast_to(x: Tensor, shape: Shape) -> Tensor:
    return x if x.shape == shape else broadcast_to(x, shape)


def _sum_to(x: Tensor, shape: Shape) -> Tensor:
    return x if x.shape == shape else sum_to(x, shape)


def _axis(axis: Any, ndim: int, op: str | None = None) -> int:
    """``axis`` in range(ndim), counting from the end when negative; NumPy's AxisError if out of range.
    ``op`` (the op's name, and the argument's when it is not ``axis``) starts the error messages."""
    if isinstance(axis, bool) or not isinstance(axis, (int, numpy.integer)):
        raise TypeError(f"{op + ': ' if op else ''}an axis must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise numpy.exceptions.AxisError(int(axis), ndim, msg_prefix=op)
    return int(axis) + ndim if axis < 0 else int(axis)


def _axes(axis: Any, ndim: int, op: str) -> tuple[int, ...]:
    """One axis or a sequence of axes, each checked by ``_axis``; a repeated axis is a ValueError."""
    parts = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    axes = tuple(_axis(a, ndim, op) for a in parts)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: repeated axis in {axis!r}")
    return axes


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
        return _sum_to(gy, self.inputs[0].shape)


def broadcast_to(x: TensorLike, shape: int | Sequence[int]) -> Tensor:
    """x broadcast to ``shape`` (NumPy rules): a new tensor, a read-only view of x's data (as NumPy's)."""
    x = as_tensor(x)
    shape = _as_shape(shape)
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
        return _broadcast_to(gy, self.inputs[0].shape)


def sum_to(x: TensorLike, shape: int | Sequence[int]) -> Tensor:
    """x summed down to ``shape``, the shape it was broadcast from (the adjoint of broadcast_to); a new
    array (x's values copied when there is nothing to sum, as ``numpy.sum`` over no axes)."""
    x = as_tensor(x)
    shape = _as_shape(shape)
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


def concatenate(xs: Sequence[TensorLike], axis: int | None = 0) -> Tensor:
    """The tensors joined along an existing axis; with ``axis=None``, flattened first (as NumPy)."""
    tensors = [as_tensor(x) for x in xs]
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    if axis is None:
        tensors, axis = [reshape(t, (t.size,)) for t in tensors], 0
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


# ---- NumPy's shape functions, composed from the Functions above ---------------------------------


def ravel(a: TensorLike) -> Tensor:
    """a as a 1-D tensor (row-major order), as ``numpy.ravel``: ``reshape(a, -1)``.

    Like NumPy's, the result may share the input's memory (``Tensor.flatten`` always copies)."""
    a = as_tensor(a)
    return reshape(a, (a.size,))


def flip(m: TensorLike, axis: int | Sequence[int] | None = None) -> Tensor:
    """m with the order of its elements reversed along ``axis`` (all axes for None): m[..., ::-1, ...].

    A reversed slice, so its gradient is the upstream gradient reversed the same way."""
    m = as_tensor(m)
    axes = range(m.ndim) if axis is None else _axes(axis, m.ndim, "flip")
    return getitem(m, tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(m.ndim)))


def roll(a: TensorLike, shift: int | Sequence[int], axis: int | Sequence[int] | None = None) -> Tensor:
    """a with its elements shifted by ``shift`` along ``axis``, wrapping around: y[i] = a[(i - shift) mod n].

    ``shift`` and ``axis`` broadcast together (an axis named twice is shifted by the sum); without an
    axis the flattened tensor is rolled and reshaped back. Each roll is two slices joined by concatenate."""
    a = as_tensor(a)
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), a.shape)
    try:
        pairs = list(numpy.broadcast(shift, axis))
    except ValueError:
        raise ValueError(f"roll: shift {shift!r} and axis {axis!r} do not broadcast together") from None
    total: dict[int, int] = {}
    for s, ax in pairs:
        if not isinstance(s, (int, numpy.integer)) or isinstance(s, (bool, numpy.bool_)):
            raise TypeError(f"roll: a shift must be an integer, got {s!r}")
        ax = _axis(ax, a.ndim, "roll")
        total[ax] = total.get(ax, 0) + int(s)
    rolled = a
    for ax, s in total.items():
        n = a.shape[ax]
        if n and s % n:
            lead = (slice(None),) * ax
            cut = n - s % n
            rolled = concatenate(
                [getitem(rolled, lead + (slice(cut, None),)), getitem(rolled, lead + (slice(None, cut),))], ax
            )
    return Copy()(a) if rolled is a else rolled  # a roll by whole turns: still a copy, as NumPy's


def moveaxis(a: TensorLike, source: int | Sequence[int], destination: int | Sequence[int]) -> Tensor:
    """a with the axes ``source`` moved to positions ``destination``, the others kept in order (a transpose)."""
    a = as_tensor(a)
    source = _axes(source, a.ndim, "moveaxis source")
    destination = _axes(destination, a.ndim, "moveaxis destination")
    if len(source) != len(destination):
        raise ValueError(f"moveaxis: source {source} and destination {destination} must have the same number of axes")
    order = [i for i in range(a.ndim) if i not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return Transpose(tuple(order))(a)


def repeat(a: TensorLike, repeats: int | Sequence[int], axis: int | None = None) -> Tensor:
    """Each element of a repeated ``repeats`` times along ``axis`` (of the flattened tensor for None).

    ``repeats`` is one count or one per element of the axis. A gather with the index array
    ``numpy.repeat(arange(n), repeats)`` (NumPy's own definition); the gradient adds up the copies."""
    a = as_tensor(a)
    if axis is None:
        a, axis = ravel(a), 0
    else:
        axis = _axis(axis, a.ndim, "repeat")
    n = a.shape[axis]
    try:
        index = numpy.repeat(numpy.arange(n), repeats)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"repeat: repeats {repeats!r} for an axis of length {n}: {exc}") from None
    return getitem(a, (slice(None),) * axis + (index,))


def tile(A: TensorLike, reps: int | Sequence[int]) -> Tensor:
    """A repeated ``reps[i]`` times along each axis i, as ``numpy.tile`` (shapes padded with leading 1s).

    Insert a size-1 axis before each axis, broadcast it to the repetition count, merge the pairs:
    (n0, n1) -> (1, n0, 1, n1) -> (r0, n0, r1, n1) -> (r0 n0, r1 n1). The gradient sums the copies."""
    A = as_tensor(A)
    try:
        reps = tuple(operator.index(r) for r in reps) if hasattr(reps, "__iter__") else (operator.index(reps),)
    except TypeError:
        raise TypeError(f"tile: reps must be an integer or a sequence of integers, got {reps!r}") from None
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: reps {reps} must not be negative")
    d = max(A.ndim, len(reps))
    shape = (1,) * (d - A.ndim) + A.shape
    reps = (1,) * (d - len(reps)) + reps
    pairs = reshape(A, tuple(m for n in shape for m in (1, n)))
    wide = _broadcast_to(pairs, tuple(m for r, n in zip(reps, shape) for m in (r, n)))
    tiled = reshape(wide, tuple(r * n for r, n in zip(reps, shape)))
    # a copy, as NumPy's: the reshape is still a view of A where no axis is repeated (reps of 1) or where
    # the repeated ones meet axes of length 1 (a stride-0, read-only view)
    return Copy()(tiled) if array_module(A.data).may_share_memory(tiled.data, A.data) else tiled


_PAD_MODES = ("constant", "edge", "reflect")


def _pad_widths(pad_width: Any, shape: Shape) -> tuple[tuple[int, int], ...]:
    """One (before, after) pair per axis, broadcast from ``pad_width`` as NumPy does."""
    widths = numpy.asarray(pad_width)
    if widths.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be integers, got {pad_width!r}")
    if (widths < 0).any():
        raise ValueError(f"pad: pad_width {pad_width!r} must not be negative")
    try:
        widths = numpy.broadcast_to(widths, (len(shape), 2))
    except ValueError:
        raise ValueError(
            f"pad: pad_width {pad_width!r} does not fit shape {shape}: give one width, one (before, after) "
            "pair, or one pair per axis"
        ) from None
    return tuple((int(b), int(e)) for b, e in widths)


def pad(array: TensorLike, pad_width: Any, mode: str = "constant", constant_values: Any = 0) -> Tensor:
    """``array`` padded by ``pad_width`` (NumPy's forms: n, (before, after), or one pair per axis).

    Modes: "constant" fills with ``constant_values`` (one value, or NumPy's per-axis pairs); "edge"
    repeats the edge value; "reflect" mirrors the values about the edge, without repeating it.
    constant: the input scattered into zeros of the padded shape (the adjoint of cropping, so the
    gradient is the crop of gy), plus the padding values as a constant. edge and reflect: a gather
    with the index arrays ``numpy.pad(arange(n), width, mode)`` (NumPy's own definition), so the
    gradient of each element is the sum over every place it was copied to.

    >>> import tinymeta as tm
    >>> x = tm.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> tm.pad(x, 2, mode="reflect")
    tensor([3., 2., 1., 2., 3., 2., 1.], dtype=float64, requires_grad=True)
    >>> tm.grad(tm.sum(tm.pad(x, 2, mode="reflect")), x)[0]  # copies of each: 2, 3, 2
    tensor([2., 3., 2.], dtype=float64)
    """
    x = as_tensor(array)
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode {mode!r} is not supported; tinymeta's pad supports {', '.join(_PAD_MODES)}")
    widths = _pad_widths(pad_width, x.shape)
    nonzero_fill = bool(numpy.any(numpy.asarray(constant_values) != 0))
    if mode != "constant":
        if nonzero_fill:
            raise ValueError(f"pad: constant_values is used by mode='constant' only, not mode={mode!r}")
        if not any(b or e for b, e in widths):
            return Copy()(x)  # nothing to pad: a copy, as NumPy's
        try:
            axes = [numpy.pad(numpy.arange(n), w, mode=mode) for n, w in zip(x.shape, widths)]
        except ValueError as exc:
            raise ValueError(f"pad: {exc}") from None
        return getitem(x, numpy.ix_(*axes))
    shape = tuple(b + n + e for (b, e), n in zip(widths, x.shape))
    if shape == x.shape:
        return Copy()(x)
    y = ScatterAdd(tuple(slice(b, b + n) for (b, _), n in zip(widths, x.shape)), shape)(x)
    if nonzero_fill:
        fill = numpy.pad(numpy.zeros(x.shape, x.dtype), widths, constant_values=constant_values)
        y = y + as_tensor(asarray_like(fill, x.data))
    return y


def _split(ary: TensorLike, indices_or_sections: Any, axis: int, op: str) -> list[Tensor]:
    x = as_tensor(ary)
    axis = _axis(axis, x.ndim, op)
    n = x.shape[axis]
    try:
        points = [0, *(operator.index(i) for i in indices_or_sections), n]
    except TypeError:  # a number of sections, as NumPy's int(indices_or_sections)
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError(f"{op}: the number of sections must be positive, got {sections}") from None
        each, extra = divmod(n, sections)
        if extra and op == "split":
            raise ValueError(
                f"split: an axis of length {n} does not split into {sections} equal sections; "
                "array_split allows unequal ones"
            ) from None
        sizes = [each + 1] * extra + [each] * (sections - extra)
        points = [0, *(int(p) for p in numpy.cumsum(sizes))]
    lead = (slice(None),) * axis
    return [getitem(x, lead + (slice(start, stop),)) for start, stop in zip(points[:-1], points[1:])]


def split(ary: TensorLike, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """``ary`` cut along ``axis`` into equal sections (an integer, which must divide the axis) or at
    the given indices (slices ary[i_k:i_(k+1)], as NumPy's), as a list of tensors.

    >>> import tinymeta as tm
    >>> tm.split(tm.tensor([1.0, 2.0, 3.0, 4.0]), [1, 3])
    [tensor([1.], dtype=float64), tensor([2., 3.], dtype=float64), tensor([4.], dtype=float64)]
    """
    return _split(ary, indices_or_sections, axis, "split")


def array_split(ary: TensorLike, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """As :func:`split`, but N sections of an axis of length n need not be equal: the first n mod N
    sections hold one element more."""
    return _split(ary, indices_or_sections, axis, "array_split")


def _one_or_tuple(results: list[Tensor]) -> Tensor | tuple[Tensor, ...]:
    return results[0] if len(results) == 1 else tuple(results)


def atleast_1d(*arys: TensorLike) -> Tensor | tuple[Tensor, ...]:
    """Each input with at least one axis (a 0-d tensor becomes shape (1,)); one tensor for one input,
    else a tuple, as NumPy."""
    return _one_or_tuple([reshape(x, x.shape or (1,)) for x in map(as_tensor, arys)])


def atleast_2d(*arys: TensorLike) -> Tensor | tuple[Tensor, ...]:
    """Each input with at least two axes: () -> (1, 1), (n,) -> (1, n). Always a new tensor (viewing the
    input's data; NumPy returns the array itself where it has enough axes already)."""
    return _one_or_tuple([reshape(x, (1,) * (2 - x.ndim) + x.shape) for x in map(as_tensor, arys)])


def atleast_3d(*arys: TensorLike) -> Tensor | tuple[Tensor, ...]:
    """Each input with at least three axes: () -> (1, 1, 1), (n,) -> (1, n, 1), (m, n) -> (m, n, 1)."""
    added = {0: lambda s: (1, 1, 1), 1: lambda s: (1, *s, 1), 2: lambda s: (*s, 1)}
    return _one_or_tuple([reshape(x, added[x.ndim](x.shape) if x.ndim < 3 else x.shape) for x in map(as_tensor, arys)])


def hstack(tup: Sequence[TensorLike]) -> Tensor:
    """The tensors joined along their second axis (the first for 1-D ones), as ``numpy.hstack``."""
    tensors = [atleast_1d(x) for x in tup]
    if not tensors:
        raise ValueError("hstack needs at least one tensor")
    return concatenate(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tup: Sequence[TensorLike]) -> Tensor:
    """The tensors joined along their first axis, 1-D ones as rows (1, n), as ``numpy.vstack``."""
    tensors = [atleast_2d(x) for x in tup]
    if not tensors:
        raise ValueError("vstack needs at least one tensor")
    return concatenate(tensors, 0)


def diff(
    a: TensorLike, n: int = 1, axis: int = -1, prepend: TensorLike | None = None, append: TensorLike | None = None
) -> Tensor:
    """The n-th forward difference along ``axis``: a[1:] - a[:-1], n times (``!=`` for booleans, as NumPy).

    ``prepend`` and ``append`` are joined to a along ``axis`` first (a scalar is broadcast to one slice);
    a tensor there receives its gradient. As NumPy's, ``n=0`` gives a unchanged (a new tensor viewing it)."""
    a = as_tensor(a)
    n = operator.index(n)
    if n == 0:
        return reshape(a, a.shape)
    if n < 0:
        raise ValueError(f"diff: the order n must be non-negative, got {n}")
    if a.ndim == 0:
        raise ValueError("diff: needs a tensor with at least one axis, got a 0-d tensor")
    axis = _axis(axis, a.ndim, "diff")
    if prepend is not None or append is not None:
        # as NumPy's asanyarray (a Python float is float64), on a's backend
        ends = [v if v is None or isinstance(v, Tensor) else as_tensor(_as_array(v), a) for v in (prepend, append)]
        one_slice = a.shape[:axis] + (1,) + a.shape[axis + 1 :]
        ends = [v if v is None or v.ndim else broadcast_to(v, one_slice) for v in ends]
        a = concatenate([t for t in (ends[0], a, ends[1]) if t is not None], axis)
    lead = (slice(None),) * axis
    for _ in range(n):
        upper, lower = getitem(a, lead + (slice(1, None),)), getitem(a, lead + (slice(None, -1),))
        a = upper != lower if a.dtype == bool else upper - lower  # Tensor operators: tinymeta's sub
    return a


def _as_array(v: Any) -> Any:
    return v if hasattr(v, "dtype") and not isinstance(v, numpy.generic) else numpy.asarray(v)


def _diagonal_indices(rows: int, cols: int, offset: int) -> tuple[Any, Any]:
    """The (row, column) index arrays of the ``offset``-th diagonal of a rows x cols matrix."""
    first_row, first_col = max(-offset, 0), max(offset, 0)
    length = max(0, min(rows - first_row, cols - first_col))
    steps = numpy.arange(length)
    return steps + first_row, steps + first_col


def diagonal(a: TensorLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The ``offset``-th diagonal of the matrices spanned by ``axis1`` and ``axis2``, as ``numpy.diagonal``:
    both axes are removed and the diagonal is the last axis. A gather (the gradient scatters back onto
    the diagonal); unlike NumPy's read-only view, the result is a new array."""
    a = as_tensor(a)
    if a.ndim < 2:
        raise ValueError(f"diagonal: needs a tensor with at least two axes, got shape {a.shape}")
    axis1, axis2 = _axis(axis1, a.ndim, "diagonal axis1"), _axis(axis2, a.ndim, "diagonal axis2")
    if axis1 == axis2:
        raise ValueError(f"diagonal: axis1 and axis2 cannot be the same axis, got {axis1} for both")
    order = [i for i in range(a.ndim) if i not in (axis1, axis2)] + [axis1, axis2]
    moved = a if order == list(range(a.ndim)) else Transpose(tuple(order))(a)
    rows, cols = _diagonal_indices(a.shape[axis1], a.shape[axis2], operator.index(offset))
    return getitem(moved, (Ellipsis, rows, cols))


def diag(v: TensorLike, k: int = 0) -> Tensor:
    """As ``numpy.diag``: a 1-D v becomes the square matrix with v on its k-th diagonal (zeros elsewhere,
    a scatter whose gradient gathers the diagonal back); a 2-D v gives its k-th diagonal."""
    v = as_tensor(v)
    k = operator.index(k)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1:
        raise ValueError(f"diag: input must be 1-D or 2-D, got shape {v.shape}")
    n = v.shape[0] + abs(k)
    rows, cols = _diagonal_indices(n, n, k)
    return ScatterAdd((asarray_like(rows, v.data), asarray_like(cols, v.data)), (n, n))(v)


class Triangle(Function):
    """y = tril(x, k) or triu(x, k): the matrices of x (its last two axes) with the entries outside
    the triangle replaced by 0. Linear, and its own adjoint: gx = the same triangle of gy (summed
    over the rows a 1-D x was broadcast to, as NumPy broadcasts it to a square matrix)."""

    __slots__ = ("k", "upper")

    def __init__(self, k: int, upper: bool) -> None:
        self.k = k
        self.upper = upper

    def forward(self, x: Any) -> Any:
        xp = array_module(x)
        return xp.triu(x, self.k) if self.upper else xp.tril(x, self.k)

    def backward(self, gy: Tensor) -> Tensor:
        return _sum_to(Triangle(self.k, self.upper)(gy), self.inputs[0].shape)


def _triangle(m: TensorLike, k: int, upper: bool) -> Tensor:
    m = as_tensor(m)
    name = "triu" if upper else "tril"
    if m.ndim == 0:
        raise ValueError(f"{name}: needs a tensor with at least one axis, got a 0-d tensor")
    return Triangle(operator.index(k), upper)(m)


def tril(m: TensorLike, k: int = 0) -> Tensor:
    """m with the entries above its k-th diagonal set to 0 (in the last two axes; a 1-D m is a row
    broadcast to a square matrix, as NumPy's)."""
    return _triangle(m, k, upper=False)


def triu(m: TensorLike, k: int = 0) -> Tensor:
    """m with the entries below its k-th diagonal set to 0 (as :func:`tril`)."""
    return _triangle(m, k, upper=True)
