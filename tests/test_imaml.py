"""iMAML's inner solver (tinymeta.meta.imaml): it reaches its tolerance on strongly convex problems in
the number of steps theory allows, it reports how well it solved each task, and with the inner
problem solved the implicit meta-gradient is the closed form's. (The closed-form test of the
original loop, and the checks every algorithm shares, are in test_meta.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinymeta as tm
from tinymeta import nn
from tinymeta.meta import iMAML
from tinymeta.meta.imaml import InnerReport

# ---- problems with known answers ---------------------------------------------------------------


def linear_tasks(rng: np.random.Generator, tasks: int, k: int, n: int, spread: float = 1.0) -> tuple[np.ndarray, ...]:
    """Linear regression tasks, support and query [T, K, n] / [T, K, 1]; feature j scaled by spread^(j/(n-1)),
    so the support Hessian's condition number grows with ``spread``."""
    scales = spread ** (np.arange(n) / max(n - 1, 1))
    x = rng.standard_normal((tasks, 2 * k, n)) * scales
    w = rng.standard_normal((tasks, n, 1))
    y = x @ w + 0.1 * rng.standard_normal((tasks, 2 * k, 1))
    return x[:, :k], y[:, :k], x[:, k:], y[:, k:]


def augmented(x: np.ndarray) -> np.ndarray:
    """[x, 1]: nn.Linear's weight and bias as one vector [w; b]."""
    return np.concatenate([x, np.ones(x.shape[:-1] + (1,))], axis=-1)


def flat(params) -> np.ndarray:
    return np.concatenate([params["weight"].numpy()[..., 0], params["bias"].numpy()], axis=-1)


def closed_form(theta0: np.ndarray, xs, ys, xq, yq, lam: float):
    """Per task: the proximal Hessian 2AᵀA/K + λI, φ* and the implicit meta-gradient (I + H/λ)^-1 ∇L_ts(φ*)."""
    hessians, phis, grads = [], [], []
    for t in range(xs.shape[0]):
        a_s, a_q = augmented(xs[t]), augmented(xq[t])
        h = 2 * a_s.T @ a_s / len(a_s)
        phi = np.linalg.solve(h + lam * np.eye(len(h)), 2 * a_s.T @ ys[t, :, 0] / len(a_s) + lam * theta0)
        g_q = 2 * a_q.T @ (a_q @ phi - yq[t, :, 0]) / len(a_q)
        hessians.append(h + lam * np.eye(len(h)))
        phis.append(phi)
        grads.append(np.linalg.solve(np.eye(len(h)) + h / lam, g_q))
    return np.array(hessians), np.array(phis), np.mean(grads, axis=0)


def linear_problem(seed: int = 0, tasks: int = 3, n: int = 3, spread: float = 1.0, dtype: str = "float64"):
    model = nn.Linear(n, 1, dtype=dtype)
    data = linear_tasks(np.random.default_rng(seed), tasks, k=4 * n, n=n, spread=spread)
    return (lambda params, x, y: nn.mse_loss(model(params, x), y)), model.init(seed), data


def proximal_gradient_norms(imaml: iMAML, theta, phi, xs, ys) -> np.ndarray:
    """||∇L(φ) + λ(φ - θ)|| per task, computed here independently of the solver."""
    names = list(theta)
    leaves = [tm.tensor(phi[n].numpy(), requires_grad=True) for n in names]
    grads = tm.grad(tm.sum(imaml.loss_fn(dict(zip(names, leaves)), xs, ys)), leaves)
    total = 0.0
    for n, g, p in zip(names, grads, leaves):
        r = g.numpy() + imaml.lam * (p.numpy() - theta[n].numpy())
        total = total + (r**2).reshape(r.shape[0], -1).sum(axis=1)
    return np.sqrt(total)


# ---- the solver reaches its tolerance ----------------------------------------------------------


