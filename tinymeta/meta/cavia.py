"""CAVIA, fast context adaptation (Zintgraf, Shiarlis, Kurin, Hofmann & Whiteson, ICML 2019).

The network θ takes extra inputs, the context parameters φ (``tinymeta.nn.MLP(..., context_dim=k)``
concatenates ``params["context"]`` to every input). For each task the context is reset to zero and
is the only thing the inner loop adapts; the network is meta-learned in the outer loop:

    φ_i = 0 - α ∇_φ L(θ, φ, D_i^tr)|_{φ=0}                       (their eq. 2)
    θ  ← θ - β ∇_θ (1/T) Σ_i L(θ, φ_i, D_i^ts)                  (their eq. 3)

The paper uses inner_lr = 1.0 on the sinusoid. The context is not a meta-parameter: ``init``
drops it from the model's parameters, and every task starts again from zeros.
"""

from __future__ import annotations

from .._checks import integer
from ..backend import array_module
from ..engine import new_leaf
from .inner_loop import LossFn, Params
from .maml import MAML


class CAVIA(MAML):
    """MAML whose inner loop adapts only a zero-initialised context vector (see the module docstring)."""

    def __init__(
        self,
        loss_fn: LossFn,
        context_dim: int,
        context_name: str = "context",
        inner_lr: float = 1.0,
        inner_steps: int = 1,
        first_order: bool = False,
        batched: bool = True,
    ) -> None:
        context_dim = integer(context_dim, "context_dim", 1)
        if not isinstance(context_name, str) or not context_name:
            raise TypeError(f"context_name must be the context parameter's name (a str), got {context_name!r}")
        super().__init__(
            loss_fn,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            first_order=first_order,
            adapt_only=[context_name],
            batched=batched,
        )
        self.context_dim, self.context_name = context_dim, context_name
        self.per_task_names = (context_name,)

    def init(self, params: Params) -> Params:
        """The network's parameters as meta-parameters (the context, if present, is dropped)."""
        return super().init({n: p for n, p in params.items() if n != self.context_name})

    def _check_params(self, params: Params, name: str = "params") -> Params:
        if self.context_name in params:
            raise ValueError(
                f"{self.context_name!r} is CAVIA's per-task context, reset to zero for every task, not a "
                "meta-parameter; make the meta-parameters with CAVIA.init(params)"
            )
        return super()._check_params(params, name)

    def task_params(self, params: Params, tasks: int | None) -> Params:
        """The shared network, plus a zero context [T, k] (or [k]) that requires grad."""
        first = next(iter(params.values()))
        shape = (self.context_dim,) if tasks is None else (tasks, self.context_dim)
        context = new_leaf(array_module(first.data).zeros(shape, dtype=first.dtype))
        return {**params, self.context_name: context}
