"""Elementwise functions of one tensor (exp, log, the trigonometric and hyperbolic functions and their
inverses, ...; astype, the same values in another dtype), and of two broadcasting tensors (where,
maximum, minimum, clip, arctan2, logaddexp, hypot, mod).

Where the derivative is a function of the output (exp, sqrt, tanh, sigmoid, tan, ...), backward
reuses the output instead of recomputing it. Kinks (abs and relu at 0) use the derivative of the
side taken by ``x > 0`` / ``sign(x)``, a constant mask, so their second derivative is 0 away from
the kink; piecewise-constant functions (sign, floor, ceil, round) have derivative 0, an exact zero
whatever the upstream gradient (an infinite one included: 0, never inf * 0 = NaN), as relu's flat side.

``abs`` and ``round`` shadow Python's builtins in this module; nothing here calls them by name.
"""

from __future__ import annotations

import math
from typing import Any

import numpy

from .._checks import integer
from ..backend import array_module
from ..engine import Function, Tensor, TensorLike, as_tensor, binary_operands, wrap_array
from .shape import Copy, Reshape, _sum_to

# this family's differentiable ops (their union is the registry: ops/__init__.py)
__all__ = [
    "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "softplus", "sin", "cos",
    "square", "reciprocal", "sign", "floor", "ceil", "round", "log1p", "expm1", "log2", "log10", "exp2",
    "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh", "arccosh", "arctanh",
    "astype", "where", "maximum", "minimum", "clip", "arctan2", "logaddexp", "hypot", "mod",
]  # fmt: skip


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
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0 (an exact 0: gy is not multiplied there, so an
    infinite gy gives 0, not NaN, as PyTorch's)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).maximum(x, 0)

    def backward(self, gy: Tensor) -> Tensor:
        return where(self.inputs[0].data > 0, gy, as_tensor(0, gy))


def relu(x: TensorLike) -> Tensor:
    """max(x, 0), elementwise."""
    return Relu()(as_tensor(x))


class Softplus(Function):
    """y = log(1 + exp(beta x)) / beta, computed as logaddexp(0, beta x) / beta (no overflow), and y = x
    where beta x > threshold (the linear regime, as PyTorch's softplus);  dy/dx = sigmoid(beta x)
    (1 in the linear regime)."""

    __slots__ = ("beta", "threshold")

    def __init__(self, beta: float, threshold: float) -> None:
        self.beta = beta
        self.threshold = threshold

    def forward(self, x: Any) -> Any:
        xp = array_module(x)
        bx = x * self.beta
        return xp.where(bx > self.threshold, x, xp.logaddexp(0, bx) / self.beta).astype(x.dtype, copy=False)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        linear = x.data * self.beta > self.threshold
        slope = sigmoid(x * self.beta)
        return gy * (where(linear, 1, slope) if linear.any() else slope)


def softplus(x: TensorLike, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, elementwise; x itself where beta x > threshold (PyTorch's
    ``softplus(x, beta=1, threshold=20)``: there the two differ by less than e^-20 / beta). Stable
    for any finite x."""
    beta, threshold = float(beta), float(threshold)
    if not beta > 0 or not math.isfinite(beta):
        raise ValueError(f"softplus: beta must be a positive finite number, got {beta!r}")
    return Softplus(beta, threshold)(as_tensor(x))


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


class Square(Function):
    """y = x^2;  dy/dx = 2x."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).square(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * (self.inputs[0] * 2)


def square(x: TensorLike) -> Tensor:
    """x^2, elementwise."""
    return Square()(as_tensor(x))


class Reciprocal(Function):
    """y = 1 / x;  dy/dx = -1 / x^2 = -y^2."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).reciprocal(x)

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return -(gy * (y * y))


def reciprocal(x: TensorLike) -> Tensor:
    """1 / x, elementwise (floating x: NumPy's reciprocal of an integer truncates, this one refuses)."""
    x = as_tensor(x)
    if x.dtype.kind != "f":
        raise TypeError(f"reciprocal needs a floating tensor, got dtype {x.dtype} (NumPy would truncate 1/x to 0)")
    return Reciprocal()(x)


class Piecewise(Function):
    """y = sign(x), floor(x), ceil(x) or round(x, decimals): piecewise constant;  dy/dx = 0 wherever it
    exists (at a jump it does not; the gradient there is taken as 0 too, the derivative of either side).

    The gradient is a constant array of zeros, not gy * 0: an infinite gy (sqrt's at 0, in
    sqrt(floor(x))) gives 0, not NaN, as PyTorch's. Its own derivatives are then 0 too (nothing flows
    back through a constant), to every order."""

    __slots__ = ("name", "decimals")

    def __init__(self, name: str, decimals: int = 0) -> None:
        self.name = name
        self.decimals = decimals

    def forward(self, x: Any) -> Any:
        xp = array_module(x)
        return xp.round(x, self.decimals) if self.name == "round" else getattr(xp, self.name)(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0].data
        return wrap_array(array_module(x).zeros_like(x))


def sign(x: TensorLike) -> Tensor:
    """-1, 0 or 1 by the sign of x (NaN for NaN), elementwise; zero derivative."""
    return Piecewise("sign")(as_tensor(x))


def floor(x: TensorLike) -> Tensor:
    """The largest integer <= x, elementwise (same dtype); zero derivative."""
    return Piecewise("floor")(as_tensor(x))


def ceil(x: TensorLike) -> Tensor:
    """The smallest integer >= x, elementwise (same dtype); zero derivative."""
    return Piecewise("ceil")(as_tensor(x))


def round(x: TensorLike, decimals: int = 0) -> Tensor:
    """x rounded to ``decimals`` decimals, halves to even (as ``numpy.round``); zero derivative."""
    return Piecewise("round", integer(decimals, "decimals"))(as_tensor(x))


class Log1p(Function):
    """y = log(1 + x) (x > -1), accurate for tiny x;  dy/dx = 1 / (1 + x)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).log1p(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy / (self.inputs[0] + 1)


def log1p(x: TensorLike) -> Tensor:
    """log(1 + x), elementwise, accurate for tiny x (x > -1)."""
    return Log1p()(as_tensor(x))


class Expm1(Function):
    """y = exp(x) - 1, accurate for tiny x;  dy/dx = exp(x) = y + 1."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).expm1(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * (self.output() + 1)


def expm1(x: TensorLike) -> Tensor:
    """e^x - 1, elementwise, accurate for tiny x."""
    return Expm1()(as_tensor(x))


class LogBase(Function):
    """y = log_b(x) = log(x) / log(b) for b = 2 or 10 (x > 0);  dy/dx = 1 / (x log b)."""

    __slots__ = ("base",)

    def __init__(self, base: int) -> None:
        self.base = base

    def forward(self, x: Any) -> Any:
        xp = array_module(x)
        return xp.log2(x) if self.base == 2 else xp.log10(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy / (self.inputs[0] * math.log(self.base))


def log2(x: TensorLike) -> Tensor:
    """Base-2 logarithm, elementwise (x > 0)."""
    return LogBase(2)(as_tensor(x))


def log10(x: TensorLike) -> Tensor:
    """Base-10 logarithm, elementwise (x > 0)."""
    return LogBase(10)(as_tensor(x))


class Exp2(Function):
    """y = 2^x;  dy/dx = 2^x log 2 = y log 2."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).exp2(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * (self.output() * math.log(2.0))


def exp2(x: TensorLike) -> Tensor:
    """2^x, elementwise."""
    return Exp2()(as_tensor(x))


class Tan(Function):
    """y = tan(x);  dy/dx = 1 / cos(x)^2 = 1 + y^2."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).tan(x)

    def backward(self, gy: Tensor) -> Tensor:
        y = self.output()
        return gy * (y * y + 1)


def tan(x: TensorLike) -> Tensor:
    """Tangent, elementwise."""
    return Tan()(as_tensor(x))


class Arcsin(Function):
    """y = arcsin(x) (|x| < 1);  dy/dx = 1 / sqrt(1 - x^2)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).arcsin(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy / sqrt(1 - x * x)


def arcsin(x: TensorLike) -> Tensor:
    """Inverse sine, elementwise (|x| <= 1; the derivative is infinite at ±1)."""
    return Arcsin()(as_tensor(x))


class Arccos(Function):
    """y = arccos(x) (|x| < 1);  dy/dx = -1 / sqrt(1 - x^2)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).arccos(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return -(gy / sqrt(1 - x * x))


def arccos(x: TensorLike) -> Tensor:
    """Inverse cosine, elementwise (|x| <= 1; the derivative is infinite at ±1)."""
    return Arccos()(as_tensor(x))


class Arctan(Function):
    """y = arctan(x);  dy/dx = 1 / (1 + x^2)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).arctan(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy / (x * x + 1)


def arctan(x: TensorLike) -> Tensor:
    """Inverse tangent, elementwise."""
    return Arctan()(as_tensor(x))


class Sinh(Function):
    """y = sinh(x);  dy/dx = cosh(x)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).sinh(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * cosh(self.inputs[0])


def sinh(x: TensorLike) -> Tensor:
    """Hyperbolic sine, elementwise."""
    return Sinh()(as_tensor(x))


class Cosh(Function):
    """y = cosh(x);  dy/dx = sinh(x)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).cosh(x)

    def backward(self, gy: Tensor) -> Tensor:
        return gy * sinh(self.inputs[0])


def cosh(x: TensorLike) -> Tensor:
    """Hyperbolic cosine, elementwise."""
    return Cosh()(as_tensor(x))


class Arcsinh(Function):
    """y = arcsinh(x);  dy/dx = 1 / sqrt(x^2 + 1)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).arcsinh(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy / sqrt(x * x + 1)


def arcsinh(x: TensorLike) -> Tensor:
    """Inverse hyperbolic sine, elementwise."""
    return Arcsinh()(as_tensor(x))


class Arccosh(Function):
    """y = arccosh(x) (x > 1);  dy/dx = 1 / sqrt(x^2 - 1)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).arccosh(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy / sqrt(x * x - 1)


def arccosh(x: TensorLike) -> Tensor:
    """Inverse hyperbolic cosine, elementwise (x >= 1; the derivative is infinite at 1)."""
    return Arccosh()(as_tensor(x))


class Arctanh(Function):
    """y = arctanh(x) (|x| < 1);  dy/dx = 1 / (1 - x^2)."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return array_module(x).arctanh(x)

    def backward(self, gy: Tensor) -> Tensor:
        x = self.inputs[0]
        return gy / (1 - x * x)


def arctanh(x: TensorLike) -> Tensor:
    """Inverse hyperbolic tangent, elementwise (|x| < 1)."""
    return Arctanh()(as_tensor(x))


class AsType(Function):
    """y = x converted to ``dtype`` (always a new array);  dy/dx = 1, so gx = gy converted back to x's dtype."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: numpy.dtype) -> None:
        self.dtype = dtype

    def forward(self, x: Any) -> Any:
        return x.astype(self.dtype, copy=True)

    def backward(self, gy: Tensor) -> Tensor:
        dtype = self.inputs[0].dtype
        return gy if gy.dtype == dtype else AsType(dtype)(gy)


def astype(x: TensorLike, dtype: Any, copy: bool = True) -> Tensor:
    """x converted to ``dtype``, as ``numpy.astype``: a new array unless ``copy=False`` and the dtype
    already matches (then a new tensor viewing x's data; NumPy returns the array itself). Differentiable
    between floating dtypes (the gradient comes back in x's dtype); an integer or boolean result is a
    constant; a complex result of a tensor that requires grad is an error (tinymeta differentiates real
    functions only)."""
    x = as_tensor(x)
    dtype = numpy.dtype(dtype)
    if not copy and x.dtype == dtype:
        return Reshape(x.shape)(x)
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
        ga = _sum_to(where(self.condition, gy, zero), a.shape) if a.requires_grad else None
        gb = _sum_to(where(self.condition, zero, gy), b.shape) if b.requires_grad else None
        return ga, gb


def where(condition: TensorLike, a: TensorLike, b: TensorLike) -> Tensor:
    """Elementwise ``a`` where ``condition`` is true, else ``b`` (all three broadcast)."""
    a, b = binary_operands(a, b)
    condition = as_tensor(condition, a).data
    if condition.dtype != bool:
        raise TypeError(f"where: condition must be boolean, got dtype {condition.dtype}")
    return Where(condition)(a, b)


# ---- two operands, broadcasting: each gradient is summed back to its operand's shape ---------------


def _to_operand(x: Tensor, g: Tensor) -> Tensor | None:
    return _sum_to(g, x.shape) if x.requires_grad else None


class MaximumMinimum(Function):
    """y = maximum(a, b) (or minimum);  dy/da = 1 where a wins, dy/db = 1 where b wins, and where they
    tie each gets 1/2 (as PyTorch and JAX). A NaN wins (NumPy propagates it), so it takes the gradient.
    The masks are constants: the second derivative is 0."""

    __slots__ = ("is_max",)

    def __init__(self, is_max: bool) -> None:
        self.is_max = is_max

    def forward(self, a: Any, b: Any) -> Any:
        xp = array_module(a)
        return xp.maximum(a, b) if self.is_max else xp.minimum(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        xp = array_module(gy.data)
        a_wins = (a.data > b.data) if self.is_max else (a.data < b.data)
        a_nan, b_nan = xp.isnan(a.data), xp.isnan(b.data)
        a_share = xp.where(a.data == b.data, 0.5, (a_wins | a_nan) & ~b_nan | (a_nan & b_nan))
        a_share = xp.broadcast_to(a_share, gy.shape)
        return (
            _to_operand(a, gy * _constant(a_share, gy)),
            _to_operand(b, gy * _constant(1 - a_share, gy)),
        )


def maximum(a: TensorLike, b: TensorLike) -> Tensor:
    """The larger of a and b, elementwise (broadcasting; NaN if either is NaN); ties share the gradient."""
    return MaximumMinimum(is_max=True)(*binary_operands(a, b))


def minimum(a: TensorLike, b: TensorLike) -> Tensor:
    """The smaller of a and b, elementwise (broadcasting; NaN if either is NaN); ties share the gradient."""
    return MaximumMinimum(is_max=False)(*binary_operands(a, b))


def clip(a: TensorLike, a_min: TensorLike | None = None, a_max: TensorLike | None = None) -> Tensor:
    """a limited to [a_min, a_max], elementwise: ``minimum(maximum(a, a_min), a_max)`` as NumPy defines it
    (a_max wins where a_min > a_max; a NaN in a or in a bound gives NaN). A bound may be None (no limit on
    that side) or a tensor, which then receives the gradient where it is the value taken (a NaN bound
    included). At a bound the gradient goes to ``a`` (PyTorch's clamp: the interval is closed). With
    both bounds None, a copy of a (NumPy 2's clip)."""
    y = as_tensor(a)
    if a_min is None and a_max is None:
        return Copy()(y)
    if a_min is not None:
        y, low = binary_operands(y, a_min)
        y = where((y.data < low.data) | _isnan(low.data), low, y)
    if a_max is not None:
        y, high = binary_operands(y, a_max)
        y = where((y.data > high.data) | _isnan(high.data), high, y)
    return y


def _isnan(x: Any) -> Any:
    return array_module(x).isnan(x) if x.dtype.kind in "fc" else False


class Arctan2(Function):
    """y = arctan2(a, b), the angle of the point (b, a);  dy/da = b / (a^2 + b^2), dy/db = -a / (a^2 + b^2).
    At the origin the angle has no derivative: NaN."""

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return array_module(a).arctan2(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        scale = gy / (a * a + b * b)
        return _to_operand(a, scale * b), _to_operand(b, -(scale * a))


def arctan2(x1: TensorLike, x2: TensorLike) -> Tensor:
    """The angle of the point (x2, x1) in (-pi, pi], elementwise, broadcasting (``numpy.arctan2(x1, x2)``)."""
    return Arctan2()(*binary_operands(x1, x2))


class LogAddExp(Function):
    """y = log(exp(a) + exp(b)), without overflow;  dy/da = exp(a - y) = sigmoid(a - b), dy/db = sigmoid(b - a).

    Where a and b are the same infinity (a - b undefined), each gets 1/2: the limit along a = b."""

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return array_module(a).logaddexp(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        same_infinity = array_module(a.data).isinf(a.data) & (a.data == b.data)
        if same_infinity.any():  # both replaced by 0 there: inf - inf is never computed
            difference = where(same_infinity, 0, a) - where(same_infinity, 0, b)
        else:
            difference = a - b
        return _to_operand(a, gy * sigmoid(difference)), _to_operand(b, gy * sigmoid(-difference))


def logaddexp(x1: TensorLike, x2: TensorLike) -> Tensor:
    """log(e^x1 + e^x2), elementwise, broadcasting; finite for any finite inputs."""
    return LogAddExp()(*binary_operands(x1, x2))


class Hypot(Function):
    """y = sqrt(a^2 + b^2), without overflow;  dy/da = a / y, dy/db = b / y.

    At the origin y has no derivative: there the gradient is taken as 0 (the subgradient of the 2-norm,
    as abs at 0), and so is every derivative after it (the gradient is 0 * (a, b) with a constant 0),
    as ``linalg.norm`` at 0 gives, and as ``abs`` at 0 to every order."""

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return array_module(a).hypot(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        y = self.output()
        origin = y.data == 0
        if origin.any():  # 0 there, a constant: its derivatives are 0 too (gy / 1 is never used)
            scale = where(origin, as_tensor(0, gy), gy / where(origin, 1, y))
        else:
            scale = gy / y
        return _to_operand(a, scale * a), _to_operand(b, scale * b)


def hypot(x1: TensorLike, x2: TensorLike) -> Tensor:
    """sqrt(x1^2 + x2^2), elementwise, broadcasting, without overflow."""
    return Hypot()(*binary_operands(x1, x2))


class Mod(Function):
    """y = a mod b = a - floor(a / b) b, with the sign of b (``numpy.mod``);  dy/da = 1, dy/db = -floor(a / b)
    (a constant), away from the jumps where a / b is an integer."""

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return array_module(a).mod(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        if not b.requires_grad:
            return _to_operand(a, gy), None
        quotient = array_module(a.data).floor_divide(a.data, b.data)
        return _to_operand(a, gy), _to_operand(b, -(gy * _constant(quotient, gy)))


def mod(x1: TensorLike, x2: TensorLike) -> Tensor:
    """The remainder of x1 / x2 with the sign of x2, elementwise, broadcasting (``numpy.mod``)."""
    return Mod()(*binary_operands(x1, x2))
