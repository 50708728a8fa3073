"""2-D convolution and pooling on NCHW tensors, through an im2col gather.

``Im2Col`` copies every kernel-sized window of the (padded) input into its own column: a gather.
Its backward, ``Col2Im``, adds each column back onto the window it came from: a scatter-add. The
backward of the scatter-add is the gather again, so convolution and pooling are differentiable to
any order without any op of their own beyond this pair. A convolution is then one batched matmul
of the flattened kernels with the columns; pooling is a max or mean over each column.

A window is described per axis, as PyTorch's ``torch.nn.functional`` does: its kernel size, the
stride between windows, the dilation between the kernel's taps, and the padding before and after
the image (PyTorch's ``padding="same"`` with an even kernel, and ``ceil_mode``'s overhang, pad one
side more than the other).

Leading axes broadcast: input (..., N, C, H, W) with weights (..., F, C, kh, kw), so a batch of
tasks, each with its own weights, is one call.
"""

from __future__ import annotations

from typing import Any

import numpy

from .._checks import flag, integer
from ..backend import array_module
from ..engine import Function, Tensor, TensorLike, as_tensor, check_same_backend
from .products import matmul
from .reduction import _floating, mean
from .reduction import sum as sum_
from .shape import reshape

# this family's differentiable ops (their union is the registry: ops/__init__.py)
__all__ = ["conv2d", "max_pool2d", "avg_pool2d"]

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]  # ((top, bottom), (left, right))


