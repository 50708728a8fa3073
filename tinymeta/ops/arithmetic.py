"""Elementwise arithmetic with NumPy broadcasting: ``+ - * / **`` and negation.

Every binary op broadcasts its operands in ``forward``; its ``backward`` therefore ends with
``sum_to(g, x.shape)``, which sums the gradient over the broadcast axes (and whose own backward is
``broadcast_to``, so second derivatives survive broadcasting).
"""

from __future__ import annotations

from typing import Any

from ..engine import Function, Tensor, TensorLike, as_tensor
from .shape import sum_to, where


def binary_operands(a: TensorLike, b: TensorLike) -> tuple[Tensor, Tensor]:
    """Both operands as Tensors; a Python scalar takes the other operand's dtype and backend."""
    if type(b) is Tensor and type(a) is Tensor:
        return a, b
    if isinstance(a, Tensor):
        return a, as_tensor(b, a)
    b = as_tensor(b)
    return as_tensor(a, b), b


def _grad_for(x: Tensor, g: Tensor) -> Tensor | None:
    """``g`` summed to ``x``'s shape, or None when ``x`` does not need a gradient."""
    if not x.requires_grad:
        return None
    return g if g.shape == x.shape else sum_to(g, x.shape)


class Add(Function):
    """y = a + b;  dy/da = 1, dy/db = 1."""

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return a + b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        return _grad_for(a, gy), _grad_for(b, gy)


class Sub(Function):
    """y = a - b;  dy/da = 1, dy/db = -1."""

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return a - b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        return _grad_for(a, gy), _grad_for(b, -gy) if b.requires_grad else None


class Mul(Function):
    """y = a * b;  dy/da = b, dy/db = a."""

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return a * b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = _grad_for(a, gy * b) if a.requires_grad else None
        gb = _grad_for(b, gy * a) if b.requires_grad else None
        return ga, gb


class Div(Function):
    """y = a / b;  dy/da = 1 / b, dy/db = -a / b^2."""

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return a / b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = _grad_for(a, gy / b) if a.requires_grad else None
        gb = _grad_for(b, -(gy * a) / (b * b)) if b.requires_grad else None
        return ga, gb


class Power(Function):
    """y = a ** b;  dy/da = b a^(b-1), dy/db = a^b log(a).

    Where the formulas meet 0 * inf, the derivatives are those of the function itself, as in
    PyTorch: a^0 = 1 for every a, so where b = 0 is a constant, dy/da = 0 to every order (not
    0 * a^-1, which is NaN at a = 0 and overflows near it); where a = 0 and b >= 0, dy/db = 0 (not
    0^b * log 0). Both masks replace a by 1 before it reaches a^(b-1) or log(a), so no branch
    computes an inf that a zero multiplies: every higher derivative stays finite there too (the
    second derivative of x**1 at 0 is 0, as PyTorch's). Where b = 0 requires grad, b a^(b-1) is kept
    for a != 0: it is an exact 0 whose b-derivative is the mixed partial 1/a (PyTorch's mask drops
    that term; JAX keeps it).
    """

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return a**b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = gb = None
        at_zero = a.data == 0
        if a.requires_grad:
            constant = b.data == 0 if not b.requires_grad else at_zero & (b.data == 0)
            base = where(constant, 1, a) if constant.any() else a
            ga = _grad_for(a, gy * b * base ** (b - 1))
        if b.requires_grad:
            zero_base = at_zero & (b.data >= 0)
            base = where(zero_base, 1, a) if zero_base.any() else a
            gb = _grad_for(b, gy * self.output() * log(base))
        return ga, gb


class Neg(Function):
    """y = -x;  dy/dx = -1."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return -x

    def backward(self, gy: Tensor) -> Tensor:
        return -gy


def add(a: TensorLike, b: TensorLike) -> Tensor:
    """a + b, broadcasting."""
    return Add()(*binary_operands(a, b))


def sub(a: TensorLike, b: TensorLike) -> Tensor:
    """a - b, broadcasting."""
    return Sub()(*binary_operands(a, b))


def mul(a: TensorLike, b: TensorLike) -> Tensor:
    """a * b, broadcasting."""
    return Mul()(*binary_operands(a, b))


def div(a: TensorLike, b: TensorLike) -> Tensor:
    """a / b, broadcasting."""
    return Div()(*binary_operands(a, b))


def power(a: TensorLike, b: TensorLike) -> Tensor:
    """a ** b, broadcasting. The gradient with respect to ``b`` is real for ``a > 0`` (and 0 at a = 0, b >= 0)."""
    return Power()(*binary_operands(a, b))


def neg(x: TensorLike) -> Tensor:
    """-x."""
    return Neg()(as_tensor(x))


from .elementwise import log  # noqa: E402  (elementwise imports this module)