def test_gradient_descent_with_a_line_search_reaches_the_tolerance_within_the_condition_number_bound():
    # L_prox is μ-strongly convex and L-smooth (μ, L: the extreme eigenvalues of 2AᵀA/K + λI), κ = L/μ.
    # Gradient descent with steps 1/L gives L_prox - min <= (1 - 1/κ)^k (L_prox(θ) - min), so
    # ||∇L_prox||² <= κ (1 - 1/κ)^k ||∇L(θ)||²: at most κ (ln κ + 2 ln(||∇L(θ)|| / tol)) steps. The line
    # search must keep that promise without knowing L (and does much better: its steps follow the curvature).
    lam, tol = 0.5, 1e-8
    loss, params, (xs, ys, xq, yq) = linear_problem(seed=1, tasks=4, n=6, spread=8.0)
    hessians, phi_star, _ = closed_form(flat(params), xs, ys, xq, yq, lam)
    eigenvalues = np.linalg.eigvalsh(hessians)
    kappa = eigenvalues[:, -1] / eigenvalues[:, 0]
    assert kappa.min() > 20  # an ill-conditioned problem: fixed small steps would need hundreds

    imaml = iMAML(loss, inner_lr=0.01, inner_steps=5000, lam=lam, inner_tol=tol)
    theta = imaml.init(params)
    phi = imaml.adapt(theta, xs, ys)
    report = imaml.last_inner
    threshold = tol * np.maximum(report.initial, 1)
    bound = np.ceil(kappa * (np.log(kappa) + 2 * np.log(report.initial / threshold)))
    assert report.converged.all() and np.all(report.residual <= threshold)
    assert np.all(report.iterations <= bound), (report.iterations, bound)
    assert np.all(report.iterations < bound / 3)  # the secant steps do better than the worst case
    # strong convexity: ||φ - φ*|| <= ||∇L_prox(φ)|| / μ
    distance = np.linalg.norm(flat(phi) - phi_star, axis=1)
    assert np.all(distance <= report.residual / eigenvalues[:, 0] * (1 + 1e-6) + 1e-12)


def test_newton_cg_solves_a_quadratic_inner_problem_in_one_step():
    loss, params, (xs, ys, xq, yq) = linear_problem(seed=2, tasks=3, n=4, spread=10.0)
    _, phi_star, _ = closed_form(flat(params), xs, ys, xq, yq, lam=2.0)
    imaml = iMAML(loss, inner_steps=20, lam=2.0, inner_solver="newton", inner_cg_steps=10, inner_tol=1e-10)
    phi = imaml.adapt(imaml.init(params), xs, ys)
    report = imaml.last_inner
    assert report.iterations.tolist() == [1, 1, 1]  # CG solves the 5 x 5 Newton system (to rounding): one step
    assert report.converged.all() and report.evaluations == 2  # the gradient at θ and at φ_1
    np.testing.assert_allclose(flat(phi), phi_star, rtol=1e-10, atol=1e-12)


def smooth_network_problem(seed: int = 3, tasks: int = 4):
    model = nn.MLP([1, 8, 8, 1], activation="tanh")
    rng = np.random.default_rng(seed)
    amplitude, phase = rng.uniform(0.5, 2.0, (2, tasks, 1, 1))
    x = rng.uniform(-3, 3, (tasks, 20, 1))
    y = amplitude * np.sin(x + phase)
    return (lambda params, x_, y_: nn.mse_loss(model(params, x_), y_)), model.init(seed), (x[:, :10], y[:, :10])


def test_newton_cg_converges_quadratically_on_a_smooth_non_convex_network():
    loss, params, (xs, ys) = smooth_network_problem()
    residuals = []
    for steps in range(1, 16):
        imaml = iMAML(loss, inner_steps=steps, lam=1.0, inner_solver="newton", inner_cg_steps=30, inner_tol=1e-10)
        imaml.adapt(imaml.init(params), xs, ys)
        residuals.append(imaml.last_inner.residual / np.maximum(imaml.last_inner.initial, 1))
        if imaml.last_inner.converged.all():
            break
    residuals = np.array(residuals)  # [steps, tasks], relative to the start
    assert np.all(residuals[-1] <= 1e-10) and len(residuals) <= 12
    # quadratic convergence: from 1e-3 to 1e-10 in at most 3 steps, for every task
    for task in residuals.T:
        close = int(np.argmax(task <= 1e-3))
        assert task[close] <= 1e-3 and np.argmax(task <= 1e-10) - close <= 3, task


