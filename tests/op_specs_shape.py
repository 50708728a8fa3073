"""Gradient specifications of the shape family and of the products (see op_specs.py: the strategies and
the Case/Edge/OpSpec types).

Every op here is linear (shape ops, trace) or bilinear (the products), so its third derivative is zero
and ``third_order`` stays False: test_ops.py wraps only matmul and conv2d in tanh for that check, and
tests/test_shape_ops.py runs the same wrapped third-order check on the products' cases.

Ops that return several tensors (split, array_split, atleast_* of several inputs) are checked through
one tensor holding all their results, flattened and joined; test_shape_ops.py checks the parts themselves.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from op_specs import Case, OpSpec, nonscalar_shapes, shapes, values

import tinymeta as tm

# ---- shape ops ---------------------------------------------------------------------------------


def _joined(parts: Any, ravel: Any, concatenate: Any) -> Any:
    """Several results as one: each flattened, then joined (for ops returning a list or tuple)."""
    return concatenate([ravel(p) for p in parts])


def _tm_joined(parts: Any) -> tm.Tensor:
    return _joined(parts, tm.ravel, tm.concatenate)


def _np_joined(parts: Any) -> np.ndarray:
    return _joined(parts, np.ravel, np.concatenate)


@st.composite
def signed_axes(draw: st.DrawFn, ndim: int, min_size: int = 1) -> tuple[int, ...]:
    """Distinct axes, each written as its positive or negative number."""
    axes = draw(st.lists(st.integers(0, ndim - 1), min_size=min_size, max_size=ndim, unique=True))
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


@st.composite
def one_axis(draw: st.DrawFn, ndim: int) -> int:
    return draw(st.integers(-ndim, ndim - 1))


@st.composite
def ravel_case(draw: st.DrawFn) -> Case:
    x = draw(shapes.flatmap(values))
    name, fn = draw(
        st.sampled_from(
            [("tm.ravel", tm.ravel), ("Tensor.ravel", tm.Tensor.ravel), ("Tensor.flatten", tm.Tensor.flatten)]
        )
    )
    return Case([x], fn, np.ravel, name)


@st.composite
def flip_case(draw: st.DrawFn) -> Case:
    x = draw(shapes.flatmap(values))
    axis = None if x.ndim == 0 else draw(st.one_of(st.none(), one_axis(x.ndim), signed_axes(x.ndim)))
    return Case([x], lambda t: tm.flip(t, axis), lambda a: np.flip(a, axis), f"axis={axis}")


@st.composite
def roll_case(draw: st.DrawFn) -> Case:
    x = draw(shapes.flatmap(values))
    shift: Any = draw(st.integers(-4, 4))
    axis: Any = None
    if x.ndim and draw(st.booleans()):
        axis = draw(one_axis(x.ndim))
        if draw(st.booleans()):  # shifts and axes as sequences; an axis may repeat (its shifts add up)
            axis = tuple(draw(st.lists(one_axis(x.ndim), min_size=1, max_size=3)))
            shift = tuple(draw(st.lists(st.integers(-4, 4), min_size=len(axis), max_size=len(axis))))
    return Case(
        [x], lambda t: tm.roll(t, shift, axis), lambda a: np.roll(a, shift, axis), f"shift={shift}, axis={axis}"
    )


@st.composite
def moveaxis_case(draw: st.DrawFn) -> Case:
    x = draw(nonscalar_shapes.flatmap(values))
    source: Any = draw(signed_axes(x.ndim))
    destination: Any = draw(signed_axes(x.ndim, min_size=len(source)).map(lambda d: d[: len(source)]))
    if len(source) == 1 and draw(st.booleans()):
        source, destination = source[0], destination[0]
    return Case(
        [x],
        lambda t: tm.moveaxis(t, source, destination),
        lambda a: np.moveaxis(a, source, destination),
        f"source={source}, destination={destination}",
    )


@st.composite
def repeat_case(draw: st.DrawFn) -> Case:
    x = draw(shapes.flatmap(values))
    axis = None if x.ndim == 0 or draw(st.booleans()) else draw(one_axis(x.ndim))
    n = x.size if axis is None else x.shape[axis]
    repeats: Any = draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    return Case(
        [x],
        lambda t: tm.repeat(t, repeats, axis),
        lambda a: np.repeat(a, repeats, axis),
        f"repeats={repeats}, axis={axis}",
    )


@st.composite
def tile_case(draw: st.DrawFn) -> Case:
    x = draw(shapes.flatmap(values))
    reps: Any = draw(st.one_of(st.integers(0, 3), st.lists(st.integers(0, 2), max_size=4).map(tuple)))
    return Case([x], lambda t: tm.tile(t, reps), lambda a: np.tile(a, reps), f"reps={reps}")


@st.composite
def pad_case(draw: st.DrawFn) -> Case:
    x = draw(shapes.flatmap(values))
    mode = draw(st.sampled_from(["constant", "edge", "reflect"]))
    width = st.integers(0, 2)
    pair = st.tuples(width, width)
    forms = [width, pair, st.tuples(pair)] + (
        [st.tuples(*[pair] * x.ndim), st.tuples(*[st.tuples(width)] * x.ndim)] if x.ndim else []
    )
    pad_width = draw(st.one_of(forms))
    kwargs: dict[str, Any] = {"mode": mode}
    if mode == "constant" and draw(st.booleans()):
        value = st.floats(-3, 3, allow_subnormal=False)
        kwargs["constant_values"] = draw(st.one_of(value, st.tuples(value, value)))
    return Case(
        [x],
        lambda t: tm.pad(t, pad_width, **kwargs),
        lambda a: np.pad(a, pad_width, **kwargs),
        f"{pad_width}, {kwargs}",
    )


@st.composite
def split_case(draw: st.DrawFn, equal: bool) -> Case:
    x = draw(nonscalar_shapes.flatmap(values))
    axis = draw(one_axis(x.ndim))
    n = x.shape[axis]
    if draw(st.booleans()):  # indices, unsorted and past the end included: slices as NumPy takes them
        sections: Any = draw(st.lists(st.integers(0, n + 1), max_size=3))
    elif equal:
        sections = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
    else:
        sections = draw(st.integers(1, n + 2))
    fn, ref = (tm.split, np.split) if equal else (tm.array_split, np.array_split)
    return Case(
        [x],
        lambda t: _tm_joined(fn(t, sections, axis)),
        lambda a: _np_joined(ref(a, sections, axis)),
        f"sections={sections}, axis={axis}",
    )


@st.composite
def atleast_case(draw: st.DrawFn, fn: Any, ref: Any) -> Case:
    arrays = draw(st.lists(shapes.flatmap(values), min_size=1, max_size=2))
    if len(arrays) == 1:
        return Case(arrays, fn, ref, "one input")
    return Case(arrays, lambda *ts: _tm_joined(fn(*ts)), lambda *a: _np_joined(ref(*a)), "two inputs: joined")


@st.composite
def stack_inputs(draw: st.DrawFn, vertical: bool) -> list[np.ndarray]:
    """1 to 3 arrays that hstack (joined along axis 1, or 0 for vectors) or vstack (along axis 0) accepts."""
    count = draw(st.integers(1, 3))
    ndim = draw(st.integers(0, 3))
    if ndim <= 1:  # scalars and vectors: any lengths for hstack, one length for vstack (a scalar is length 1)
        length = draw(st.integers(1, 3))
        sizes = [length if vertical else draw(st.integers(1, 3)) for _ in range(count)]
        return [draw(values(() if n == 1 and draw(st.booleans()) else (n,))) for n in sizes]
    shape = list(draw(hnp.array_shapes(min_dims=ndim, max_dims=ndim, max_side=3)))
    arrays = []
    for _ in range(count):
        shape[0 if vertical else 1] = draw(st.integers(1, 3))
        arrays.append(draw(values(tuple(shape))))
    return arrays


@st.composite
def hvstack_case(draw: st.DrawFn, vertical: bool) -> Case:
    arrays = draw(stack_inputs(vertical))
    fn, ref = (tm.vstack, np.vstack) if vertical else (tm.hstack, np.hstack)
    return Case(arrays, lambda *ts: fn(ts), lambda *a: ref(a), f"{len(arrays)} inputs")


@st.composite
def diff_case(draw: st.DrawFn) -> Case:
    x = draw(nonscalar_shapes.flatmap(values))
    n = draw(st.integers(0, 3))
    axis = draw(one_axis(x.ndim))
    if draw(st.booleans()):
        return Case([x], lambda t: tm.diff(t, n, axis), lambda a: np.diff(a, n, axis), f"n={n}, axis={axis}")
    # prepend slices (an input: its gradient is checked too), append a scalar (a constant, broadcast)
    shape = list(x.shape)
    shape[axis] = draw(st.integers(1, 2))
    first, last = draw(values(tuple(shape))), draw(st.floats(-3.0, 3.0))
    return Case(
        [x, first],
        lambda t, p: tm.diff(t, n, axis, prepend=p, append=last),
        lambda a, p: np.diff(a, n, axis, prepend=p, append=last),
        f"n={n}, axis={axis}, prepend of shape {first.shape}, append={last}",
    )


@st.composite
def diagonal_case(draw: st.DrawFn, op: str) -> Case:
    x = draw(hnp.array_shapes(min_dims=2, max_dims=3, max_side=3).flatmap(values))
    offset = draw(st.integers(-3, 3))
    axis1, axis2 = draw(signed_axes(x.ndim, min_size=2))[:2]
    fn, ref = (tm.trace, np.trace) if op == "trace" else (tm.diagonal, np.diagonal)
    return Case(
        [x],
        lambda t: fn(t, offset, axis1, axis2),
        lambda a: ref(a, offset, axis1, axis2),
        f"offset={offset}, axis1={axis1}, axis2={axis2}",
    )


@st.composite
def diag_case(draw: st.DrawFn) -> Case:
    x = draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=3).flatmap(values))
    k = draw(st.integers(-3, 3))
    return Case([x], lambda t: tm.diag(t, k), lambda a: np.diag(a, k), f"k={k}")


@st.composite
def triangle_case(draw: st.DrawFn, upper: bool) -> Case:
    x = draw(nonscalar_shapes.flatmap(values))
    k = draw(st.integers(-3, 3))
    fn, ref = (tm.triu, np.triu) if upper else (tm.tril, np.tril)
    return Case([x], lambda t: fn(t, k), lambda a: ref(a, k), f"k={k}")


# ---- products ----------------------------------------------------------------------------------


@st.composite
def dot_case(draw: st.DrawFn, op: str) -> Case:
    """dot, inner: 0-d with anything, vector with vector, and N-D with M-D (the contracted axis shared)."""
    k = draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["scalar", "vectors", "arrays"]))
    if kind == "scalar":
        sa, sb = (), draw(shapes)
        if draw(st.booleans()):
            sa, sb = sb, sa
    elif kind == "vectors":
        sa, sb = (k,), (k,)
    else:
        lead_a = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=2))
        lead_b = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=2))
        sa = lead_a + (k,)
        if op == "inner":
            sb = lead_b + (k,)
        else:  # dot contracts b's second-to-last axis (its only axis when 1-D)
            sb = lead_b[:-1] + (k,) + lead_b[-1:] if lead_b else (k,)
    a, b = draw(values(sa)), draw(values(sb))
    fn, ref = (tm.dot, np.dot) if op == "dot" else (tm.inner, np.inner)
    return Case([a, b], fn, ref, kind)


@st.composite
def vdot_case(draw: st.DrawFn) -> Case:
    a = draw(shapes.flatmap(values))
    b = draw(st.sampled_from([a.shape, (a.size,), a.shape[::-1]]).flatmap(values))
    return Case([a, b], tm.vdot, np.vdot)


@st.composite
def outer_kron_case(draw: st.DrawFn, kron: bool) -> Case:
    small = hnp.array_shapes(min_dims=0, max_dims=3, max_side=2)
    a, b = draw(small.flatmap(values)), draw(small.flatmap(values))
    return Case([a, b], tm.kron if kron else tm.outer, np.kron if kron else np.outer)


@st.composite
def tensordot_case(draw: st.DrawFn) -> Case:
    contracted = list(draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)))
    free_a = list(draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=2)))
    free_b = list(draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=2)))
    if draw(st.booleans()):  # axes=n: a's last n axes, b's first n
        axes: Any = len(contracted)
        sa, sb = free_a + contracted, contracted + free_b
    else:  # axes=(axes_a, axes_b), anywhere, in any order, negative or not
        sa = draw(st.permutations([("c", i) for i in range(len(contracted))] + [("a", n) for n in free_a]))
        sb = draw(st.permutations([("c", i) for i in range(len(contracted))] + [("b", n) for n in free_b]))
        pairs = [(sa.index(("c", i)), sb.index(("c", i))) for i in range(len(contracted))]
        pairs = draw(st.permutations(pairs))
        axes = (
            [i - len(sa) if draw(st.booleans()) else i for i, _ in pairs],
            [j - len(sb) if draw(st.booleans()) else j for _, j in pairs],
        )
        sa = [contracted[n] if tag == "c" else n for tag, n in sa]
        sb = [contracted[n] if tag == "c" else n for tag, n in sb]
    a, b = draw(values(tuple(sa))), draw(values(tuple(sb)))
    return Case([a, b], lambda x, y: tm.tensordot(x, y, axes), lambda x, y: np.tensordot(x, y, axes), f"axes={axes}")


@st.composite
def einsum_case(draw: st.DrawFn) -> Case:
    """Random subscripts over the letters i, j, k, l (lengths 1 to 3): 1 to 3 operands of 0 to 3 letters,
    a letter repeated within an operand (a diagonal or trace), axes of length 1 broadcasting against
    longer ones, '...' broadcasting, an explicit output (any order) or NumPy's implicit one."""
    letters = "ijkl"
    length = {c: draw(st.integers(1, 3)) for c in letters}
    ellipsis = draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=2)) if draw(st.booleans()) else None
    terms, arrays = [], []
    for _ in range(draw(st.integers(1, 3))):
        term = "".join(draw(st.lists(st.sampled_from(letters), max_size=3)))
        # a letter's axis is sometimes 1 long (broadcast), unless the letter repeats in the operand
        shape = [length[c] if term.count(c) > 1 or draw(st.integers(0, 4)) else 1 for c in term]
        if ellipsis is not None and draw(st.booleans()):
            extra = ellipsis[len(ellipsis) - draw(st.integers(0, len(ellipsis))) :]
            extra = tuple(1 if draw(st.integers(0, 3)) == 0 else n for n in extra)
            front = draw(st.booleans())
            term, shape = ("..." + term, [*extra, *shape]) if front else (term + "...", [*shape, *extra])
        terms.append(term)
        arrays.append(draw(values(tuple(shape))))
    used = sorted(set("".join(terms)) - set(string.punctuation))
    subscripts = ",".join(terms)
    if draw(st.booleans()):
        output = "".join(draw(st.permutations(used))[: draw(st.integers(0, len(used)))])
        if "..." in subscripts:
            output = "..." + output if draw(st.booleans()) else output + "..."
        subscripts += "->" + output
    return Case(arrays, lambda *ts: tm.einsum(subscripts, *ts), lambda *a: np.einsum(subscripts, *a), repr(subscripts))


