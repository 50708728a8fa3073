"""Losses and metrics, reduced per task.

Per-task arrays are ``[N, ...]`` (N examples); any axes in front of them are task axes, which the
reduction keeps: a loss of inputs ``[T, N, ...]`` is the vector of the T per-task losses.
"""

from __future__ import annotations

from typing import Any

from .. import ops
from ..backend import array_module
from ..engine import Tensor, TensorLike, as_tensor, wrap_array


def mse_loss(prediction: TensorLike, target: TensorLike) -> Tensor:
    """Mean squared error over the examples (and output features) of each task.

    prediction, target: [..., N, D] -> [...]:  L = (1 / (N D)) sum_{n,d} (prediction - target)^2.
    """
    prediction = as_tensor(prediction)
    target = as_tensor(target, prediction)
    if prediction.shape != target.shape:
        raise ValueError(f"mse_loss: prediction shape {prediction.shape} != target shape {target.shape}")
    if prediction.ndim < 2:
        raise ValueError(f"mse_loss expects [..., N, D] arrays, got shape {prediction.shape}")
    diff = prediction - target
    return ops.mean(diff * diff, axis=(-2, -1))


def _label_mask(logits: Tensor, labels: TensorLike, name: str) -> Any:
    if logits.ndim < 2:
        raise ValueError(f"{name} expects logits [..., N, C] (N examples, C classes), got shape {logits.shape}")
    labels = as_tensor(labels, logits)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{name}: labels must be integers, got dtype {labels.dtype}")
    if logits.shape[:-1] != labels.shape:
        raise ValueError(
            f"{name}: logits shape {logits.shape} needs labels of shape {logits.shape[:-1]}, got {labels.shape}"
        )
    classes = logits.shape[-1]
    xp = array_module(logits.data)
    low, high = (int(labels.data.min()), int(labels.data.max())) if labels.size else (0, 0)
    if low < 0 or high >= classes:
        raise ValueError(f"{name}: labels must lie in [0, {classes}), got values in [{low}, {high}]")
    return labels.data[..., None] == xp.arange(classes)


def cross_entropy(logits: TensorLike, labels: TensorLike) -> Tensor:
    """Softmax cross-entropy from logits, averaged over the examples of each task.

    logits [..., N, C], integer labels [..., N] -> [...]:  L = -(1/N) sum_n log softmax(logits_n)[y_n],
    computed with log_softmax (stable for any logits). The label's entry is selected, not multiplied
    by a one-hot vector, so a masked class (a logit of -inf) costs nothing instead of -inf * 0 = NaN.
    """
    logits = as_tensor(logits)
    is_label = _label_mask(logits, labels, "cross_entropy")
    picked = ops.where(is_label, ops.log_softmax(logits, axis=-1), 0.0)
    return -ops.mean(ops.sum(picked, axis=-1), axis=-1)


def accuracy(logits: TensorLike, labels: TensorLike) -> Tensor:
    """Fraction of examples whose largest logit is the label, per task: [..., N, C] -> [...]
    (NaN for a task without examples, as the mean of nothing)."""
    logits = as_tensor(logits)
    is_label = _label_mask(logits, labels, "accuracy")
    xp = array_module(logits.data)
    hits = (logits.data.argmax(axis=-1)[..., None] == xp.arange(logits.shape[-1])) & is_label
    examples = logits.shape[-2]
    return wrap_array(hits.sum(axis=(-2, -1)) / examples if examples else xp.full(hits.shape[:-2], xp.nan))
