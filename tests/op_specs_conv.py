"""Gradient specifications of convolution and pooling options (strategies and types: op_specs.py).

The options of ``conv2d`` (stride/padding/dilation pairs, "same"/"valid", groups, unbatched input),
``max_pool2d`` (pairs, dilation, ceil_mode) and ``avg_pool2d`` (pairs, ceil_mode, count_include_pad,
divisor_override) are strategies of cases, drawn alongside the plain cases of the "conv2d",
"max_pool2d" and "avg_pool2d" specifications in op_specs.py (one specification per op). Each has a
naive reference that walks the windows one output position at a time, written from PyTorch's
definitions independently of tinymeta's im2col.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from op_specs import Case, OpSpec, distinct, values

import tinymeta as tm

CONV_SPECS: list[OpSpec] = []  # the options below join the specifications of op_specs.py instead


def _pair(value: Any) -> tuple[int, int]:
    return tuple(value) if isinstance(value, tuple) else (value, value)


def _int_or_pair(draw: st.DrawFn, pair: tuple[int, int]) -> Any:
    """``pair`` as given, or as one int when both are equal and a coin says so."""
    return pair[0] if pair[0] == pair[1] and draw(st.booleans()) else pair


def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's ``pooling_output_shape``: the last window must start inside the image or its left padding."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


# ---- conv2d --------------------------------------------------------------------------------------


def conv_padding(padding: Any, kernel: tuple[int, int], dilation: tuple[int, int]) -> list[tuple[int, int]]:
    """(before, after) per axis: "same" pads d (k - 1) in all, the odd one after (PyTorch)."""
    if padding == "valid":
        return [(0, 0), (0, 0)]
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [(t // 2, t - t // 2) for t in totals]
    return [(p, p) for p in _pair(padding)]


def naive_conv2d_options(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, stride: Any, padding: Any, dilation: Any, groups: int
) -> np.ndarray:
    """y[..., n, f, p, q] = bias[f] + sum_{c, i, j} w[f, c, i, j] x_pad[n, g C/groups + c, p sh + i dh, q sw + j dw]."""
    (sh, sw), (dh, dw), (kh, kw) = _pair(stride), _pair(dilation), w.shape[-2:]
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    xp = np.pad(x, [(0, 0)] * (x.ndim - 2) + conv_padding(padding, (kh, kw), (dh, dw)))
    oh = (xp.shape[-2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[-1] - dw * (kw - 1) - 1) // sw + 1
    lead = np.broadcast_shapes(x.shape[:-4], w.shape[:-4])
    n, c, f = x.shape[-4], x.shape[-3], w.shape[-4]
    per_group, filters_per_group = c // groups, f // groups
    out = np.zeros(lead + (n, f, oh, ow), dtype=np.result_type(x, w))
    for o in range(f):
        channels = slice(o // filters_per_group * per_group, (o // filters_per_group + 1) * per_group)
        for p in range(oh):
            for q in range(ow):
                rows = slice(p * sh, p * sh + dh * (kh - 1) + 1, dh)
                window = xp[..., channels, rows, q * sw : q * sw + dw * (kw - 1) + 1 : dw]
                out[..., o, p, q] = (window * w[..., None, o, :, :, :]).sum(axis=(-3, -2, -1))
    if bias is not None:
        out = out + bias[..., None, :, None, None]
    return out[..., 0, :, :, :] if unbatched else out


@st.composite
def conv2d_option_case(draw: st.DrawFn) -> Case:
    groups = draw(st.sampled_from([1, 2]))
    c, f = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    kernel = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(
        st.one_of(st.sampled_from(["same", "valid"]), st.tuples(st.integers(0, 2), st.integers(0, 2)))
    )  # fmt: skip
    stride = (1, 1) if padding == "same" else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    pads = conv_padding(padding, tuple(kernel), dilation)
    for axis, size in enumerate((h, w)):
        if dilation[axis] * (kernel[axis] - 1) + 1 > size + sum(pads[axis]):
            kernel[axis] = 1  # no window would fit
    layout = draw(st.sampled_from(["batched", "unbatched", "tasks"]))  # tasks: one weight set per task
    lead = {"batched": (draw(st.integers(1, 2)),), "unbatched": (), "tasks": (2, 1)}[layout]
    tasks = (2,) if layout == "tasks" else ()
    arrays = [draw(values(lead + (c, h, w))), draw(values(tasks + (f, c // groups, *kernel)))]
    if draw(st.booleans()):
        arrays.append(draw(values(tasks + (f,))))
    options = dict(
        stride=_int_or_pair(draw, stride),
        padding=padding if isinstance(padding, str) else _int_or_pair(draw, padding),
        dilation=_int_or_pair(draw, dilation),
        groups=groups,
    )
    note = f"{layout}, " + ", ".join(f"{k}={v!r}" for k, v in options.items())

    def fn(*ts: tm.Tensor) -> tm.Tensor:
        return tm.conv2d(ts[0], ts[1], ts[2] if len(ts) == 3 else None, **options)

    def ref(*a: np.ndarray) -> np.ndarray:
        return naive_conv2d_options(a[0], a[1], a[2] if len(a) == 3 else None, **options)

    return Case(arrays, fn, ref, note)


# ---- pooling --------------------------------------------------------------------------------------


def _window_positions(start: int, k: int, d: int, size: int) -> list[int]:
    return [i for i in range(start, start + d * (k - 1) + 1, d) if 0 <= i < size]


def naive_max_pool2d(x: np.ndarray, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool):
    """The maximum over the image's own positions of each window (-inf for a window of padding alone)."""
    (kh, kw), (ph, pw), (dh, dw) = _pair(kernel_size), _pair(padding), _pair(dilation)
    sh, sw = (kh, kw) if stride is None else _pair(stride)
    h, w = x.shape[-2:]
    oh, ow = pool_output_size(h, kh, sh, ph, dh, ceil_mode), pool_output_size(w, kw, sw, pw, dw, ceil_mode)
    out = np.full(x.shape[:-2] + (oh, ow), -np.inf, dtype=x.dtype)
    for p in range(oh):
        for q in range(ow):
            rows, cols = _window_positions(p * sh - ph, kh, dh, h), _window_positions(q * sw - pw, kw, dw, w)
            if rows and cols:
                out[..., p, q] = x[..., rows, :][..., cols].max(axis=(-2, -1))
    return out


