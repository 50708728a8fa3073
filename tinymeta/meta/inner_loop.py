"""The inner loop, written once: SGD steps on the support loss, for every algorithm.

    φ_0 = θ,    φ_{s+1}[n] = φ_s[n] - α(n, s) ∇_{φ_s[n]} L_support(φ_s)    for each adapted name n

Everything the algorithms differ in is a parameter of this one loop:

- ``mode`` says how the steps connect to θ.
  ``"exact"``: the gradients are recorded (``create_graph=True``), so d φ_S / d θ contains every
  Hessian term Π_s (I - α ∇²L(φ_s)) and the meta-gradient is MAML's exact second-order one.
  ``"first_order"``: the gradients are constants, so d φ_S / d θ = I (first-order MAML). With fixed
  step sizes nothing about the steps needs recording: they run detached (below) and each φ_s is
  handed back as θ + (φ_s - θ), the difference a constant, so memory does not grow with the number
  of steps. With learned step sizes (tensors that require grad) the updates φ_s - α g_s are
  recorded, g_s constant, so α still gets its gradient.
  ``"detached"``: nothing is recorded: each step differentiates the support loss at a fresh leaf
  copy of φ_s, and φ_{s+1} is a constant (Reptile, iMAML, test-time fine-tuning). Under
  ``tinymeta.no_grad()`` every mode runs detached: the steps are taken (their gradients need the
  support loss's graph, recorded whatever the caller's setting), but nothing carries a graph.
- ``step_size(name, step)`` is α: a float (MAML), a tensor of the parameter's shape (Meta-SGD) or
  one learned scalar per layer and step (MAML++'s LSLR).
- ``adapt`` names the parameters that move (all for MAML; the head for ANIL; the context for CAVIA).

**Task batching.** With parameters carrying a leading task axis [T, ...] (θ broadcast to T copies)
and data [T, K, ...], ``loss_fn`` returns the T per-task losses. Their sum is differentiated: task
t's loss depends only on its own copy φ[n][t], so the gradient of the sum with respect to the
[T, ...] parameters is exactly every task's own inner gradient, computed in one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Literal

import numpy

from .. import ops
from .._checks import callable_with, integer, real
from ..engine import (
    Tensor,
    TensorLike,
    grad,
    grad_mode,
    is_grad_enabled,
    new_leaf,
    no_grad,
    wrap_array,
    zeros_for_none,
)

Params = dict[str, Tensor]
LossFn = Callable[[Params, TensorLike, TensorLike], Tensor]
StepSize = Callable[[str, int], TensorLike]
Mode = Literal["exact", "first_order", "detached"]
MODES = ("exact", "first_order", "detached")


def task_losses(loss_fn: LossFn, params: Params, x: TensorLike, y: TensorLike, shape: tuple[int, ...]) -> Tensor:
    """``loss_fn(params, x, y)``, checked to be one loss per task: shape (T,), or () for one task."""
    losses = loss_fn(params, x, y)
    if not isinstance(losses, Tensor):
        raise TypeError(f"loss_fn must return a Tensor, got {type(losses).__name__}")
    if losses.shape != shape:
        expected = f"({shape[0]},): one loss per task" if shape else "(): one scalar loss for the task"
        raise ValueError(
            f"loss_fn returned shape {losses.shape}, expected {expected}; reduce over the examples of each "
            "task only (tinymeta.nn.mse_loss and cross_entropy do)"
        )
    return losses


def inner_sgd(
    loss_fn: LossFn,
    params: Params,
    x: TensorLike,
    y: TensorLike,
    *,
    steps: int,
    step_size: StepSize,
    adapt: Sequence[str],
    mode: Mode,
    loss_shape: tuple[int, ...],
    learned_step_sizes: bool = False,
    loss_at_step: Callable[[int], LossFn] | None = None,
) -> Iterator[Params]:
    """Yield φ_1, ..., φ_S of SGD on the support loss (see the module docstring for ``mode``).

    ``params`` is φ_0 (θ, or θ broadcast to [T, ...]); it is not modified. ``loss_shape`` is (T,)
    for task-batched data, () for one task. ``learned_step_sizes`` says that ``step_size`` returns
    meta-parameters (Meta-SGD, LSLR), which a first-order loop must keep on the graph.
    ``loss_at_step(s)``, when given, is step s's support loss in place of ``loss_fn`` (a loss that
    depends on the step: MAML++'s per-step batch norm)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    check_params(params)
    steps = integer(steps, "steps", 0)
    if isinstance(adapt, str) or not isinstance(adapt, (list, tuple)) or any(n not in params for n in adapt):
        raise ValueError(f"adapt must be a list of names of params {sorted(params)}, got {adapt!r}")
    if not callable(step_size):
        raise TypeError(f"step_size must be a function step_size(name, step) -> α, got {type(step_size).__name__}")
    reattach = mode == "first_order" and not learned_step_sizes
    detached = reattach or mode == "detached" or not is_grad_enabled()
    phi = dict(params)
    for s in range(steps):
        # A fresh leaf where nothing is recorded (or where φ_s is a constant, as a θ that does not require
        # grad): the support loss must be differentiable in the adapted parameters.
        phi = {n: new_leaf(p.data) if n in adapt and (detached or not p.requires_grad) else p for n, p in phi.items()}
        with grad_mode(True):
            step_loss = loss_fn if loss_at_step is None else loss_at_step(s)
            losses = task_losses(step_loss, phi, x, y, loss_shape)
            total = ops.sum(losses) if losses.ndim else losses
        gradients = grad(
            total, [phi[n] for n in adapt], create_graph=mode == "exact" and not detached, allow_unused=True
        )
        phi = dict(phi)
        with grad_mode(is_grad_enabled() and not detached):
            for name, g in zip(adapt, gradients):
                if g is not None:  # None: the loss does not depend on this parameter, which stays where it is
                    phi[name] = phi[name] - step_size(name, s) * g
        if reattach:  # φ_s = θ + (φ_s - θ), the difference held constant: d φ_s / d θ = I, as FOMAML prescribes
            yield {**phi, **{n: params[n] + wrap_array(phi[n].data - params[n].data) for n in adapt}}
        else:
            yield phi


