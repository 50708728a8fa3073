"""iMAML, implicit MAML (Rajeswaran, Finn, Kakade & Levine, NeurIPS 2019).

The inner problem is regularised towards θ (their eq. 4):

    φ*_i = argmin_φ  L_prox(φ) = L(φ, D_i^tr) + (λ/2) ||φ - θ||²

At the optimum, the implicit function theorem gives dφ*/dθ = (I + ∇²L(φ*, D_i^tr)/λ)^-1 (their
Lemma 1), so the meta-gradient of L(φ*_i, D_i^ts) is

    g_i = (I + H_i/λ)^-1 ∇L(φ*_i, D_i^ts),    H_i = ∇²L(φ*_i, D_i^tr),

which this module solves by conjugate gradient using only Hessian-vector products (their
Algorithm 2 and eq. 7). ``cg_damping`` adds δ·I to the system (I + H/λ + δI) to keep it well
conditioned. The paper's Omniglot setting: λ = 2, 5 CG steps, 16 inner steps.

**The inner solver.** That gradient is exact only at φ*: it assumes the inner problem is *solved*,
and says nothing about how the solver got there (unlike MAML's, it never sees an inner loop that
overshoots). A few small fixed steps do not solve it: on the sinusoid (5 steps of 0.005, λ = 2)
the meta-gradient they give has a cosine of -0.04 to 0.2 with the solved problem's, and where the
loss is sharp such steps overshoot and overflow. So φ* is found by a solver that chooses its steps and
checks its own progress, each task on its own:

- ``inner_solver="gd"`` (the default): gradient descent on L_prox with a line search
  (``line_search=True``). Each step is tried at a trial length and shortened until L_prox falls
  by at least 1e-4 of what the gradient promises (Armijo), each shortening to the minimiser of
  the parabola through the values seen (within [0.1, 0.5] of the step). The first trial is
  ``inner_lr``; each next one is the secant (Barzilai-Borwein) step s·s / s·y, the inverse of
  the curvature the last step met, and never longer than 1/λ: L_prox is λ-strongly convex
  wherever L's curvature is non-negative, so along the gradient the quadratic model's best step
  is at most 1/λ (L_prox of λ alone, far from the data, is minimised by exactly that step). The
  Armijo test compares with the largest L_prox of the last 5 iterates (the non-monotone search
  Barzilai-Borwein steps need, Grippo et al. 1986; Raydan 1997): L_prox never exceeds its value
  at θ, so the inner loop cannot diverge, whatever the curvature. ``line_search=False`` takes
  fixed steps of ``inner_lr`` instead (the original iMAML loop, which can).
- ``inner_solver="newton"``: Newton-CG. Each step solves (∇²L + λI) p = -∇L_prox with
  ``inner_cg_steps`` steps of truncated conjugate gradient (Hessian-vector products, the Hessian
  never formed; stopping where the curvature turns non-positive, and falling back to -∇L_prox/λ
  where it does at once), then backtracks from the full step along p (monotone Armijo;
  ``line_search=False`` takes full steps). On a quadratic it converges in one step, near a
  smooth φ* quadratically; each step costs one gradient and ``inner_cg_steps`` Hessian-vector
  products (about two gradients each). On a ReLU network it gains nothing over gradient descent
  (below).

Either stops a task once its proximal gradient is small, ||∇L_prox(φ)|| <= ``inner_tol`` ·
max(1, ||∇L(θ)||) (relative to the gradient it starts from, absolute below 1; near φ*,
||φ - φ*|| <= ||∇L_prox(φ)|| / λ by strong convexity), or after ``inner_steps`` steps; a task
whose line search finds no decrease in 30 shortenings (at the limit of precision) stops too, and
so does one whose loss is not finite (it stays at θ). The default tolerance, 1e-10, asks for a
solution to float64 precision: with float32 parameters or a small step budget the solver runs
all ``inner_steps`` (one batched gradient and about two forward passes each), as the original did.
Each ``adapt`` and ``meta_grad`` records how well it solved each task in ``last_inner``
(``InnerReport``: the proximal gradient norm at the φ* it returned, per task, where it started,
the steps taken, which tasks reached the tolerance, and the cost); ``last_inner_residual`` is the
norm alone.

**ReLU networks.** With a piecewise-linear activation, φ* often sits on a kink (a hidden unit's
pre-activation zero at a support point): L_prox has a minimum there but no gradient, so
||∇L_prox|| stalls at a fraction of its start (the sinusoid's 1-40-40-1 ReLU network: 0.002 to
0.05 of it after 3,000 steps) while L_prox itself has converged. There the residual measures the
kink's one-sided slope, not the distance to φ*, and the reported ``converged`` is False; the
implicit gradient ignores the kink (∇²L sees neither side's constraint) and is an approximation,
however well φ* is found. A smooth activation (tanh) solves to 1e-12.

``fine_tune`` (test-time adaptation) yields the same solver's iterates: φ_0 = θ (for each task), then one solver
step each (a task that has stopped stays where it is), so its last iterate after ``inner_steps``
steps is ``adapt``'s φ*.

All T tasks run together: with task-batched parameters the Hessian of Σ_i L_i is block diagonal,
one block per task, so one batched Hessian-vector product serves every task's CG iteration, and
the CG and line-search step sizes are computed per task. The solver keeps each task's parameters
as one vector (a [T, n] array whose columns hold every parameter), so its arithmetic is a few
array operations per step whatever the number of parameters. Nothing of its trajectory is kept:
memory does not depend on the number of inner steps. The meta-gradient's Hessian-vector products
are backward passes through the support gradient recorded once at φ*.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy

from .. import ops
from .._checks import flag, integer, real
from ..backend import array_module, to_numpy
from ..engine import Tensor, TensorLike, grad, grad_mode, new_leaf, wrap_array
from ..solvers import conjugate_gradient
from .inner_loop import (
    LossFn,
    Params,
    check_episode,
    check_inner_loop_settings,
    check_loss_fn,
    check_params,
    check_steps,
    check_tasks,
    for_each_task,
    meta_parameters,
    task_losses,
)

SOLVERS = ("gd", "newton")
ARMIJO = 1e-4  # the fraction of the decrease the gradient promises that a step must achieve
BACKTRACKS = 30  # shortenings of a step before a task's line search gives up
MEMORY = 5  # gradient descent's Armijo test compares with the largest L_prox of the last MEMORY iterates


@dataclass
class InnerReport:
    """How well the last inner problems were solved, one entry per task (NumPy arrays, on the host).

    ``residual``: ||∇L_prox(φ)|| at the φ returned; ``initial``: ||∇L(θ)||, where the solver started;
    ``iterations``: the solver steps each task took; ``converged``: whether it reached ``residual <=
    tol * max(1, initial)``; ``tol``: ``inner_tol``; ``evaluations`` and ``forward``: the batched
    gradients (forward and backward pass) and forward passes alone (line-search trials) it cost."""

    residual: numpy.ndarray
    initial: numpy.ndarray
    iterations: numpy.ndarray
    converged: numpy.ndarray
    tol: float
    evaluations: int
    forward: int

    def __str__(self) -> str:
        worse = int((~(self.residual <= self.initial)).sum())  # a fixed step (line_search=False) can overshoot
        return (
            f"{int(self.converged.sum())} of {self.converged.size} tasks solved to tol {self.tol:g}; proximal "
            f"gradient norm max {self.residual.max():.3g}, median {numpy.median(self.residual):.3g} (from median "
            f"{numpy.median(self.initial):.3g}); steps max {int(self.iterations.max())}"
            + (f"; {worse} ended with a larger gradient norm than they started with (or not finite)" if worse else "")
        )


class _Layout:
    """Every parameter of a task as one vector: [T, n] arrays, each parameter a view of its own columns
    (so the solver's vector arithmetic is one array operation, not one per parameter)."""

    def __init__(self, meta_params: Params) -> None:
        self.names = list(meta_params)
        self.shapes = [tuple(meta_params[n].shape) for n in self.names]
        self.dtypes = [meta_params[n].dtype for n in self.names]
        sizes = [int(numpy.prod(shape)) for shape in self.shapes]
        self.bounds = list(zip(numpy.cumsum([0, *sizes[:-1]]).tolist(), numpy.cumsum(sizes).tolist()))
        self.dtype = numpy.result_type(*self.dtypes)

    def pack(self, arrays: list[Any], tasks: int, xp: Any) -> Any:
        """[T, n] from one [T, ...] array per parameter (None: zeros), on array module ``xp``."""
        return xp.concatenate(
            [
                xp.zeros((tasks, b - a), dtype=self.dtype)
                if x is None
                else x.reshape(tasks, -1).astype(self.dtype, copy=False)
                for x, (a, b) in zip(arrays, self.bounds)
            ],
            axis=1,
        )

    def unpack(self, flat: Any) -> list[Any]:
        """One [T, ...] array per parameter, views of ``flat`` [T, n] (copies only where a dtype differs)."""
        return [
            flat[:, a:b].reshape((flat.shape[0], *shape)).astype(dtype, copy=False)
            for (a, b), shape, dtype in zip(self.bounds, self.shapes, self.dtypes)
        ]


@dataclass
class _Point:
    """One iterate of the solver, evaluated: φ [T, n], the support loss's gradient at φ as the engine
    returned it (with its graph when ``recorded``: Hessian-vector products need it), and per task
    L_prox(φ), ∇L_prox(φ) [T, n], its norm and the penalty (λ/2) ||φ - θ||²."""

    phi: Any
    leaves: list[Tensor]
    gradients: list[Tensor | None]
    recorded: bool
    value: Any
    gradient: Any
    norm: Any
    penalty: Any


def _support_hvp(point: _Point, layout: _Layout, vector: Any) -> Any:
    """∇²L(φ) v per task, v and the result [T, n]: one backward pass through the recorded gradient."""
    pairs = [(i, g) for i, g in enumerate(point.gradients) if g is not None and g.requires_grad]
    products: list[Any] = [None] * len(layout.names)
    if pairs:
        parts = layout.unpack(vector)
        hv = grad([g for _, g in pairs], point.leaves, [wrap_array(parts[i]) for i, _ in pairs], allow_unused=True)
        products = [None if h is None else h.data for h in hv]
    if all(p is None for p in products):
        return vector * 0
    return layout.pack(products, vector.shape[0], array_module(vector))


class iMAML:  # noqa: N801  (the paper's name)
    """Implicit MAML over a batch of tasks (see the module docstring).

    - ``inner_lr`` (0.01): gradient descent's step on L_prox: with ``line_search`` its first trial
      step (shortened if too long, never longer than 1/λ), without one every step (unused by
      Newton-CG).
    - ``inner_steps`` (16): the most solver steps per inner problem (``adapt``, ``meta_grad``).
    - ``lam`` (2.0): λ, the strength of the pull towards θ.
    - ``cg_steps`` (5) and ``cg_damping`` (0.0): conjugate-gradient steps and the damping δ of the
      meta-gradient's system (I + H/λ + δI) u = ∇L_ts.
    - ``inner_solver`` ("gd"): "gd", gradient descent, or "newton", Newton-CG.
    - ``line_search`` (True): choose each step by backtracking (False: fixed steps, the original loop).
    - ``inner_tol`` (1e-10): a task stops once ||∇L_prox|| <= inner_tol · max(1, ||∇L(θ)||); 0: never
      before ``inner_steps``.
    - ``inner_cg_steps`` (10): conjugate-gradient steps per Newton step.

    After each ``adapt``, ``meta_grad`` or exhausted ``fine_tune``, ``last_inner`` (an
    ``InnerReport``) says how well each task's inner problem was solved.
    """

    def __init__(
        self,
        loss_fn: LossFn,
        inner_lr: float = 0.01,
        inner_steps: int = 16,
        lam: float = 2.0,
        cg_steps: int = 5,
        cg_damping: float = 0.0,
        *,
        inner_solver: str = "gd",
        line_search: bool = True,
        inner_tol: float = 1e-10,
        inner_cg_steps: int = 10,
    ) -> None:
        self.inner_lr, self.inner_steps = check_inner_loop_settings(inner_lr, inner_steps)
        self.lam = real(lam, "lam (the regularisation strength λ)", low=0, low_inclusive=False)
        self.cg_steps = integer(cg_steps, "cg_steps", 1)
        self.cg_damping = real(cg_damping, "cg_damping", low=0)
        if not isinstance(inner_solver, str) or inner_solver not in SOLVERS:
            raise ValueError(f"inner_solver must be one of {', '.join(map(repr, SOLVERS))}, got {inner_solver!r}")
        self.inner_solver = inner_solver
        self.line_search = flag(line_search, "line_search")
        self.inner_tol = real(inner_tol, "inner_tol", low=0)
        self.inner_cg_steps = integer(inner_cg_steps, "inner_cg_steps", 1)
        if inner_solver == "gd" and self.line_search and self.inner_lr == 0:
            raise ValueError("inner_lr must be > 0 with line_search=True: it is the line search's first trial step")
        self.loss_fn = check_loss_fn(loss_fn)
        self.last_inner: InnerReport | None = None

    @property
    def last_inner_residual(self) -> numpy.ndarray | None:
        """||∇L_prox(φ*)|| per task, for the last inner problems solved (None before any)."""
        return None if self.last_inner is None else self.last_inner.residual

    def init(self, params: Params) -> Params:
        return meta_parameters(params)

    def adapt(self, meta_params: Params, x_support: TensorLike, y_support: TensorLike) -> Params:
        """φ* of the regularised inner problem, with a task axis [T, ...] (not differentiable);
        how well it is solved is in ``last_inner``."""
        point, _, layout = self._solution(meta_params, x_support, y_support)
        return dict(zip(layout.names, map(wrap_array, layout.unpack(point.phi))))

    def fine_tune(
        self, meta_params: Params, x_support: TensorLike, y_support: TensorLike, steps: int
    ) -> Iterator[Params]:
        """Test-time adaptation: φ_0 = θ (broadcast to the T tasks), then φ_1, ..., φ_steps, one step of the
        inner solver each (a task that has stopped stays where it is; the same dict is yielded once every
        task has)."""
        steps, meta_params = check_steps(steps), check_params(meta_params, "meta_params")
        tasks = check_tasks(x_support, y_support, names=("x_support", "y_support"))
        yield for_each_task(meta_params, tasks)
        layout, previous = _Layout(meta_params), None
        for phi in self._solve(meta_params, x_support, y_support, steps):
            if previous is None or phi is not previous[0]:
                previous = (phi, dict(zip(layout.names, map(wrap_array, layout.unpack(phi)))))
            yield previous[1]

    # ---- the inner solver ------------------------------------------------------------------------

    def _solution(self, meta_params: Params, x_support: TensorLike, y_support: TensorLike) -> tuple[Any, ...]:
        """(the solver's last iterate, evaluated; a function giving it with the support gradient recorded;
        the layout of its vectors)."""
        out: list[Any] = []
        for _ in self._solve(meta_params, x_support, y_support, self.inner_steps, out):
            pass
        return out[0]

    def _solve(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        steps: int,
        out: list[Any] | None = None,
    ) -> Iterator[Any]:
        """Yield φ_1, ..., φ_steps ([T, n] each; the same array again once every task has stopped). When
        exhausted, set ``last_inner`` and append what ``_solution`` returns to ``out``."""
        tasks = check_tasks(x_support, y_support, names=("x_support", "y_support"))
        layout = _Layout(check_params(meta_params, "meta_params"))
        xp = array_module(meta_params[layout.names[0]].data)
        theta = layout.pack([meta_params[n].data[None] for n in layout.names], 1, xp)[0]  # [n]
        dtype = theta.dtype
        lam, newton = self.lam, self.inner_solver == "newton"
        counts = {"evaluations": 0, "forward": 0}

        def along(v: Any) -> Any:  # a [T] array, to scale the rows of a [T, n] one
            return v[:, None]

        def dot(a: Any, b: Any) -> Any:  # ⟨a, b⟩ per task
            return (a * b).sum(axis=1)

        def losses(phi: list[Tensor]) -> Tensor:
            return task_losses(self.loss_fn, dict(zip(layout.names, phi)), x_support, y_support, (tasks,))

        def value(phi: Any, penalty: Any) -> Any:  # L_prox(φ) per task, nothing recorded
            counts["forward"] += 1
            with grad_mode(False):
                return losses([wrap_array(p) for p in layout.unpack(phi)]).data + penalty

        def evaluate(phi: Any, record: bool = newton) -> _Point:  # L_prox, ∇L_prox; ∇L with its graph if ``record``
            counts["evaluations"] += 1
            leaves = [new_leaf(p) for p in layout.unpack(phi)]
            with grad_mode(True):
                support = losses(leaves)
                total = ops.sum(support)
            gradients = list(grad(total, leaves, create_graph=record, allow_unused=True))
            offset = phi - theta
            gradient = layout.pack([None if g is None else g.data for g in gradients], tasks, xp) + lam * offset
            penalty = (lam / 2) * dot(offset, offset)
            norm = xp.sqrt(dot(gradient, gradient))
            return _Point(phi, leaves, gradients, record, support.data + penalty, gradient, norm, penalty)

        phi = xp.array(xp.broadcast_to(theta, (tasks, theta.size)))
        point = evaluate(phi)
        initial = point.norm
        recent = [point.value]  # L_prox of the last few iterates, per task: the non-monotone reference
        threshold = self.inner_tol * xp.maximum(initial, 1)
        active = (point.norm > threshold) & xp.isfinite(point.norm)  # tasks being solved: not converged, not stalled
        iterations = xp.zeros(tasks, dtype=numpy.int64)
        longest = 1 / lam if self.line_search else self.inner_lr  # gradient descent's longest step
        trial = xp.full(tasks, min(self.inner_lr, longest), dtype=dtype)
        eps = float(numpy.finfo(dtype).eps)
        for _ in range(steps):
            if not active.any():
                yield phi
                continue
            everyone = bool(active.all())
            gradient = point.gradient if everyone else xp.where(along(active), point.gradient, 0)  # 0: stopped
            gg = point.norm**2 if everyone else dot(gradient, gradient)
            if newton:
                (direction,) = conjugate_gradient(
                    lambda v, p=point: [lam * v[0] + _support_hvp(p, layout, v[0])],
                    [-gradient],
                    self.inner_cg_steps,
                    batched=True,
                )
                # truncated CG from zero gives a descent direction, or none where the curvature is <= 0 at once
                direction = xp.where(along(dot(gradient, direction) < 0), direction, -gradient / lam)
                point.leaves, point.gradients, point.recorded = [], [], False  # its graph is done with: free it
                step = xp.where(active, 1, 0).astype(dtype)
                slope, dd = dot(gradient, direction), dot(direction, direction)
            else:  # the direction is -∇L_prox: a negative step along the gradient itself
                direction = gradient
                step = xp.where(active, -trial, 0).astype(dtype)
                slope, dd = -gg, gg
            if self.line_search:  # backtracking (Armijo), each task on its own; |step| is the step's length
                reference = recent[0] if len(recent) == 1 else xp.max(xp.stack(recent), axis=0)
                slack = 16 * eps * xp.abs(point.value)  # rounding: a step at the limit of precision is no failure
                accepted = ~active
                length = xp.abs(step)
                # (λ/2) ||φ + s d - θ||² = penalty + s λ (φ - θ)·d + s² (λ/2) d·d, for every trial step s
                linear, quadratic = lam * dot(phi - theta, direction), (lam / 2) * dd
                for _ in range(BACKTRACKS):
                    candidate = value(
                        phi + along(step) * direction, point.penalty + step * linear + step * step * quadratic
                    )
                    accepted |= candidate <= reference + ARMIJO * length * slope + slack
                    if accepted.all():
                        break
                    # the minimiser of the quadratic through L_prox(φ), its slope and the rejected value, kept in
                    # [0.1, 0.5] of the step (a non-finite value: a tenth)
                    curvature = candidate - point.value - slope * length
                    shorter = -slope * length * length / (2 * xp.where(curvature > 0, curvature, 1))
                    shorter = xp.where(xp.isfinite(candidate) & (curvature > 0), shorter, 0.1 * length)
                    length = xp.where(accepted, length, xp.clip(shorter, 0.1 * length, 0.5 * length))
                    step = xp.sign(step) * length
                active &= accepted  # no decrease found in the last BACKTRACKS trials: the task stops where it is
                step = xp.where(accepted, step, 0).astype(dtype)
            new = evaluate(phi + along(step) * direction)
            if self.line_search and not newton:  # next trial: the secant (Barzilai-Borwein) step s·s / s·y, <= 1/λ
                # s = step·g and y = ∇L_prox(φ + s) - g: s·s = step² g·g, s·y = step (g·∇L_prox(φ + s) - g·g)
                sy = step * (dot(gradient, new.gradient) - gg)
                secant = xp.where(sy > 0, step * step * gg / xp.where(sy > 0, sy, 1), longest)
                trial = xp.where(step != 0, xp.minimum(secant, longest), trial).astype(dtype)
            del gradient, direction
            iterations += (step != 0).astype(numpy.int64)
            phi, point = new.phi, new
            recent = [*recent[-(MEMORY - 1) :], point.value] if MEMORY > 1 and not newton else [point.value]
            active &= (point.norm > threshold) & xp.isfinite(point.norm)
            yield phi
        self.last_inner = InnerReport(
            residual=to_numpy(point.norm).astype(numpy.float64),
            initial=to_numpy(initial).astype(numpy.float64),
            iterations=to_numpy(iterations),
            converged=to_numpy(point.norm <= threshold),
            tol=self.inner_tol,
            evaluations=counts["evaluations"],
            forward=counts["forward"],
        )
        if out is not None:
            final = point
            out.append((final, lambda: final if final.recorded else evaluate(final.phi, record=True), layout))

    # ---- the meta-gradient -------------------------------------------------------------------------

    def meta_grad(
        self,
        meta_params: Params,
        x_support: TensorLike,
        y_support: TensorLike,
        x_query: TensorLike,
        y_query: TensorLike,
    ) -> tuple[float, Params]:
        """(mean query loss at φ*, the implicit meta-gradient averaged over the tasks); how well the
        inner problems were solved is in ``last_inner``."""
        tasks = check_episode(x_support, y_support, x_query, y_query)
        point, recorded, layout = self._solution(meta_params, x_support, y_support)
        # φ* as fresh leaves: the implicit gradient needs derivatives at φ* only, not through the solver
        phi = [new_leaf(p) for p in layout.unpack(point.phi)]
        with grad_mode(True):
            query = task_losses(self.loss_fn, dict(zip(layout.names, phi)), x_query, y_query, (tasks,))
            total = ops.sum(query)
        gradients = grad(total, phi, allow_unused=True)
        b = layout.pack([None if g is None else g.data for g in gradients], tasks, array_module(point.phi))
        loss = float(query.data.mean())
        del query, total, phi, gradients  # the query's graph, before the support loss's is recorded
        support = recorded()  # the support loss's gradient at φ*, recorded: H v is one backward pass through it
        support.gradient = None  # ∇L_prox is not needed any more
        # a task whose support loss is not finite (NaN data, an overflowing θ) stayed at θ unsolved: its
        # meta-gradient is NaN, as MAML's would be, so an outer loop sees it rather than a made-up one
        unsolved = ~array_module(point.value).isfinite(point.value)
        del point, recorded

        def system(v: list[Any]) -> list[Any]:  # (I + H/λ + δI) v
            return [(1 + self.cg_damping) * v[0] + _support_hvp(support, layout, v[0]) / self.lam]

        (solution,) = conjugate_gradient(system, [b], self.cg_steps, batched=True)
        if unsolved.any():
            solution = array_module(solution).where(unsolved[:, None], numpy.nan, solution)
            loss = float("nan")
        mean = solution.mean(axis=0, keepdims=True)
        return loss, {n: wrap_array(g[0].copy()) for n, g in zip(layout.names, layout.unpack(mean))}
