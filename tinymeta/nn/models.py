"""Functional models: parameters are a plain ``dict[str, Tensor]`` passed explicitly.

A model is an object with ``init(seed) -> params`` and ``model(params, x) -> output``. Nothing is
stored in the model but its architecture, so the same model runs with the meta-parameters θ, with
a task's adapted parameters φ, or with a whole batch of them.

**Task batching.** Every parameter may carry one leading task axis: ``weight`` of shape
``[T, in, out]`` instead of ``[in, out]``, together with inputs ``[T, N, ...]`` instead of
``[N, ...]``. Task t is then computed with its own parameters ``params[name][t]`` by batched
matmuls and convolutions, so a meta-batch of T tasks is one pass instead of a Python loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import ops
from .._checks import integer, real
from ..engine import Tensor, TensorLike, as_tensor, tensor

Params = dict[str, Tensor]
ACTIVATIONS = {"relu": ops.relu, "tanh": ops.tanh, "sigmoid": ops.sigmoid, "softplus": ops.softplus}


def _float_dtype(dtype: str, model: str) -> str:
    if np.dtype(dtype).kind != "f":
        raise ValueError(f"{model} dtype must be a floating-point dtype (float32 or float64), got {dtype!r}")
    return str(np.dtype(dtype))


def _random(seed: int | np.random.Generator) -> np.random.Generator:
    """The generator of a model's initial parameters: the same ``seed`` (an integer >= 0), the same
    ones; or a NumPy Generator to draw them from."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(integer(seed, "seed", 0))


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], bound: float, dtype: str) -> Tensor:
    return tensor(rng.uniform(-bound, bound, size=shape).astype(dtype), requires_grad=True)


class Model:
    """Base class: the expected parameter shapes, and the check of a params dict against them."""

    def __init__(self) -> None:
        self.shapes: dict[str, tuple[int, ...]] = {}

    def check(self, params: Params) -> tuple[int, ...]:
        """Validate ``params``; return the leading task axes they carry (``()`` for none)."""
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict of name -> Tensor, got {type(params).__name__}")
        missing = sorted(set(self.shapes) - set(params))
        unknown = sorted(set(params) - set(self.shapes))
        if missing or unknown:
            raise ValueError(
                f"{type(self).__name__} params do not match the model: missing {missing}, unexpected {unknown}"
            )
        lead: tuple[int, ...] | None = None
        for name, shape in self.shapes.items():
            p = params[name]
            if not isinstance(p, Tensor):
                raise TypeError(f"params[{name!r}] must be a Tensor, got {type(p).__name__}")
            n = len(shape)
            if p.shape[p.ndim - n :] != shape or p.ndim > n + 1:
                raise ValueError(
                    f"params[{name!r}] has shape {p.shape}; {type(self).__name__} expects {shape} "
                    f"(or [T, *{shape}] with a leading task axis)"
                )
            this_lead = p.shape[: p.ndim - n]
            if this_lead and lead and this_lead != lead:
                raise ValueError(f"params[{name!r}] has task axis {this_lead}, other params have {lead}")
            lead = this_lead or lead
        return lead or ()

    @staticmethod
    def _check_input(x: Tensor, lead: tuple[int, ...], example_ndim: int, name: str) -> None:
        """Inputs are [N, *features] or [T, N, *features]; with task-batched params, T must match."""
        if lead:
            ok = x.ndim == example_ndim + 2 and x.shape[0] == lead[0]
        else:  # shared parameters may also run on a whole batch of tasks
            ok = x.ndim in (example_ndim + 1, example_ndim + 2)
        if not ok and lead:
            raise ValueError(
                f"{name}: the params carry a task axis ({lead[0]} tasks), so the input must be [{lead[0]}, N, ...] "
                f"with {example_ndim} feature axes, one set of examples per task; got shape {x.shape} (for "
                "meta-learning, data is [T, K, ...]: one task's data needs a leading task axis, x[None])"
            )
        if not ok:
            raise ValueError(
                f"{name}: input of shape {x.shape} should be [N, ...] with {example_ndim} feature axes, "
                "or [T, N, ...] with a leading task axis"
            )


