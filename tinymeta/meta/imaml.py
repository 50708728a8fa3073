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
from ..engine import Tensor, TensorLike, grad, grad_mode, new_leaf, wrap_array, zeros_for_none
from ..solvers import conjugate_gradient
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

        def system(v: list[Any]) -> list[Any]:  # (I + H/λ + δI) v
            return [x + h / self.lam + self.cg_damping * x for x, h in zip(v, train_hvp(v))]

        solution = conjugate_gradient(system, b, self.cg_steps, batched=True)
        grads = {n: wrap_array(u.mean(axis=0)) for n, u in zip(names, solution)}
        return float(query.data.mean()), grads