class Im2Col(Function):
    """Windows of x (..., C, H, W) as columns (..., C, kh, kw, oh, ow).

    cols[..., c, i, j, p, q] = x_padded[..., c, p * sh + i * dh, q * sw + j * dw], where x_padded
    has ``padding`` ((top, bottom), (left, right)) rows and columns of ``pad_value`` around x, and
    oh = (top + H + bottom - dh (kh - 1) - 1) // sh + 1 (likewise ow). Linear in x apart from the
    padding constant, so its vjp is ``Col2Im`` (padding contributes no gradient).
    """

    __slots__ = ("kernel", "stride", "padding", "dilation", "pad_value")

    def __init__(
        self, kernel: Pair, stride: Pair, padding: Pads, dilation: Pair = (1, 1), pad_value: float = 0.0
    ) -> None:
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.pad_value = pad_value

    def forward(self, x: Any) -> Any:
        xp = array_module(x)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        if any(self.padding[0]) or any(self.padding[1]):
            widths = [(0, 0)] * (x.ndim - 2) + list(self.padding)
            x = xp.pad(x, widths, constant_values=self.pad_value)
        oh = (x.shape[-2] - dh * (kh - 1) - 1) // sh + 1
        ow = (x.shape[-1] - dw * (kw - 1) - 1) // sw + 1
        cols = xp.empty(x.shape[:-2] + (kh, kw, oh, ow), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
                cols[..., i, j, :, :] = x[..., rows, j * dw : j * dw + sw * (ow - 1) + 1 : sw]
        return cols

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return Col2Im(x.shape[-2:], self.kernel, self.stride, self.padding, self.dilation)(gy)


class Col2Im(Function):
    """The adjoint of ``Im2Col``: each column added back onto its window of a (..., C, H, W) image.

    x_padded[..., c, p * sh + i * dh, q * sw + j * dw] += cols[..., c, i, j, p, q], then the padding
    is cropped. Its vjp is ``Im2Col`` (with zero padding).
    """

    __slots__ = ("image_size", "kernel", "stride", "padding", "dilation")

    def __init__(
        self, image_size: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pads, dilation: Pair = (1, 1)
    ) -> None:
        self.image_size = tuple(image_size)
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.dilation = dilation

    def forward(self, cols: Any) -> Any:
        xp = array_module(cols)
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.stride, self.dilation
        (top, bottom), (left, right) = self.padding
        h, w = self.image_size
        oh, ow = cols.shape[-2:]
        x = xp.zeros(cols.shape[:-4] + (top + h + bottom, left + w + right), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
                x[..., rows, j * dw : j * dw + sw * (ow - 1) + 1 : sw] += cols[..., i, j, :, :]
        return x[..., top : top + h, left : left + w] if top or bottom or left or right else x

    def backward(self, gy: Tensor) -> Tensor:
        return Im2Col(self.kernel, self.stride, self.padding, self.dilation)(gy)


def _pair(value: Any, name: str, minimum: int) -> Pair:
    """An int or a (height, width) pair of ints as a pair, each at least ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an integer or a pair of integers (height, width), got {value!r}")
        return integer(value[0], name, minimum), integer(value[1], name, minimum)
    number = integer(value, name, minimum)
    return number, number


def _window_mask(
    xp: Any, image_size: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pads, dilation: Pair, margin: Pair
) -> Any:
    """Which positions of each window (kh * kw, oh, ow) lie on the image or within ``margin`` rows and
    columns of it, rather than in the rest of the padding."""
    (h, w), ((top, bottom), (left, right)) = image_size, padding
    plane = xp.zeros((1, top + h + bottom, left + w + right), dtype=bool)
    plane[:, max(top - margin[0], 0) : top + h + margin[0], max(left - margin[1], 0) : left + w + margin[1]] = True
    cols = Im2Col(kernel, stride, ((0, 0), (0, 0)), dilation, False).forward(plane)
    return cols.reshape((-1,) + cols.shape[-2:])


def conv2d(
    x: TensorLike,
    weight: TensorLike,
    bias: TensorLike | None = None,
    stride: int | Pair = 1,
    padding: int | Pair | str = 0,
    dilation: int | Pair = 1,
    groups: int = 1,
) -> Tensor:
    """Cross-correlation of x (..., N, C, H, W) with weight (..., F, C / groups, kh, kw) -> (..., N, F, oh, ow).

    y[n, f, p, q] = bias[f] + sum_{c,i,j} weight[f, c, i, j] x_pad[n, g C/groups + c, p sh + i dh, q sw + j dw]
    for the filters f of group g = f // (F / groups): the channels and filters split into ``groups``
    equal groups, each filter seeing only its own group's channels. oh = (H + 2 ph - dh (kh - 1) - 1) // sh + 1.

    ``stride`` (sh, sw), ``padding`` (ph, pw) and ``dilation`` (dh, dw) are ints or (height, width)
    pairs, as PyTorch's. ``padding="valid"`` is no padding; ``padding="same"`` (stride 1 only) pads
    d (k - 1) zeros per axis so the output has the input's size, the odd one at the bottom/right
    (as PyTorch). An unbatched x (C, H, W) gives (..., F, oh, ow). Leading axes of x and weight
    broadcast (one set of weights per task); ``bias`` has shape (..., F).

    >>> import tinymeta as tm
    >>> tm.conv2d(tm.tensor([[[1.0, 2.0], [3.0, 4.0]]]), [[[[1.0, 1.0]]]], padding="same").numpy()
    array([[[3., 2.],
            [7., 4.]]])
    """
    x = as_tensor(x)
    weight = as_tensor(weight, x)
    check_same_backend("conv2d", (x, weight))
    if x.ndim < 3 or weight.ndim < 4:
        raise ValueError(
            f"conv2d needs x of shape (..., N, C, H, W) or (C, H, W) and weight of shape (..., F, C, kh, kw), "
            f"got x {x.shape} and weight {weight.shape}"
        )
    given = x.shape
    unbatched = x.ndim == 3
    if unbatched:
        x = reshape(x, (1,) + x.shape)
    groups = integer(groups, "conv2d: groups", 1)
    filters, channels, kh, kw = weight.shape[-4:]
    if given[-3] % groups or filters % groups:
        raise ValueError(
            f"conv2d: groups={groups} must divide both the {given[-3]} channels of x {given} "
            f"and the {filters} filters of weight {weight.shape}"
        )
    if given[-3] != channels * groups:
        raise ValueError(
            f"conv2d: x has {given[-3]} channels (shape {given}) but weight expects {channels * groups} "
            f"(shape {weight.shape}" + (f", groups={groups})" if groups > 1 else ")")
        )
    try:
        numpy.broadcast_shapes(x.shape[:-4], weight.shape[:-4])
    except ValueError:
        raise ValueError(f"conv2d: the leading axes of x {given} and weight {weight.shape} do not broadcast") from None
    if kh < 1 or kw < 1:
        raise ValueError(f"conv2d: the kernel must be at least 1x1, got weight of shape {weight.shape}")
    stride = _pair(stride, "conv2d: stride", 1)
    dilation = _pair(dilation, "conv2d: dilation", 1)
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    if isinstance(padding, str):
        if padding not in ("valid", "same"):
            raise ValueError(f"conv2d: padding must be an integer, a pair, 'valid' or 'same', got {padding!r}")
        if padding == "same" and stride != (1, 1):
            raise ValueError(f"conv2d: padding='same' needs stride 1 (as PyTorch), got stride={stride}")
        total = (span[0] - 1, span[1] - 1) if padding == "same" else (0, 0)
        pads = ((total[0] // 2, total[0] - total[0] // 2), (total[1] // 2, total[1] - total[1] // 2))
    else:
        ph, pw = _pair(padding, "conv2d: padding", 0)
        pads = ((ph, ph), (pw, pw))
    padded = (sum(pads[0]) + given[-2], sum(pads[1]) + given[-1])
    if padded[0] < span[0] or padded[1] < span[1]:
        raise ValueError(
            f"conv2d: kernel ({kh}, {kw}) with dilation {dilation} spans {span}, larger than the padded input "
            f"{padded} of input shape {given} with padding {padding!r}"
        )
    cols = Im2Col((kh, kw), stride, pads, dilation)(x)  # (..., N, C, kh, kw, oh, ow)
    oh, ow = cols.shape[-2:]
    cols = reshape(cols, cols.shape[:-5] + (groups, channels * kh * kw, oh * ow))
    kernels = reshape(weight, weight.shape[:-4] + (1, groups, filters // groups, channels * kh * kw))
    y = matmul(kernels, cols)  # (..., N, groups, F / groups, oh * ow)
    y = reshape(y, y.shape[:-3] + (filters, oh, ow))
    if bias is not None:
        bias = as_tensor(bias, x)
        if bias.shape[-1:] != (filters,):
            raise ValueError(
                f"conv2d: bias shape {bias.shape} does not end with the {filters} filters of weight {weight.shape}"
            )
        y = y + reshape(bias, bias.shape[:-1] + (1, filters, 1, 1))
    return reshape(y, y.shape[:-4] + y.shape[-3:]) if unbatched else y


def _pool_geometry(
    x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any, op: str
) -> tuple[Pair, Pair, Pads, Pair, Pair]:
    """kernel, stride, per-side padding, dilation and the symmetric padding of a pooling, checked.

    Per axis, as PyTorch: out = floor((H + 2 p - d (k - 1) - 1) / s) + 1 (ceil with ``ceil_mode``,
    dropping a last window that would start in the bottom padding); ``ceil_mode``'s overhang past
    the padding is added to the bottom/right padding (never part of the image or its padding).
    """
    if x.ndim < 3:
        raise ValueError(f"{op} needs an input of shape (..., C, H, W), got shape {x.shape}")
    kernel = _pair(kernel_size, f"{op}: kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, f"{op}: stride", 1)
    pad = _pair(padding, f"{op}: padding", 0)
    dilation = _pair(dilation, f"{op}: dilation", 1)
    ceil_mode = flag(ceil_mode, f"{op}: ceil_mode")
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise ValueError(  # a window of padding alone would have no value to pool (PyTorch's rule too)
            f"{op}: padding must be at most half the kernel size, got padding={padding} for kernel_size={kernel_size}"
        )
    extra = []
    for size, k, s, p, d in zip(x.shape[-2:], kernel, stride, pad, dilation):
        room = size + 2 * p - d * (k - 1) - 1  # where the last tap of the last window may start
        out = (-(-room // s) if ceil_mode else room // s) + 1
        if ceil_mode and (out - 1) * s >= size + p:  # PyTorch: the last window starts in the image or its left padding
            out -= 1
        if out < 1:
            raise ValueError(
                f"{op}: kernel_size {kernel_size} with dilation {dilation} is larger than the padded input "
                f"({x.shape[-2] + 2 * pad[0]}, {x.shape[-1] + 2 * pad[1]}) of input shape {x.shape} "
                f"with padding {padding}: no window fits"
            )
        extra.append(max((out - 1) * s - room, 0))
    pads = ((pad[0], pad[0] + extra[0]), (pad[1], pad[1] + extra[1]))
    return kernel, stride, pads, dilation, pad


def _pool_windows(x: Tensor, kernel: Pair, stride: Pair, pads: Pads, dilation: Pair, pad_value: float) -> Tensor:
    """The windows of x as (..., kh * kw, oh, ow)."""
    cols = Im2Col(kernel, stride, pads, dilation, pad_value)(x)
    return reshape(cols, cols.shape[:-4] + (kernel[0] * kernel[1],) + cols.shape[-2:])


class WindowMax(Function):
    """y = max over axis -3 of the window columns (..., k*k, oh, ow) -> (..., oh, ow).

    dy/dx is 1 at the first maximum of each window (row-major window order; a NaN counts as the
    maximum) and 0 elsewhere: at a tie the whole gradient goes to one element, as PyTorch's and JAX's
    max-pooling do (a full reduction, ``tinymeta.max``, shares it instead, as theirs do). ``real``
    marks the window positions inside the image: the -inf padding is never chosen, even beside a real
    -inf. The mask is a constant, so the second derivative is 0.
    """

    __slots__ = ("real",)

    def __init__(self, real: Any = True) -> None:
        self.real = real

    def forward(self, cols: Any) -> Any:
        return cols.max(axis=-3)

    def backward(self, gy: Tensor) -> Tensor:
        cols = self.inputs[0].data
        xp = array_module(cols)
        peak = xp.expand_dims(self.output().data, -3)
        chosen = ((cols == peak) | (xp.isnan(cols) & xp.isnan(peak))) & self.real
        first = xp.expand_dims(chosen.argmax(axis=-3), -3) == xp.arange(cols.shape[-3]).reshape(-1, 1, 1)
        return reshape(gy, gy.shape[:-2] + (1,) + gy.shape[-2:]) * as_tensor(first.astype(gy.dtype))


def max_pool2d(
    x: TensorLike,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,
    padding: int | Pair = 0,
    dilation: int | Pair = 1,
    ceil_mode: bool = False,
) -> Tensor:
    """Maximum over each kh x kw window of x (..., C, H, W), as ``torch.nn.functional.max_pool2d``.

    y[..., p, q] = max_{i,j} x_pad[..., p sh + i dh, q sw + j dw]; every size an int or a (height,
    width) pair; stride defaults to kernel_size. Padding is with -inf, so it is never the maximum,
    and may be at most half the kernel. ``ceil_mode`` rounds the output size up, as long as the last
    window starts in the image or its top/left padding; the part of it past the padding is never
    chosen either. The gradient flows to the maximum of each window (to the first one on ties, as
    PyTorch). (A window of padding alone, possible only with dilation, gives -inf and no gradient.)
    """
    x = as_tensor(x)
    kernel, stride, pads, dilation, _ = _pool_geometry(
        x, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d"
    )
    pad_value: Any = -numpy.inf
    if x.dtype.kind in "iub":  # an integer image pads with its lowest value
        pad_value = numpy.iinfo(x.dtype).min if x.dtype.kind != "b" else False
    windows = _pool_windows(x, kernel, stride, pads, dilation, pad_value)
    real: Any = True
    if any(pads[0]) or any(pads[1]):
        real = _window_mask(array_module(x.data), x.shape[-2:], kernel, stride, pads, dilation, (0, 0))
    return WindowMax(real)(windows)


def avg_pool2d(
    x: TensorLike,
    kernel_size: int | Pair,
    stride: int | Pair | None = None,
    padding: int | Pair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Mean over each kh x kw window of x (..., C, H, W), as ``torch.nn.functional.avg_pool2d``.

    y[..., p, q] = sum_{i,j} x_pad[..., p sh + i, q sw + j] / divisor[p, q]; every size an int or a
    (height, width) pair; stride defaults to kernel_size; zero padding, at most half the kernel.
    ``ceil_mode`` rounds the output size up as max_pool2d does. The divisor, PyTorch's: with
    ``count_include_pad`` the window's positions on the image or its padding (never the ceil_mode
    overhang past the padding), else only those on the image; ``divisor_override`` replaces it.

    >>> import tinymeta as tm
    >>> tm.avg_pool2d(tm.tensor([[[1.0, 2.0], [3.0, 4.0]]]), 2, padding=1, count_include_pad=False).numpy()
    array([[[1., 2.],
            [3., 4.]]])
    """
    x = as_tensor(x)
    kernel, stride, pads, _, pad = _pool_geometry(x, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    count_include_pad = flag(count_include_pad, "avg_pool2d: count_include_pad")
    windows = _pool_windows(x, kernel, stride, pads, (1, 1), 0.0)
    if divisor_override is not None:
        return sum_(windows, axis=-3) / integer(divisor_override, "avg_pool2d: divisor_override", 1)
    margin = pad if count_include_pad else (0, 0)
    if pads == ((margin[0], margin[0]), (margin[1], margin[1])):
        return mean(windows, axis=-3)  # every window lies on the counted region: the plain mean
    xp = array_module(x.data)
    counts = _window_mask(xp, x.shape[-2:], kernel, stride, pads, (1, 1), margin).sum(axis=0)
    return sum_(windows, axis=-3) / counts.astype(_floating(x.dtype))
