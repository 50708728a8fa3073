"""Outer-loop optimisers on parameter dicts, functional: the state is explicit.

    opt = Adam(lr=1e-3)
    state = opt.init(params)
    params, state = opt.step(params, grads, state)

Updates are arithmetic on the parameters' raw arrays (nothing is recorded, whatever the grad
mode) and return new leaf tensors that require grad, so the next meta-iteration starts a fresh graph.

**Learning-rate schedules.** ``lr`` may be a schedule instead of a number: a function of the step
count t (0 for the first update, 1 for the second, ...) returning the learning rate of that update.
The optimiser's state already counts the updates (Adam's ``state["step"]``; SGD's
``state["updates"]``, kept only with a schedule), so a run resumed from a saved state continues the
schedule exactly. ``cosine_schedule(lr, total_steps, min_lr)`` is MAML++'s cosine annealing of the
meta learning rate (Antoniou et al. 2019, §4; Loshchilov & Hutter 2017):

    >>> schedule = cosine_schedule(1e-3, total_steps=100, min_lr=1e-5)
    >>> schedule(0), round(schedule(50), 9), schedule(100)
    (0.001, 0.000505, 1e-05)
    >>> adam = Adam(lr=schedule)            # update t uses schedule(t)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .._checks import callable_with, integer, real
from ..backend import array_module
from ..engine import Tensor, new_leaf, wrap_array

Params = dict[str, Tensor]
LearningRate = float | Callable[[int], float]


class CosineSchedule(float):
    """Cosine annealing from ``lr`` to ``min_lr`` over ``total_steps`` updates:

        lr_t = min_lr + (lr - min_lr) (1 + cos(π t / total_steps)) / 2    for t <= total_steps,
        lr_t = min_lr                                                      after,

    so the first update (t = 0) uses ``lr`` and the last of ``total_steps`` (t = total_steps - 1)
    just above ``min_lr``, as PyTorch's ``CosineAnnealingLR(T_max=total_steps, eta_min=min_lr)``
    stepped once per update. Call it with t for lr_t.

    It is also a float, equal to its peak ``lr``: where a program prints, records or compares "the
    learning rate" (a checkpoint's settings, an error message naming ``--meta-lr``) the schedule
    stands for its starting value, and code written for a number passes it on to the optimiser
    unchanged (``Adam(lr=args.meta_lr)`` with ``args.meta_lr`` a schedule anneals). Arithmetic on it
    gives plain floats.
    """

    total_steps: int
    min_lr: float

    def __new__(cls, lr: float, total_steps: int, min_lr: float = 0.0) -> CosineSchedule:
        peak = real(lr, "cosine_schedule lr", low=0, low_inclusive=False)
        total_steps = integer(total_steps, "cosine_schedule total_steps", 1)
        min_lr = real(min_lr, "cosine_schedule min_lr", low=0)
        if min_lr > peak:
            raise ValueError(f"cosine_schedule min_lr must be <= lr ({peak:g}), got {min_lr!r}")
        self = super().__new__(cls, peak)
        self.total_steps, self.min_lr = total_steps, min_lr
        return self

    def __call__(self, step: int) -> float:
        t = min(integer(step, "schedule step", 0), self.total_steps)
        return self.min_lr + (float(self) - self.min_lr) * (1 + math.cos(math.pi * t / self.total_steps)) / 2

    def __reduce__(self) -> tuple:  # copy and pickle as a schedule, not as the float it also is
        return (CosineSchedule, (float(self), self.total_steps, self.min_lr))


def cosine_schedule(lr: float, total_steps: int, min_lr: float = 0.0) -> CosineSchedule:
    """MAML++'s cosine annealing of the meta learning rate: ``lr`` at the first update, ``min_lr``
    after ``total_steps`` (see :class:`CosineSchedule`; MAML++ used lr 1e-3 and min_lr 1e-5)."""
    return CosineSchedule(lr, total_steps, min_lr)


def _learning_rate(lr: Any, name: str) -> LearningRate:
    """A fixed learning rate (a finite number > 0), or a schedule (a function of the step count)."""
    if callable(lr):
        return callable_with(lr, 1, f"{name} (a schedule)", "lr(step)")
    return real(lr, name, low=0, low_inclusive=False)


def _rate_at(lr: LearningRate, step: int, name: str) -> float:
    """The learning rate of update ``step`` (0-based): the number itself, or the schedule's value,
    which must be a finite number >= 0."""
    if not callable(lr):
        return lr
    return real(lr(step), f"{name} schedule({step})", low=0)


def _tensors(values: Any, name: str) -> Params:
    """``values`` itself, checked to be a dict of name -> Tensor."""
    if not isinstance(values, dict):
        raise TypeError(f"{name} must be a dict of name -> Tensor, got {type(values).__name__}")
    for key, value in values.items():
        if not isinstance(value, Tensor):
            hint = " (grad(..., allow_unused=True) gives None for an unused input)" if value is None else ""
            raise TypeError(f"{name}[{key!r}] must be a Tensor, got {type(value).__name__}{hint}")
    return values


def _gradients(params: Params, grads: Params, state: dict[str, Any], buffers: tuple[str, ...]) -> dict[str, Any]:
    """The gradient arrays, checked against the parameters and the optimiser state, each in its
    parameter's dtype (a gradient has its parameter's dtype, so the state never drifts to float64)."""
    _tensors(params, "params")
    _tensors(grads, "grads")
    if set(params) != set(grads):
        raise ValueError(f"grads keys {sorted(grads)} do not match params keys {sorted(params)}")
    for buffer in buffers:
        if not isinstance(state, dict) or set(state.get(buffer, ())) != set(params):
            raise ValueError(f"the optimiser state does not match params {sorted(params)}; make it with init(params)")
    arrays = {}
    for name, p in params.items():
        g = grads[name]
        if g.shape != p.shape:
            raise ValueError(f"grads[{name!r}] has shape {g.shape}, params[{name!r}] {p.shape}")
        if g.dtype.kind not in "fiu":
            raise TypeError(f"grads[{name!r}] must be real, got dtype {g.dtype}")
        arrays[name] = g.data.astype(p.dtype, copy=False)
    return arrays


class SGD:
    """θ ← θ - lr (g + momentum buffer): v ← momentum v + g; θ ← θ - lr v.

    ``lr`` may be a schedule (see the module docstring); the state then also counts the updates."""

    def __init__(self, lr: LearningRate, momentum: float = 0.0) -> None:
        self.lr = _learning_rate(lr, "SGD lr")
        self.momentum = real(momentum, "SGD momentum", low=0)
        if self.momentum >= 1:
            raise ValueError(f"SGD momentum must be < 1, got {momentum!r}")

    def init(self, params: Params) -> dict[str, Any]:
        _tensors(params, "params")
        state: dict[str, Any] = {"velocity": {n: array_module(p.data).zeros_like(p.data) for n, p in params.items()}}
        if callable(self.lr):
            state["updates"] = 0
        return state

    def step(self, params: Params, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        g = _gradients(params, grads, state, ("velocity",))
        velocity = {n: self.momentum * state["velocity"][n] + g[n] for n in params}
        new_state: dict[str, Any] = {"velocity": velocity}
        lr = self.lr
        if callable(lr):
            if type(state.get("updates")) is not int:
                raise ValueError(
                    "the optimiser state has no update count for its learning-rate schedule; use init(params)"
                )
            lr, new_state["updates"] = _rate_at(lr, state["updates"], "SGD lr"), state["updates"] + 1
        new = {n: new_leaf(p.data - lr * velocity[n]) for n, p in params.items()}
        return new, new_state


class Adam:
    """Adam (Kingma & Ba 2015): bias-corrected first and second moment estimates.

    m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²;  θ ← θ - lr m̂ / (sqrt(v̂) + eps),
    with m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t). ``lr`` may be a schedule (see the module
    docstring): update t (counted from 0 by ``state["step"]``) uses ``lr(t)``.
    """

    def __init__(self, lr: LearningRate = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr = _learning_rate(lr, "Adam lr")
        self.eps = real(eps, "Adam eps", low=0, low_inclusive=False)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(real(b, f"Adam betas[{i}]", low=0) for i, b in enumerate(betas))
        if any(b >= 1 for b in self.betas):
            raise ValueError(f"Adam betas must be < 1, got {betas!r}")

    def init(self, params: Params) -> dict[str, Any]:
        zeros = {n: array_module(p.data).zeros_like(p.data) for n, p in _tensors(params, "params").items()}
        return {"step": 0, "m": zeros, "v": {n: z.copy() for n, z in zeros.items()}}

    def step(self, params: Params, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        g = _gradients(params, grads, state, ("m", "v"))
        b1, b2 = self.betas
        t = state["step"] + 1
        m = {n: b1 * state["m"][n] + (1 - b1) * g[n] for n in params}
        v = {n: b2 * state["v"][n] + (1 - b2) * g[n] ** 2 for n in params}
        lr = _rate_at(self.lr, t - 1, "Adam lr")
        scale = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        eps = self.eps * math.sqrt(1 - b2**t)  # the same as eps added to sqrt(v-hat)
        xp = array_module
        new = {n: new_leaf(p.data - scale * m[n] / (xp(v[n]).sqrt(v[n]) + eps)) for n, p in params.items()}
        return new, {"step": t, "m": m, "v": v}


def clip_grad_norm(grads: Params, max_norm: float) -> tuple[Params, float]:
    """Scale all gradients together so that their joint L2 norm is at most ``max_norm``.

    Returns the gradients (constants, clipped or not: an optimiser's input) and the norm before
    clipping. ``max_norm=inf`` clips nothing.
    """
    max_norm = real(max_norm, "max_norm", low=0, low_inclusive=False, allow_inf=True)
    for name, g in _tensors(grads, "grads").items():
        if g.dtype.kind not in "fiu":
            raise TypeError(f"grads[{name!r}] must be real, got dtype {g.dtype}")
    total = math.sqrt(sum(float((g.data * g.data).sum()) for g in grads.values()))
    if not math.isfinite(total):  # scaling by max_norm / inf would turn inf into NaN and hide the NaN ones
        raise FloatingPointError(f"clip_grad_norm: the gradients' norm is {total} (an entry overflowed or is NaN)")
    if total <= max_norm:
        return {n: g.detach() for n, g in grads.items()}, total
    factor = max_norm / (total + 1e-12)
    return {n: wrap_array(g.data * factor) for n, g in grads.items()}, total
