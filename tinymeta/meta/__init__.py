"""Meta-learning algorithms, one module each, all built on one inner loop (``inner_loop.py``).

Every algorithm has the same API over a batch of tasks (arrays [T, K, ...]):

- ``init(params) -> meta_params``: meta-parameters from a model's parameters;
- ``meta_grad(meta_params, x_support, y_support, x_query, y_query) -> (loss, grads)``: one
  meta-gradient, to feed an outer optimiser (``tinymeta.nn.Adam``);
- ``adapt(meta_params, x_support, y_support) -> phi``: the adapted parameters, [T, ...];
- ``fine_tune(meta_params, x_support, y_support, steps)``: test-time adaptation by the algorithm's
  own rule, yielding φ_0, ..., φ_steps, for evaluation.

The MAML family (MAML, Meta-SGD, ANIL, CAVIA) also has a differentiable ``meta_loss``.
``make(name, loss_fn, **settings)`` builds any of them by the name the lecture uses, so a script
switches algorithm with one flag.

The black-box contrast, ``CNP`` (a conditional neural process, ``cnp.py``), has the same API but no
inner loop: it adapts by reading the support set with an encoder. It is not in ``make``, whose
algorithms adapt any model through any ``loss_fn(params, x, y)``: a CNP's network is itself the
learner and its loss its own likelihood, so it is built from its network, ``CNP(CNPModel(...))``.
"""

from __future__ import annotations

from typing import Any

from .anil import ANIL
from .cavia import CAVIA
from .cnp import CNP, CNPModel
from .imaml import iMAML
from .inner_loop import LossFn, final, inner_sgd
from .maml import MAML, annealed_step_loss_weights
from .metasgd import MetaSGD
from .r2d2 import R2D2
from .reptile import Reptile

ALGORITHMS: dict[str, tuple[type, dict[str, Any]]] = {
    "maml": (MAML, {}),
    "fomaml": (MAML, {"first_order": True}),  # first-order MAML
    "metasgd": (MetaSGD, {}),
    "maml++": (MAML, {"learn_inner_lr": "per_layer_per_step"}),  # LSLR; add step_loss_weights for the multi-step loss
    "anil": (ANIL, {}),
    "cavia": (CAVIA, {}),
    "reptile": (Reptile, {}),
    "imaml": (iMAML, {}),
    "r2d2": (R2D2, {}),
}


def make(name: str, loss_fn: LossFn, **settings: Any) -> Any:
    """The algorithm called ``name`` (a key of ``ALGORITHMS``), its class given ``settings``.

    ``settings`` are the class's keyword arguments (``inner_lr``, ``inner_steps``, ...); ANIL needs
    ``head`` (e.g. ``model.head_names``), CAVIA ``context_dim``, R2-D2 ``features`` (e.g.
    ``model.features``) and ``ways``.

    >>> make("fomaml", lambda params, x, y: None, inner_lr=0.1).first_order
    True
    """
    if not isinstance(name, str) or name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose from {', '.join(ALGORITHMS)}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function (params, x, y) -> losses, got {type(loss_fn).__name__}")
    cls, variant = ALGORITHMS[name]
    fixed = sorted(set(variant) & set(settings))
    if variant.get("first_order") and settings.get("first_order_until") is not None:
        raise ValueError(
            f"{name!r} is first order at every iteration; first_order_until anneals from first to second "
            "order: make('maml', ...) or make('maml++', ...) with it"
        )
    if fixed:
        raise ValueError(
            f"{name!r} fixes {', '.join(f'{k}={variant[k]!r}' for k in fixed)}; to set it yourself, "
            f"make({cls.__name__.lower()!r}, ...) with it"
        )
    required = {
        "anil": "head (e.g. model.head_names)",
        "cavia": "context_dim",
        "r2d2": "features (e.g. model.features)",
    }.get(name)
    if required and required.split()[0] not in settings:
        raise TypeError(f"make({name!r}, ...) needs {required}")
    return cls(loss_fn, **variant, **settings)


__all__ = [
    "MAML", "MetaSGD", "ANIL", "CAVIA", "Reptile", "iMAML", "R2D2", "CNP", "CNPModel",
    "inner_sgd", "final", "ALGORITHMS", "make", "annealed_step_loss_weights",
]  # fmt: skip
