"""MAML (Finn, Abbeel & Levine, ICML 2017), first-order MAML, and MAML++'s options.

For each task i with support set D_i^tr and query set D_i^ts (Finn et al., Algorithm 1/2):

    φ_i = θ - α ∇_θ L(θ, D_i^tr)                       (inner loop, S steps of this)
    θ  ← θ - β ∇_θ (1/T) Σ_i L(φ_i, D_i^ts)           (outer loop, over a batch of T tasks)

The meta-gradient of one step is (I - α ∇²L(θ, D_i^tr)) ∇L(φ_i, D_i^ts): a Hessian-vector product,
never the Hessian itself. tinymeta gets it exactly by differentiating through the inner loop
(``mode="exact"``); ``first_order=True`` drops the Hessian term (FOMAML: d φ / d θ := I).

MAML++ (Antoniou, Edwards & Storkey, ICLR 2019) options:
- ``learn_inner_lr="per_layer_per_step"``: LSLR, one learned step size per parameter tensor and
  inner step (§4, "Learning per-layer per-step learning rates");
- ``step_loss_weights``: the multi-step loss Σ_s w_s L(φ_s, D^ts), the query loss after every
  inner step (§4, "Multi-step loss optimization").

Example (the one-number check of ``shared/references.md``): g(x) = x², x0 = 2, α = 1:

    >>> import tinymeta as tm
    >>> from tinymeta.meta import MAML
    >>> loss = lambda p, x, y: p["x"] ** 2 * tm.sum(x, axis=-1)     # g(x) per task (x = ones)
    >>> for first_order in (False, True):
    ...     maml = MAML(loss, inner_lr=1.0, first_order=first_order)
    ...     theta = maml.init({"x": tm.tensor(2.0, requires_grad=True)})
    ...     _, grads = maml.meta_grad(theta, [[1.0]], [[0.0]], [[1.0]], [[0.0]])
    ...     print(grads["x"].item())
    4.0
    -4.0
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from .. import ops
from .._checks import real
from ..backend import array_module
from ..engine import Tensor, TensorLike, grad, grad_mode, new_leaf, wrap_array, zeros_for_none
from .inner_loop import (
    LossFn,
    Params,
    check_episode,
    check_inner_loop_settings,
    check_params,
    check_steps,
    check_tasks,
    final,
    inner_steps,
    meta_parameters,
    task_losses,
)

LearnedStepSizes = Literal["per_parameter", "per_layer_per_step"]
STEP_SIZE_PREFIX = "inner_lr."


class MAML:
    """Model-agnostic meta-learning with an exact second-order meta-gradient.

    ``loss_fn(params, x, y)`` is one task's loss (a scalar); called with task-batched params
    [T, ...] and data [T, K, ...] it must return the T per-task losses (tinymeta.nn's models and
    losses do). ``batched=True`` adapts all T tasks in one pass; ``batched=False`` loops over the
    tasks one by one; both give the same meta-gradient.

    Meta-parameters are a flat dict: the model's parameters, plus ``"inner_lr.<name>"`` entries
    for learned step sizes (Meta-SGD, LSLR). Make them with :meth:`init`.
    """

    name = "maml"
    per_task_names: tuple[str, ...] = ()  # parameters made afresh for each task (CAVIA's context)

    def __init__(
        self,
        loss_fn: LossFn,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        first_order: bool = False,
        adapt_only: Sequence[str] | None = None,
        learn_inner_lr: LearnedStepSizes | None = None,
        step_loss_weights: Sequence[float] | None = None,
        batched: bool = True,
    ) -> None:
        inner_lr, inner_steps = check_inner_loop_settings(inner_lr, inner_steps)
        if adapt_only is not None:
            if isinstance(adapt_only, str) or not hasattr(adapt_only, "__iter__"):
                raise TypeError(f"adapt_only must be a list of parameter names (or None for all), got {adapt_only!r}")
            adapt_only = list(adapt_only)
            if not adapt_only:
                raise ValueError("adapt_only is empty: name at least one parameter to adapt (None adapts them all)")
            for name in adapt_only:
                if not isinstance(name, str):
                    raise TypeError(f"adapt_only must hold parameter names (str), got {name!r}")
        if learn_inner_lr not in (None, "per_parameter", "per_layer_per_step"):
            raise ValueError(
                f"learn_inner_lr must be None, 'per_parameter' or 'per_layer_per_step', got {learn_inner_lr!r}"
            )
        if step_loss_weights is not None:
            step_loss_weights = [real(w, f"step_loss_weights[{i}]") for i, w in enumerate(step_loss_weights)]
            if len(step_loss_weights) != inner_steps:
                raise ValueError(
                    f"step_loss_weights needs one weight per inner step ({inner_steps}), got {len(step_loss_weights)}"
                )
        self.loss_fn = loss_fn
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.first_order = bool(first_order)
        self.adapt_only = adapt_only
        self.learn_inner_lr = learn_inner_lr
        self.step_loss_weights = step_loss_weights
        self.batched = batched

    # ---- meta-parameters -----------------------------------------------------------------------

    def init(self, params: Params) -> Params:
        """Meta-parameters from a model's parameters: leaves that require grad, plus learned step sizes."""
        meta = meta_parameters(self._check_params(params))
        if self.learn_inner_lr is not None:
            for n in self._adapted(meta):
                # Meta-SGD: α has the shape of its parameter; LSLR: one α per tensor and inner step.
                shape = meta[n].shape if self.learn_inner_lr == "per_parameter" else (self.inner_steps,)
                xp = array_module(meta[n].data)
                meta[STEP_SIZE_PREFIX + n] = new_leaf(xp.full(shape, self.inner_lr, dtype=meta[n].dtype))
        return meta

    def _check_params(self, params: Params) -> Params:
        check_params(params)
        if self.adapt_only is not None:
            unknown = sorted(set(self.adapt_only) - set(params) - set(self.per_task_names))
            if unknown:
                raise ValueError(f"adapt_only names {unknown} are not parameters; the parameters are {sorted(params)}")
        return params

    def _adapted(self, params: Params) -> list[str]:
        return [n for n in params if self.adapt_only is None or n in self.adapt_only]

    def _split(self, meta_params: Params) -> tuple[Params, Params]:
        params = {n: p for n, p in meta_params.items() if not n.startswith(STEP_SIZE_PREFIX)}
        rates = {n[len(STEP_SIZE_PREFIX) :]: p for n, p in meta_params.items() if n.startswith(STEP_SIZE_PREFIX)}
        self._check_params(params)
        if self.learn_inner_lr is not None and set(rates) != set(self._adapted(params)):
            raise ValueError(
                f"meta_params must hold a learned step size 'inner_lr.<name>' for each adapted parameter "
                f"{self._adapted(params)}, got {sorted(rates)}; make them with {type(self).__name__}.init(params)"
            )
        return params, rates

    def _step_size(self, rates: Params) -> Any:
        if self.learn_inner_lr == "per_parameter":
            return lambda name, step: rates[name]
        if self.learn_inner_lr == "per_layer_per_step":
            last = self.inner_steps - 1  # beyond the trained steps (fine_tune), keep the last step size
            return lambda name, step: rates[name][min(step, last)]
        return lambda name, step: self.inner_lr

    def _mode(self) -> str:
        if not self.first_order:
            return "exact"
        # First order with fixed step sizes: d φ / d θ = I exactly, so run the loop without any graph
        # and reconnect φ to θ once at the end (memory independent of the number of steps).
        return "first_order" if self.learn_inner_lr else "detached"

    # ---- the algorithm -------------------------------------------------------------------------

    def task_params(self, params: Params, tasks: int | None) -> Params:
        """φ_0 for the inner loop: θ itself (one task), or θ broadcast to [T, ...] for the adapted
        parameters of a task batch (the others stay shared)."""
        if tasks is None:
            return dict(params)
        adapted = set(self._adapted(params))
        return {n: ops.broadcast_to(p, (tasks,) + p.shape) if n in adapted else p for n, p in params.items()}

    def trajectory(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        tasks: int | None,
        steps: int | None = None,
        mode: str | None = None,
    ) -> Iterator[Params]:
        """The inner loop's φ_1, ..., φ_S for support data with (``tasks`` = T) or without a task axis.

        ``steps`` and ``mode`` default to the algorithm's own (``inner_steps``; exact or first order).
        """
        params, rates = self._split(meta_params)
        phi0 = self.task_params(params, tasks)
        adapted = self._adapted(phi0)
        mode = mode or self._mode()
        trajectory = inner_steps(
            self.loss_fn,
            phi0,
            x_support,
            y_support,
            steps=self.inner_steps if steps is None else steps,
            step_size=self._step_size(rates),
            adapt=adapted,
            mode=mode,
            loss_shape=() if tasks is None else (tasks,),
        )
        for phi in trajectory:
            if mode == "detached":  # φ = θ + (φ - θ) held constant: d φ / d θ = I, as FOMAML prescribes
                phi = {**phi, **{n: phi0[n] + wrap_array(phi[n].data - phi0[n].data) for n in adapted}}
            yield phi

    def fine_tune(
        self, meta_params: Params, x_support: TensorLike, y_support: TensorLike, steps: int
    ) -> Iterator[Params]:
        """Test-time adaptation for evaluation: φ_0 (before any step), φ_1, ..., φ_steps, by the
        algorithm's own update rule (its step sizes, its adapted parameters), for any number of
        steps, without recording the second-order graph."""
        steps = check_steps(steps)
        tasks = check_tasks(x_support, y_support, names=("x_support", "y_support"))
        yield self.task_params(self._split(meta_params)[0], tasks)
        yield from self.trajectory(meta_params, x_support, y_support, tasks, steps=steps, mode="detached")

    def adapt(self, meta_params: Params, x_support: TensorLike, y_support: TensorLike) -> Params:
        """The adapted parameters φ after the inner loop, differentiable with respect to θ.

        Support data is [T, K, ...]; the adapted parameters come back with a task axis [T, ...]
        (the others shared), ready for ``model(phi, x_query)`` with x_query [T, N, ...].
        """
        tasks = check_tasks(x_support, y_support, names=("x_support", "y_support"))
        return final(self.trajectory(meta_params, x_support, y_support, tasks))

    def meta_loss(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
    ) -> Tensor:
        """(1/T) Σ_i L(φ_i, D_i^ts): the mean query loss after adaptation, a scalar Tensor whose
        gradient with respect to ``meta_params`` is the meta-gradient. All arrays are [T, K, ...]."""
        tasks = check_episode(x_support, y_support, x_query, y_query)
        if self.batched:
            return self._query_loss(
                self.trajectory(meta_params, x_support, y_support, tasks), x_query, y_query, (tasks,)
            )
        losses = [
            self._query_loss(
                self.trajectory(meta_params, _task(x_support, t), _task(y_support, t), None),
                _task(x_query, t),
                _task(y_query, t),
                (),
            )
            for t in range(tasks)
        ]
        return ops.mean(ops.stack(losses))

    def _query_loss(self, trajectory: Any, x_query: TensorLike, y_query: TensorLike, shape: tuple[int, ...]) -> Tensor:
        if self.step_loss_weights is None:
            return ops.mean(task_losses(self.loss_fn, final(trajectory), x_query, y_query, shape))
        total: Any = 0.0
        for w, phi in zip(self.step_loss_weights, trajectory):  # MAML++ multi-step loss
            total = total + w * ops.mean(task_losses(self.loss_fn, phi, x_query, y_query, shape))
        return total

    def meta_grad(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
    ) -> tuple[float, Params]:
        """(meta-loss value, its gradient for every meta-parameter): feed the gradient to an optimiser.

        Recording is on inside, whatever the caller's ``no_grad``, and a meta-parameter that does not
        require grad (a plain copy of θ) is differentiated all the same: a meta-gradient needs its graph."""
        meta_params = {n: p if p.requires_grad else new_leaf(p.data) for n, p in check_params(meta_params).items()}
        with grad_mode(True):
            loss = self.meta_loss(meta_params, x_support, y_support, x_query, y_query)
        names = list(meta_params)
        grads = grad(loss, [meta_params[n] for n in names], allow_unused=True)
        params = [meta_params[n] for n in names]
        return float(loss.item()), dict(zip(names, zeros_for_none(grads, params)))


def _task(a: TensorLike, t: int) -> Any:
    """Task t's slice of an array or tensor with a leading task axis."""
    return a[t]
