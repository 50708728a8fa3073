"""The registry of gradient specifications: one entry per differentiable op in ``tinymeta.ops``.

Each entry is a hypothesis strategy of *cases*. A case holds float64 input arrays drawn from the
op's domain, the tinymeta function to check (with any static parameters bound: axis, keepdims,
index, stride...), and a NumPy reference for its forward value. ``test_ops.py`` drives every check
(forward, first, second and third order) from this one table, and fails if an op in
``tinymeta.ops.__all__`` has no entry here.

Domains are explicit: log/sqrt/the base of a real power see only positive numbers, division never
sees a denominator near zero, abs/relu/max/min/max-pool see points at least 0.05 away from their
kinks and ties (the central difference uses eps = 1e-6, far smaller).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinymeta as tm


@dataclass
class Case:
    arrays: list[np.ndarray]
    fn: Callable[..., tm.Tensor]
    ref: Callable[..., np.ndarray]
    note: str = ""

    def __repr__(self) -> str:
        shapes = [a.shape for a in self.arrays]
        return f"Case(shapes={shapes}, {self.note})"


@dataclass
class Edge:
    """A point at the edge of an op's domain with its exact value and derivatives.

    ``derivatives[k]`` is the order-(k+1) derivative in the scheme of ``test_ops.py``: the gradient
    (one array per input) of the sum of every element of the order-k result (order 0: fn's output),
    so for one scalar input it is the first, second and third derivative; NaN where the derivative
    does not exist. The values are the math's; they equal PyTorch 2.13's wherever PyTorch's are
    finite, except where a comment says otherwise.
    """

    note: str
    fn: Callable[..., tm.Tensor]
    inputs: list[Any]
    value: Any
    derivatives: list[Any]

    def __repr__(self) -> str:
        return f"Edge({self.note})"


@dataclass
class OpSpec:
    name: str
    cases: st.SearchStrategy[Case]
    third_order: bool = False
    edges: list[Edge] = field(default_factory=list)


# ---- value strategies ------------------------------------------------------------------------


def values(shape: tuple[int, ...], low: float = -3.0, high: float = 3.0) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high, allow_subnormal=False))


@st.composite
def away_from_zero(draw: st.DrawFn, shape: tuple[int, ...], low: float = 0.1, high: float = 3.0) -> np.ndarray:
    """Values with low <= |x| <= high and a random sign."""
    magnitude = draw(values(shape, low, high))
    sign = draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0])))
    return magnitude * sign


@st.composite
def distinct(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """Values at least 0.2 apart from each other (no ties for max/min/max-pool)."""
    n = math.prod(shape)
    order = draw(st.permutations(range(n)))
    jitter = draw(values((n,), 0.0, 0.1))
    return ((np.array(order, dtype=np.float64) - n / 2) * 0.3 + jitter).reshape(shape)


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
nonscalar_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)


@st.composite
def axis_choice(draw: st.DrawFn, ndim: int) -> Any:
    """None, one axis (maybe negative) or a tuple of axes."""
    if ndim == 0:
        return None
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    return tuple(draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True)))


# ---- cases per family ------------------------------------------------------------------------


def unary(
    fn: Callable, ref: Callable, domain: Callable[[tuple[int, ...]], st.SearchStrategy]
) -> st.SearchStrategy[Case]:
    return st.builds(lambda x: Case([x], fn, ref), shapes.flatmap(domain))


@st.composite
def binary(draw: st.DrawFn, fn: Callable, ref: Callable, left: Callable = values, right: Callable = values) -> Case:
    """Two broadcasting tensors; sometimes one side is a Python scalar constant instead."""
    (sa, sb), _ = draw(broadcast_pairs)
    a, b = draw(left(sa)), draw(right(sb))
    mode = draw(st.sampled_from(["tensors", "scalar_right", "scalar_left"]))
    if mode == "scalar_right":
        c = float(draw(right(())))
        return Case([a], lambda x: fn(x, c), lambda x: ref(x, c), f"right={c}")
    if mode == "scalar_left":
        c = float(draw(left(())))
        return Case([b], lambda y: fn(c, y), lambda y: ref(c, y), f"left={c}")
    return Case([a, b], fn, ref)


@st.composite
def reduction(draw: st.DrawFn, fn: Callable, ref: Callable, domain: Callable = values) -> Case:
    shape = draw(shapes)
    x = draw(domain(shape))
    axis = draw(axis_choice(len(shape)))
    keepdims = draw(st.booleans())
    return Case(
        [x],
        lambda t: fn(t, axis=axis, keepdims=keepdims),
        lambda a: ref(a, axis=axis, keepdims=keepdims),
        f"axis={axis}, keepdims={keepdims}",
    )


def np_logsumexp(a: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
    return np.log(np.sum(np.exp(a), axis=axis, keepdims=keepdims))


@st.composite
def softmax_case(draw: st.DrawFn, log: bool) -> Case:
    shape = draw(nonscalar_shapes)
    x = draw(values(shape, -5, 5))
    axis = draw(st.one_of(st.integers(-len(shape), len(shape) - 1), axis_choice(len(shape))))
    axis = -1 if axis is None else axis

    def ref(a: np.ndarray) -> np.ndarray:
        shifted = a - np_logsumexp(a, axis=axis, keepdims=True)
        return shifted if log else np.exp(shifted)

    fn = tm.log_softmax if log else tm.softmax
    return Case([x], lambda t: fn(t, axis=axis), ref, f"axis={axis}")


@st.composite
def reshape_case(draw: st.DrawFn) -> Case:
    shape = draw(shapes)
    x = draw(values(shape))
    size = x.size
    target = draw(
        st.sampled_from(
            [(-1,), tuple(reversed(shape)), (1,) + shape, (size, 1), ()]
            if size == 1
            else [(-1,), tuple(reversed(shape)), (1,) + shape, (size, 1)]
        )
    )
    return Case([x], lambda t: tm.reshape(t, target), lambda a: np.reshape(a, target), f"target={target}")


@st.composite
def transpose_case(draw: st.DrawFn) -> Case:
    shape = draw(shapes)
    x = draw(values(shape))
    axes = draw(st.one_of(st.none(), st.permutations(range(len(shape))).map(tuple)))
    return Case([x], lambda t: tm.transpose(t, axes), lambda a: np.transpose(a, axes), f"axes={axes}")


@st.composite
def swapaxes_case(draw: st.DrawFn) -> Case:
    shape = draw(nonscalar_shapes)
    x = draw(values(shape))
    i = draw(st.integers(-len(shape), len(shape) - 1))
    j = draw(st.integers(-len(shape), len(shape) - 1))
    return Case([x], lambda t: tm.swapaxes(t, i, j), lambda a: np.swapaxes(a, i, j), f"axes=({i}, {j})")


@st.composite
def broadcast_source_and_target(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(small, big): ``small`` broadcasts to ``big``."""
    big = draw(shapes)
    drop = draw(st.integers(0, len(big)))
    small = tuple(1 if draw(st.booleans()) else n for n in big[drop:])
    return small, big


@st.composite
def broadcast_to_case(draw: st.DrawFn) -> Case:
    small, big = draw(broadcast_source_and_target())
    x = draw(values(small))
    return Case([x], lambda t: tm.broadcast_to(t, big), lambda a: np.broadcast_to(a, big), f"to {big}")


@st.composite
def sum_to_case(draw: st.DrawFn) -> Case:
    small, big = draw(broadcast_source_and_target())
    x = draw(values(big))

    def ref(a: np.ndarray) -> np.ndarray:
        lead = a.ndim - len(small)
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(small) if n == 1 and a.shape[lead + i] != 1)
        return a.sum(axis=axes, keepdims=True).reshape(small)

    return Case([x], lambda t: tm.sum_to(t, small), ref, f"to {small}")


