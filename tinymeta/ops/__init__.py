"""tinymeta's differentiable ops, by family.

``__all__`` below is the registry of differentiable ops: the test suite checks that every name in
it has a gradient specification (forward reference, first, second order), so an op added here
without its checks fails the tests.
"""

from .. import engine as _engine  # noqa: F401  (the engine first: it imports the ops back)
from .arithmetic import add, div, mul, neg, power, sub
from .conv import avg_pool2d, conv2d, max_pool2d
from .elementwise import abs, astype, cos, exp, log, relu, sigmoid, sin, softplus, sqrt, tanh, where
from .linalg import matmul
from .reduction import log_softmax, logsumexp, max, mean, min, softmax, sum
from .shape import (
    broadcast_to,
    concatenate,
    expand_dims,
    getitem,
    reshape,
    squeeze,
    stack,
    sum_to,
    swapaxes,
    transpose,
)

__all__ = [
    # arithmetic
    "add", "sub", "mul", "div", "power", "neg",
    # elementwise
    "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "relu", "softplus", "sin", "cos", "astype", "where",
    # reductions and the softmax family
    "sum", "mean", "max", "min", "logsumexp", "softmax", "log_softmax",
    # shape
    "reshape", "transpose", "swapaxes", "broadcast_to", "sum_to", "expand_dims", "squeeze",
    "concatenate", "stack", "getitem",
    # linear algebra, convolution
    "matmul", "conv2d", "max_pool2d", "avg_pool2d",
]  # fmt: skip
