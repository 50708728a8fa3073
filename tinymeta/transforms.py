"""Function transforms named as in JAX: ``vjp``, ``jvp``, ``hvp``, ``jacobian``, ``hessian``.

Each is a few lines on top of the one primitive, reverse-mode :func:`tinymeta.grad`:

- ``vjp``: v^T J, one reverse sweep.
- ``jvp``: J t by the double-vjp trick. g(u) = J^T u is linear in u, so its own vjp with
  cotangent t is (J^T)^T t = J t: two reverse sweeps, no forward mode needed.
- ``hvp``: H v = d/dx <grad f(x), v> (Pearlmutter 1994): reverse over reverse, a small constant
  times the cost of one gradient, O(n) memory, and the Hessian is never formed.
- ``jacobian`` / ``hessian``: one vjp / hvp per basis vector; for small problems and tests.

Primals are taken as fresh leaves (their own graph history is ignored), like JAX's transforms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .backend import array_module
from .engine import Tensor, TensorLike, _leaf, _wrap, _zeros_for_none, as_tensor, check_same_backend, grad, tensor


def _leaves(primals: Sequence[TensorLike]) -> tuple[Tensor, ...]:
    leaves = []
    for i, p in enumerate(primals):
        data = p.data if isinstance(p, Tensor) else tensor(p).data
        if data.dtype.kind != "f":
            raise TypeError(f"primals[{i}] must be floating point, got dtype {data.dtype}")
        leaves.append(_leaf(data))
    return tuple(leaves)


def _as_sequence(xs: Any) -> tuple[tuple[Any, ...], bool]:
    """(xs as a tuple, whether xs was a single value rather than a sequence)."""
    if isinstance(xs, (list, tuple)):
        return tuple(xs), False
    return (xs,), True


def _match(tangents: Sequence[TensorLike], leaves: Sequence[Tensor], what: str) -> list[Tensor]:
    if len(tangents) != len(leaves):
        raise ValueError(f"got {len(tangents)} {what} for {len(leaves)} primals; give one per primal")
    out = []
    for i, (t, x) in enumerate(zip(tangents, leaves)):
        t = as_tensor(t, x)
        check_same_backend(what, (x, t))
        if t.shape != x.shape:
            raise ValueError(f"{what}[{i}] has shape {t.shape} but primals[{i}] has shape {x.shape}")
        out.append(t.detach())
    return out


def _linear_dependents(outs: Sequence[Tensor | None], cotangents: Sequence[Tensor]) -> tuple[list, list]:
    """The (output, cotangent) pairs whose output depends on the leaves (others contribute 0)."""
    pairs = [(o, c) for o, c in zip(outs, cotangents) if o is not None and o.requires_grad]
    return [o for o, _ in pairs], [c for _, c in pairs]


def vjp(f: Callable[..., Tensor], *primals: TensorLike) -> tuple[Tensor, Callable[[TensorLike], tuple[Tensor, ...]]]:
    """(f(*primals), vjp_fn) where vjp_fn(v) = v^T J: one gradient per primal.

    >>> import tinymeta as tm
    >>> y, vjp_fn = tm.vjp(lambda x: x * x, tm.tensor([1.0, 2.0]))
    >>> vjp_fn(tm.tensor([1.0, 1.0]))[0].numpy()
    array([2., 4.])
    """
    leaves = _leaves(primals)
    y = f(*leaves)

    def vjp_fn(cotangent: TensorLike) -> tuple[Tensor, ...]:
        if not y.requires_grad:
            return _zeros_for_none([None] * len(leaves), leaves)
        return _zeros_for_none(grad(y, leaves, grad_outputs=cotangent, allow_unused=True), leaves)

    return y.detach(), vjp_fn


def jvp(f: Callable[..., Tensor], primals: Any, tangents: Any) -> tuple[Tensor, Tensor]:
    """(f(primals), J t): the directional derivative of f at ``primals`` along ``tangents``.

    ``primals`` and ``tangents`` are sequences of matching shapes (or single tensors).
    """
    primals, _ = _as_sequence(primals)
    tangents, _ = _as_sequence(tangents)
    leaves = _leaves(primals)
    tangents = _match(tangents, leaves, "tangents")
    y = f(*leaves)
    u = _leaf(array_module(y.data).zeros_like(y.data))
    if not y.requires_grad:
        return y.detach(), _wrap(array_module(y.data).zeros_like(y.data))
    transposed = grad(y, leaves, grad_outputs=u, create_graph=True, allow_unused=True)  # J^T u
    outs, cotangents = _linear_dependents(transposed, tangents)
    if not outs:
        return y.detach(), u.detach()
    (jt,) = _zeros_for_none(grad(outs, u, grad_outputs=cotangents, allow_unused=True), (u,))
    return y.detach(), jt


def hvp(f: Callable[..., Tensor], primals: Any, tangents: Any) -> tuple[Tensor, Any]:
    """(f(primals), H v) for a scalar f, without forming the Hessian H.

    H v = d/dx <grad f(x), v>: differentiate the gradient (recorded with ``create_graph``) once
    more, with v as the upstream gradient. With several primals, H is the Hessian with respect to
    all of them jointly and the result is a tuple, one block per primal.

    >>> import tinymeta as tm
    >>> f = lambda x: tm.sum(x ** 3)                  # H = diag(6 x)
    >>> y, hv = tm.hvp(f, tm.tensor([1.0, 2.0]), tm.tensor([1.0, 1.0]))
    >>> hv.numpy()
    array([ 6., 12.])
    """
    primals, single = _as_sequence(primals)
    tangents, _ = _as_sequence(tangents)
    leaves = _leaves(primals)
    tangents = _match(tangents, leaves, "tangents")
    y = f(*leaves)
    if y.size != 1:
        raise ValueError(f"hvp needs a scalar function, but f returned shape {y.shape}")
    if y.requires_grad:
        gradients = grad(y, leaves, create_graph=True, allow_unused=True)
        outs, cotangents = _linear_dependents(gradients, tangents)
    else:
        outs = []
    products: Sequence[Tensor | None] = [None] * len(leaves)
    if outs:
        products = grad(outs, leaves, grad_outputs=cotangents, allow_unused=True)
    products = _zeros_for_none(products, leaves)
    return y.detach(), products[0] if single else products


def jacobian(f: Callable[[Tensor], Tensor], x: TensorLike) -> Tensor:
    """The Jacobian dy/dx of y = f(x), shape y.shape + x.shape (one vjp per output element)."""
    (leaf,) = _leaves((x,))
    y = f(leaf)
    xp = array_module(leaf.data)
    jac = xp.zeros((y.size, leaf.size), dtype=leaf.dtype)
    if y.requires_grad:
        basis = xp.zeros(y.size, dtype=y.dtype)
        for i in range(y.size):
            basis[:] = 0
            basis[i] = 1
            (row,) = grad(y, leaf, grad_outputs=basis.reshape(y.shape), allow_unused=True)
            if row is not None:
                jac[i] = row.data.reshape(-1)
    return _wrap(jac.reshape(y.shape + leaf.shape))


def hessian(f: Callable[[Tensor], Tensor], x: TensorLike) -> Tensor:
    """The Hessian of a scalar f at x, shape x.shape + x.shape: the Jacobian of the gradient."""

    def gradient(z: Tensor) -> Tensor:
        y = f(z)
        if y.size != 1:
            raise ValueError(f"hessian needs a scalar function, but f returned shape {y.shape}")
        if not y.requires_grad:
            return _zeros_for_none([None], [z])[0]
        (g,) = _zeros_for_none(grad(y, z, create_graph=True, allow_unused=True), (z,))
        return g

    return jacobian(gradient, x)