@st.composite
def expand_dims_case(draw: st.DrawFn) -> Case:
    shape = draw(shapes)
    x = draw(values(shape))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return Case([x], lambda t: tm.expand_dims(t, axis), lambda a: np.expand_dims(a, axis), f"axis={axis}")


@st.composite
def squeeze_case(draw: st.DrawFn) -> Case:
    shape = tuple(draw(st.lists(st.integers(1, 2), min_size=1, max_size=4)))
    x = draw(values(shape))
    ones = [i for i, n in enumerate(shape) if n == 1]
    axis = draw(st.one_of(st.none(), st.sampled_from(ones))) if ones else None
    return Case([x], lambda t: tm.squeeze(t, axis), lambda a: np.squeeze(a, axis), f"axis={axis}")


@st.composite
def concatenate_case(draw: st.DrawFn) -> Case:
    if draw(st.booleans()):  # axis=None: any shapes, flattened (as NumPy)
        arrays = draw(st.lists(shapes.flatmap(values), min_size=1, max_size=3))
        return Case(arrays, lambda *ts: tm.concatenate(ts, None), lambda *a: np.concatenate(a, None), "axis=None")
    shape = draw(nonscalar_shapes)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    count = draw(st.integers(1, 3))
    arrays = []
    for _ in range(count):
        s = list(shape)
        s[axis] = draw(st.integers(1, 3))
        arrays.append(draw(values(tuple(s))))
    return Case(arrays, lambda *ts: tm.concatenate(ts, axis), lambda *a: np.concatenate(a, axis), f"axis={axis}")


@st.composite
def stack_case(draw: st.DrawFn) -> Case:
    shape = draw(shapes)
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    count = draw(st.integers(1, 3))
    arrays = [draw(values(shape)) for _ in range(count)]
    return Case(arrays, lambda *ts: tm.stack(ts, axis), lambda *a: np.stack(a, axis), f"axis={axis}")


@st.composite
def where_case(draw: st.DrawFn) -> Case:
    (sc, sa, sb), _ = draw(hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3))
    cond = draw(hnp.arrays(bool, sc))
    a, b = draw(values(sa)), draw(values(sb))
    return Case([a, b], lambda x, y: tm.where(cond, x, y), lambda x, y: np.where(cond, x, y), f"cond={cond.tolist()}")


@st.composite
def getitem_case(draw: st.DrawFn) -> Case:
    shape = draw(nonscalar_shapes)
    x = draw(values(shape))
    kind = draw(st.sampled_from(["basic", "integer_array", "mask", "mixed"]))
    if kind == "basic":
        index = tuple(
            draw(
                st.one_of(
                    st.integers(-n, n - 1),
                    st.builds(
                        slice,
                        st.none() | st.integers(-n, n),
                        st.none() | st.integers(-n, n),
                        st.sampled_from([None, 1, 2, -1]),
                    ),
                )
            )
            for n in shape[: draw(st.integers(1, len(shape)))]
        )
        if (
            all(isinstance(i, slice) for i in index)
            and math.prod(len(range(*s.indices(n))) for s, n in zip(index, shape)) == 0
        ):
            index = (slice(None),)
    elif kind == "integer_array":  # repeated indices: the backward must add, not overwrite
        index = np.array(draw(st.lists(st.integers(-shape[0], shape[0] - 1), min_size=1, max_size=5)))
    elif kind == "mask":
        mask = draw(hnp.arrays(bool, shape))
        index = mask
    else:
        rows = np.array(draw(st.lists(st.integers(0, shape[0] - 1), min_size=1, max_size=4)))
        index = (rows, slice(None, None, -1)) if len(shape) > 1 else (rows,)
    return Case([x], lambda t: t[index], lambda a: a[index], f"index={index!r}")


@st.composite
def matmul_case(draw: st.DrawFn) -> Case:
    n, k, m = (draw(st.integers(1, 3)) for _ in range(3))
    kind = draw(st.sampled_from(["batched", "vector_left", "vector_right", "vectors"]))
    if kind == "batched":
        (ba, bb), _ = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=2))
        sa, sb = ba + (n, k), bb + (k, m)
    elif kind == "vector_left":
        sa, sb = (k,), draw(st.sampled_from([(k, m), (2, k, m)]))
    elif kind == "vector_right":
        sa, sb = draw(st.sampled_from([(n, k), (2, n, k)])), (k,)
    else:
        sa, sb = (k,), (k,)
    a, b = draw(values(sa)), draw(values(sb))
    return Case([a, b], tm.matmul, np.matmul, kind)