def _bias(b: Tensor, x_ndim: int) -> Tensor:
    """A bias [out] or [T, out] shaped to add to activations [N, out] or [T, N, out]."""
    return ops.expand_dims(b, -2) if b.ndim == 2 and x_ndim == 3 else b


class Linear(Model):
    """y = x W + b, with W of shape [in, out] (or [T, in, out]) and b of shape [out] (or [T, out]).

    ``init`` draws both from U(-1/sqrt(in), 1/sqrt(in)) (the usual default, LeCun-style scale).
    """

    def __init__(self, in_features: int, out_features: int, dtype: str = "float64") -> None:
        super().__init__()
        self.in_features = integer(in_features, "Linear in_features", 1)
        self.out_features = integer(out_features, "Linear out_features", 1)
        self.dtype = _float_dtype(dtype, "Linear")
        in_features, out_features = self.in_features, self.out_features
        self.shapes = {"weight": (in_features, out_features), "bias": (out_features,)}

    def init(self, seed: int = 0) -> Params:
        rng = _random(seed)
        bound = 1 / math.sqrt(self.in_features)
        return {name: _uniform(rng, shape, bound, self.dtype) for name, shape in self.shapes.items()}

    def __call__(self, params: Params, x: TensorLike) -> Tensor:
        lead = self.check(params)
        x = as_tensor(x, params["weight"])
        self._check_input(x, lead, 1, "Linear")
        return ops.matmul(x, params["weight"]) + _bias(params["bias"], x.ndim)


class MLP(Model):
    """A fully connected network: ``sizes = [in, h1, ..., out]``, ``activation`` between layers.

    ``MLP([1, 40, 40, 1])`` is the sinusoid network of Finn et al. (2017). With ``context_dim=k``
    the parameters include a context vector ``params["context"]`` of shape [k] (or [T, k]) that is
    concatenated to every input: the context parameters of CAVIA (Zintgraf et al. 2019), so the
    first layer takes ``sizes[0] + k`` inputs.
    """

    def __init__(
        self, sizes: Sequence[int], activation: str = "relu", context_dim: int = 0, dtype: str = "float64"
    ) -> None:
        super().__init__()
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__len__") or len(sizes) < 2:
            raise ValueError(f"MLP sizes must be at least [in, out] of positive ints, got {sizes!r}")
        sizes = [integer(s, f"MLP sizes[{i}]", 1) for i, s in enumerate(sizes)]
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; expected one of {sorted(ACTIVATIONS)}")
        context_dim = integer(context_dim, "MLP context_dim", 0)
        self.sizes, self.activation, self.context_dim = sizes, activation, context_dim
        self.dtype = _float_dtype(dtype, "MLP")
        widths = [sizes[0] + context_dim, *sizes[1:]]
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            self.shapes[f"layers.{i}.weight"] = (fan_in, fan_out)
            self.shapes[f"layers.{i}.bias"] = (fan_out,)
        if context_dim:
            self.shapes["context"] = (context_dim,)
        last = len(widths) - 2
        self.head_names = [f"layers.{last}.weight", f"layers.{last}.bias"]

    def init(self, seed: int = 0) -> Params:
        rng = _random(seed)
        params = {}
        for i in range(len(self.sizes) - 1):
            fan_in, fan_out = self.shapes[f"layers.{i}.weight"]
            params[f"layers.{i}.weight"] = _uniform(rng, (fan_in, fan_out), 1 / math.sqrt(fan_in), self.dtype)
            params[f"layers.{i}.bias"] = _uniform(rng, (fan_out,), 1 / math.sqrt(fan_in), self.dtype)
        if self.context_dim:  # CAVIA's context starts at zero for every task
            params["context"] = tensor(np.zeros(self.context_dim, dtype=self.dtype), requires_grad=True)
        return params

    def __call__(self, params: Params, x: TensorLike) -> Tensor:
        h = self.features(params, x)
        last = len(self.sizes) - 2
        return ops.matmul(h, params[f"layers.{last}.weight"]) + _bias(params[f"layers.{last}.bias"], h.ndim)

    def features(self, params: Params, x: TensorLike) -> Tensor:
        """The last hidden layer's activations, [..., N, sizes[-2]]: what the last (linear) layer reads."""
        lead = self.check(params)
        first = next(iter(params.values()))
        h = as_tensor(x, first)
        self._check_input(h, lead, 1, "MLP")
        if self.context_dim:
            context = params["context"]
            if context.ndim == 2 and h.ndim == 3:  # [T, k] -> [T, 1, k]
                context = ops.expand_dims(context, -2)
            h = ops.concatenate([h, ops.broadcast_to(context, h.shape[:-1] + (self.context_dim,))], axis=-1)
        act = ACTIVATIONS[self.activation]
        for i in range(len(self.sizes) - 2):
            h = act(ops.matmul(h, params[f"layers.{i}.weight"]) + _bias(params[f"layers.{i}.bias"], h.ndim))
        return h