def test_newton_steps_where_the_proximal_loss_has_negative_curvature_still_descend():
    # L(w) = Σ w⁴/4 - w² has curvature 3w² - 2 < -λ near w = 0: Newton's system is indefinite there, so CG
    # stops at once and the step falls back to -∇L_prox / λ; the line search then finds a decrease.
    def double_well(params, x, y):
        w = params["w"]
        return tm.sum(w**4 / 4 - w**2, axis=-1) + 0 * tm.sum(x, axis=(1, 2))

    x = tm.tensor(np.zeros((2, 1, 1)))  # on the tests' backend, as w is
    theta = {"w": tm.tensor([0.05, -0.1, 0.02])}
    imaml = iMAML(double_well, inner_steps=50, lam=0.5, inner_solver="newton", inner_tol=1e-10)
    trajectory = [phi["w"].numpy() for phi in imaml.fine_tune(imaml.init(theta), x, x, 50)]
    w0 = theta["w"].numpy()
    values = [np.sum(w**4 / 4 - w**2, axis=-1) + 0.25 * np.sum((w - w0) ** 2, axis=-1) for w in trajectory[1:]]
    assert np.all(np.diff(values, axis=0) <= 1e-12)  # every step decreases L_prox (or stays once solved)
    assert imaml.last_inner.converged.all()
    w = trajectory[-1]
    np.testing.assert_allclose(w**3 - 2 * w + 0.5 * (w - w0), 0, atol=1e-9)  # a stationary point, away from 0
    assert np.all(np.abs(w) > 1)


# ---- what it reports ---------------------------------------------------------------------------


def test_the_proximal_gradient_norm_at_phi_star_is_reported_per_task():
    loss, params, (xs, ys, xq, yq) = linear_problem(seed=4, tasks=5, n=3, spread=3.0)
    imaml = iMAML(loss, inner_lr=0.01, inner_steps=4, lam=1.0, line_search=False, inner_tol=1e-6)
    assert imaml.last_inner is None and imaml.last_inner_residual is None  # nothing solved yet
    theta = imaml.init(params)
    phi = imaml.adapt(theta, xs, ys)
    report = imaml.last_inner
    assert isinstance(report, InnerReport)
    for field in (report.residual, report.initial, report.iterations, report.converged):
        assert isinstance(field, np.ndarray) and field.shape == (5,)
    np.testing.assert_allclose(report.residual, proximal_gradient_norms(imaml, theta, phi, xs, ys), rtol=1e-10)
    np.testing.assert_array_equal(imaml.last_inner_residual, report.residual)
    assert not report.converged.any() and report.iterations.tolist() == [4] * 5  # four small steps: not solved
    assert np.all(report.residual > 1e-6 * np.maximum(report.initial, 1))
    assert "0 of 5 tasks solved to tol 1e-06" in str(report) and "\n" not in str(report)

    # meta_grad reports too, on its own batch
    solved = iMAML(loss, inner_lr=0.01, inner_steps=500, lam=1.0, inner_tol=1e-9)
    solved.meta_grad(solved.init(params), xs[:2], ys[:2], xq[:2], yq[:2])
    assert solved.last_inner.residual.shape == (2,) and solved.last_inner.converged.all()
    assert np.all(solved.last_inner.iterations < 500)  # it stopped at the tolerance


def test_a_task_whose_loss_is_not_finite_is_reported_and_the_others_are_solved():
    loss, params, (xs, ys, xq, yq) = linear_problem(seed=5, tasks=3, n=2)
    ys = ys.copy()
    ys[1, 0, 0] = np.nan
    imaml = iMAML(loss, inner_lr=0.1, inner_steps=300, lam=1.0, inner_tol=1e-8)
    theta = imaml.init(params)
    phi = imaml.adapt(theta, xs, ys)
    report = imaml.last_inner
    assert np.isnan(report.residual[1]) and report.converged.tolist() == [True, False, True]
    np.testing.assert_array_equal(flat(phi)[1], flat(theta))  # never moved: no step is taken on a NaN
    assert np.all(np.isfinite(flat(phi)))


# ---- the implicit meta-gradient with the inner problem solved -----------------------------------