def naive_conv2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, stride: int, padding: int) -> np.ndarray:
    """Direct loops over output positions (reference for tm.conv2d, leading axes broadcast)."""
    pad = [(0, 0)] * (x.ndim - 2) + [(padding, padding)] * 2
    xp = np.pad(x, pad)
    kh, kw = w.shape[-2:]
    oh = (xp.shape[-2] - kh) // stride + 1
    ow = (xp.shape[-1] - kw) // stride + 1
    lead = np.broadcast_shapes(x.shape[:-4], w.shape[:-4])
    n, f = x.shape[-4], w.shape[-4]
    out = np.zeros(lead + (n, f, oh, ow), dtype=np.result_type(x, w))
    xb = np.broadcast_to(xp, lead + xp.shape[-4:])
    wb = np.broadcast_to(w, lead + w.shape[-4:])
    for p in range(oh):
        for q in range(ow):
            window = xb[..., :, None, :, p * stride : p * stride + kh, q * stride : q * stride + kw]
            out[..., p, q] = (window * wb[..., None, :, :, :, :]).sum(axis=(-3, -2, -1))
    if bias is not None:
        out = out + bias[..., None, :, None, None]
    return out


@st.composite
def conv2d_case(draw: st.DrawFn) -> Case:
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(2, 4)), draw(st.integers(2, 4))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    if kh > h + 2 * padding or kw > w + 2 * padding:
        kh, kw = 1, 1
    tasks = draw(st.sampled_from([(), (2,)]))  # a leading task axis: one weight set per task
    x = draw(values(tasks + (n, c, h, w)))
    weight = draw(values(tasks + (f, c, kh, kw)))
    arrays = [x, weight]
    if draw(st.booleans()):
        arrays.append(draw(values(tasks + (f,))))
    note = f"stride={stride}, padding={padding}"

    def fn(*ts: tm.Tensor) -> tm.Tensor:
        return tm.conv2d(ts[0], ts[1], ts[2] if len(ts) == 3 else None, stride=stride, padding=padding)

    def ref(*a: np.ndarray) -> np.ndarray:
        return naive_conv2d(a[0], a[1], a[2] if len(a) == 3 else None, stride, padding)

    return Case(arrays, fn, ref, note)


def naive_pool(x: np.ndarray, k: int, stride: int, padding: int, reduce: Callable, pad_value: float) -> np.ndarray:
    pad = [(0, 0)] * (x.ndim - 2) + [(padding, padding)] * 2
    xp = np.pad(x, pad, constant_values=pad_value)
    oh = (xp.shape[-2] - k) // stride + 1
    ow = (xp.shape[-1] - k) // stride + 1
    out = np.zeros(x.shape[:-2] + (oh, ow), dtype=x.dtype)
    for p in range(oh):
        for q in range(ow):
            out[..., p, q] = reduce(xp[..., p * stride : p * stride + k, q * stride : q * stride + k], axis=(-2, -1))
    return out


