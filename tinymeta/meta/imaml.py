"""iMAML, implicit MAML (Rajeswaran, Finn, Kakade & Levine, NeurIPS 2019).

The inner problem is regularised towards θ (their eq. 4):

    φ*_i = argmin_φ  L(φ, D_i^tr) + (λ/2) ||φ - θ||²

At the optimum, the implicit function theorem gives dφ*/dθ = (I + ∇²L(φ*, D_i^tr)/λ)^-1 (their
Lemma 1), so the meta-gradient of L(φ*_i, D_i^ts) is

    g_i = (I + H_i/λ)^-1 ∇L(φ*_i, D_i^ts),    H_i = ∇²L(φ*_i, D_i^tr),

which this module solves by conjugate gradient using only Hessian-vector products
(``tinymeta.hvp``; their Algorithm 2 and eq. 7). φ* is approximated by ``inner_steps`` steps of
gradient descent on the regularised loss, with nothing recorded: memory does not depend on the
number of inner steps. ``cg_damping`` adds δ·I to the system (I + H/λ + δI) to keep it well
conditioned. The paper's Omniglot setting: λ = 2, 5 CG steps, 16 inner steps.

All T tasks run together: with task-batched parameters the Hessian of Σ_i L_i is block diagonal,
one block per task, so one batched hvp serves every task's CG iteration, and the CG step sizes are
computed per task.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import ops
from .._checks import integer, real
from ..backend import array_module
from ..engine import Tensor, TensorLike, grad, grad_mode, new_leaf, wrap_array, zeros_for_none
from ..transforms import hvp
from .inner_loop import (
    LossFn,
    Params,
    check_episode,
    check_inner_loop_settings,
    check_steps,
    check_tasks,
    detached_sgd,
    final,
    meta_parameters,
    task_losses,
)


class iMAML:  # noqa: N801  (the paper's name)
    """Implicit MAML over a batch of tasks (see the module docstring)."""

    name = "imaml"

    def __init__(
        self,
        loss_fn: LossFn,
        inner_lr: float = 0.01,
        inner_steps: int = 16,
        lam: float = 2.0,
        cg_steps: int = 5,
        cg_damping: float = 0.0,
    ) -> None:
        self.inner_lr, self.inner_steps = check_inner_loop_settings(inner_lr, inner_steps)
        self.lam = real(lam, "lam (the regularisation strength λ)", low=0, low_inclusive=False)
        self.cg_steps = integer(cg_steps, "cg_steps", 1)
        self.cg_damping = real(cg_damping, "cg_damping", low=0)
        self.loss_fn = loss_fn

    def init(self, params: Params) -> Params:
        return meta_parameters(params)

    def adapt(self, meta_params: Params, x_support: TensorLike, y_support: TensorLike) -> Params:
        """φ* of the regularised inner problem, with a task axis [T, ...] (not differentiable)."""
        return final(self._steps(meta_params, x_support, y_support, self.inner_steps))

    def fine_tune(
        self, meta_params: Params, x_support: TensorLike, y_support: TensorLike, steps: int
    ) -> Iterator[Params]:
        """Test-time adaptation: φ_0 = θ, then φ_1, ..., φ_steps of gradient descent on the
        regularised inner loss."""
        steps = check_steps(steps)
        yield dict(meta_params)
        yield from self._steps(meta_params, x_support, y_support, steps)

    def _steps(self, meta_params: Params, x_support: TensorLike, y_support: TensorLike, steps: int) -> Iterator[Params]:
        tasks = check_tasks(x_support, y_support, names=("x_support", "y_support"))
        theta = {n: wrap_array(p.data) for n, p in meta_params.items()}

        def proximal_loss(phi: Params, x: TensorLike, y: TensorLike) -> Tensor:
            penalty: Any = 0.0
            for n, t in theta.items():
                d = phi[n] - t
                penalty = penalty + ops.sum(d * d, axis=tuple(range(1, d.ndim)))
            return self.loss_fn(phi, x, y) + (self.lam / 2) * penalty

        return detached_sgd(proximal_loss, theta, x_support, y_support, steps=steps, lr=self.inner_lr, tasks=tasks)

    def meta_grad(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
    ) -> tuple[float, Params]:
        """(mean query loss at φ*, the implicit meta-gradient averaged over the tasks)."""
        tasks = check_episode(x_support, y_support, x_query, y_query)
        names = list(meta_params)
        # φ* as fresh leaves: the implicit gradient needs derivatives at φ* only, not through the solver
        phi = {n: new_leaf(p.data) for n, p in self.adapt(meta_params, x_support, y_support).items()}
        with grad_mode(True):
            query = task_losses(self.loss_fn, phi, x_query, y_query, (tasks,))
            total = ops.sum(query)
        query_grads = grad(total, [phi[n] for n in names], allow_unused=True)
        b = [g.data for g in zeros_for_none(query_grads, [phi[n] for n in names])]

        point = [phi[n].detach() for n in names]  # H v at φ*: products only, no graph of them

        def train_hvp(vectors: list[Any]) -> list[Any]:
            def total_train_loss(*phis: Tensor) -> Tensor:
                return ops.sum(self.loss_fn(dict(zip(names, phis)), x_support, y_support))

            _, products = hvp(total_train_loss, point, [wrap_array(v) for v in vectors])
            return [p.data for p in products]

        solution = conjugate_gradient(train_hvp, b, self.lam, self.cg_damping, self.cg_steps)
        grads = {n: wrap_array(u.mean(axis=0)) for n, u in zip(names, solution)}
        return float(query.data.mean()), grads


def _task_dot(a: list[Any], b: list[Any]) -> Any:
    """Per-task inner products: Σ over every array and every non-task axis; shape [T]."""
    return sum((x * y).reshape(x.shape[0], -1).sum(axis=1) for x, y in zip(a, b))


def _per_task(scale: Any, x: Any) -> Any:
    return scale.reshape((-1,) + (1,) * (x.ndim - 1)) * x


def conjugate_gradient(hvp_fn: Any, b: list[Any], lam: float, damping: float, steps: int) -> list[Any]:
    """Solve (I + H/λ + δI) u = b for every task at once, H v given by ``hvp_fn``.

    Conjugate gradient (Nocedal & Wright, Algorithm 5.2) with per-task step sizes, from u = 0. H is
    the Hessian of a non-convex loss and may have negative eigenvalues, so the system need not be
    positive definite: a task whose search direction has non-positive curvature p·Ap <= 0 stops
    there and keeps its current u (truncated CG, Nocedal & Wright Algorithm 7.2), as does a task
    whose residual has vanished. The others go on.
    """

    def apply(v: list[Any]) -> list[Any]:
        return [x + h / lam + damping * x for x, h in zip(v, hvp_fn(v))]

    u = [x * 0 for x in b]
    r = [x.copy() for x in b]
    p = [x.copy() for x in b]
    rr = _task_dot(r, r)
    xp = array_module(b[0])
    active = rr > 0
    for _ in range(steps):
        ap = apply(p)
        curvature = _task_dot(p, ap)
        active = active & (curvature > 0)
        alpha = xp.where(active, rr / xp.where(active, curvature, 1), 0)
        u = [x + _per_task(alpha, d) for x, d in zip(u, p)]
        r = [x - _per_task(alpha, d) for x, d in zip(r, ap)]
        rr_next = _task_dot(r, r)
        active = active & (rr_next > 0)
        beta = xp.where(active, rr_next / xp.where(active, rr, 1), 0)
        p = [_per_task(active, x) + _per_task(beta, d) for x, d in zip(r, p)]
        rr = rr_next
        if not active.any():
            break
    return u