def naive_avg_pool2d(
    x: np.ndarray,
    kernel_size: Any,
    stride: Any,
    padding: Any,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> np.ndarray:
    """PyTorch's avg_pool2d kernel: the sum over the image's positions of each window, divided by the
    window's extent clipped to the padded image (count_include_pad) or to the image itself."""
    (kh, kw), (ph, pw) = _pair(kernel_size), _pair(padding)
    sh, sw = (kh, kw) if stride is None else _pair(stride)
    h, w = x.shape[-2:]
    oh, ow = pool_output_size(h, kh, sh, ph, 1, ceil_mode), pool_output_size(w, kw, sw, pw, 1, ceil_mode)
    out = np.zeros(x.shape[:-2] + (oh, ow), dtype=x.dtype)
    for p in range(oh):
        for q in range(ow):
            h0, w0 = p * sh - ph, q * sw - pw
            h1, w1 = min(h0 + kh, h + ph), min(w0 + kw, w + pw)
            if divisor_override is not None:
                divisor = divisor_override
            elif count_include_pad:
                divisor = (h1 - h0) * (w1 - w0)
            else:
                divisor = (min(h1, h) - max(h0, 0)) * (min(w1, w) - max(w0, 0))
            total = x[..., max(h0, 0) : min(h1, h), max(w0, 0) : min(w1, w)].sum(axis=(-2, -1))
            out[..., p, q] = total / divisor
    return out


@st.composite
def pool_options(draw: st.DrawFn, size: tuple[int, int], dilated: bool) -> dict[str, Any]:
    """kernel_size, stride, padding (and dilation), ceil_mode: each an int or a pair; always a valid pooling."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilated else (1, 1)
    ceil_mode = draw(st.booleans())
    steps = kernel if stride is None else stride
    if any(
        pool_output_size(n, k, s, p, d, ceil_mode) < 1 for n, k, s, p, d in zip(size, kernel, steps, padding, dilation)
    ):
        kernel, padding, dilation = (min(kernel[0], size[0]), min(kernel[1], size[1])), (0, 0), (1, 1)
    options = dict(
        kernel_size=_int_or_pair(draw, kernel),
        stride=None if stride is None else _int_or_pair(draw, stride),
        padding=_int_or_pair(draw, padding),
    )
    if dilated:
        options["dilation"] = _int_or_pair(draw, dilation)
    options["ceil_mode"] = ceil_mode
    return options


_POOL_LEADS = [(1,), (2,), (1, 2), (2, 1)]


@st.composite
def max_pool_option_case(draw: st.DrawFn) -> Case:
    lead = draw(st.sampled_from(_POOL_LEADS))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    options = draw(pool_options((h, w), dilated=True))
    x = draw(distinct(lead + (h, w)))
    if np.isinf(naive_max_pool2d(x, **options)).any():  # a window of padding alone (dilation): no finite value
        options["dilation"] = 1

    def ref(a: np.ndarray) -> np.ndarray:
        return naive_max_pool2d(a, **options)

    return Case([x], lambda t: tm.max_pool2d(t, **options), ref, ", ".join(f"{k}={v}" for k, v in options.items()))


@st.composite
def avg_pool_option_case(draw: st.DrawFn) -> Case:
    lead = draw(st.sampled_from(_POOL_LEADS))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    options = draw(pool_options((h, w), dilated=False))
    options["count_include_pad"] = draw(st.booleans())
    options["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 4)))
    x = draw(values(lead + (h, w)))

    def ref(a: np.ndarray) -> np.ndarray:
        return naive_avg_pool2d(a, **options)

    return Case([x], lambda t: tm.avg_pool2d(t, **options), ref, ", ".join(f"{k}={v}" for k, v in options.items()))


CONV2D_OPTION_CASES = conv2d_option_case()
MAX_POOL_OPTION_CASES = max_pool_option_case()
AVG_POOL_OPTION_CASES = avg_pool_option_case()