@st.composite
def pool_case(draw: st.DrawFn, is_max: bool) -> Case:
    lead = draw(st.sampled_from([(1,), (2,), (1, 2), (2, 1)]))
    h, w = draw(st.integers(2, 4)), draw(st.integers(2, 4))
    k = draw(st.integers(1, min(h, w)))
    stride = draw(st.one_of(st.none(), st.integers(1, 2)))
    padding = draw(st.integers(0, k // 2))
    x = draw(distinct(lead + (h, w)) if is_max else values(lead + (h, w)))
    fn = tm.max_pool2d if is_max else tm.avg_pool2d
    s = k if stride is None else stride

    def ref(a: np.ndarray) -> np.ndarray:
        return naive_pool(a, k, s, padding, np.max if is_max else np.mean, -np.inf if is_max else 0.0)

    return Case([x], lambda t: fn(t, k, stride, padding), ref, f"k={k}, stride={stride}, padding={padding}")


@st.composite
def astype_case(draw: st.DrawFn) -> Case:
    """To float64: the finite differences run in float64, so a cast to float32 would only measure its
    rounding (float32 targets are checked by the dtype tests)."""
    x = draw(shapes.flatmap(values))
    copy = draw(st.booleans())
    return Case(
        [x], lambda t: tm.astype(t, np.float64, copy=copy), lambda a: a.astype(np.float64, copy=copy), f"copy={copy}"
    )


@st.composite
def integer_power_case(draw: st.DrawFn) -> Case:
    """x ** n for a constant integer n in 0..3 and any real base, 0 and negatives included: the
    derivatives are those of a polynomial everywhere (x ** 0 = 1 has derivative 0 at x = 0 too)."""
    x = draw(shapes.flatmap(lambda s: values(s, -2.0, 2.0)))
    x = np.where(draw(hnp.arrays(bool, x.shape)), 0.0, x)  # exact zeros: the edge of the real power
    n = draw(st.integers(0, 3))
    exponent = draw(st.sampled_from([n, float(n)]))
    return Case([x], lambda t: tm.power(t, exponent), lambda a: np.power(a, exponent), f"exponent={exponent!r}")


def np_sigmoid(a: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-a))


# ---- the NumPy a researcher derives with: more elementwise functions and reductions -----------------


@st.composite
def off_grid(draw: st.DrawFn, shape: tuple[int, ...], step: float = 1.0, low: int = -3, high: int = 3) -> np.ndarray:
    """Values at least 0.1 * step away from every multiple of ``step`` (the jumps of floor/ceil, and
    shifted by half a step, of round)."""
    whole = draw(hnp.arrays(np.float64, shape, elements=st.integers(low, high).map(float)))
    fraction = draw(values(shape, 0.1, 0.9))
    return (whole + fraction) * step


@st.composite
def round_case(draw: st.DrawFn) -> Case:
    decimals = draw(st.integers(-1, 2))
    step = 10.0**-decimals
    x = draw(shapes.flatmap(lambda s: off_grid(s, step))) - step / 2  # away from the halves, where round jumps
    return Case([x], lambda t: tm.round(t, decimals), lambda a: np.round(a, decimals), f"decimals={decimals}")


@st.composite
def interleaved_pair(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Two broadcasting arrays whose entries are never within 0.1 of each other (no ties for maximum)."""
    (sa, sb), _ = draw(broadcast_pairs)
    a = draw(hnp.arrays(np.float64, sa, elements=st.integers(-4, 4).map(float))) * 0.6
    b = draw(hnp.arrays(np.float64, sb, elements=st.integers(-4, 4).map(float))) * 0.6 + 0.3
    return a + draw(values(sa, 0.0, 0.1)), b + draw(values(sb, 0.0, 0.1))


@st.composite
def extremum_case(draw: st.DrawFn, is_max: bool) -> Case:
    a, b = draw(interleaved_pair())
    fn, ref = (tm.maximum, np.maximum) if is_max else (tm.minimum, np.minimum)
    if draw(st.booleans()):
        c = 0.15  # a Python scalar on the right, never tied
        return Case([a], lambda x: fn(x, c), lambda x: ref(x, c), "right=0.15")
    return Case([a, b], fn, ref)


@st.composite
def clip_case(draw: st.DrawFn) -> Case:
    """x on a grid offset from the bounds' grid, so no entry sits within 0.1 of a bound; the bounds are
    None, scalars or (differentiable) tensors."""
    shape = draw(shapes)
    x = draw(hnp.arrays(np.float64, shape, elements=st.integers(-8, 8).map(float))) * 0.3 + 0.1
    x = x + draw(values(shape, 0.0, 0.1))
    kinds = draw(st.sampled_from([("scalar", "scalar"), ("none", "scalar"), ("scalar", "none"), ("tensor", "tensor")]))
    if kinds == ("tensor", "tensor"):
        low = draw(hnp.arrays(np.float64, shape[-1:], elements=st.integers(-4, -1).map(float))) * 0.3  # never = high
        high = draw(hnp.arrays(np.float64, shape[-1:], elements=st.integers(0, 4).map(float))) * 0.3
        return Case([x, low, high], tm.clip, np.clip, "tensor bounds")
    low = None if kinds[0] == "none" else -0.6
    high = None if kinds[1] == "none" else 0.9
    return Case([x], lambda t: tm.clip(t, low, high), lambda a: np.clip(a, low, high), f"bounds=({low}, {high})")


@st.composite
def mod_case(draw: st.DrawFn) -> Case:
    """x1 = (q + f) x2 with f in [0.1, 0.9]: x1 / x2 never near an integer, where mod jumps."""
    shape = draw(shapes)
    divisor = draw(away_from_zero(shape, 0.5, 2.0))
    quotient = draw(off_grid(shape))
    if draw(st.booleans()):
        c = 1.7
        return Case([quotient * c], lambda t: tm.mod(t, c), lambda a: np.mod(a, c), "x2=1.7")
    return Case([quotient * divisor, divisor], tm.mod, np.mod)


@st.composite
def softplus_case(draw: st.DrawFn) -> Case:
    beta = draw(st.sampled_from([1.0, 0.5, 2.0]))
    threshold = draw(st.sampled_from([20.0, 1.0]))
    x = draw(shapes.flatmap(lambda s: values(s, -6.0, 6.0)))
    x = np.where(np.abs(beta * x - threshold) < 0.1, x + 0.2 / beta, x)  # off the switch to the linear regime

    def ref(a: np.ndarray) -> np.ndarray:
        return np.where(beta * a > threshold, a, np.log1p(np.exp(beta * a)) / beta)

    return Case(
        [x], lambda t: tm.softplus(t, beta=beta, threshold=threshold), ref, f"beta={beta}, threshold={threshold}"
    )


@st.composite
def weighted_logsumexp_case(draw: st.DrawFn) -> Case:
    (sx, sb), _ = draw(broadcast_pairs)
    x, b = draw(values(sx, -5.0, 5.0)), draw(values(sb, 0.2, 2.0))
    ndim = len(np.broadcast_shapes(sx, sb))
    axis = draw(axis_choice(ndim))
    keepdims = draw(st.booleans())

    def ref(a: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.log(np.sum(w * np.exp(a), axis=axis, keepdims=keepdims))

    return Case(
        [x, b],
        lambda t, w: tm.logsumexp(t, axis=axis, keepdims=keepdims, b=w),
        ref,
        f"axis={axis}, keepdims={keepdims}",
    )


@st.composite
def prod_case(draw: st.DrawFn) -> Case:
    """Products with exact zeros (none, one or several in a row): the derivative is the product of the others."""
    # Nonzero entries at least 0.1 from zero: y / x_i for a tiny x_i cancels in its second derivative
    # (an exact 0 computed as the difference of two terms of size y / x_i^2, as in PyTorch's prod).
    case = draw(reduction(tm.prod, np.prod, lambda s: away_from_zero(s, 0.1, 1.5)))
    x = case.arrays[0]
    zeros = draw(hnp.arrays(bool, x.shape, elements=st.booleans()))
    x = np.where(zeros & draw(st.booleans()), 0.0, x)
    return Case([x], case.fn, case.ref, case.note + f", zeros={int((x == 0).sum())}")


@st.composite
def running_case(draw: st.DrawFn, name: str) -> Case:
    shape = draw(shapes)
    x = draw(away_from_zero(shape, 0.1, 1.5))  # as prod's: see prod_case
    if name == "cumprod" and draw(st.booleans()):
        x = np.where(draw(hnp.arrays(bool, shape)), 0.0, x)  # zeros: the exact path (running products, no division)
    axis = None if not shape else draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
    fn, ref = getattr(tm, name), getattr(np, name)
    return Case([x], lambda t: fn(t, axis=axis), lambda a: ref(a, axis=axis), f"axis={axis}")


@st.composite
def spread_case(draw: st.DrawFn, name: str) -> Case:
    """var and std over axes holding at least ddof + 1 distinct values (std's derivative is infinite at 0)."""
    shape = draw(nonscalar_shapes)
    x = draw(distinct(shape))
    axis = draw(axis_choice(len(shape)))
    axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
    n = math.prod(shape[a] for a in axes)
    ddof = draw(st.integers(0, max(0, min(1, n - 1))))
    if n < 2:
        ddof = 0
    keepdims = draw(st.booleans())
    fn, ref = getattr(tm, name), getattr(np, name)
    if n < 2 and name == "std":  # a single value: std = 0, where its derivative is infinite
        x, axis, ddof = draw(distinct((2,) + shape)), 0, 0
    return Case(
        [x],
        lambda t: fn(t, axis=axis, ddof=ddof, keepdims=keepdims),
        lambda a: ref(a, axis=axis, ddof=ddof, keepdims=keepdims),
        f"axis={axis}, ddof={ddof}, keepdims={keepdims}",
    )


@st.composite
def sort_case(draw: st.DrawFn) -> Case:
    shape = draw(shapes)
    x = draw(distinct(shape))  # ties: the permutation would jump under a small perturbation
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1))) if shape else None
    return Case([x], lambda t: tm.sort(t, axis=axis), lambda a: np.sort(a, axis=axis), f"axis={axis}")


