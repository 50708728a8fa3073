"""Conjugate gradient: solve A u = b when A is known only through products A v.

With A a Hessian (or I + H/λ, iMAML's system), A v is a Hessian-vector product (``tinymeta.hvp``):
the matrix is never formed, and each iteration costs about two gradients. Used by iMAML's implicit
meta-gradient and by the Newton-CG demo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._checks import flag, integer, real
from .backend import array_module
from .engine import Tensor

Arrays = list[Any]  # the blocks of one vector (one backend array per parameter)


def conjugate_gradient(
    matvec: Callable[[Arrays], Arrays], b: Arrays, steps: int, tol: float = 0.0, batched: bool = False
) -> Arrays:
    """u with A u ≈ b, from u = 0, after at most ``steps`` iterations.

    Conjugate gradient (Nocedal & Wright, Algorithm 5.2). A Hessian of a non-convex loss may have
    negative eigenvalues, so A need not be positive definite: where the search direction p has
    non-positive curvature p·Ap <= 0, the iteration stops and keeps its current u (truncated CG,
    Nocedal & Wright, Algorithm 7.2). It also stops once the residual's norm |b - A u| <= ``tol``.

    ``batched=True`` solves one independent system per index of every array's leading axis (one per
    task: a task-batched Hessian is block diagonal), each with its own step sizes and its own stop;
    the others go on. The vectors are lists of arrays (one per parameter) as ``matvec`` takes them.
    """
    if not isinstance(b, (list, tuple)) or not b:
        raise TypeError(f"b must be a non-empty list of arrays (the blocks of one vector), got {type(b).__name__}")
    steps, tol, batched = integer(steps, "steps", 0), real(tol, "tol", low=0), flag(batched, "batched")
    for i, x in enumerate(b):
        if isinstance(x, Tensor) or not hasattr(x, "shape"):
            hint = ": pass its array, t.data (and have matvec return arrays too)" if isinstance(x, Tensor) else ""
            raise TypeError(f"b[{i}] must be a NumPy or CuPy array, got {type(x).__name__}{hint}")
    shapes = [x.shape for x in b]
    if batched and any(len(shape) == 0 or shape[0] != shapes[0][0] for shape in shapes):
        raise ValueError(f"batched: every block of b needs the same leading (system) axis, got shapes {shapes}")
    xp = array_module(b[0])

    def product(v: Arrays) -> Arrays:
        av = matvec(v)
        if isinstance(av, (list, tuple)) and any(isinstance(x, Tensor) for x in av):
            raise TypeError("matvec must return a list of arrays, got Tensors in it: return t.data for each")
        if not isinstance(av, (list, tuple)) or [getattr(x, "shape", None) for x in av] != shapes:
            got = [getattr(x, "shape", None) for x in av] if isinstance(av, (list, tuple)) else type(av).__name__
            raise ValueError(f"matvec must return a list of arrays shaped like b's blocks {shapes}, got {got}")
        return av

    def dot(a: Arrays, c: Arrays) -> Any:  # ⟨a, c⟩ per system: over every array and every non-task axis
        if batched:
            return sum((x * y).reshape(x.shape[0], -1).sum(axis=1) for x, y in zip(a, c))
        return xp.asarray(sum((x * y).sum() for x, y in zip(a, c)))

    def scale(s: Any, x: Any) -> Any:  # s (one number per system) times x
        return s.reshape((-1,) + (1,) * (x.ndim - 1)) * x if batched else s * x

    u = [x * 0 for x in b]
    r = [x.copy() for x in b]
    p = [x.copy() for x in b]
    rr = dot(r, r)
    active = rr > tol * tol
    for _ in range(steps):
        if not active.any():
            break
        ap = product(p)
        curvature = dot(p, ap)
        active = active & (curvature > 0)
        alpha = xp.where(active, rr / xp.where(active, curvature, 1), 0)
        u = [x + scale(alpha, d) for x, d in zip(u, p)]
        r = [x - scale(alpha, d) for x, d in zip(r, ap)]
        rr_next = dot(r, r)
        active = active & (rr_next > tol * tol)
        beta = xp.where(active, rr_next / xp.where(active, rr, 1), 0)
        p = [scale(active, x) + scale(beta, d) for x, d in zip(r, p)]
        rr = rr_next
    return u
