"""``tinymeta.linalg``: differentiable counterparts of ``numpy.linalg`` (the ops live in ``tinymeta/ops/linalg.py``)."""

from .ops.linalg import *  # noqa: F403
from .ops.linalg import __all__  # noqa: F401
