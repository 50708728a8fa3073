"""R2-D2, ridge regression as the inner learner (Bertinetto, Henriques, Torr & Vedaldi, "Meta-learning
with differentiable closed-form solvers", ICLR 2019).

MAML's inner loop takes gradient steps; R2-D2's *solves* the inner problem, in closed form, for the
last layer only (as ANIL adapts only the head, but exactly). For task i, with the body's features of
its K support examples X_i = f_θ(x_i^tr) [K, d] and their targets Y_i [K, N] (one-hot labels for
classification; for regression, the targets themselves):

    W_i = argmin_W ||X_i W - Y_i||² + λ ||W||² = X_i^T (X_i X_i^T + λ I_K)^{-1} Y_i     (§3.2, eq. 5 and 7)
    logits(x) = α f_θ(x) W_i + β                                                        (eq. 6)

The second form (the Woodbury identity) solves a K × K system instead of a d × d one: few examples,
many features. θ, λ, α and β are meta-learned by backpropagating the query loss through the solve
(``tinymeta.linalg.solve``, whose derivative is itself a solve: gradients of every order). λ is
stored as its logarithm, so that it stays positive; α rescales the regression's outputs (near 0 and
1) into logits for the cross-entropy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

from .. import linalg, ops
from .._checks import callable_with, integer, real
from ..backend import array_module
from ..engine import Tensor, TensorLike, as_tensor, new_leaf
from .inner_loop import (
    LossFn,
    Params,
    adapted_without_steps,
    check_episode,
    check_loss_fn,
    check_params,
    check_tasks,
    value_and_meta_grad,
)

Features = Callable[[Params, TensorLike], Tensor]
HEAD_PARAMETERS = ("r2d2.log_lambda", "r2d2.scale", "r2d2.bias")  # log λ, α and β, scalars


class R2D2:
    """A closed-form ridge-regression head on meta-learned features, with the API of the other
    meta-learners (``init``, ``adapt``, ``fine_tune``, ``meta_loss``, ``meta_grad``).

    ``features(params, x)`` is the body, [T, K, ...] -> [T, K, d] (``nn.Conv4.features``,
    ``nn.MLP.features``); ``loss_fn(phi, x, y)`` the query loss of the model whose linear ``head``
    (the names of its weight [d, N] and bias [N]) reads those features. Integer labels [T, K] are
    regressed as one-hot vectors over ``ways`` classes; float targets [T, K, N] as they are.
    θ keeps the model's own head, so that it is still the model's parameter set, but the head is
    unused (its meta-gradient is 0): ``adapt`` replaces it by each task's α W_i and β.
    """

    def __init__(
        self,
        loss_fn: LossFn,
        features: Features,
        ways: int | None = None,
        head: Sequence[str] = ("head.weight", "head.bias"),
        lam: float = 1.0,
        scale: float = 1.0,
    ) -> None:
        check_loss_fn(loss_fn)
        callable_with(features, 2, "features", "features(params, x) -> [T, K, d]")
        names = list(head) if not isinstance(head, (str, bytes)) else []
        if len(names) != 2 or not all(isinstance(n, str) for n in names):
            raise ValueError(f"head must name the linear head's (weight, bias), got {head!r}")
        self.loss_fn, self.features, self.head = loss_fn, features, tuple(names)
        self.ways = None if ways is None else integer(ways, "ways", 2)
        self.lam = real(lam, "lam", low=0, low_inclusive=False)
        self.scale = real(scale, "scale")

    def init(self, params: Params) -> Params:
        """Meta-parameters: copies of the model's ``params`` (its head unused) and log λ, α, β, as fresh leaves."""
        check_params(params)
        missing = [n for n in self.head if n not in params]
        if missing:
            raise ValueError(f"params have no {missing}: R2D2's head names must be the model's linear head")
        made = [n for n in HEAD_PARAMETERS if n in params]
        if made:  # init again would reset learned values to their defaults
            raise ValueError(
                f"params already hold R2D2's {made}: they are meta-parameters (init takes the model's parameters)"
            )
        like = params[self.head[0]].data
        xp = array_module(like)
        initial = (math.log(self.lam), self.scale, 0.0)
        return {
            **{n: new_leaf(p.data.copy()) for n, p in params.items()},
            **{n: new_leaf(xp.asarray(v, dtype=like.dtype)) for n, v in zip(HEAD_PARAMETERS, initial)},
        }

    def adapt(self, meta_params: Params, x_support: TensorLike, y_support: TensorLike) -> Params:
        """φ_i: the body's parameters and the head α W_i [T, d, N], β [T, N] solved from each task's
        support set [T, K, ...] (one forward pass and one K × K solve per task, differentiable in θ)."""
        check_tasks(x_support, y_support, names=("x_support", "y_support"))
        check_params(meta_params, "meta_params")
        missing = [n for n in HEAD_PARAMETERS if n not in meta_params]
        if missing:
            raise ValueError(f"meta_params lack {missing}: make them with R2D2.init(model.init(seed))")
        model = {n: p for n, p in meta_params.items() if n not in HEAD_PARAMETERS}
        x = self.features(model, x_support)  # X_i [T, K, d]
        reads = meta_params[self.head[0]].shape[0] if self.head[0] in meta_params else None
        if not isinstance(x, Tensor) or x.ndim != 3 or (reads is not None and x.shape[-1] != reads):
            got = f"shape {x.shape}" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"features(params, x_support) must give [T, K, d] features, d = {reads} as the head "
                f"{self.head[0]!r} reads, got {got}: pass the model's features function (model.features), "
                "not the model"
            )
        targets = self._targets(as_tensor(y_support, x), x)  # Y_i [T, K, N]
        lam = ops.exp(meta_params["r2d2.log_lambda"])
        gram = ops.matmul(x, ops.swapaxes(x, -1, -2))  # X X^T [T, K, K]
        identity = as_tensor(array_module(x.data).eye(x.shape[1], dtype=x.dtype), x)
        weights = ops.matmul(ops.swapaxes(x, -1, -2), linalg.solve(gram + lam * identity, targets))  # [T, d, N]
        bias = ops.broadcast_to(meta_params["r2d2.bias"], (x.shape[0], targets.shape[-1]))
        dtype = meta_params["r2d2.scale"].dtype  # θ's: float64 data must not make a float32 model's head float64
        weights = ops.astype(meta_params["r2d2.scale"] * weights, dtype, copy=False)
        return {**model, self.head[0]: weights, self.head[1]: ops.astype(bias, dtype, copy=False)}

    def _targets(self, y: Tensor, features: Tensor) -> Tensor:
        """Y_i: integer labels [T, K] as one-hot rows over ``ways`` classes, float targets [T, K, N] as they are."""
        examples = features.shape[:2]
        if y.dtype.kind in "iu" and y.shape == examples:
            if self.ways is None:
                raise ValueError("integer labels need R2D2(..., ways=N): the number of classes to one-hot encode")
            if (y.data < 0).any() or (y.data >= self.ways).any():
                raise ValueError(f"labels must lie in 0..{self.ways - 1} (ways={self.ways})")
            classes = array_module(y.data).arange(self.ways)
            return as_tensor((y.data[..., None] == classes).astype(features.dtype), features)
        if y.dtype.kind == "f" and y.ndim == 3 and y.shape[:2] == examples:
            return y
        raise ValueError(
            f"y_support of shape {y.shape} and dtype {y.dtype}: expected integer labels {examples} or float "
            f"targets {examples + ('N',)}"
        )

    def fine_tune(
        self, meta_params: Params, x_support: TensorLike, y_support: TensorLike, steps: int
    ) -> Iterator[Params]:
        """For the evaluation harness of the gradient-based learners: ``steps + 1`` times the same φ (the
        closed-form head is the inner problem's exact solution: no steps to take). Nothing is recorded."""
        return adapted_without_steps(lambda: self.adapt(meta_params, x_support, y_support), steps)

    def meta_loss(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
    ) -> Tensor:
        """(1/T) Σ_i L(φ_i; D_i^ts), φ_i's head solved from D_i^tr: a scalar Tensor, differentiable in θ, λ, α, β."""
        tasks = check_episode(x_support, y_support, x_query, y_query)
        losses = self.loss_fn(self.adapt(meta_params, x_support, y_support), x_query, y_query)
        if losses.shape != (tasks,):
            raise ValueError(f"loss_fn gave losses of shape {losses.shape}, expected one per task ({tasks},)")
        return ops.mean(losses)

    def meta_grad(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
    ) -> tuple[float, Params]:
        """(meta-loss value, its gradient for every meta-parameter): one backward pass through the query
        loss, the closed-form head (its solve) and the body."""
        return value_and_meta_grad(
            lambda theta: self.meta_loss(theta, x_support, y_support, x_query, y_query), meta_params
        )
