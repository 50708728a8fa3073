"""Products and contractions: matmul (batched over leading axes with NumPy broadcasting)."""

from __future__ import annotations

from typing import Any

import numpy

from ..backend import array_module
from ..engine import Function, Tensor, TensorLike, binary_operands, check_same_backend
from .shape import reshape, sum_to, swapaxes

# this family's differentiable ops (their union is the registry: ops/__init__.py)
__all__ = ["matmul"]


class MatMul(Function):
    """y = a @ b for a (..., n, k) and b (..., k, m), the batch axes broadcast.

    ga = gy @ b^T and gb = a^T @ gy (transposing the last two axes), each summed back over the
    batch axes that broadcasting created.
    """

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return array_module(a).matmul(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = sum_to(MatMul()(gy, swapaxes(b, -1, -2)), a.shape) if a.requires_grad else None
        gb = sum_to(MatMul()(swapaxes(a, -1, -2), gy), b.shape) if b.requires_grad else None
        return ga, gb


def matmul(a: TensorLike, b: TensorLike) -> Tensor:
    """a @ b with NumPy's rules: 1-D operands are promoted to a row/column and the added axis
    removed afterwards; (..., n, k) @ (..., k, m) -> (..., n, m) with broadcast batch axes."""
    a, b = binary_operands(a, b)
    check_same_backend("matmul", (a, b))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs operands with at least one axis, got shapes {a.shape} and {b.shape}")
    a_vector, b_vector = a.ndim == 1, b.ndim == 1
    a2 = reshape(a, (1, a.shape[0])) if a_vector else a
    b2 = reshape(b, (b.shape[0], 1)) if b_vector else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned "
            f"({a2.shape[-1]} columns in the first, {b2.shape[-2]} rows in the second)"
        )
    try:
        numpy.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch axes of shapes {a.shape} and {b.shape} do not broadcast") from None
    y = MatMul()(a2, b2)
    if a_vector:
        y = reshape(y, y.shape[:-2] + y.shape[-1:])
    if b_vector:
        y = reshape(y, y.shape[:-1])
    return y