@st.composite
def take_along_axis_case(draw: st.DrawFn) -> Case:
    shape = draw(nonscalar_shapes)
    x = draw(values(shape))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    index_shape = list(shape)
    index_shape[axis] = draw(st.integers(1, 4))  # repeated indices: the gradient must add up
    index_shape = [1 if draw(st.booleans()) and i != axis % len(shape) else n for i, n in enumerate(index_shape)]
    n = shape[axis]
    index = draw(hnp.arrays(np.intp, tuple(index_shape), elements=st.integers(-n, n - 1)))
    return Case(
        [x],
        lambda t: tm.take_along_axis(t, index, axis),
        lambda a: np.take_along_axis(a, index, axis),
        f"axis={axis}, indices={index.tolist()}",
    )


def unit_interval(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return values(shape, -0.9, 0.9)


# ---- edges of the domain ---------------------------------------------------------------------

INF = np.inf
LN2 = math.log(2.0)
POWER_EDGES = [
    Edge(
        "x ** 0 = 1 for every x, 0 included",
        lambda x: x**0,
        [np.array([0.0, 2.0, -1.5])],
        np.ones(3),
        [np.zeros(3)] * 3,
    ),
    Edge("x ** 1 at 0", lambda x: x**1, [np.array(0.0)], 0.0, [1.0, 0.0, 0.0]),
    Edge("x ** 2 at 0", lambda x: x**2, [np.array(0.0)], 0.0, [0.0, 2.0, 0.0]),
    Edge("x ** 3 at 0", lambda x: x**3, [np.array(0.0)], 0.0, [0.0, 0.0, 6.0]),
    Edge(
        "0 ** y at y = 0, 2: d/dy = 0 (0^y is constant for y > 0); beyond the first order at a zero base, NaN",
        lambda y: 0.0**y,
        [np.array([0.0, 2.0])],
        np.array([1.0, 0.0]),
        [np.zeros(2), np.full(2, np.nan), np.full(2, np.nan)],
    ),
    Edge(
        "x ** x at 0: 0^0 = 1, d/dx = 0 by convention (the one-sided limit is -inf); no second derivative",
        lambda x: x**x,
        [np.array(0.0)],
        1.0,
        [0.0, np.nan, np.nan],
    ),
    Edge(
        "x ** y at (0, 0) and (0, 1): the convention's first derivatives, then NaN (as PyTorch)",
        lambda x, y: x**y,
        [np.array([0.0, 0.0]), np.array([0.0, 1.0])],
        np.array([1.0, 0.0]),
        [[np.array([0.0, 1.0]), np.array([0.0, 0.0])], [np.full(2, np.nan), np.full(2, np.nan)]],
    ),
    # d/dx x^x = x^x (ln x + 1), d2 = x^x ((ln x + 1)^2 + 1/x),
    # d3 = x^x ((ln x + 1)^3 + 3 (ln x + 1) / x - 1 / x^2): at x = 1, 1, 2 and 3.
    # PyTorch 2.13 gives 2 for the third: its mask at exponent 0 drops a term. JAX gives 3.
    Edge("x ** x at 1", lambda x: x**x, [np.array(1.0)], 1.0, [1.0, 2.0, 3.0]),
    # f = x^y at (2, 0): f_x = y x^(y-1) = 0, f_y = x^y ln x = ln 2; f_xx = 0, f_xy = 1/x = 1/2,
    # f_yy = ln2^2; f_xxx = 0, f_xxy = -1/x^2 = -1/4, f_xyy = 2 ln x / x = ln 2, f_yyy = ln2^3.
    # PyTorch 2.13 drops f_xy on one of its two paths (its mask at exponent 0); JAX agrees with these.
    Edge(
        "x ** y at (2, 0): the mixed partial is 1/x",
        lambda x, y: x**y,
        [np.array(2.0), np.array(0.0)],
        1.0,
        [[0.0, LN2], [0.5, 0.5 + LN2**2], [-0.5 + LN2, -0.25 + 2 * LN2 + LN2**3]],
    ),  # fmt: skip
    # At a zero base with an exponent that requires grad, whether a derivative exists depends on b and
    # the order (x**y at (0, 2) has the Hessian [[2, 0], [0, 0]] but no third derivative): every
    # derivative beyond the first is NaN there, in every mode, as PyTorch gives.
    Edge(
        "x ** y at (0, 2): the first derivatives, then NaN (as PyTorch)",
        lambda x, y: x**y,
        [np.array(0.0), np.array(2.0)],
        0.0,
        [[0.0, 0.0], [np.nan, np.nan]],
    ),
]


def _softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max())
    return e / e.sum()


