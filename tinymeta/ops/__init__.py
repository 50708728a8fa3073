"""tinymeta's differentiable ops, by family (a family never imports one below it):

    shape        reshape, transpose, broadcasting, indexing, joining and splitting, flip, pad, diagonals
    elementwise  exp, log, tanh, the trigonometric functions, ... of one tensor; where, maximum, clip,
                 arctan2, logaddexp, ... of two
    arithmetic   + - * / ** and negation, broadcasting
    reduction    sum, mean, prod, var, max, ..., the softmax family, cumsum, cumprod, sort
    products     matmul, dot, tensordot, einsum, kron, trace, ...
    linalg       solve, inv, det, ... (``tinymeta.linalg``, as ``numpy.linalg``)
    conv         2-D convolution and pooling

Each family module lists its differentiable ops in its ``__all__``; their union below is the
top-level names (``tinymeta.exp``); ``linalg``'s stay in their namespace (``tinymeta.linalg.solve``).
``REGISTRY`` names them all, and the test suite checks that every name in it has a gradient
specification (forward reference, first, second order): an op added without its checks fails.
"""

from .. import engine as _engine  # noqa: F401  (the engine first: it imports the ops back)
from . import arithmetic, conv, elementwise, linalg, products, reduction, shape
from .arithmetic import *  # noqa: F403
from .conv import *  # noqa: F403
from .elementwise import *  # noqa: F403
from .products import *  # noqa: F403
from .reduction import *  # noqa: F403
from .shape import *  # noqa: F403

__all__ = [
    *shape.__all__,
    *elementwise.__all__,
    *arithmetic.__all__,
    *reduction.__all__,
    *products.__all__,
    *conv.__all__,
]
REGISTRY = [*__all__, *(f"linalg.{name}" for name in linalg.__all__)]
