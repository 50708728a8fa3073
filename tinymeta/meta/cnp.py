"""Conditional neural processes (Garnelo, Rosenbaum, Maddison, Ramalho, Saxton, Shanahan, Teh, Rezende
& Eslami, ICML 2018): black-box meta-learning, the contrast to MAML.

MAML adapts to a task by gradient descent on its support set. A CNP adapts by *reading* it: a network
maps the support set to the task's parameters in one forward pass, with no inner loop at all:

    r_i = h_θ(x_i, y_i)                    encode each support pair                    [T, K, d]
    r   = (1/K) Σ_i r_i                    aggregate: one vector per task, whatever the order of the pairs
    μ(x*), σ(x*) = g_θ(x*, r)              decode at any target point x*

and θ (the encoder h and the decoder g) is trained end to end by backpropagating the targets' loss
through the decoder, the mean and the encoder (no second derivatives: nothing is differentiated
twice). The paper's loss is the Gaussian negative log-likelihood of the targets,

    L(θ) = (1/N) Σ_j [ log σ(x*_j) + (y*_j - μ(x*_j))² / (2 σ(x*_j)²) + log(2π)/2 ],

where the targets are every point of the task, the observed ones included (the paper conditions on a
subset of the points and predicts all of them); here: the support and the query set together.
``likelihood="mse"`` trains the mean alone on the squared error instead (σ is then not predicted).

In the lecture's terms, φ_i = f_θ(D_i^tr) is computed by a network instead of by SGD: ``adapt``
returns φ = the decoder's weights (shared by every task) and the task's ``"representation"`` r. The
decoder is an ``nn.MLP`` with ``context_dim = d`` that concatenates r to every input: the network of
CAVIA, whose context is found by gradient steps from zero, here written by the encoder instead.

Architecture, as the authors' released 1-D regression code: encoder 2-128-128-128-128 and decoder
(1 + 128)-128-128-2, ReLU, σ = 0.1 + 0.9 · softplus(raw) to keep the variance away from zero.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy

from .. import ops
from .._checks import integer, real
from ..engine import Tensor, TensorLike, as_tensor
from ..nn.models import MLP
from .inner_loop import (
    Params,
    adapted_without_steps,
    check_episode,
    check_params,
    check_tasks,
    meta_parameters,
    value_and_meta_grad,
)

LIKELIHOODS = ("gaussian", "mse")
REPRESENTATION = "representation"  # φ's entry holding the task's aggregated representation r, [T, d]


def _widths(widths: Any, name: str) -> Sequence[Any]:
    if isinstance(widths, numpy.ndarray) and widths.ndim == 1:
        return list(widths)
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"{name} must be a sequence of hidden-layer widths, e.g. (128, 128), got {widths!r}")
    return widths


class CNPModel:
    """The CNP's network: an encoder MLP h over (x, y) pairs and a decoder MLP g over (x*, r).

    Parameters are one flat dict: ``"encoder.<name>"`` and ``"decoder.<name>"`` (the names of the two
    ``nn.MLP``s). Called as ``model(phi, x)`` with an adapted φ (``CNP.adapt``) it returns the
    predicted mean, [T, N, y_dim], like any other model of the demos; ``distribution`` also gives σ.
    """

    def __init__(
        self,
        x_dim: int = 1,
        y_dim: int = 1,
        encoder: Sequence[int] = (128, 128, 128),
        representation: int = 128,
        decoder: Sequence[int] = (128, 128),
        likelihood: str = "gaussian",
        min_std: float = 0.1,
        activation: str = "relu",
        dtype: str = "float64",
    ) -> None:
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {', '.join(map(repr, LIKELIHOODS))}, got {likelihood!r}")
        self.x_dim, self.y_dim = integer(x_dim, "x_dim", 1), integer(y_dim, "y_dim", 1)
        self.representation = integer(representation, "representation", 1)
        self.likelihood = likelihood
        self.min_std = real(min_std, "min_std", low=0)
        if self.min_std >= 1:
            raise ValueError(f"min_std must be < 1 (σ = min_std + (1 - min_std) softplus(raw)), got {min_std!r}")
        encoder, decoder = (
            [integer(w, f"{name}[{i}]", 1) for i, w in enumerate(_widths(widths, name))]
            for name, widths in (("encoder", encoder), ("decoder", decoder))
        )
        self.encoder = MLP([self.x_dim + self.y_dim, *encoder, self.representation], activation, dtype=dtype)
        outputs = 2 * self.y_dim if likelihood == "gaussian" else self.y_dim
        self.decoder = MLP([self.x_dim, *decoder, outputs], activation, context_dim=self.representation, dtype=dtype)
        self.dtype = self.encoder.dtype
        self.shapes = {f"encoder.{n}": s for n, s in self.encoder.shapes.items()}
        self.shapes.update({f"decoder.{n}": s for n, s in self.decoder.shapes.items() if n != "context"})

    def init(self, seed: int = 0) -> Params:
        """Fresh parameters: the encoder's drawn with ``seed``, the decoder's with ``seed + 1``."""
        seed = integer(seed, "seed", 0)
        encoder, decoder = self.encoder.init(seed), self.decoder.init(seed + 1)
        params = {f"encoder.{n}": p for n, p in encoder.items()}
        params.update({f"decoder.{n}": p for n, p in decoder.items() if n != "context"})
        return params

    def encode(self, params: Params, x: TensorLike, y: TensorLike) -> Tensor:
        """r = (1/K) Σ_i h(x_i, y_i): support [T, K, x_dim] and [T, K, y_dim] -> [T, representation]."""
        encoder = _part(params, "encoder.", self.encoder)
        like = next(iter(encoder.values()))
        x, y = self._points(as_tensor(x, like), "x", self.x_dim), self._points(as_tensor(y, like), "y", self.y_dim)
        if x.shape[:-1] != y.shape[:-1]:
            raise ValueError(f"support x {x.shape} and y {y.shape} must agree up to their last axis: one y per x")
        pairs = ops.concatenate([x, y], axis=-1)
        # θ's dtype, as R2D2's head: float64 data must not make a float32 model's representation float64
        return ops.astype(ops.mean(self.encoder(encoder, pairs), axis=-2), like.dtype, copy=False)

    def distribution(self, phi: Params, x: TensorLike) -> tuple[Tensor, Tensor | None]:
        """(μ, σ) at the targets x [T, N, x_dim], each [T, N, y_dim]; σ is None for ``likelihood="mse"``."""
        if REPRESENTATION not in phi:
            raise ValueError(
                f"phi has no {REPRESENTATION!r}: make it with CNP.adapt(meta_params, x_support, y_support)"
            )
        decoder = {**_part(phi, "decoder.", self.decoder, skip=("context",)), "context": phi[REPRESENTATION]}
        out = self.decoder(decoder, self._points(as_tensor(x, phi[REPRESENTATION]), "x", self.x_dim))
        if self.likelihood == "mse":
            return out, None
        mean, raw = out[..., : self.y_dim], out[..., self.y_dim :]
        return mean, self.min_std + (1 - self.min_std) * ops.softplus(raw)

    @staticmethod
    def _points(t: Tensor, name: str, dim: int) -> Tensor:
        """``t`` checked to be points [T, K, dim] (a task axis, the points, their ``dim`` features)."""
        if t.ndim != 3 or t.shape[-1] != dim:
            raise ValueError(
                f"{name} must be [tasks, points, {name}_dim={dim}], got shape {t.shape}"
                + (f": this CNPModel was made with {name}_dim={dim}" if t.ndim == 3 else "")
            )
        return t

    def __call__(self, phi: Params, x: TensorLike) -> Tensor:
        """The predicted mean μ(x), [T, N, y_dim]."""
        return self.distribution(phi, x)[0]

    def loss(self, phi: Params, x: TensorLike, y: TensorLike) -> Tensor:
        """Each task's loss on targets (x, y) [T, N, ...]: the Gaussian negative log-likelihood per point
        (or the squared error of the mean), averaged over the task's points: shape [T]."""
        mean, std = self.distribution(phi, x)
        y = as_tensor(y, mean)
        if y.shape != mean.shape:
            raise ValueError(f"targets of shape {y.shape} for predictions of shape {mean.shape}")
        error = (y - mean) * (y - mean)
        if std is None:
            return ops.mean(error, axis=(-2, -1))
        nll = ops.log(std) + error / (2 * std * std) + 0.5 * math.log(2 * math.pi)
        return ops.mean(nll, axis=(-2, -1))