WEIGHTS = np.array([0.5, -1.0, 2.0])  # so that the sum of softmax's outputs is not the constant 1
_LSE_X, _LSE_B = np.array([2.0, 1.0, -1.0]), np.array([0.0, 1.0, 0.5])
_LSE_P = np.exp(_LSE_X) / np.sum(_LSE_B * np.exp(_LSE_X))
_LSE_F = np.sum((_LSE_B + 1) * _LSE_P)
_P = _softmax(np.array([-INF, 0.0, 1.0]))
LOGSUMEXP_EDGES = [
    Edge(
        "-inf entries carry no weight", tm.logsumexp, [np.array([-INF, 0.0])], 0.0, [np.array([0.0, 1.0]), np.zeros(2)]
    ),  # fmt: skip
    Edge(
        "a row of -inf gives -inf; its gradient is 0 (PyTorch: NaN)",
        tm.logsumexp,
        [np.array([-INF, -INF])],
        -INF,
        [np.zeros(2), np.zeros(2)],
    ),  # fmt: skip
    Edge(
        "a row holding +inf gives +inf; the +inf entry takes the weight (PyTorch: NaN there, 0 elsewhere)",
        tm.logsumexp,
        [np.array([INF, 1.0])],
        INF,
        [np.array([1.0, 0.0]), np.zeros(2)],
    ),  # fmt: skip
    Edge(
        "rows of -inf, finite and partly -inf",
        lambda x: tm.logsumexp(x, axis=1),
        [np.array([[-INF, -INF], [0.0, 1.0], [-INF, 2.0]])],
        np.array([-INF, np.log1p(np.e), 2.0]),
        [np.array([[0.0, 0.0], [1 / (1 + np.e), np.e / (1 + np.e)], [0.0, 1.0]])],
    ),  # fmt: skip
    Edge(
        "an empty axis: the log of an empty sum",
        lambda x: tm.logsumexp(x, axis=1),
        [np.zeros((2, 0))],
        np.array([-INF, -INF]),
        [np.zeros((2, 0))],
    ),  # fmt: skip
    # With weights b, SciPy's rule: an entry of weight 0 takes no part, however large its x (masking).
    Edge(
        "b = 0 on the largest entry, a huge one: the others' value (SciPy), and their weights",
        lambda x: tm.logsumexp(x, b=[0.0, 1.0]),
        [np.array([1000.0, 1.0])],
        1.0,
        [np.array([0.0, 1.0]), np.zeros(2), np.zeros(2)],
    ),  # fmt: skip
    Edge(
        "b = 0 on a +inf entry: the others' value",
        lambda x: tm.logsumexp(x, b=[0.0, 1.0]),
        [np.array([INF, 1.0])],
        1.0,
        [np.array([0.0, 1.0]), np.zeros(2)],
    ),  # fmt: skip
    Edge(
        "weighted, a row of -inf: -inf, every derivative 0 (as without weights)",
        lambda x, b: tm.logsumexp(x, b=b),
        [np.array([-INF, -INF]), np.array([1.0, 2.0])],
        -INF,
        [[np.zeros(2), np.zeros(2)], [np.zeros(2), np.zeros(2)]],
    ),  # fmt: skip
    # dy/dx_i = b_i / B, dy/db_i = 1 / B at the +inf entries (B = 4, the sum of their weights); the sum of both
    # is 1 + 2 / B, whose b-derivative is -2 / B^2, and that sum's (-4 / B^2) 8 / B^3; in x, 0.
    Edge(
        "weighted, a row holding +inf: its +inf entries share the weight in proportion to b",
        lambda x, b: tm.logsumexp(x, b=b),
        [np.array([INF, INF, 1.0]), np.array([3.0, 1.0, 1.0])],
        INF,
        [
            [np.array([0.75, 0.25, 0.0]), np.array([0.25, 0.25, 0.0])],
            [np.zeros(3), np.array([-0.125, -0.125, 0.0])],
            [np.zeros(3), np.array([0.125, 0.125, 0.0])],
        ],
    ),  # fmt: skip
    # a weight 0 that requires grad: with p = e^x / sum(b e^x), dy/dx = b p, dy/db = p; the sum of both
    # F = sum((b + 1) p) has dF/dx = (b + 1) p - b p F, dF/db = p (1 - F).
    Edge(
        "weighted, b_0 = 0 requiring grad: dy/dx_0 = 0, dy/db_0 = e^(x_0 - y)",
        lambda x, b: tm.logsumexp(x, b=b),
        [_LSE_X, _LSE_B],
        np.log(np.e + 0.5 / np.e),
        [[_LSE_B * _LSE_P, _LSE_P], [(_LSE_B + 1) * _LSE_P - _LSE_B * _LSE_P * _LSE_F, _LSE_P * (1 - _LSE_F)]],
    ),  # fmt: skip
]
SOFTMAX_EDGES = [
    Edge(
        "a -inf entry",
        lambda x: tm.softmax(x) * WEIGHTS,
        [np.array([-INF, 0.0, 1.0])],
        _P * WEIGHTS,
        [_P * (WEIGHTS - WEIGHTS @ _P)],
    ),  # fmt: skip
    Edge("an empty axis", lambda x: tm.softmax(x, axis=1), [np.zeros((2, 0))], np.zeros((2, 0)), [np.zeros((2, 0))]),
]
LOG_SOFTMAX_EDGES = [
    Edge(
        "a -inf entry",
        lambda x: tm.log_softmax(x) * WEIGHTS,
        [np.array([-INF, 0.0, 1.0])],
        (np.array([-INF, 0.0, 1.0]) - np.log1p(np.e)) * WEIGHTS,
        [WEIGHTS - _P * WEIGHTS.sum()],
    ),  # fmt: skip
    Edge("an empty axis", lambda x: tm.log_softmax(x, axis=0), [np.zeros(0)], np.zeros(0), [np.zeros(0)]),
]

