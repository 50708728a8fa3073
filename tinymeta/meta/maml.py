"""MAML (Finn, Abbeel & Levine, ICML 2017), first-order MAML, and MAML++'s options.

For each task i with support set D_i^tr and query set D_i^ts (Finn et al., Algorithm 1/2):

    φ_i = θ - α ∇_θ L(θ, D_i^tr)                       (inner loop, S steps of this)
    θ  ← θ - β ∇_θ (1/T) Σ_i L(φ_i, D_i^ts)           (outer loop, over a batch of T tasks)

The whole algorithm is a few lines of ``tinymeta.grad``. Here it is by hand for one task and two
inner steps: ``create_graph=True`` records the inner gradients, so differentiating the query loss
through φ reaches θ along every path, Hessian terms included; ``MAML.meta_grad`` gives the same:

    >>> import numpy as np
    >>> import tinymeta as tm
    >>> from tinymeta import nn
    >>> from tinymeta.meta import MAML
    >>> model = nn.MLP([1, 16, 1])
    >>> loss = lambda params, x, y: nn.mse_loss(model(params, x), y)
    >>> theta = model.init(seed=0)
    >>> rng = np.random.default_rng(0)
    >>> x_support, x_query = rng.uniform(-5, 5, (2, 1, 10, 1))    # one task: [T=1, K=10, 1] each
    >>> y_support, y_query = np.sin(x_support), np.sin(x_query)
    >>> alpha = 0.01
    >>> phi = dict(theta)
    >>> for step in range(2):                                       # φ ← φ - α ∇L(φ, D^tr)
    ...     g = tm.grad(loss(phi, x_support[0], y_support[0]), list(phi.values()), create_graph=True)
    ...     phi = {n: p - alpha * gn for (n, p), gn in zip(phi.items(), g)}
    >>> by_hand = tm.grad(loss(phi, x_query[0], y_query[0]), list(theta.values()))  # d L(φ, D^ts) / d θ
    >>> maml = MAML(loss, inner_lr=alpha, inner_steps=2)
    >>> _, grads = maml.meta_grad(maml.init(theta), x_support, y_support, x_query, y_query)
    >>> max(float(abs(grads[n] - h).max()) for n, h in zip(theta, by_hand)) < 1e-12
    True

The meta-gradient of one step is (I - α ∇²L(θ, D_i^tr)) ∇L(φ_i, D_i^ts): a Hessian-vector product,
never the Hessian itself. ``first_order=True`` drops the Hessian term (FOMAML: d φ / d θ := I).
The two can point opposite ways. Take g(x) = x², x0 = 2, α = 1, with g both support and query
loss: the step gives x' = x - 2x = -x, so the meta-objective is g(x') = x² and its true gradient is
2 x0 = +4; first order uses g'(x') = 2x' = -4 alone and would move x0 the wrong way:

    >>> loss = lambda p, x, y: p["x"] ** 2 * tm.sum(x, axis=-1)     # g(x) per task (x = ones)
    >>> for first_order in (False, True):
    ...     maml = MAML(loss, inner_lr=1.0, first_order=first_order)
    ...     theta = maml.init({"x": tm.tensor(2.0, requires_grad=True)})
    ...     _, grads = maml.meta_grad(theta, [[1.0]], [[0.0]], [[1.0]], [[0.0]])
    ...     print(grads["x"].item())
    4.0
    -4.0

MAML++ (Antoniou, Edwards & Storkey, ICLR 2019) options:
- ``learn_inner_lr="per_layer_per_step"``: LSLR, one learned step size per parameter tensor and
  inner step (§4, "Learning per-layer per-step learning rates");
- ``step_loss_weights``: the multi-step loss Σ_s w_s L(φ_s, D^ts), the query loss after every
  inner step (§4, "Multi-step loss optimization"), with fixed weights or, as MAML++ anneals them
  towards the last step, a schedule of the outer iteration (``annealed_step_loss_weights``);
- ``first_order_until=N``: derivative-order annealing (§4, "Derivative-order annealing"): the
  meta-gradient is first order for outer iterations 0, ..., N-1 and exact from iteration N on. The
  outer loop says which iteration it is on, explicitly: ``meta_grad(..., iteration=i)`` (nothing
  is counted inside, so a resumed run or a repeated call gives the same gradient);
  ``is_first_order(i)`` is the rule;
- ``loss_takes_step=True``: ``loss_fn(params, x, y, step)`` is told the inner step, for models with
  per-step parameters: ``nn.Conv4(per_step_bn=S)``'s per-step batch-norm weights and biases (§4,
  "Per-step batch normalization weights and biases"). Step s's support loss, and the query loss of
  the parameters φ_{s+1} that step s produced, are called with ``step=s`` (as in MAML++'s code);
- the cosine annealing of the meta learning rate is the outer optimiser's: ``nn.Adam(lr=
  nn.cosine_schedule(lr, total_steps, min_lr))``.

Derivative-order annealing switches exactly at N: below it the gradient is FOMAML's, from it on
exact MAML's (here g(x) = x² as above: -4, then +4):

    >>> maml = MAML(loss, inner_lr=1.0, first_order_until=100)
    >>> theta = maml.init({"x": tm.tensor(2.0, requires_grad=True)})
    >>> [maml.meta_grad(theta, [[1.0]], [[0.0]], [[1.0]], [[0.0]], iteration=i)[1]["x"].item() for i in (99, 100)]
    [-4.0, 4.0]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from .. import ops
from .._checks import callable_with, flag, integer, real
from ..backend import array_module
from ..engine import Tensor, TensorLike, new_leaf
from .inner_loop import (
    LossFn,
    Mode,
    Params,
    StepSize,
    check_episode,
    check_inner_loop_settings,
    check_loss_fn,
    check_params,
    check_steps,
    check_tasks,
    final,
    for_each_task,
    inner_sgd,
    meta_parameters,
    task_losses,
    value_and_meta_grad,
)

LearnedStepSizes = Literal["per_parameter", "per_layer_per_step"]
StepLossFn = Callable[[Params, TensorLike, TensorLike, int], Tensor]  # loss_fn(params, x, y, step)


STEP_SIZE_PREFIX = "inner_lr."


def step_size_key(name: str) -> str:
    """The meta-parameter holding parameter ``name``'s learned inner step size: ``"inner_lr.<name>"``.

    Learned step sizes (Meta-SGD, LSLR) are meta-parameters like θ, so they live in the same dict
    and the outer optimiser updates them with θ; ``MAML.split`` takes them out again."""
    return STEP_SIZE_PREFIX + name


def _checked_weights(weights: Any, inner_steps: int, name: str) -> list[float]:
    """One finite weight >= 0 per inner step, not all zero (a negative weight would have the outer loop
    raise that step's query loss; all zero, a meta-gradient of zero)."""
    if isinstance(weights, str) or not hasattr(weights, "__len__"):
        raise TypeError(f"{name} must be a sequence of one weight per inner step, got {weights!r}")
    checked = [real(w, f"{name}[{i}]", low=0) for i, w in enumerate(weights)]
    if len(checked) != inner_steps:
        raise ValueError(f"{name} needs one weight per inner step ({inner_steps}), got {len(checked)}")
    if not any(checked):
        raise ValueError(f"{name} are all zero: the meta-loss would be 0 whatever the parameters")
    return checked


def annealed_step_loss_weights(inner_steps: int, anneal_until: int) -> Callable[[int], list[float]]:
    """MAML++'s multi-step loss importance, a schedule over outer iterations i (Antoniou et al. 2019,
    §4, "Multi-step loss optimization"): the query losses after all S inner steps weigh 1/S each at
    i = 0; each of the first S-1 then loses (1/S)·i/N, down to a floor of 0.03/S, and the last step's
    weight gains what they lose (the weights sum to 1), so the meta-objective moves towards the
    final step's loss; from i = N = ``anneal_until`` on, only the final step counts ([0, ..., 0, 1]),
    as MAML++ drops the multi-step loss after its first epochs.

    >>> weights = annealed_step_loss_weights(inner_steps=2, anneal_until=100)
    >>> weights(0), weights(50), weights(100)
    ([0.5, 0.5], [0.25, 0.75], [0.0, 1.0])
    """
    inner_steps = integer(inner_steps, "inner_steps", 1)
    anneal_until = integer(anneal_until, "anneal_until", 1)
    floor = 0.03 / inner_steps

    def weights(iteration: int) -> list[float]:
        iteration = integer(iteration, "iteration", 0)
        if iteration >= anneal_until:
            return [0.0] * (inner_steps - 1) + [1.0]
        earlier = max(1 / inner_steps - (1 / inner_steps) * iteration / anneal_until, floor)
        return [earlier] * (inner_steps - 1) + [1.0 - (inner_steps - 1) * earlier]

    return weights


class MAML:
    """Model-agnostic meta-learning with an exact second-order meta-gradient.

    ``loss_fn(params, x, y)`` is one task's loss (a scalar); called with task-batched params
    [T, ...] and data [T, K, ...] it must return the T per-task losses (tinymeta.nn's models and
    losses do). ``batched=True`` adapts all T tasks in one pass; ``batched=False`` loops over the
    tasks one by one; both give the same meta-gradient.

    Meta-parameters are a flat dict: the model's parameters θ, plus one ``step_size_key(name)``
    entry per adapted parameter for learned step sizes (Meta-SGD, LSLR). Make them with :meth:`init`.

    The path of a meta-gradient: ``meta_grad`` differentiates ``meta_loss``, the query loss
    (``_query_loss``) of the φ that ``_trajectory`` yields, which is ``inner_loop.inner_sgd`` run from θ
    (with ``loss_takes_step``, each step's loss told its step).

    MAML++'s options (see the module docstring): ``learn_inner_lr="per_layer_per_step"`` (LSLR),
    ``step_loss_weights`` (multi-step loss), ``first_order_until`` (derivative-order annealing: give
    ``meta_grad`` the outer ``iteration``), ``loss_takes_step`` (per-step batch norm).
    """

    per_task_names: tuple[str, ...] = ()  # parameters made afresh for each task (CAVIA's context)

    def __init__(
        self,
        loss_fn: LossFn | StepLossFn,
        inner_lr: float = 0.01,
        inner_steps: int = 1,
        first_order: bool = False,
        adapt_only: Sequence[str] | None = None,
        learn_inner_lr: LearnedStepSizes | None = None,
        step_loss_weights: Sequence[float] | Callable[[int], Sequence[float]] | None = None,
        batched: bool = True,
        first_order_until: int | None = None,
        loss_takes_step: bool = False,
    ) -> None:
        inner_lr, inner_steps = check_inner_loop_settings(inner_lr, inner_steps)
        first_order, batched = flag(first_order, "first_order"), flag(batched, "batched")
        loss_takes_step = flag(loss_takes_step, "loss_takes_step")
        if first_order_until is not None:
            first_order_until = integer(first_order_until, "first_order_until", 0)
            if first_order:
                raise ValueError(
                    f"first_order=True is first order at every iteration, first_order_until={first_order_until} "
                    "switches to second order at that iteration: give one of them"
                )
        if loss_takes_step:
            callable_with(loss_fn, 4, "loss_fn with loss_takes_step=True", "loss_fn(params, x, y, step)")
        else:
            check_loss_fn(loss_fn)
        if adapt_only is not None:
            if isinstance(adapt_only, str) or not hasattr(adapt_only, "__iter__"):
                raise TypeError(f"adapt_only must be a list of parameter names (or None for all), got {adapt_only!r}")
            adapt_only = list(adapt_only)
            if not adapt_only:
                raise ValueError("adapt_only is empty: name at least one parameter to adapt (None adapts them all)")
            for name in adapt_only:
                if not isinstance(name, str):
                    raise TypeError(f"adapt_only must hold parameter names (str), got {name!r}")
        if learn_inner_lr not in (None, "per_parameter", "per_layer_per_step"):
            raise ValueError(
                f"learn_inner_lr must be None, 'per_parameter' or 'per_layer_per_step', got {learn_inner_lr!r}"
            )
        if callable(step_loss_weights):
            callable_with(step_loss_weights, 1, "step_loss_weights (a schedule)", "weights(iteration)")
        elif step_loss_weights is not None:
            step_loss_weights = _checked_weights(step_loss_weights, inner_steps, "step_loss_weights")
        self.loss_fn = loss_fn
        self.inner_lr = inner_lr
        self.inner_steps = inner_steps
        self.first_order = first_order
        self.adapt_only = adapt_only
        self.learn_inner_lr = learn_inner_lr
        self.step_loss_weights = step_loss_weights
        self.batched = batched
        self.first_order_until = first_order_until
        self.loss_takes_step = loss_takes_step

    # ---- the algorithm -------------------------------------------------------------------------

    def meta_grad(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
        *,
        iteration: int | None = None,
    ) -> tuple[float, Params]:
        """(meta-loss value, its gradient for every meta-parameter): feed the gradient to an optimiser.

        ``iteration`` is the outer loop's iteration (0, 1, ...): derivative-order annealing
        (``first_order_until``) needs it, and it is checked but changes nothing otherwise.
        Recording is on inside, whatever the caller's ``no_grad``, and a meta-parameter that does not
        require grad (a plain copy of θ) is differentiated all the same: a meta-gradient needs its graph."""
        return value_and_meta_grad(
            lambda theta: self.meta_loss(theta, x_support, y_support, x_query, y_query, iteration=iteration),
            meta_params,
        )

    def meta_loss(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
        *,
        iteration: int | None = None,
    ) -> Tensor:
        """(1/T) Σ_i L(φ_i, D_i^ts): the mean query loss after adaptation, a scalar Tensor whose
        gradient with respect to ``meta_params`` is the meta-gradient. All arrays are [T, K, ...].

        With ``step_loss_weights`` (MAML++'s multi-step loss) it is Σ_s w_s (1/T) Σ_i L(φ_i,s, D_i^ts).
        ``iteration``: the outer iteration, which decides the derivative order under
        ``first_order_until`` (see ``is_first_order``)."""
        mode, weights = self._mode(iteration), self.loss_weights(iteration)
        tasks = check_episode(x_support, y_support, x_query, y_query)
        if self.batched:
            return self._query_loss(meta_params, x_support, y_support, x_query, y_query, tasks, mode, weights)
        per_task = [  # one task at a time, each without a task axis
            self._query_loss(meta_params, x_support[t], y_support[t], x_query[t], y_query[t], None, mode, weights)
            for t in range(tasks)
        ]
        return ops.mean(ops.stack(per_task))

    def _query_loss(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
        tasks: int | None,
        mode: Mode | None = None,
        weights: list[float] | None = None,
    ) -> Tensor:
        """The mean query loss after the inner loop, or, with ``weights`` (the multi-step loss), the
        weighted sum of the query losses after each step (a step of weight 0 costs no query pass).
        ``tasks`` is T for data with a task axis [T, K, ...], None for one task's data [K, ...]."""
        shape = () if tasks is None else (tasks,)
        trajectory = self._trajectory(meta_params, x_support, y_support, tasks, mode=mode)
        if weights is None:
            last = self._loss_at(self.inner_steps - 1)  # φ_S, made by step S-1
            return ops.mean(task_losses(last, final(trajectory), x_query, y_query, shape))
        total = None
        for s, (w, phi) in enumerate(zip(weights, trajectory)):
            if w == 0 and (total is not None or s < self.inner_steps - 1):
                continue
            term = w * ops.mean(task_losses(self._loss_at(s), phi, x_query, y_query, shape))
            total = term if total is None else total + term
        return total

    def loss_weights(self, iteration: int | None = None) -> list[float] | None:
        """The multi-step loss's weights for outer ``iteration`` (fixed ones, or the schedule's
        value, which needs the iteration), None without a multi-step loss."""
        if not callable(self.step_loss_weights):
            return self.step_loss_weights
        if iteration is None:
            raise ValueError(
                f"{type(self).__name__}(step_loss_weights=<a schedule>) needs the outer iteration: "
                "meta_grad(..., iteration=i) weighs the steps' query losses by step_loss_weights(i)"
            )
        iteration = integer(iteration, "iteration", 0)
        return _checked_weights(self.step_loss_weights(iteration), self.inner_steps, f"step_loss_weights({iteration})")

    def _trajectory(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        tasks: int | None,
        steps: int | None = None,
        mode: Mode | None = None,
    ) -> Iterator[Params]:
        """The inner loop's φ_1, ..., φ_S for support data with (``tasks`` = T) or without (None) a task
        axis. ``steps`` and ``mode`` default to the algorithm's own: ``inner_steps``, and ``"exact"``
        (or ``"first_order"``); ``inner_loop.py`` documents the modes."""
        params, step_sizes = self.split(meta_params)
        phi0 = self.task_params(params, tasks)
        return inner_sgd(
            self.loss_fn,
            phi0,
            x_support,
            y_support,
            steps=self.inner_steps if steps is None else steps,
            step_size=self.step_size(step_sizes),
            adapt=self._adapted(phi0),
            mode=mode or self._mode(None),
            loss_shape=() if tasks is None else (tasks,),
            learned_step_sizes=self.learn_inner_lr is not None,
            loss_at_step=self._loss_at if self.loss_takes_step else None,
        )

    def _loss_at(self, step: int) -> LossFn:
        """The loss (params, x, y) of inner step ``step``: ``loss_fn`` itself, or, with
        ``loss_takes_step``, ``loss_fn`` told the step."""
        if not self.loss_takes_step:
            return self.loss_fn
        return lambda params, x, y: self.loss_fn(params, x, y, step)

    def is_first_order(self, iteration: int | None = None) -> bool:
        """Whether the meta-gradient of outer ``iteration`` is first order: always with
        ``first_order=True``; with ``first_order_until=N``, for iterations 0, ..., N-1 (and exact
        from N on), which needs the iteration; never otherwise."""
        if iteration is not None:
            iteration = integer(iteration, "iteration", 0)
        if self.first_order_until is None:
            return self.first_order
        if iteration is None:
            raise ValueError(
                f"{type(self).__name__}(first_order_until={self.first_order_until}) needs the outer iteration: "
                f"meta_grad, meta_loss and adapt(..., iteration=i) are first order for i < {self.first_order_until}, "
                "exact from then on (fine_tune, for evaluation, needs none)"
            )
        return iteration < self.first_order_until

    def _mode(self, iteration: int | None) -> Mode:
        return "first_order" if self.is_first_order(iteration) else "exact"

    def task_params(self, params: Params, tasks: int | None) -> Params:
        """φ_0 for the inner loop: θ itself (one task), or θ broadcast to [T, ...] for the adapted
        parameters of a task batch (the others stay shared)."""
        return for_each_task(params, tasks, set(self._adapted(params)))

    def adapt(
        self, meta_params: Params, x_support: TensorLike, y_support: TensorLike, *, iteration: int | None = None
    ) -> Params:
        """The adapted parameters φ after the inner loop, differentiable with respect to θ (to first
        order only where ``is_first_order(iteration)``).

        Support data is [T, K, ...]; the adapted parameters come back with a task axis [T, ...]
        (the others shared), ready for ``model(phi, x_query)`` with x_query [T, N, ...].
        """
        tasks = check_tasks(x_support, y_support, names=("x_support", "y_support"))
        return final(self._trajectory(meta_params, x_support, y_support, tasks, mode=self._mode(iteration)))

    def fine_tune(
        self, meta_params: Params, x_support: TensorLike, y_support: TensorLike, steps: int
    ) -> Iterator[Params]:
        """Test-time adaptation for evaluation: φ_0 (θ, broadcast to the T tasks), then φ_1, ..., φ_steps,
        by the algorithm's own update rule (its step sizes, its adapted parameters), for any number of
        steps. The steps run detached: φ_1, ... are constants, and nothing of the loop is recorded."""
        steps = check_steps(steps)
        tasks = check_tasks(x_support, y_support, names=("x_support", "y_support"))
        yield self.task_params(self.split(meta_params)[0], tasks)
        yield from self._trajectory(meta_params, x_support, y_support, tasks, steps=steps, mode="detached")

    # ---- meta-parameters: θ and the learned step sizes ------------------------------------------

    def init(self, params: Params) -> Params:
        """Meta-parameters from a model's parameters: leaves that require grad, plus learned step sizes
        (Meta-SGD: α of its parameter's shape; LSLR: one α per tensor and inner step), all ``inner_lr``."""
        meta = meta_parameters(self._check_params(params))
        if self.learn_inner_lr is not None:
            for n in self._adapted(meta):
                xp = array_module(meta[n].data)
                meta[step_size_key(n)] = new_leaf(xp.full(self._step_size_shape(meta[n]), self.inner_lr, meta[n].dtype))
        return meta

    def _step_size_shape(self, param: Tensor) -> tuple[int, ...]:
        """Meta-SGD's α has its parameter's shape; LSLR's one entry per inner step."""
        return param.shape if self.learn_inner_lr == "per_parameter" else (self.inner_steps,)

    def split(self, meta_params: Params) -> tuple[Params, Params]:
        """(θ, the learned step sizes by parameter name): the entries named ``step_size_key(name)``
        are step sizes, the others θ."""
        params = {n: p for n, p in meta_params.items() if not n.startswith(STEP_SIZE_PREFIX)}
        step_sizes = {
            n.removeprefix(STEP_SIZE_PREFIX): p for n, p in meta_params.items() if n.startswith(STEP_SIZE_PREFIX)
        }
        self._check_params(params, "meta_params")
        if self.learn_inner_lr is None and step_sizes:
            raise ValueError(
                f"meta_params hold learned step sizes {sorted(map(step_size_key, step_sizes))}, but this "
                f"{type(self).__name__} has learn_inner_lr=None and would ignore them; make the meta-parameters "
                f"with {type(self).__name__}.init(params)"
            )
        if self.learn_inner_lr is not None and set(step_sizes) != set(self._adapted(params)):
            raise ValueError(
                f"meta_params must hold a learned step size {step_size_key('<name>')!r} for each adapted "
                f"parameter {self._adapted(params)}, got {sorted(step_sizes)}; make them with "
                f"{type(self).__name__}.init(params)"
            )
        for n, alpha in step_sizes.items():  # another variant's step sizes would broadcast, or index, wrongly
            if alpha.shape != self._step_size_shape(params[n]):
                raise ValueError(
                    f"meta_params[{step_size_key(n)!r}] has shape {alpha.shape}, but learn_inner_lr="
                    f"{self.learn_inner_lr!r} learns step sizes of shape {self._step_size_shape(params[n])} for "
                    f"{n!r}: were these meta-parameters made with another inner_steps (LSLR learns one per step; "
                    f"here inner_steps={self.inner_steps}) or by another variant (Meta-SGD: one per entry)?"
                )
        return params, step_sizes

    def step_size(self, step_sizes: Params) -> StepSize:
        """α(name, step) for the inner loop: ``inner_lr``, or the learned step sizes."""
        if self.learn_inner_lr == "per_parameter":
            return lambda name, step: step_sizes[name]
        if self.learn_inner_lr == "per_layer_per_step":
            last = self.inner_steps - 1  # beyond the trained steps (fine_tune), keep the last step size
            return lambda name, step: step_sizes[name][min(step, last)]
        return lambda name, step: self.inner_lr

    def _check_params(self, params: Params, name: str = "params") -> Params:
        check_params(params, name)
        reserved = [n for n in params if n.startswith(STEP_SIZE_PREFIX)]
        if reserved:
            raise ValueError(
                f"parameter names {reserved} start with {STEP_SIZE_PREFIX!r}, which names learned step sizes "
                "in meta-parameters; rename these parameters"
            )
        if self.adapt_only is not None:
            unknown = sorted(set(self.adapt_only) - set(params) - set(self.per_task_names))
            if unknown:
                raise ValueError(f"adapt_only names {unknown} are not parameters; the parameters are {sorted(params)}")
        return params

    def _adapted(self, params: Params) -> list[str]:
        return [n for n in params if self.adapt_only is None or n in self.adapt_only]
