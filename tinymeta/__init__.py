"""tinymeta: a small reverse-mode autodiff engine with gradients of any order, Hessian-vector
products, and exact second-order MAML on top.

    >>> import tinymeta as tm
    >>> x = tm.tensor([1.0, 2.0], requires_grad=True)
    >>> (g,) = tm.grad(tm.sum(x ** 3), x)
    >>> g.numpy()
    array([ 3., 12.])
"""

from . import linalg, meta, nn, testing
from .engine import (
    Function,
    Tensor,
    as_tensor,
    grad,
    grad_mode,
    is_grad_enabled,
    no_grad,
    stop_gradient,
    tensor,
)
from .ops import *  # noqa: F403  (the op registry's names: add, exp, matmul, conv2d, ...)
from .ops import __all__ as _op_names
from .ops.reduction import argmax, argmin, argsort  # integer-valued: constants, outside the op registry
from .transforms import hessian, hvp, jacobian, jvp, vjp

__version__ = "0.1.0"

__all__ = [
    "Tensor", "Function", "tensor", "as_tensor", "grad", "no_grad", "grad_mode",
    "is_grad_enabled", "stop_gradient", "vjp", "jvp", "hvp", "jacobian", "hessian", "testing", "nn", "meta", "linalg",
    "argmax", "argmin", "argsort",
    *_op_names,
]  # fmt: skip
