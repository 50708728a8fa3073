"""Elementwise arithmetic with NumPy broadcasting: ``+ - * / **`` and negation.

Every binary op broadcasts its operands in ``forward``; its ``backward`` therefore ends with
``sum_to(g, x.shape)``, which sums the gradient over the broadcast axes (and whose own backward is
``broadcast_to``, so second derivatives survive broadcasting).
"""

from __future__ import annotations

import math
from typing import Any

from ..backend import array_module
from ..engine import Function, Tensor, TensorLike, as_tensor, binary_operands
from .elementwise import log, where
from .shape import _broadcast_to, sum_to

# this family's differentiable ops (their union is the registry: ops/__init__.py)
__all__ = ["add", "sub", "mul", "div", "power", "neg"]


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


def add(a: TensorLike, b: TensorLike) -> Tensor:
    """a + b, broadcasting."""
    return Add()(*binary_operands(a, b))


class Sub(Function):
    """y = a - b;  dy/da = 1, dy/db = -1."""

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return a - b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        return _grad_for(a, gy), _grad_for(b, -gy) if b.requires_grad else None


def sub(a: TensorLike, b: TensorLike) -> Tensor:
    """a - b, broadcasting."""
    return Sub()(*binary_operands(a, b))


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


def mul(a: TensorLike, b: TensorLike) -> Tensor:
    """a * b, broadcasting."""
    return Mul()(*binary_operands(a, b))


class Div(Function):
    """y = a / b;  dy/da = 1 / b, dy/db = -a / b^2 = -(y / b).

    Written as -gy (y / b), as PyTorch does: never through b * b, nor gy * y, either of which under-
    or overflows long before the gradient does (at b = 1e-25 in float32 b^2 is 0, and -a / b^2 would
    be -inf where the gradient is -1e25).
    """

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return a / b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = _grad_for(a, gy / b) if a.requires_grad else None
        gb = _grad_for(b, -gy * (self.output() / b)) if b.requires_grad else None
        return ga, gb


def div(a: TensorLike, b: TensorLike) -> Tensor:
    """a / b, broadcasting."""
    return Div()(*binary_operands(a, b))


class NoDerivative(Function):
    """z -> 0 (or, with ``nan``, NaN where ``mask`` holds), a term whose derivative does not exist
    where ``mask`` holds: its gradient is NaN there and exactly 0 elsewhere, and so is every
    derivative after it, in z and in the incoming gradient alike.

    Power adds it where the value of a derivative is a convention (0 * inf read as 0) but the next
    derivative does not exist: differentiating further then says so, instead of inventing a number.
    NaN appears only where a gradient flows: a non-zero one, or a symbolic one (forward mode's zero
    seed, differentiated later); a constant zero (an unused output, another row of a Jacobian, a
    zero tangent component) contributes nothing, and no NaN reaches another element.
    """

    __slots__ = ("mask", "nan")

    def __init__(self, mask: Any, nan: bool = False) -> None:
        self.mask = mask
        self.nan = nan

    def forward(self, z: Any) -> Any:
        xp = array_module(z)
        return xp.where(self.mask, math.nan, 0).astype(z.dtype) if self.nan else xp.zeros_like(z)

    def backward(self, gy: Tensor) -> Tensor:
        flows = self.mask & ((gy.data != 0) | gy.requires_grad)
        return NoDerivative(flows, nan=True)(gy) + NoDerivative(self.mask)(self.inputs[0])


def _no_derivative(value: Tensor, xs: tuple[Tensor, ...], mask: Any) -> Tensor:
    """``value``, with no derivative in any of ``xs`` where ``mask`` holds (see NoDerivative)."""
    for x in xs if mask.any() else ():
        value = value + NoDerivative(mask)(_broadcast_to(x, mask.shape))
    return value


class Power(Function):
    """y = a ** b;  dy/da = b a^(b-1), dy/db = a^b log(a).

    At a = 0 the formulas meet 0 * inf; there the first derivatives are those of the function
    itself, as in PyTorch: where b = 0, a^0 = 1 for every a, so dy/da = 0 (not 0 * 0^-1); where
    b >= 0, 0^b is constant in b for b > 0, so dy/db = 0 (not 0^b log 0). The masks replace a by 1
    before it reaches a^(b-1) or log(a), so no branch computes an inf that a zero multiplies.

    Beyond the first order, the derivatives in a alone are exact to every order, at a = 0 too (x**0
    has all of them 0, x**1 its second 0, x**2 its second 2), whether the exponent is a constant or
    requires grad (as PyTorch's, given separate tensors). At a = 0 a derivative that also involves b
    exists only sometimes: d/db (b a^(b-1)) = a^(b-1) (1 + b log a) is 0 for b > 1 and kept, but -inf
    at b = 1 (where PyTorch gives 1); the derivatives of a^b log a beyond it are NaN, as PyTorch's.
    Those that do not exist are NaN in every mode (reverse, forward, nested): the NoDerivative terms.
    Away from a = 0 nothing is masked: b a^(b-1) at b = 0 is an exact 0 whose b-derivative is the
    mixed partial 1/a (PyTorch's mask drops that term; JAX keeps it).
    The products are taken as b a^(b-1) and a^b log(a) before gy multiplies them (as PyTorch), so a
    huge exponent overflows only where the derivative does.
    """

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return a**b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = gb = None
        at_zero = array_module(a.data).broadcast_to(a.data == 0, gy.shape)  # the output's shape
        variable_exponent_at_zero = b.requires_grad and at_zero.any()  # where some derivatives do not exist
        if a.requires_grad:
            # a^0 = 1 for every a: with a constant exponent 0 every derivative in a is 0
            flat = b.data == 0 if not b.requires_grad else at_zero & (b.data == 0)
            base = where(flat, 1, a) if flat.any() else a
            ga = gy * (b * base ** (b - 1))
            if variable_exponent_at_zero:  # its derivatives in a alone are exact (Power(a, b - 1) again)
                ga = _no_derivative(ga, (b,), at_zero & (b.data <= 1))  # in b, only for b > 1
            ga = _grad_for(a, ga)
        if b.requires_grad:
            zero_base = at_zero & (b.data >= 0)
            base = where(zero_base, 1, a) if zero_base.any() else a
            gb = gy * (self.output() * log(base))
            if variable_exponent_at_zero:
                gb = _no_derivative(gb, (a, b), at_zero)
            gb = _grad_for(b, gb)
        return ga, gb


def power(a: TensorLike, b: TensorLike) -> Tensor:
    """a ** b, broadcasting. The gradient with respect to ``b`` is real for ``a > 0`` (and 0 at a = 0, b >= 0)."""
    return Power()(*binary_operands(a, b))


class Neg(Function):
    """y = -x;  dy/dx = -1."""

    __slots__ = ()

    def forward(self, x: Any) -> Any:
        return -x

    def backward(self, gy: Tensor) -> Tensor:
        return -gy


def neg(x: TensorLike) -> Tensor:
    """-x."""
    return Neg()(as_tensor(x))