class Conv4(Model):
    """The few-shot classification network of Vinyals et al. (2016) / Finn et al. (2017).

    Four blocks of [3x3 conv with ``filters`` filters (padding 1), batch norm, ReLU, 2x2 max-pool],
    then a linear head to ``n_way`` logits. Input: [N, channels, size, size] (28x28 grey for
    Omniglot), or [T, N, ...] with a task axis. Batch norm normalises with the statistics of the
    current batch (per task), at training and test time alike, as MAML does: no running statistics.

    **Per-step batch norm** (MAML++, Antoniou et al. 2019, §4): ``per_step_bn=S`` gives each of S
    inner steps its own batch-norm weight and bias, parameters ``blocks.{i}.norm.weight.step{s}`` and
    ``blocks.{i}.norm.bias.step{s}`` (s = 0, ..., S-1) in place of ``blocks.{i}.norm.weight`` and
    ``.bias``, and the model takes the step: ``model(params, x, step=s)`` normalises with step s's
    (a step s >= S, from fine-tuning longer than the inner loop was trained for, uses the last, as
    LSLR's step sizes do). ``MAML(..., loss_takes_step=True)`` passes the step to the loss: the
    support loss of inner step s, and the query loss of the parameters that step s produced, use
    step s's weights, as in MAML++'s code. Without ``per_step_bn`` the model accepts ``step`` and
    ignores it, so one loss function serves both.

    MAML++'s per-step *running statistics* are not kept, by design: this model is a pure function
    of (params, x) and normalises with each task's batch statistics (transductive, at training and
    test time), as MAML's and MAML++'s reference code do (MAML++ calls ``F.batch_norm(...,
    training=True)`` at evaluation too, so its per-step running statistics are collected and
    restored but never used to normalise). Running statistics would be state updated by every
    forward pass: here they would have to be an explicit input and output of the model, for no
    change in what it computes.
    """

    def __init__(
        self,
        n_way: int,
        in_channels: int = 1,
        filters: int = 64,
        image_size: int = 28,
        dtype: str = "float32",
        per_step_bn: int | None = None,
    ) -> None:
        super().__init__()
        n_way, in_channels = integer(n_way, "Conv4 n_way", 1), integer(in_channels, "Conv4 in_channels", 1)
        filters, image_size = integer(filters, "Conv4 filters", 1), integer(image_size, "Conv4 image_size", 1)
        self.n_way, self.in_channels, self.filters, self.image_size = n_way, in_channels, filters, image_size
        self.dtype = _float_dtype(dtype, "Conv4")
        self.per_step_bn = None if per_step_bn is None else integer(per_step_bn, "Conv4 per_step_bn", 1)
        channels, size = in_channels, image_size
        for i in range(4):
            self.shapes[f"blocks.{i}.conv.weight"] = (filters, channels, 3, 3)
            self.shapes[f"blocks.{i}.conv.bias"] = (filters,)
            for s in range(self.per_step_bn or 1):
                self.shapes[self._norm_name(i, "weight", s)] = (filters,)
                self.shapes[self._norm_name(i, "bias", s)] = (filters,)
            channels, size = filters, size // 2
        if size < 1:
            raise ValueError(f"Conv4 needs images of at least 16x16 (four 2x2 poolings), got {image_size}")
        self.feature_size = filters * size * size
        self.shapes["head.weight"] = (self.feature_size, n_way)
        self.shapes["head.bias"] = (n_way,)
        self.head_names = ["head.weight", "head.bias"]

    def init(self, seed: int = 0) -> Params:
        rng = _random(seed)
        params = {}
        for name, shape in self.shapes.items():
            if ".norm.weight" in name:  # per-step ones too ("...norm.weight.step2")
                params[name] = tensor(np.ones(shape, dtype=self.dtype), requires_grad=True)
            elif name.endswith("bias") or ".norm.bias" in name:
                params[name] = tensor(np.zeros(shape, dtype=self.dtype), requires_grad=True)
            else:  # He-style scale for the convolutions, 1/sqrt(fan_in) for the head
                fan_in = int(np.prod(shape[1:])) if "conv" in name else shape[0]
                gain = math.sqrt(6.0) if "conv" in name else 1.0
                params[name] = _uniform(rng, shape, gain / math.sqrt(fan_in), self.dtype)
        return params

    def _norm_name(self, block: int, kind: str, step: int | None) -> str:
        """The batch-norm parameter of ``block`` (``kind`` "weight" or "bias") used at inner ``step``."""
        name = f"blocks.{block}.norm.{kind}"
        return name if self.per_step_bn is None else f"{name}.step{min(step, self.per_step_bn - 1)}"

    def __call__(self, params: Params, x: TensorLike, step: int | None = None) -> Tensor:
        h = self.features(params, x, step)
        return ops.matmul(h, params["head.weight"]) + _bias(params["head.bias"], h.ndim)

    def features(self, params: Params, x: TensorLike, step: int | None = None) -> Tensor:
        """The body's output, [..., N, features]: what the linear head reads (R2-D2 fits its own head to it)."""
        if step is not None:
            step = integer(step, "Conv4 step", 0)
        elif self.per_step_bn is not None:
            raise ValueError(
                f"Conv4(per_step_bn={self.per_step_bn}) needs the inner step: model(params, x, step=s) picks "
                "step s's batch-norm weights (MAML(..., loss_takes_step=True) passes it to the loss)"
            )
        lead = self.check(params)
        h = as_tensor(x, params["head.weight"])
        self._check_input(h, lead, 3, "Conv4")
        if h.shape[-3:] != (self.in_channels, self.image_size, self.image_size):
            raise ValueError(
                f"Conv4 expects images [{self.in_channels}, {self.image_size}, {self.image_size}], got {h.shape}"
            )
        for i in range(4):
            p = f"blocks.{i}."
            h = ops.conv2d(h, params[p + "conv.weight"], params[p + "conv.bias"], padding=1)
            h = batch_norm(h, params[self._norm_name(i, "weight", step)], params[self._norm_name(i, "bias", step)])
            h = ops.max_pool2d(ops.relu(h), 2)
        return ops.reshape(h, h.shape[:-3] + (self.feature_size,))


def batch_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    """Normalise x [..., N, C, H, W] per channel with the batch's own mean and variance.

    y = weight * (x - mean) / sqrt(var + eps) + bias, the statistics taken over (N, H, W) for each
    channel (and separately for each task when there is a task axis); weight, bias: [C] or [T, C].
    """
    eps = real(eps, "batch_norm eps", low=0)
    channels = x.shape[-3] if x.ndim >= 4 else None
    if channels is None or weight.shape[-1:] != (channels,) or bias.shape[-1:] != (channels,):
        raise ValueError(
            f"batch_norm needs x [..., N, C, H, W] and weight, bias [C] or [T, C]; got x {x.shape}, weight "
            f"{weight.shape}, bias {bias.shape}"
        )
    axes = (-4, -2, -1)
    mean = ops.mean(x, axis=axes, keepdims=True)
    centred = x - mean
    var = ops.mean(centred * centred, axis=axes, keepdims=True)
    normalised = centred / ops.sqrt(var + eps)
    shape = weight.shape[:-1] + (1, weight.shape[-1], 1, 1)
    return normalised * ops.reshape(weight, shape) + ops.reshape(bias, shape)
