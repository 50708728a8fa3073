"""ANIL, "Almost No Inner Loop" (Raghu, Raghu, Bengio & Vinyals, ICLR 2020).

Only the head (the last layer) adapts in the inner loop; the body is shared by all tasks and
learned in the outer loop only:

    φ_head,i = θ_head - α ∇_{θ_head} L(θ_body, θ_head, D_i^tr),    φ_body,i = θ_body

The meta-gradient still flows into θ_body through the head's adaptation (second order unless
``first_order``). It is MAML with ``adapt_only`` = the head's parameter names.
"""

from __future__ import annotations

from collections.abc import Sequence

from .inner_loop import LossFn
from .maml import MAML


class ANIL(MAML):
    """MAML adapting only ``head`` (e.g. ``model.head_names``) in the inner loop."""

    def __init__(
        self,
        loss_fn: LossFn,
        head: Sequence[str],
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        first_order: bool = False,
        batched: bool = True,
    ) -> None:
        names = [] if isinstance(head, (str, bytes)) or not hasattr(head, "__iter__") else list(head)
        if not names or not all(isinstance(n, str) for n in names):
            raise ValueError(f"head must be a non-empty list of parameter names (e.g. model.head_names), got {head!r}")
        super().__init__(
            loss_fn,
            inner_lr=inner_lr,
            inner_steps=inner_steps,
            first_order=first_order,
            adapt_only=names,
            batched=batched,
        )