SHAPE_SPECS: list[OpSpec] = [
    OpSpec("ravel", ravel_case()),
    OpSpec("flip", flip_case()),
    OpSpec("roll", roll_case()),
    OpSpec("moveaxis", moveaxis_case()),
    OpSpec("repeat", repeat_case()),
    OpSpec("tile", tile_case()),
    OpSpec("pad", pad_case()),
    OpSpec("split", split_case(equal=True)),
    OpSpec("array_split", split_case(equal=False)),
    OpSpec("atleast_1d", atleast_case(tm.atleast_1d, np.atleast_1d)),
    OpSpec("atleast_2d", atleast_case(tm.atleast_2d, np.atleast_2d)),
    OpSpec("atleast_3d", atleast_case(tm.atleast_3d, np.atleast_3d)),
    OpSpec("hstack", hvstack_case(vertical=False)),
    OpSpec("vstack", hvstack_case(vertical=True)),
    OpSpec("diff", diff_case()),
    OpSpec("diagonal", diagonal_case("diagonal")),
    OpSpec("diag", diag_case()),
    OpSpec("tril", triangle_case(upper=False)),
    OpSpec("triu", triangle_case(upper=True)),
    OpSpec("dot", dot_case("dot")),
    OpSpec("vdot", vdot_case()),
    OpSpec("inner", dot_case("inner")),
    OpSpec("outer", outer_kron_case(kron=False)),
    OpSpec("kron", outer_kron_case(kron=True)),
    OpSpec("tensordot", tensordot_case()),
    OpSpec("einsum", einsum_case()),
    OpSpec("trace", diagonal_case("trace")),
]