def _part(params: Params, prefix: str, mlp: MLP, skip: Sequence[str] = ()) -> Params:
    """The entries of ``params`` named ``prefix + <name>`` for each of ``mlp``'s parameters, unprefixed."""
    names = [n for n in mlp.shapes if n not in skip]
    missing = [prefix + n for n in names if prefix + n not in params]
    if missing:
        raise ValueError(f"params lack {missing}: make them with CNPModel.init (and CNP.adapt for φ)")
    return {n: params[prefix + n] for n in names}


class CNP:
    """A conditional neural process as a meta-learner, with the API of the others (see the module
    docstring): ``init``, ``meta_grad``, ``meta_loss``, ``adapt`` and ``fine_tune``.

    Not in ``meta.make``: the other algorithms adapt any model with any ``loss_fn(params, x, y)``,
    while a CNP's network *is* the learner and its loss is its own likelihood, so it is built from a
    ``CNPModel`` instead: ``CNP(CNPModel(likelihood="gaussian"))``.
    """

    def __init__(self, model: CNPModel) -> None:
        if not isinstance(model, CNPModel):
            raise TypeError(f"CNP needs a CNPModel (the encoder and decoder it trains), got {type(model).__name__}")
        self.model = model

    def init(self, params: Params) -> Params:
        """Meta-parameters from ``model.init(seed)``: fresh leaves that require grad."""
        return meta_parameters(self._check(params, "params"))

    def _check(self, params: Params, name: str) -> Params:
        """``params``, checked to be the CNPModel's (no more, no fewer: an extra one would get a zero gradient)."""
        check_params(params)
        if set(params) != set(self.model.shapes):
            raise ValueError(
                f"{name} must be the CNPModel's: missing {sorted(set(self.model.shapes) - set(params))}, "
                f"unexpected {sorted(set(params) - set(self.model.shapes))}"
            )
        return params

    def adapt(self, meta_params: Params, x_support: TensorLike, y_support: TensorLike) -> Params:
        """φ: the decoder's parameters and each task's representation r [T, d] of its support set
        [T, K, ...]: one forward pass, differentiable with respect to θ (no gradient steps)."""
        check_tasks(x_support, y_support, names=("x_support", "y_support"))
        self._check(meta_params, "meta_params")
        r = self.model.encode(meta_params, x_support, y_support)
        decoder = {n: p for n, p in meta_params.items() if n.startswith("decoder.")}
        return {**decoder, REPRESENTATION: r}

    def fine_tune(
        self, meta_params: Params, x_support: TensorLike, y_support: TensorLike, steps: int
    ) -> Iterator[Params]:
        """For the evaluation harness of the gradient-based learners: ``steps + 1`` times the same φ.
        A CNP takes no steps: its adaptation is reading the support set once, so the "adapted
        parameters after s steps" are the same for every s, 0 included. Nothing is recorded."""
        return adapted_without_steps(lambda: self.adapt(meta_params, x_support, y_support), steps)

    def meta_loss(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
    ) -> Tensor:
        """(1/T) Σ_i L(φ_i; D_i^tr ∪ D_i^ts), φ_i read from D_i^tr: a scalar Tensor whose gradient with
        respect to ``meta_params`` trains the encoder and the decoder together."""
        tasks = check_episode(x_support, y_support, x_query, y_query)
        phi = self.adapt(meta_params, x_support, y_support)
        like = phi[REPRESENTATION]
        x = ops.concatenate([as_tensor(x_support, like), as_tensor(x_query, like)], axis=1)
        y = ops.concatenate([as_tensor(y_support, like), as_tensor(y_query, like)], axis=1)
        losses = self.model.loss(phi, x, y)
        if losses.shape != (tasks,):
            raise ValueError(f"the targets give losses of shape {losses.shape}, expected ({tasks},)")
        return ops.mean(losses)

    def meta_grad(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
    ) -> tuple[float, Params]:
        """(meta-loss value, its gradient for every meta-parameter), by one backward pass through the
        decoder, the mean over the support set and the encoder. Recording is on inside, whatever the
        caller's ``no_grad``."""
        return value_and_meta_grad(
            lambda theta: self.meta_loss(theta, x_support, y_support, x_query, y_query), meta_params
        )