def for_each_task(params: Params, tasks: int | None, names: Collection[str] | None = None) -> Params:
    """φ_0 of a batch of ``tasks`` tasks: each parameter (only those in ``names``, when given; the others
    stay shared) broadcast to [T, ...], θ for every task; ``tasks=None`` (one task): ``params`` as they are."""
    if tasks is None:
        return dict(params)
    return {n: ops.broadcast_to(p, (tasks, *p.shape)) if names is None or n in names else p for n, p in params.items()}


def detached_sgd(
    loss_fn: LossFn, params: Params, x: TensorLike, y: TensorLike, *, steps: int, lr: float, tasks: int | None
) -> Iterator[Params]:
    """Plain SGD with step size ``lr`` on every parameter, from fresh copies of ``params`` (one per
    task, [T, ...], when ``tasks`` is given), nothing recorded: the inner loop of Reptile and iMAML."""
    start = for_each_task({n: p.detach() for n, p in params.items()}, tasks)
    return inner_sgd(
        loss_fn,
        start,
        x,
        y,
        steps=steps,
        step_size=lambda name, step: lr,
        adapt=list(start),
        mode="detached",
        loss_shape=() if tasks is None else (tasks,),
    )


def final(trajectory: Iterator[Params]) -> Params:
    """The last parameters of an inner loop (without keeping the earlier ones)."""
    phi = None
    for phi in trajectory:  # noqa: B007  (exhaust the generator, keeping only the last)
        pass
    if phi is None:
        raise ValueError("the inner loop took no step: final needs at least one (steps >= 1)")
    return phi


