"""Functional models, losses and optimisers for meta-learning (parameters are plain dicts)."""

from .losses import accuracy, cross_entropy, mse_loss
from .models import MLP, Conv4, Linear, Model, Params, batch_norm
from .optim import SGD, Adam, CosineSchedule, clip_grad_norm, cosine_schedule

__all__ = [
    "Model", "Linear", "MLP", "Conv4", "batch_norm", "Params",
    "mse_loss", "cross_entropy", "accuracy",
    "SGD", "Adam", "clip_grad_norm", "cosine_schedule", "CosineSchedule",
]  # fmt: skip