MAXIMUM_EDGES = [
    Edge(
        "ties share the gradient (as PyTorch and JAX); a NaN takes it",
        tm.maximum,
        [np.array([1.0, 2.0, np.nan, 0.0]), np.array([1.0, 1.0, 0.0, np.nan])],
        np.array([1.0, 2.0, np.nan, np.nan]),
        [[np.array([0.5, 1.0, 1.0, 0.0]), np.array([0.5, 0.0, 0.0, 1.0])]],
    ),
]
LOGADDEXP_EDGES = [
    Edge(
        "-inf on both sides: each gets 1/2 (the limit along a = b); -inf against a finite value gets 0",
        tm.logaddexp,
        [np.array([-INF, -INF]), np.array([-INF, 0.0])],
        np.array([-INF, 0.0]),
        [[np.array([0.5, 0.0]), np.array([0.5, 1.0])]],
    ),
    Edge("+inf on both sides: each gets 1/2", tm.logaddexp, [np.array(INF), np.array(INF)], INF, [[0.5, 0.5]]),
]
HYPOT_EDGES = [
    Edge(
        "at the origin every derivative is 0 (the subgradient, then 0: as abs and linalg.norm at 0)",
        tm.hypot,
        [np.array(0.0), np.array(0.0)],
        0.0,
        [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]],
    ),
]
PROD_EDGES = [
    # d/dx_i prod = product of the others; d2/dx_i dx_j = product of all but i and j.
    # d3 of a product of three is 2 for each entry (every ordered pair of the other two), whatever x.
    Edge("one zero", tm.prod, [np.array([2.0, 0.0, 3.0])], 0.0, [[0.0, 6.0, 0.0], [3.0, 5.0, 2.0], [2.0, 2.0, 2.0]]),
    Edge("two zeros", tm.prod, [np.array([2.0, 0.0, 0.0])], 0.0, [np.zeros(3), [0.0, 2.0, 2.0], [2.0, 2.0, 2.0]]),
]
CUMPROD_EDGES = [
    # sum(cumprod(x)) = x0 + x0 x1 + x0 x1 x2: its gradient, then that of the gradient's sum, at (2, 0, 3)
    Edge(
        "a zero",
        tm.cumprod,
        [np.array([2.0, 0.0, 3.0])],
        np.array([2.0, 0.0, 0.0]),
        [[1.0, 8.0, 0.0], [4.0, 6.0, 2.0], [2.0, 2.0, 2.0]],
    ),
]