def check_tasks(*arrays: TensorLike, names: Sequence[str]) -> int:
    """The number of tasks T: the leading axis every array must share, with at least one task and
    one example (K >= 1 on axis 1) in each, and as many examples in each input as in the targets
    that follow it (arrays come in pairs x, y). Raises ValueError otherwise, naming array and axis."""
    shapes = [tuple(a.shape) if hasattr(a, "shape") else numpy.shape(a) for a in arrays]
    for name, shape in zip(names, shapes):
        if len(shape) < 2:
            raise ValueError(f"{name} must be [T, K, ...] with a leading task axis, got shape {shape}")
        if shape[0] == 0:
            raise ValueError(f"{name} has no tasks: its task axis (axis 0, T) has length 0 (shape {shape})")
        if shape[1] == 0:
            raise ValueError(f"{name} has no examples: its example axis (axis 1, K) has length 0 (shape {shape})")
    if len({shape[0] for shape in shapes}) != 1:
        listed = ", ".join(f"{n} {shape}" for n, shape in zip(names, shapes))
        raise ValueError(f"the task axes (first axis) disagree: {listed}")
    for (x_name, x_shape), (y_name, y_shape) in zip(zip(names[::2], shapes[::2]), zip(names[1::2], shapes[1::2])):
        if x_shape[1] != y_shape[1]:
            raise ValueError(
                f"{x_name} has {x_shape[1]} examples per task (axis 1, shape {x_shape}) but {y_name} has "
                f"{y_shape[1]} (shape {y_shape}): give one target per example"
            )
    return shapes[0][0]


def check_episode(x_support: TensorLike, y_support: TensorLike, x_query: TensorLike, y_query: TensorLike) -> int:
    """The number of tasks T of a meta-batch: support and query arrays must all be [T, ...]."""
    return check_tasks(x_support, y_support, x_query, y_query, names=("x_support", "y_support", "x_query", "y_query"))


def check_inner_loop_settings(inner_lr: float, inner_steps: int) -> tuple[float, int]:
    """(inner_lr, inner_steps) checked: a finite step size >= 0 and an integer number of steps >= 1."""
    return real(inner_lr, "inner_lr", low=0), integer(inner_steps, "inner_steps", 1)


def check_steps(steps: int) -> int:
    """The number of test-time steps of ``fine_tune``: an integer >= 0 (0 yields φ_0 alone: θ, for each task)."""
    return integer(steps, "steps", 0)


def adapted_without_steps(adapt: Callable[[], Params], steps: int) -> Iterator[Params]:
    """``fine_tune`` for a learner whose adaptation takes no gradient steps (a closed-form head, an
    encoder that reads the support set once): ``adapt()`` once, unrecorded, and the same φ yielded
    ``steps + 1`` times, so that the evaluation harness of the gradient-based learners applies."""
    steps = check_steps(steps)
    with no_grad():
        phi = adapt()
    for _ in range(steps + 1):
        yield phi


def check_loss_fn(loss_fn: LossFn) -> LossFn:
    """``loss_fn`` itself, checked to be callable as ``loss_fn(params, x, y)``."""
    return callable_with(loss_fn, 3, "loss_fn", "loss_fn(params, x, y) -> per-task losses")


def check_params(params: Params, name: str = "params") -> Params:
    """``params`` itself, checked to be a non-empty dict of floating-point tensors (``name``: the
    argument's, for the error)."""
    if not isinstance(params, dict) or not params:
        raise TypeError(f"{name} must be a non-empty dict of name -> Tensor, got {type(params).__name__}")
    for n, p in params.items():
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}[{n!r}] must be a Tensor, got {type(p).__name__}")
        if p.dtype.kind != "f":
            raise TypeError(f"{name}[{n!r}] must be floating point, got dtype {p.dtype}")
    return params


def meta_parameters(params: Params) -> Params:
    """Meta-parameters from a model's parameters: each copied into a fresh leaf that requires grad
    (the caller's arrays are never shared with them)."""
    return {n: new_leaf(p.data.copy()) for n, p in check_params(params).items()}


def value_and_meta_grad(meta_loss: Callable[[Params], Tensor], meta_params: Params) -> tuple[float, Params]:
    """(meta-loss value, its gradient for every meta-parameter) of ``meta_loss(meta_params)``, a
    scalar Tensor. Recording is on inside, whatever the caller's ``no_grad``, and a meta-parameter
    that does not require grad (a plain copy of θ) is differentiated all the same; one that the loss
    does not use gets a zero gradient."""
    check_params(meta_params, "meta_params")
    meta_params = {n: p if p.requires_grad else new_leaf(p.data) for n, p in meta_params.items()}
    with grad_mode(True):
        loss = meta_loss(meta_params)
    params = list(meta_params.values())
    grads = grad(loss, params, allow_unused=True)
    return float(loss.item()), dict(zip(meta_params, zeros_for_none(grads, params)))
