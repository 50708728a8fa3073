"""Elementwise functions: exp, log, sqrt, abs, tanh, sigmoid, relu, softplus, sin, cos, astype (the
same values in another dtype) of one tensor, and where (a choice between two tensors, elementwise).

Where the derivative is a function of the output (exp, sqrt, tanh, sigmoid), backward reuses the
output instead of recomputing it. Kinks (abs and relu at 0) use the derivative of the side taken
by ``x > 0`` / ``sign(x)``, a constant mask, so their second derivative is 0 away from the kink.

``abs`` shadows Python's builtin in this module; nothing here calls it by name.
"""

from __future__ import annotations

from typing import Any

import numpy

from ..backend import array_module
from ..engine import Function, Tensor, TensorLike, as_tensor, binary_operands
from .shape import sum_to

# this family's differentiable ops (their union is the registry: ops/__init__.py)
__all__ = ["exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "softplus", "sin", "cos", "astype", "where"]


def _constant(array: Any, like: Tensor) -> Tensor:
    """A constant Tensor (no gradient flows into it) with ``like``'s dtype."""
    return as_tensor(array.astype(like.dtype, copy=False))


class Exp(Function):
    """y = exp(x);  dy/dx = exp(x) = y."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).exp(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * self.output()


def exp(x: TensorLike) -> Tensor:
    """e^x, elementwise."""
    return Exp()(as_tensor(x))


class Log(Function):
    """y = log(x) (x > 0);  dy/dx = 1 / x."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).log(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy / self.inputs[0]


def log(x: TensorLike) -> Tensor:
    """Natural logarithm, elementwise (x > 0)."""
    return Log()(as_tensor(x))


class Sqrt(Function):
    """y = sqrt(x) (x > 0);  dy/dx = 1 / (2 sqrt(x)) = 1 / (2 y)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).sqrt(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy / (self.output() * 2)


def sqrt(x: TensorLike) -> Tensor:
    """Square root, elementwise (x > 0 for a finite gradient)."""
    return Sqrt()(as_tensor(x))


class Abs(Function):
    """y = |x|;  dy/dx = sign(x) (taken as 0 at x = 0)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).abs(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy * _constant(array_module(x.data).sign(x.data), gy)


def abs(x: TensorLike) -> Tensor:
    """|x|, elementwise."""
    return Abs()(as_tensor(x))


class Tanh(Function):
    """y = tanh(x);  dy/dx = 1 - tanh(x)^2 = 1 - y^2."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).tanh(x)

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return gy * (1 - y * y)


def tanh(x: TensorLike) -> Tensor:
    """Hyperbolic tangent, elementwise."""
    return Tanh()(as_tensor(x))


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x));  dy/dx = y (1 - y).

    Computed as exp(-softplus(-x)), which never overflows: finite for any finite x.
    """

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        xp = array_module(x)
        return xp.exp(-xp.logaddexp(0, -x))

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return gy * (y * (1 - y))


def sigmoid(x: TensorLike) -> Tensor:
    """Logistic function 1 / (1 + e^-x), elementwise; stable for any finite x."""
    return Sigmoid()(as_tensor(x))


class Relu(Function):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).maximum(x, 0)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * _constant(self.inputs[0].data > 0, gy)


def relu(x: TensorLike) -> Tensor:
    """max(x, 0), elementwise."""
    return Relu()(as_tensor(x))


class Softplus(Function):
    """y = log(1 + exp(x)), computed as logaddexp(0, x) (no overflow);  dy/dx = sigmoid(x)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).logaddexp(0, x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * sigmoid(self.inputs[0])


def softplus(x: TensorLike) -> Tensor:
    """log(1 + e^x), elementwise; stable for any finite x."""
    return Softplus()(as_tensor(x))


class Sin(Function):
    """y = sin(x);  dy/dx = cos(x)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).sin(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * cos(self.inputs[0])


def sin(x: TensorLike) -> Tensor:
    """Sine, elementwise."""
    return Sin()(as_tensor(x))


class Cos(Function):
    """y = cos(x);  dy/dx = -sin(x)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).cos(x)

    def backward(self, gy: Tensor) -> Tensor:
        return -(gy * sin(self.inputs[0]))


def cos(x: TensorLike) -> Tensor:
    """Cosine, elementwise."""
    return Cos()(as_tensor(x))


class AsType(Function):
    """y = x converted to ``dtype`` (always a new array);  dy/dx = 1, so gx = gy converted back to x's dtype."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: numpy.dtype) -> None:
        self.dtype = dtype

    def forward(self, x: Any) -> Any:
        return x.astype(self.dtype, copy=True)

    def backward(self, gy: Tensor) -> Tensor:
        return astype(gy, self.inputs[0].dtype, copy=False)


def astype(x: TensorLike, dtype: Any, copy: bool = True) -> Tensor:
    """x converted to ``dtype``, as ``numpy.astype``: a new array unless ``copy=False`` and the dtype
    already matches. Differentiable between floating dtypes (the gradient comes back in x's dtype);
    an integer or boolean result is a constant; a complex result of a tensor that requires grad is an
    error (tinymeta differentiates real functions only)."""
    x = as_tensor(x)
    dtype = numpy.dtype(dtype)
    if not copy and x.dtype == dtype:
        return x
    return AsType(dtype)(x)


class Where(Function):
    """y = where(condition, a, b);  dy/da = condition, dy/db = not condition (constants)."""

    __slots__ = ("condition",)

    def __init__(self, condition: Any) -> None:
        self.condition = condition

    def forward(self, a: Any, b: Any) -> Any:
        return array_module(a).where(self.condition, a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        zero = as_tensor(0, gy)
        ga = sum_to(where(self.condition, gy, zero), a.shape) if a.requires_grad else None
        gb = sum_to(where(self.condition, zero, gy), b.shape) if b.requires_grad else None
        return ga, gb


def where(condition: TensorLike, a: TensorLike, b: TensorLike) -> Tensor:
    """Elementwise ``a`` where ``condition`` is true, else ``b`` (all three broadcast)."""
    a, b = binary_operands(a, b)
    condition = as_tensor(condition, a).data
    if condition.dtype != bool:
        raise TypeError(f"where: condition must be boolean, got dtype {condition.dtype}")
    return Where(condition)(a, b)
