"""Outer-loop optimisers on parameter dicts, functional: the state is explicit.

    opt = Adam(lr=1e-3)
    state = opt.init(params)
    params, state = opt.step(params, grads, state)

Updates run under ``no_grad`` and return new leaf tensors that require grad, so the next
meta-iteration starts a fresh graph.
"""

from __future__ import annotations

import math
from typing import Any

from ..backend import array_module
from ..engine import Tensor, _leaf, _wrap

Params = dict[str, Tensor]


def _check(params: Params, grads: Params) -> None:
    if set(params) != set(grads):
        raise ValueError(f"grads keys {sorted(grads)} do not match params keys {sorted(params)}")
    for name, p in params.items():
        if grads[name].shape != p.shape:
            raise ValueError(f"grads[{name!r}] has shape {grads[name].shape}, params[{name!r}] {p.shape}")


class SGD:
    """θ ← θ - lr (g + momentum buffer): v ← momentum v + g; θ ← θ - lr v."""

    def __init__(self, lr: float, momentum: float = 0.0) -> None:
        if lr <= 0 or not 0 <= momentum < 1:
            raise ValueError(f"SGD needs lr > 0 and 0 <= momentum < 1, got lr={lr}, momentum={momentum}")
        self.lr, self.momentum = lr, momentum

    def init(self, params: Params) -> dict[str, Any]:
        return {"velocity": {n: array_module(p.data).zeros_like(p.data) for n, p in params.items()}}

    def step(self, params: Params, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        _check(params, grads)
        velocity = {n: self.momentum * state["velocity"][n] + grads[n].data for n in params}
        new = {n: _leaf(p.data - self.lr * velocity[n]) for n, p in params.items()}
        return new, {"velocity": velocity}


class Adam:
    """Adam (Kingma & Ba 2015): bias-corrected first and second moment estimates.

    m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²;  θ ← θ - lr m̂ / (sqrt(v̂) + eps),
    with m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t).
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if lr <= 0 or not all(0 <= b < 1 for b in betas) or eps <= 0:
            raise ValueError(f"Adam needs lr > 0, 0 <= betas < 1, eps > 0; got lr={lr}, betas={betas}, eps={eps}")
        self.lr, self.betas, self.eps = lr, betas, eps

    def init(self, params: Params) -> dict[str, Any]:
        zeros = {n: array_module(p.data).zeros_like(p.data) for n, p in params.items()}
        return {"step": 0, "m": zeros, "v": {n: z.copy() for n, z in zeros.items()}}

    def step(self, params: Params, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        _check(params, grads)
        b1, b2 = self.betas
        t = state["step"] + 1
        m = {n: b1 * state["m"][n] + (1 - b1) * grads[n].data for n in params}
        v = {n: b2 * state["v"][n] + (1 - b2) * grads[n].data ** 2 for n in params}
        scale = self.lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        eps = self.eps * math.sqrt(1 - b2**t)  # the same as eps added to sqrt(v-hat)
        xp = array_module
        new = {n: _leaf(p.data - scale * m[n] / (xp(v[n]).sqrt(v[n]) + eps)) for n, p in params.items()}
        return new, {"step": t, "m": m, "v": v}


def clip_grad_norm(grads: Params, max_norm: float) -> tuple[Params, float]:
    """Scale all gradients together so that their joint L2 norm is at most ``max_norm``.

    Returns the (possibly scaled) gradients and the norm before clipping.
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    total = math.sqrt(sum(float((g.data * g.data).sum()) for g in grads.values()))
    if total <= max_norm:
        return dict(grads), total
    factor = max_norm / (total + 1e-12)
    return {n: _wrap(g.data * factor) for n, g in grads.items()}, total
