"""Reptile (Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms").

For each task, k SGD steps from θ on the task's support data give φ̃_i; then (their Algorithm 2,
batched version)

    θ ← θ + ε (1/T) Σ_i (φ̃_i - θ)

First order by construction: no gradient flows through the inner loop, and nothing of it is kept.
``meta_grad`` returns g = θ - (1/T) Σ_i φ̃_i, so that plain SGD with learning rate ε on g makes
exactly the update above (and Adam on g is the usual practical variant).
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import ops
from .._checks import flag
from ..engine import TensorLike, new_leaf, no_grad, wrap_array
from .inner_loop import (
    LossFn,
    Params,
    check_episode,
    check_inner_loop_settings,
    check_loss_fn,
    check_params,
    check_steps,
    check_tasks,
    detached_sgd,
    final,
    for_each_task,
    meta_parameters,
    task_losses,
)


class Reptile:
    """Reptile over a batch of tasks (see the module docstring)."""

    def __init__(self, loss_fn: LossFn, inner_lr: float = 0.01, inner_steps: int = 5, batched: bool = True) -> None:
        self.inner_lr, self.inner_steps = check_inner_loop_settings(inner_lr, inner_steps)
        self.loss_fn, self.batched = check_loss_fn(loss_fn), flag(batched, "batched")

    def init(self, params: Params) -> Params:
        return meta_parameters(params)

    def adapt(self, meta_params: Params, x_support: TensorLike, y_support: TensorLike) -> Params:
        """φ̃ after ``inner_steps`` SGD steps, with a task axis [T, ...] (not differentiable)."""
        check_params(meta_params, "meta_params")
        tasks = check_tasks(x_support, y_support, names=("x_support", "y_support"))
        if not self.batched:
            per_task = [final(self._steps(meta_params, x_support[t], y_support[t], None)) for t in range(tasks)]
            return {n: new_leaf(ops.stack([phi[n] for phi in per_task]).data) for n in meta_params}
        return final(self._steps(meta_params, x_support, y_support, tasks))

    def fine_tune(
        self, meta_params: Params, x_support: TensorLike, y_support: TensorLike, steps: int
    ) -> Iterator[Params]:
        """Test-time adaptation: φ_0 = θ (broadcast to the T tasks), then φ_1, ..., φ_steps of plain SGD with
        ``inner_lr``."""
        steps, meta_params = check_steps(steps), check_params(meta_params, "meta_params")
        tasks = check_tasks(x_support, y_support, names=("x_support", "y_support"))
        yield for_each_task(meta_params, tasks)
        yield from self._steps(meta_params, x_support, y_support, tasks, steps)

    def _steps(
        self, meta_params: Params, x: TensorLike, y: TensorLike, tasks: int | None, steps: int | None = None
    ) -> Iterator[Params]:
        return detached_sgd(
            self.loss_fn,
            meta_params,
            x,
            y,
            steps=self.inner_steps if steps is None else steps,
            lr=self.inner_lr,
            tasks=tasks,
        )

    def meta_grad(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
    ) -> tuple[float, Params]:
        """(mean query loss after adaptation, θ - mean_i φ̃_i)."""
        tasks = check_episode(x_support, y_support, x_query, y_query)
        phi = self.adapt(meta_params, x_support, y_support)
        with no_grad():
            query = task_losses(self.loss_fn, phi, x_query, y_query, (tasks,))
        grads = {n: wrap_array(p.data - phi[n].data.mean(axis=0)) for n, p in meta_params.items()}
        return float(query.data.mean()), grads