@pytest.mark.parametrize("solver", ["gd", "newton"])
def test_the_meta_gradient_matches_the_closed_form_when_the_inner_problem_is_solved(solver):
    lam, n = 2.0, 3
    loss, params, data = linear_problem(seed=6, tasks=3, n=n, spread=5.0)
    _, phi_star, grad_star = closed_form(flat(params), *data, lam)
    imaml = iMAML(loss, inner_lr=0.05, inner_steps=1000, lam=lam, cg_steps=n + 1, inner_solver=solver, inner_tol=1e-12)
    theta = imaml.init(params)
    loss_value, grads = imaml.meta_grad(theta, *data)
    assert imaml.last_inner.converged.all()
    np.testing.assert_allclose(flat(grads), grad_star, rtol=1e-9, atol=1e-11)
    query = np.mean([np.mean((augmented(data[2][t]) @ phi_star[t] - data[3][t, :, 0]) ** 2) for t in range(3)])
    assert loss_value == pytest.approx(query, rel=1e-10)


# ---- the line search, fine_tune, the original loop, float32 -------------------------------------


def test_a_line_search_keeps_the_inner_loop_finite_where_fixed_steps_overflow():
    loss, params, (xs, ys, _, _) = linear_problem(seed=7, tasks=2, n=3, spread=30.0)
    fixed = iMAML(loss, inner_lr=0.05, inner_steps=200, lam=2.0, line_search=False, inner_tol=0)
    with np.errstate(over="ignore", invalid="ignore"):
        fixed.adapt(fixed.init(params), xs, ys)
    assert not np.all(np.isfinite(fixed.last_inner.residual))  # 0.05 is far past 2/L here: it blows up
    assert "2 ended with a larger gradient norm than they started with" in str(fixed.last_inner)
    searched = iMAML(loss, inner_lr=0.05, inner_steps=2000, lam=2.0, inner_tol=1e-9)
    theta = searched.init(params)
    trajectory = list(searched.fine_tune(theta, xs, ys, 2000))
    assert searched.last_inner.converged.all() and "larger gradient norm" not in str(searched.last_inner)
    # the non-monotone line search never lets L_prox exceed its value at θ (nor, from the 5th step on,
    # the largest of the 5 values before)
    w0 = flat(theta)
    values = np.array(
        [
            [np.mean((augmented(xs[t]) @ w[t] - ys[t, :, 0]) ** 2) + np.sum((w[t] - w0) ** 2) for t in range(2)]
            for w in (np.broadcast_to(flat(phi), (2, 4)) for phi in trajectory)
        ]
    )
    assert np.all(values <= values[0] * (1 + 1e-12))
    assert all(np.all(values[k] <= values[k - 5 : k].max(axis=0) * (1 + 1e-12)) for k in range(5, len(values)))


def test_fine_tune_yields_the_solvers_iterates_and_adapt_is_the_last_one():
    loss, params, (xs, ys, _, _) = linear_problem(seed=8, tasks=3, n=3, spread=3.0)
    imaml = iMAML(loss, inner_lr=0.05, inner_steps=6, lam=1.0)
    theta = imaml.init(params)
    trajectory = list(imaml.fine_tune(theta, xs, ys, 9))
    assert len(trajectory) == 10
    for t in range(3):  # φ_0 = θ for every task
        np.testing.assert_array_equal(trajectory[0]["weight"].numpy()[t], theta["weight"].numpy())
    np.testing.assert_array_equal(flat(trajectory[6]), flat(imaml.adapt(theta, xs, ys)))
    assert all(p.creator is None for phi in trajectory[1:] for p in phi.values())
    # solved to the tolerance: the same parameters are yielded from then on
    newton = iMAML(loss, inner_steps=6, lam=1.0, inner_solver="newton", inner_tol=1e-9)
    steps = list(newton.fine_tune(newton.init(params), xs, ys, 5))
    assert steps[2] is steps[3] is steps[5] and newton.last_inner.converged.all()


def test_without_a_line_search_or_tolerance_it_is_the_original_fixed_step_loop():
    loss, params, (xs, ys, _, _) = linear_problem(seed=9, tasks=2, n=2)
    alpha, lam, steps = 0.03, 2.0, 7
    imaml = iMAML(loss, inner_lr=alpha, inner_steps=steps, lam=lam, line_search=False, inner_tol=0)
    theta = imaml.init(params)
    phi = flat(imaml.adapt(theta, xs, ys))
    expected = np.broadcast_to(flat(theta), phi.shape).copy()
    for _ in range(steps):  # φ ← φ - α (∇L(φ) + λ (φ - θ)), by hand
        for t in range(2):
            a = augmented(xs[t])
            expected[t] -= alpha * (
                2 * a.T @ (a @ expected[t] - ys[t, :, 0]) / len(a) + lam * (expected[t] - flat(theta))
            )
    np.testing.assert_allclose(phi, expected, rtol=1e-12, atol=1e-14)