SPECS = [
    OpSpec("add", binary(tm.add, np.add)),
    OpSpec("sub", binary(tm.sub, np.subtract)),
    OpSpec("mul", binary(tm.mul, np.multiply)),
    OpSpec("div", binary(tm.div, np.divide, right=lambda s: away_from_zero(s, 0.5, 3.0))),
    OpSpec(
        "power",
        st.one_of(
            binary(tm.power, np.power, left=lambda s: values(s, 0.5, 2.0), right=lambda s: values(s, -2.0, 2.0)),
            integer_power_case(),
        ),
        third_order=True,
        edges=POWER_EDGES,
    ),
    OpSpec("neg", unary(tm.neg, np.negative, values)),
    OpSpec(
        "exp",
        unary(tm.exp, np.exp, values),
        third_order=True,
        edges=[Edge("exp(-inf) = 0", tm.exp, [np.array(-INF)], 0.0, [0.0, 0.0])],
    ),  # fmt: skip
    OpSpec("log", unary(tm.log, np.log, lambda s: values(s, 0.2, 5.0))),
    OpSpec("sqrt", unary(tm.sqrt, np.sqrt, lambda s: values(s, 0.2, 5.0))),
    OpSpec(
        "abs",
        unary(tm.abs, np.abs, away_from_zero),
        edges=[Edge("d|x|/dx = sign(0) = 0 at the kink", tm.abs, [np.array(0.0)], 0.0, [0.0, 0.0])],
    ),  # fmt: skip
    OpSpec(
        "tanh",
        unary(tm.tanh, np.tanh, values),
        third_order=True,
        edges=[Edge("tanh(-inf, inf)", tm.tanh, [np.array([-INF, INF])], np.array([-1.0, 1.0]), [np.zeros(2)] * 2)],
    ),  # fmt: skip
    OpSpec(
        "sigmoid",
        unary(tm.sigmoid, np_sigmoid, lambda s: values(s, -6.0, 6.0)),
        edges=[
            Edge("sigmoid(-inf, inf)", tm.sigmoid, [np.array([-INF, INF])], np.array([0.0, 1.0]), [np.zeros(2)] * 2)
        ],
    ),  # fmt: skip
    OpSpec(
        "relu",
        unary(tm.relu, lambda a: np.maximum(a, 0), away_from_zero),
        edges=[Edge("relu'(0) = 0 at the kink", tm.relu, [np.array(0.0)], 0.0, [0.0, 0.0])],
    ),  # fmt: skip
    OpSpec(
        "softplus",
        st.one_of(unary(tm.softplus, lambda a: np.log1p(np.exp(a)), lambda s: values(s, -6.0, 6.0)), softplus_case()),
        edges=[
            Edge(
                "softplus(-inf, inf)",
                tm.softplus,
                [np.array([-INF, INF])],
                np.array([0.0, INF]),
                [np.array([0.0, 1.0]), np.zeros(2)],
            )
        ],
    ),  # fmt: skip
    OpSpec("sin", unary(tm.sin, np.sin, lambda s: values(s, -4.0, 4.0))),
    OpSpec("cos", unary(tm.cos, np.cos, lambda s: values(s, -4.0, 4.0))),
    OpSpec("astype", astype_case()),
    OpSpec(
        "sum", reduction(tm.sum, np.sum), edges=[Edge("an empty sum is 0", tm.sum, [np.zeros(0)], 0.0, [np.zeros(0)])]
    ),  # fmt: skip
    OpSpec(
        "mean",
        reduction(tm.mean, np.mean),
        edges=[
            Edge(
                "the mean of nothing is NaN (as NumPy, without its warning)",
                tm.mean,
                [np.zeros(0)],
                np.nan,
                [np.zeros(0)],
            ),
            Edge(
                "over an empty axis",
                lambda x: tm.mean(x, axis=1),
                [np.zeros((2, 0))],
                np.full(2, np.nan),
                [np.zeros((2, 0))],
            ),
        ],
    ),  # fmt: skip
    OpSpec(
        "max",
        reduction(tm.max, np.max, distinct),
        edges=[
            Edge(
                "a NaN is the maximum it produced: it takes the gradient, without a warning",
                tm.max,
                [np.array([1.0, np.nan, 2.0])],
                np.nan,
                [np.array([0.0, 1.0, 0.0])],
            ),
            Edge(
                "ties share the gradient (as PyTorch's max and amax)",
                tm.max,
                [np.array([1.0, 3.0, 3.0])],
                3.0,
                [np.array([0.0, 0.5, 0.5]), np.zeros(3)],
            ),
        ],
    ),  # fmt: skip
    OpSpec(
        "min",
        reduction(tm.min, np.min, distinct),
        edges=[
            Edge(
                "ties share the gradient",
                tm.min,
                [np.array([1.0, 1.0, 3.0])],
                1.0,
                [np.array([0.5, 0.5, 0.0]), np.zeros(3)],
            )
        ],
    ),  # fmt: skip
    OpSpec(
        "logsumexp",
        st.one_of(reduction(tm.logsumexp, np_logsumexp, lambda s: values(s, -5.0, 5.0)), weighted_logsumexp_case()),
        edges=LOGSUMEXP_EDGES,
    ),
    OpSpec("softmax", softmax_case(log=False), edges=SOFTMAX_EDGES),
    OpSpec("log_softmax", softmax_case(log=True), third_order=True, edges=LOG_SOFTMAX_EDGES),
    OpSpec("reshape", reshape_case()),
    OpSpec("transpose", transpose_case()),
    OpSpec("swapaxes", swapaxes_case()),
    OpSpec("broadcast_to", broadcast_to_case()),
    OpSpec("sum_to", sum_to_case()),
    OpSpec("expand_dims", expand_dims_case()),
    OpSpec("squeeze", squeeze_case()),
    OpSpec("concatenate", concatenate_case()),
    OpSpec("stack", stack_case()),
    OpSpec("where", where_case()),
    OpSpec("getitem", getitem_case()),
    OpSpec("matmul", matmul_case(), third_order=True),
    OpSpec("conv2d", st.one_of(conv2d_case(), st.deferred(lambda: CONV2D_OPTION_CASES)), third_order=True),
    OpSpec(
        "max_pool2d",
        st.one_of(pool_case(is_max=True), st.deferred(lambda: MAX_POOL_OPTION_CASES)),
        edges=[
            Edge(
                "a tie: the first maximum of the window takes the gradient (as PyTorch and JAX)",
                lambda x: tm.max_pool2d(x, 2),
                [np.ones((1, 1, 2, 2))],
                np.ones((1, 1, 1, 1)),
                [np.array([[[[1.0, 0.0], [0.0, 0.0]]]]), np.zeros((1, 1, 2, 2))],
            )
        ],
    ),  # fmt: skip
    OpSpec("avg_pool2d", st.one_of(pool_case(is_max=False), st.deferred(lambda: AVG_POOL_OPTION_CASES))),
    # more elementwise functions
    OpSpec("square", unary(tm.square, np.square, values)),
    OpSpec("reciprocal", unary(tm.reciprocal, np.reciprocal, lambda s: away_from_zero(s, 0.5, 3.0)), third_order=True),
    OpSpec("sign", unary(tm.sign, np.sign, away_from_zero)),
    OpSpec("floor", unary(tm.floor, np.floor, off_grid)),
    OpSpec("ceil", unary(tm.ceil, np.ceil, off_grid)),
    OpSpec("round", round_case()),
    OpSpec("log1p", unary(tm.log1p, np.log1p, lambda s: values(s, -0.8, 3.0)), third_order=True),
    OpSpec("expm1", unary(tm.expm1, np.expm1, values)),
    OpSpec("log2", unary(tm.log2, np.log2, lambda s: values(s, 0.2, 5.0))),
    OpSpec("log10", unary(tm.log10, np.log10, lambda s: values(s, 0.2, 5.0))),
    OpSpec("exp2", unary(tm.exp2, np.exp2, values)),
    OpSpec("tan", unary(tm.tan, np.tan, lambda s: values(s, -1.2, 1.2)), third_order=True),
    OpSpec("arcsin", unary(tm.arcsin, np.arcsin, unit_interval), third_order=True),
    OpSpec("arccos", unary(tm.arccos, np.arccos, unit_interval)),
    OpSpec("arctan", unary(tm.arctan, np.arctan, values), third_order=True),
    OpSpec("sinh", unary(tm.sinh, np.sinh, values)),
    OpSpec("cosh", unary(tm.cosh, np.cosh, values)),
    OpSpec("arcsinh", unary(tm.arcsinh, np.arcsinh, values)),
    OpSpec("arccosh", unary(tm.arccosh, np.arccosh, lambda s: values(s, 1.1, 4.0))),
    OpSpec("arctanh", unary(tm.arctanh, np.arctanh, unit_interval), third_order=True),
    OpSpec("maximum", extremum_case(is_max=True), edges=MAXIMUM_EDGES),
    OpSpec("minimum", extremum_case(is_max=False)),
    OpSpec("clip", clip_case()),
    # x1 away from 0: arctan2 jumps by 2 pi across the negative x2 axis
    OpSpec("arctan2", binary(tm.arctan2, np.arctan2, away_from_zero, away_from_zero), third_order=True),
    OpSpec(
        "logaddexp",
        binary(tm.logaddexp, np.logaddexp, lambda s: values(s, -5.0, 5.0)),
        third_order=True,
        edges=LOGADDEXP_EDGES,
    ),
    OpSpec(
        "hypot",
        binary(tm.hypot, np.hypot, right=lambda s: away_from_zero(s, 0.5, 3.0)),
        third_order=True,
        edges=HYPOT_EDGES,
    ),
    OpSpec("mod", mod_case()),
    # more reductions, running sums and products, sorting
    # prod and cumprod: third order by their edges at exact zeros and test_elementwise_and_reductions.py away
    # from them (the generated check would difference second derivatives at x_i = ±1e-6, where y / x_i cancels)
    OpSpec("prod", prod_case(), edges=PROD_EDGES),
    OpSpec("cumsum", running_case("cumsum")),
    OpSpec("cumprod", running_case("cumprod"), edges=CUMPROD_EDGES),
    OpSpec("var", spread_case("var")),
    OpSpec("std", spread_case("std"), third_order=True),
    OpSpec("sort", sort_case()),
    OpSpec("take_along_axis", take_along_axis_case()),
]

# Families with many ops keep their specifications in their own files, built on the strategies above.
from op_specs_conv import AVG_POOL_OPTION_CASES, CONV2D_OPTION_CASES, CONV_SPECS, MAX_POOL_OPTION_CASES  # noqa: E402
from op_specs_linalg import LINALG_SPECS  # noqa: E402
from op_specs_shape import SHAPE_SPECS  # noqa: E402

SPECS += SHAPE_SPECS + LINALG_SPECS + CONV_SPECS
SPECS_BY_NAME = {spec.name: spec for spec in SPECS}
assert len(SPECS_BY_NAME) == len(SPECS), "two specifications share a name"
