"""Meta-SGD (Li, Zhou, Chen & Li 2017): MAML with a learned per-parameter inner step size.

    φ_i = θ - α ∘ ∇_θ L(θ, D_i^tr)          (their eq. 3; ∘ elementwise, α the shape of θ)
    (θ, α) ← (θ, α) - β ∇_(θ,α) (1/T) Σ_i L(φ_i, D_i^ts)

α is meta-learned with θ: it lives in the meta-parameters as ``maml.step_size_key(name)``
(``"inner_lr.<name>"``), initialised to ``inner_lr`` everywhere. Everything else is MAML's inner
loop and meta-loss.
"""

from __future__ import annotations

from collections.abc import Sequence

from .inner_loop import LossFn
from .maml import MAML


class MetaSGD(MAML):
    """MAML whose inner step size is a learned tensor per parameter (see the module docstring)."""

    def __init__(
        self,
        loss_fn: LossFn,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        first_order: bool = False,
        adapt_only: Sequence[str] | None = None,
        batched: bool = True,
    ) -> None:
        super().__init__(
            loss_fn,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            first_order=first_order,
            adapt_only=adapt_only,
            learn_inner_lr="per_parameter",
            batched=batched,
        )