def test_float32_stays_float32_and_solves_to_float32_precision():
    loss, params, (xs, ys, xq, yq) = linear_problem(seed=10, tasks=3, n=3, spread=3.0, dtype="float32")
    imaml = iMAML(loss, inner_lr=0.05, inner_steps=300, lam=1.0, inner_tol=1e-4)
    theta = imaml.init(params)
    _, grads = imaml.meta_grad(theta, xs.astype("float32"), ys.astype("float32"), xq, yq)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert all(p.dtype == np.float32 for p in imaml.adapt(theta, xs, ys).values())
    assert imaml.last_inner.converged.all() and np.all(imaml.last_inner.iterations < 300)
    steps = list(iMAML(loss, inner_lr=0.05, inner_steps=50, lam=1.0, inner_tol=0).fine_tune(theta, xs, ys, 50))
    assert all(np.all(np.isfinite(flat(phi))) for phi in steps)  # at float32's precision it stops, never overflows


# ---- bad options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, argument",
    [
        (dict(inner_solver="sgd"), "inner_solver must be one of 'gd', 'newton'"),
        (dict(inner_solver=None), "inner_solver"),
        (dict(line_search="yes"), "line_search must be True or False"),
        (dict(line_search=1), "line_search"),
        (dict(inner_tol=-1e-3), "inner_tol"),
        (dict(inner_tol=float("nan")), "inner_tol"),
        (dict(inner_tol="1e-3"), "inner_tol"),
        (dict(inner_cg_steps=0), "inner_cg_steps"),
        (dict(inner_cg_steps=2.5), "inner_cg_steps"),
        (dict(inner_lr=0.0), "inner_lr must be > 0 with line_search=True"),
        (dict(inner_lr=-0.1, line_search=False), "inner_lr"),
        (dict(inner_steps=0), "inner_steps"),
        (dict(lam=-1.0), "lam"),
        (dict(cg_steps=0), "cg_steps"),
        (dict(cg_damping=-0.1), "cg_damping"),
    ],
)
def test_bad_options_are_one_line_errors_naming_the_argument(settings, argument):
    with pytest.raises((ValueError, TypeError)) as error:
        iMAML(linear_problem()[0], **settings)
    assert argument in str(error.value) and "\n" not in str(error.value)


def test_options_are_kept_and_an_inner_lr_of_zero_is_allowed_without_a_line_search():
    imaml = iMAML(
        linear_problem()[0], inner_lr=0.0, line_search=np.bool_(False), inner_tol=0, inner_cg_steps=np.int64(3)
    )
    assert (imaml.inner_lr, imaml.line_search, imaml.inner_tol, imaml.inner_cg_steps) == (0.0, False, 0.0, 3)
    assert type(imaml.line_search) is bool and imaml.inner_solver == "gd"
    assert math.isclose(iMAML(linear_problem()[0]).inner_tol, 1e-10)


def test_a_task_whose_support_loss_is_not_finite_gives_a_nan_meta_gradient_not_a_made_up_one():
    # NaN support data leaves that task at θ, unsolved: its meta-gradient (and the mean over tasks) is
    # NaN, as MAML's would be, so the outer loop's divergence check sees it; the other task is unaffected
    model = nn.MLP([1, 8, 1])
    loss = lambda p, x, y: nn.mse_loss(model(p, x), y)  # noqa: E731
    theta = model.init(0)
    x = np.random.default_rng(0).uniform(-5, 5, (2, 5, 1))
    y = np.sin(x)
    bad = x.copy()
    bad[1] = np.nan
    imaml = iMAML(loss)
    value, grads = imaml.meta_grad(theta, bad, y, x, y)
    assert np.isnan(value) and all(np.isnan(g.numpy()).all() for g in grads.values())
    assert not imaml.last_inner.converged[1] and np.isnan(imaml.last_inner.residual[1])
    value, grads = imaml.meta_grad(theta, x, y, x, y)
    assert np.isfinite(value) and all(np.isfinite(g.numpy()).all() for g in grads.values())
