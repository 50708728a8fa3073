"""2-D convolution and pooling on NCHW tensors, through an im2col gather.

``Im2Col`` copies every kernel-sized window of the (padded) input into its own column: a gather.
Its backward, ``Col2Im``, adds each column back onto the window it came from: a scatter-add. The
backward of the scatter-add is the gather again, so convolution and pooling are differentiable to
any order without any op of their own beyond this pair. A convolution is then one batched matmul
of the flattened kernels with the columns; pooling is a max or mean over each column.

Leading axes broadcast: input (..., N, C, H, W) with weights (..., F, C, kh, kw), so a batch of
tasks, each with its own weights, is one call.
"""

from __future__ import annotations

from typing import Any

import numpy

from .._checks import integer
from ..backend import array_module
from ..engine import Function, Tensor, TensorLike, as_tensor, check_same_backend
from .products import matmul
from .reduction import mean
from .shape import reshape

# this family's differentiable ops (their union is the registry: ops/__init__.py)
__all__ = ["conv2d", "max_pool2d", "avg_pool2d"]


class Im2Col(Function):
    """Windows of x (..., C, H, W) as columns (..., C, kh, kw, oh, ow).

    cols[..., c, i, j, p, q] = x_padded[..., c, p * stride + i, q * stride + j]. Linear in x apart
    from the padding constant, so its vjp is ``Col2Im`` (padding contributes no gradient).
    """

    __slots__ = ("kernel", "stride", "padding", "pad_value")

    def __init__(self, kernel: tuple[int, int], stride: int, padding: int, pad_value: float = 0.0) -> None:
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.pad_value = pad_value

    def forward(self, x: Any) -> Any:
        xp = array_module(x)
        (kh, kw), s, p = self.kernel, self.stride, self.padding
        if p:
            widths = [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)]
            x = xp.pad(x, widths, constant_values=self.pad_value)
        oh = (x.shape[-2] - kh) // s + 1
        ow = (x.shape[-1] - kw) // s + 1
        cols = xp.empty(x.shape[:-2] + (kh, kw, oh, ow), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                cols[..., i, j, :, :] = x[..., i : i + s * (oh - 1) + 1 : s, j : j + s * (ow - 1) + 1 : s]
        return cols

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return Col2Im(x.shape[-2:], self.kernel, self.stride, self.padding)(gy)


class Col2Im(Function):
    """The adjoint of ``Im2Col``: each column added back onto its window of a (..., C, H, W) image.

    x[..., c, p * stride + i, q * stride + j] += cols[..., c, i, j, p, q], then the padding is
    cropped. Its vjp is ``Im2Col`` (with zero padding).
    """

    __slots__ = ("image_size", "kernel", "stride", "padding")

    def __init__(self, image_size: tuple[int, int], kernel: tuple[int, int], stride: int, padding: int) -> None:
        self.image_size = tuple(image_size)
        self.kernel = kernel
        self.stride = stride
        self.padding = padding

    def forward(self, cols: Any) -> Any:
        xp = array_module(cols)
        (kh, kw), s, p = self.kernel, self.stride, self.padding
        h, w = self.image_size
        oh, ow = cols.shape[-2:]
        x = xp.zeros(cols.shape[:-4] + (h + 2 * p, w + 2 * p), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                x[..., i : i + s * (oh - 1) + 1 : s, j : j + s * (ow - 1) + 1 : s] += cols[..., i, j, :, :]
        return x[..., p : p + h, p : p + w] if p else x

    def backward(self, gy: Tensor) -> Tensor:
        return Im2Col(self.kernel, self.stride, self.padding)(gy)


def _windows(x: Tensor, kernel: tuple[int, int], stride: Any, padding: Any, pad_value: float, op: str) -> Tensor:
    if x.ndim < 3:
        raise ValueError(f"{op} needs an input of shape (..., C, H, W), got shape {x.shape}")
    stride, padding = integer(stride, f"{op}: stride", 1), integer(padding, f"{op}: padding", 0)
    h, w = x.shape[-2:]
    if h + 2 * padding < kernel[0] or w + 2 * padding < kernel[1]:
        raise ValueError(
            f"{op}: kernel {kernel} is larger than the padded input "
            f"({h + 2 * padding}, {w + 2 * padding}) of input shape {x.shape} with padding {padding}"
        )
    return Im2Col(kernel, stride, padding, pad_value)(x)


def conv2d(
    x: TensorLike, weight: TensorLike, bias: TensorLike | None = None, stride: int = 1, padding: int = 0
) -> Tensor:
    """Cross-correlation of x (..., N, C, H, W) with weight (..., F, C, kh, kw) -> (..., N, F, oh, ow).

    y[n, f, p, q] = bias[f] + sum_{c,i,j} weight[f, c, i, j] x_pad[n, c, p*stride + i, q*stride + j],
    with oh = (H + 2 padding - kh) // stride + 1. Leading axes of x and weight broadcast (one set
    of weights per task); ``bias`` has shape (..., F).
    """
    x = as_tensor(x)
    weight = as_tensor(weight, x)
    check_same_backend("conv2d", (x, weight))
    if x.ndim < 4 or weight.ndim < 4:
        raise ValueError(
            f"conv2d needs x of shape (..., N, C, H, W) and weight of shape (..., F, C, kh, kw), "
            f"got x {x.shape} and weight {weight.shape}"
        )
    if x.shape[-3] != weight.shape[-3]:
        raise ValueError(
            f"conv2d: x has {x.shape[-3]} channels (shape {x.shape}) but weight expects "
            f"{weight.shape[-3]} (shape {weight.shape})"
        )
    try:
        numpy.broadcast_shapes(x.shape[:-4], weight.shape[:-4])
    except ValueError:
        raise ValueError(
            f"conv2d: the leading axes of x {x.shape} and weight {weight.shape} do not broadcast"
        ) from None
    filters, channels, kh, kw = weight.shape[-4:]
    if kh < 1 or kw < 1:
        raise ValueError(f"conv2d: the kernel must be at least 1x1, got weight of shape {weight.shape}")
    cols = _windows(x, (kh, kw), stride, padding, 0.0, "conv2d")  # (..., N, C, kh, kw, oh, ow)
    oh, ow = cols.shape[-2:]
    cols = reshape(cols, cols.shape[:-5] + (channels * kh * kw, oh * ow))
    kernels = reshape(weight, weight.shape[:-4] + (1, filters, channels * kh * kw))
    y = matmul(kernels, cols)  # (..., N, F, oh * ow)
    y = reshape(y, y.shape[:-1] + (oh, ow))
    if bias is not None:
        bias = as_tensor(bias, x)
        if bias.shape[-1:] != (filters,):
            raise ValueError(
                f"conv2d: bias shape {bias.shape} does not end with the {filters} filters of weight {weight.shape}"
            )
        y = y + reshape(bias, bias.shape[:-1] + (1, filters, 1, 1))
    return y


def _pool_windows(
    x: TensorLike, kernel_size: int, stride: int | None, padding: int, pad_value: float, op: str
) -> tuple[Tensor, Any]:
    """The windows of x as (..., k*k, oh, ow), and which of their positions lie inside the image
    rather than in its padding (True when there is none)."""
    x = as_tensor(x)
    kernel_size = integer(kernel_size, f"{op}: kernel_size", 1)
    stride = kernel_size if stride is None else integer(stride, f"{op}: stride", 1)
    if integer(padding, f"{op}: padding", 0) > kernel_size // 2:
        raise ValueError(  # a window of padding alone would have no value to pool (PyTorch's rule too)
            f"{op}: padding must be at most half the kernel size, got padding={padding} for kernel_size={kernel_size}"
        )
    if pad_value == -numpy.inf and x.dtype.kind in "iub":  # an integer image pads with its lowest value
        pad_value = numpy.iinfo(x.dtype).min if x.dtype.kind != "b" else False
    cols = _windows(x, (kernel_size, kernel_size), stride, padding, pad_value, op)
    windows = reshape(cols, cols.shape[:-4] + (kernel_size * kernel_size,) + cols.shape[-2:])
    real: Any = True
    if padding:
        inside = array_module(x.data).ones((1,) + x.shape[-2:], dtype=bool)
        real = Im2Col((kernel_size, kernel_size), stride, padding, False).forward(inside).reshape(windows.shape[-3:])
    return windows, real


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


def max_pool2d(x: TensorLike, kernel_size: int, stride: int | None = None, padding: int = 0) -> Tensor:
    """Maximum over each kernel_size x kernel_size window of x (..., C, H, W); stride defaults to
    kernel_size. Padding is with -inf, so it is never the maximum, and may be at most half the
    kernel. The gradient flows to the maximum of each window (to the first one on ties, as PyTorch)."""
    windows, real = _pool_windows(x, kernel_size, stride, padding, -numpy.inf, "max_pool2d")
    return WindowMax(real)(windows)


def avg_pool2d(x: TensorLike, kernel_size: int, stride: int | None = None, padding: int = 0) -> Tensor:
    """Mean over each kernel_size x kernel_size window of x (..., C, H, W); stride defaults to
    kernel_size; zero padding (at most half the kernel) counts towards the mean."""
    windows, _ = _pool_windows(x, kernel_size, stride, padding, 0.0, "avg_pool2d")
    return mean(windows, axis=-3)
