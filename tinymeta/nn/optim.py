"""Outer-loop optimisers on parameter dicts, functional: the state is explicit.

    opt = Adam(lr=1e-3)
    state = opt.init(params)
    params, state = opt.step(params, grads, state)

Updates are arithmetic on the parameters' raw arrays (nothing is recorded, whatever the grad
mode) and return new leaf tensors that require grad, so the next meta-iteration starts a fresh graph.
"""

from __future__ import annotations

import math
from typing import Any

from .._checks import real
from ..backend import array_module
from ..engine import Tensor, new_leaf, wrap_array

Params = dict[str, Tensor]


def _gradients(params: Params, grads: Params, state: dict[str, Any], buffers: tuple[str, ...]) -> dict[str, Any]:
    """The gradient arrays, checked against the parameters and the optimiser state, each in its
    parameter's dtype (a gradient has its parameter's dtype, so the state never drifts to float64)."""
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
    """θ ← θ - lr (g + momentum buffer): v ← momentum v + g; θ ← θ - lr v."""

    def __init__(self, lr: float, momentum: float = 0.0) -> None:
        self.lr = real(lr, "SGD lr", low=0, low_inclusive=False)
        self.momentum = real(momentum, "SGD momentum", low=0)
        if self.momentum >= 1:
            raise ValueError(f"SGD momentum must be < 1, got {momentum!r}")

    def init(self, params: Params) -> dict[str, Any]:
        return {"velocity": {n: array_module(p.data).zeros_like(p.data) for n, p in params.items()}}

    def step(self, params: Params, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        g = _gradients(params, grads, state, ("velocity",))
        velocity = {n: self.momentum * state["velocity"][n] + g[n] for n in params}
        new = {n: new_leaf(p.data - self.lr * velocity[n]) for n, p in params.items()}
        return new, {"velocity": velocity}


class Adam:
    """Adam (Kingma & Ba 2015): bias-corrected first and second moment estimates.

    m ← β1 m + (1-β1) g;  v ← β2 v + (1-β2) g²;  θ ← θ - lr m̂ / (sqrt(v̂) + eps),
    with m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t).
    """

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.lr = real(lr, "Adam lr", low=0, low_inclusive=False)
        self.eps = real(eps, "Adam eps", low=0, low_inclusive=False)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(real(b, f"Adam betas[{i}]", low=0) for i, b in enumerate(betas))
        if any(b >= 1 for b in self.betas):
            raise ValueError(f"Adam betas must be < 1, got {betas!r}")

    def init(self, params: Params) -> dict[str, Any]:
        zeros = {n: array_module(p.data).zeros_like(p.data) for n, p in params.items()}
        return {"step": 0, "m": zeros, "v": {n: z.copy() for n, z in zeros.items()}}

    def step(self, params: Params, grads: Params, state: dict[str, Any]) -> tuple[Params, dict[str, Any]]:
        g = _gradients(params, grads, state, ("m", "v"))
        b1, b2 = self.betas
        t = state["step"] + 1
        m = {n: b1 * state["m"][n] + (1 - b1) * g[n] for n in params}
        v = {n: b2 * state["v"][n] + (1 - b2) * g[n] ** 2 for n in params}
        scale = self.lr * math.sqrt(1 - b2**t) / (1 - b1**t)
        eps = self.eps * math.sqrt(1 - b2**t)  # the same as eps added to sqrt(v-hat)
        xp = array_module
        new = {n: new_leaf(p.data - scale * m[n] / (xp(v[n]).sqrt(v[n]) + eps)) for n, p in params.items()}
        return new, {"step": t, "m": m, "v": v}


def clip_grad_norm(grads: Params, max_norm: float) -> tuple[Params, float]:
    """Scale all gradients together so that their joint L2 norm is at most ``max_norm``.

    Returns the (possibly scaled) gradients and the norm before clipping. ``max_norm=inf`` clips nothing.
    """
    max_norm = real(max_norm, "max_norm", low=0, low_inclusive=False, allow_inf=True)
    for name, g in grads.items():
        if g.dtype.kind not in "fiu":
            raise TypeError(f"grads[{name!r}] must be real, got dtype {g.dtype}")
    total = math.sqrt(sum(float((g.data * g.data).sum()) for g in grads.values()))
    if total <= max_norm:
        return dict(grads), total
    factor = max_norm / (total + 1e-12)
    return {n: wrap_array(g.data * factor) for n, g in grads.items()}, total
