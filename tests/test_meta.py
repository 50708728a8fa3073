"""The meta-learning algorithms, checked exactly: finite differences of the whole procedure,
closed forms on quadratic and linear-regression tasks, a hand-unrolled reference loop, and the
batched path against the per-task loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from memory import shares_memory

import tinymeta as tm
from tinymeta import nn
from tinymeta.meta import ANIL, CAVIA, MAML, R2D2, MetaSGD, Reptile, iMAML
from tinymeta.testing import gradcheck

# ---- helpers ---------------------------------------------------------------------------------


def regression_tasks(rng: np.random.Generator, tasks: int, k: int, features: int = 1) -> tuple[np.ndarray, ...]:
    """Sinusoid-like regression tasks: support and query sets [T, K, features] / [T, K, 1]."""
    amplitude = rng.uniform(0.5, 2.0, (tasks, 1, 1))
    phase = rng.uniform(0, np.pi, (tasks, 1, 1))
    xs, xq = rng.uniform(-2, 2, (tasks, k, features)), rng.uniform(-2, 2, (tasks, k, features))
    f = lambda x: amplitude * np.sin(x.sum(axis=-1, keepdims=True) + phase)  # noqa: E731
    return xs, f(xs), xq, f(xq)


def mlp_loss(model: nn.Model):
    return lambda params, x, y: nn.mse_loss(model(params, x), y)


def meta_loss_of(algorithm, names, data):
    """theta values (one Tensor per name) -> the scalar meta-loss; for gradcheck."""
    return lambda *values: algorithm.meta_loss(dict(zip(names, values)), *data)


# ---- MAML: exact meta-gradients ----------------------------------------------------------------


@given(
    steps=st.integers(1, 3),
    tasks=st.integers(1, 3),
    k=st.integers(1, 4),
    hidden=st.integers(1, 3),
    inner_lr=st.floats(0.01, 0.5),
    seed=st.integers(0, 2**16),
)
def test_maml_meta_gradient_equals_finite_differences_of_the_whole_procedure(steps, tasks, k, hidden, inner_lr, seed):
    rng = np.random.default_rng(seed)
    model = nn.MLP([1, hidden, 1], activation="tanh")  # smooth: no kinks for the differences to cross
    maml = MAML(mlp_loss(model), inner_lr=inner_lr, inner_steps=steps)
    theta = maml.init(model.init(seed))
    names = list(theta)
    assert gradcheck(meta_loss_of(maml, names, regression_tasks(rng, tasks, k)), [theta[n] for n in names])


def quadratic_loss(params, a, b):
    """L(θ) = ½ θᵀ A θ - bᵀ θ for each task: A [T, n, n] (or [n, n]), b [T, n] (or [n])."""
    theta = params["theta"]
    a_theta = tm.squeeze(tm.matmul(a, tm.expand_dims(theta, -1)), -1)
    return 0.5 * tm.sum(theta * a_theta, axis=-1) - tm.sum(b * theta, axis=-1)


def spd(rng: np.random.Generator, tasks: int, n: int) -> np.ndarray:
    m = rng.standard_normal((tasks, n, n))
    return m @ np.swapaxes(m, -1, -2) / n + 0.5 * np.eye(n)


@given(n=st.integers(1, 4), tasks=st.integers(1, 3), inner_lr=st.floats(0.01, 0.3), seed=st.integers(0, 2**16))
def test_one_step_maml_on_quadratics_equals_the_closed_form(n, tasks, inner_lr, seed):
    rng = np.random.default_rng(seed)
    a, c = spd(rng, tasks, n), spd(rng, tasks, n)
    b, d = rng.standard_normal((tasks, n)), rng.standard_normal((tasks, n))
    theta0 = rng.standard_normal(n)
    theta_prime = theta0 - inner_lr * (a @ theta0 - b)  # [T, n]
    query_grad = np.einsum("tij,tj->ti", c, theta_prime) - d  # C θ' - d
    exact = np.einsum("tij,tj->ti", np.eye(n) - inner_lr * a, query_grad).mean(axis=0)  # (I - αA)(Cθ' - d)

    results = {}
    for first_order in (False, True):
        maml = MAML(quadratic_loss, inner_lr=inner_lr, first_order=first_order)
        theta = maml.init({"theta": tm.tensor(theta0)})
        _, grads = maml.meta_grad(theta, a, b, c, d)
        results[first_order] = grads["theta"].numpy()
    np.testing.assert_allclose(results[False], exact, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[True], query_grad.mean(axis=0), rtol=1e-12, atol=1e-12)

    # exact - first order = -α A (Cθ' - d): one Hessian-vector product of the support loss per task
    hvps = [
        tm.hvp(lambda t: quadratic_loss({"theta": t}, a[i], b[i]), tm.tensor(theta0), tm.tensor(query_grad[i]))[1]
        for i in range(tasks)
    ]
    correction = -inner_lr * np.mean([h.numpy() for h in hvps], axis=0)
    np.testing.assert_allclose(results[False] - results[True], correction, rtol=1e-10, atol=1e-12)


def test_maml_and_fomaml_on_x_squared_give_plus_and_minus_four():
    # g(x) = x², x0 = 2, α = 1: x' = x - 2x = -x, so the objective is g(x') = x²: +4; FOMAML: g'(x') = -4.
    loss = lambda p, x, y: p["x"] ** 2 + 0 * tm.sum(x, axis=-1)  # noqa: E731
    for first_order, expected in ((False, 4.0), (True, -4.0)):
        maml = MAML(loss, inner_lr=1.0, first_order=first_order)
        _, grads = maml.meta_grad(maml.init({"x": tm.tensor(2.0)}), [[0.0]], [[0.0]], [[0.0]], [[0.0]])
        assert grads["x"].item() == expected


def test_maml_matches_a_hand_unrolled_inner_loop():
    rng = np.random.default_rng(3)
    model = nn.MLP([1, 8, 8, 1])
    xs, ys, xq, yq = regression_tasks(rng, tasks=3, k=5)
    alpha, steps = 0.05, 2
    maml = MAML(mlp_loss(model), inner_lr=alpha, inner_steps=steps)
    theta = maml.init(model.init(0))
    _, grads = maml.meta_grad(theta, xs, ys, xq, yq)

    names = list(theta)
    query_losses = []
    for t in range(3):  # written out by hand: φ ← φ - α ∇L_support(φ), with create_graph
        phi = dict(theta)
        for _ in range(steps):
            support = nn.mse_loss(model(phi, xs[t]), ys[t])
            g = tm.grad(support, [phi[n] for n in names], create_graph=True)
            phi = {n: phi[n] - alpha * gn for n, gn in zip(names, g)}
        query_losses.append(nn.mse_loss(model(phi, xq[t]), yq[t]))
    reference = tm.grad(tm.mean(tm.stack(query_losses)), [theta[n] for n in names])
    for n, r in zip(names, reference):
        np.testing.assert_allclose(grads[n].numpy(), r.numpy(), rtol=1e-12, atol=1e-14)


ALGORITHMS = {
    "maml": lambda loss, m: MAML(loss, inner_lr=0.1, inner_steps=2),
    "fomaml": lambda loss, m: MAML(loss, inner_lr=0.1, inner_steps=2, first_order=True),
    "metasgd": lambda loss, m: MetaSGD(loss, inner_lr=0.1, inner_steps=2),
    "maml++": lambda loss, m: MAML(
        loss, inner_lr=0.1, inner_steps=3, learn_inner_lr="per_layer_per_step", step_loss_weights=[0.2, 0.3, 0.5]
    ),
    "anil": lambda loss, m: ANIL(loss, head=m.head_names, inner_lr=0.1, inner_steps=2),
    "cavia": lambda loss, m: CAVIA(loss, context_dim=2, inner_lr=0.5, inner_steps=2),
}


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_batched_and_per_task_paths_give_the_same_meta_gradient(name):
    rng = np.random.default_rng(5)
    model = nn.MLP([1, 6, 6, 1], context_dim=2 if name == "cavia" else 0)
    data = regression_tasks(rng, tasks=4, k=5)
    results = []
    for batched in (True, False):
        algorithm = ALGORITHMS[name](mlp_loss(model), model)
        algorithm.batched = batched
        theta = algorithm.init(model.init(1))
        results.append(algorithm.meta_grad(theta, *data))
    (loss_b, grads_b), (loss_t, grads_t) = results
    assert loss_b == pytest.approx(loss_t, rel=1e-12)
    assert set(grads_b) == set(grads_t)
    for n in grads_b:
        np.testing.assert_allclose(grads_b[n].numpy(), grads_t[n].numpy(), rtol=1e-12, atol=1e-12, err_msg=n)


# ---- learned step sizes, context, subsets: finite differences ----------------------------------


@pytest.mark.parametrize("name", ["metasgd", "maml++", "cavia", "anil"])
def test_meta_gradients_of_every_meta_parameter_equal_finite_differences(name):
    rng = np.random.default_rng(11)
    model = nn.MLP([1, 3, 1], activation="tanh", context_dim=2 if name == "cavia" else 0)
    algorithm = ALGORITHMS[name](mlp_loss(model), model)
    theta = algorithm.init(model.init(2))
    names = list(theta)
    assert any(n.startswith("inner_lr.") for n in names) == (name in ("metasgd", "maml++"))
    assert gradcheck(meta_loss_of(algorithm, names, regression_tasks(rng, 2, 3)), [theta[n] for n in names])


def test_anil_leaves_the_body_unchanged_in_the_inner_loop():
    rng = np.random.default_rng(0)
    model = nn.MLP([1, 5, 1])
    anil = ANIL(mlp_loss(model), head=model.head_names, inner_lr=0.1, inner_steps=3)
    theta = anil.init(model.init(0))
    xs, ys, _, _ = regression_tasks(rng, 2, 4)
    phi = anil.adapt(theta, xs, ys)
    for n in theta:
        if n in model.head_names:
            assert phi[n].shape == (2,) + theta[n].shape
            assert not np.allclose(phi[n].numpy(), theta[n].numpy())
        else:
            assert phi[n] is theta[n]


def test_cavia_context_starts_at_zero_and_is_not_a_meta_parameter():
    model = nn.MLP([1, 4, 1], context_dim=3)
    cavia = CAVIA(mlp_loss(model), context_dim=3, inner_lr=1.0)
    theta = cavia.init(model.init(0))
    assert "context" not in theta
    xs, ys, _, _ = regression_tasks(np.random.default_rng(0), 2, 4)
    phi = cavia.adapt(theta, xs, ys)
    # one step from zero: the context is -α times the gradient at context = 0
    zero = tm.tensor(np.zeros((2, 3)), requires_grad=True)
    (g,) = tm.grad(tm.sum(mlp_loss(model)({**theta, "context": zero}, xs, ys)), zero)
    np.testing.assert_allclose(phi["context"].numpy(), -g.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="context"):
        cavia.meta_loss({**theta, "context": tm.tensor(np.zeros(3))}, xs, ys, xs, ys)


# ---- Reptile -----------------------------------------------------------------------------------


def test_reptile_update_is_epsilon_times_adapted_minus_theta():
    rng = np.random.default_rng(0)
    model = nn.MLP([1, 5, 1])
    loss = mlp_loss(model)
    reptile = Reptile(loss, inner_lr=0.05, inner_steps=4)
    theta = reptile.init(model.init(0))
    xs, ys, xq, yq = regression_tasks(rng, 3, 6)
    _, grads = reptile.meta_grad(theta, xs, ys, xq, yq)
    epsilon = 0.3
    sgd = nn.SGD(lr=epsilon)
    new_theta, _ = sgd.step(theta, grads, sgd.init(theta))

    adapted = []  # φ̃_i by hand: plain SGD steps from θ on each task's support set
    for t in range(3):
        phi = {n: tm.tensor(p.numpy(), requires_grad=True) for n, p in theta.items()}
        for _ in range(4):
            g = tm.grad(loss(phi, xs[t], ys[t]), list(phi.values()))
            steps = zip(phi.items(), g)
            phi = {n: tm.tensor(p.numpy() - 0.05 * gn.numpy(), requires_grad=True) for (n, p), gn in steps}
        adapted.append(phi)
    for n in theta:
        mean_phi = np.mean([phi[n].numpy() for phi in adapted], axis=0)
        expected = theta[n].numpy() + epsilon * (mean_phi - theta[n].numpy())
        np.testing.assert_allclose(new_theta[n].numpy(), expected, rtol=1e-12, atol=1e-14)


# ---- iMAML -------------------------------------------------------------------------------------


def linear_regression_tasks(rng, tasks, k, n):
    x = rng.standard_normal((tasks, 2 * k, n))
    w = rng.standard_normal((tasks, n, 1))
    y = x @ w + 0.1 * rng.standard_normal((tasks, 2 * k, 1))
    return x[:, :k], y[:, :k], x[:, k:], y[:, k:]


def closed_form_imaml(theta0, xs, ys, xq, yq, lam):
    """φ* = argmin (1/K)||X φ - y||² + λ/2 ||φ - θ||² and (I + H/λ)^-1 ∇L_ts(φ*), per task.

    Parameters are [w; b] with X augmented by a column of ones (tinymeta.nn.Linear's weight and bias).
    """
    phis, grads = [], []
    for t in range(xs.shape[0]):
        a_s = np.hstack([xs[t], np.ones((xs.shape[1], 1))])
        a_q = np.hstack([xq[t], np.ones((xq.shape[1], 1))])
        h = 2 * a_s.T @ a_s / len(a_s)  # the Hessian of the mean squared error
        phi = np.linalg.solve(h + lam * np.eye(len(h)), 2 * a_s.T @ ys[t, :, 0] / len(a_s) + lam * theta0)
        g_q = 2 * a_q.T @ (a_q @ phi - yq[t, :, 0]) / len(a_q)
        phis.append(phi)
        grads.append(np.linalg.solve(np.eye(len(h)) + h / lam, g_q))
    return np.array(phis), np.mean(grads, axis=0)


def flat(params):
    return np.concatenate([params["weight"].numpy()[..., 0], params["bias"].numpy()], axis=-1)


def test_imaml_matches_the_closed_form_on_linear_regression():
    rng = np.random.default_rng(0)
    n, lam = 3, 2.0
    model = nn.Linear(n, 1)
    loss = mlp_loss(model)
    data = linear_regression_tasks(rng, tasks=3, k=8, n=n)
    theta_params = model.init(0)
    theta0 = flat(theta_params)
    phi_exact, grad_exact = closed_form_imaml(theta0, *data, lam)

    # the inner gradient descent converges to φ* (a strongly convex problem)
    imaml = iMAML(loss, inner_lr=0.2, inner_steps=400, lam=lam, cg_steps=n + 1)
    theta = imaml.init(theta_params)
    np.testing.assert_allclose(flat(imaml.adapt(theta, data[0], data[1])), phi_exact, rtol=1e-9, atol=1e-10)

    # with as many CG steps as unknowns, CG solves the n+1 dimensional system exactly
    _, grads = imaml.meta_grad(theta, *data)
    np.testing.assert_allclose(flat({k: g for k, g in grads.items()}), grad_exact, rtol=1e-8, atol=1e-10)

    # fewer CG steps: an approximation that improves as steps are added
    errors = []
    for cg_steps in (1, 2, n + 1):
        _, grads = iMAML(loss, inner_lr=0.2, inner_steps=400, lam=lam, cg_steps=cg_steps).meta_grad(theta, *data)
        errors.append(np.linalg.norm(flat(grads) - grad_exact))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-8


def test_imaml_memory_does_not_keep_the_inner_trajectory():
    model = nn.MLP([1, 4, 1])
    imaml = iMAML(mlp_loss(model), inner_lr=0.01, inner_steps=3)
    theta = imaml.init(model.init(0))
    phi = imaml.adapt(theta, *regression_tasks(np.random.default_rng(0), 2, 3)[:2])
    assert all(p.creator is None for p in phi.values())  # no graph hangs off the adapted parameters


# ---- bad input ---------------------------------------------------------------------------------


def test_bad_input_gets_clear_errors():
    model = nn.MLP([1, 4, 1])
    loss = mlp_loss(model)
    theta = MAML(loss).init(model.init(0))
    xs, ys, xq, yq = regression_tasks(np.random.default_rng(0), 3, 4)
    with pytest.raises(ValueError, match="inner_steps"):
        MAML(loss, inner_steps=0)
    with pytest.raises(ValueError, match="inner_lr"):
        MAML(loss, inner_lr=-0.1)
    with pytest.raises(ValueError, match=r"adapt_only names \['nope'\]"):
        MAML(loss, adapt_only=["nope"]).init(model.init(0))
    with pytest.raises(ValueError, match=r"task axes.*x_query \(2, 4, 1\)"):
        MAML(loss).meta_loss(theta, xs, ys, xq[:2], yq)
    with pytest.raises(ValueError, match=r"loss_fn returned shape \(3, 4\)"):
        MAML(lambda p, x, y: tm.mean((model(p, x) - y) ** 2, axis=-1)).meta_loss(theta, xs, ys, xq, yq)
    with pytest.raises(ValueError, match=r"missing \['layers.1.bias'\]"):
        MAML(loss).meta_loss({k: v for k, v in theta.items() if k != "layers.1.bias"}, xs, ys, xq, yq)
    with pytest.raises(ValueError, match=r"params\['layers.0.weight'\] has shape \(2, 4\)"):
        model({**theta, "layers.0.weight": tm.tensor(np.zeros((2, 4)))}, xs[0])
    with pytest.raises(ValueError, match="step_loss_weights"):
        MAML(loss, inner_steps=2, step_loss_weights=[1.0])
    with pytest.raises(ValueError, match="lam"):
        iMAML(loss, lam=0.0)


def test_maml_on_conv4_classification_batched_equals_per_task():
    rng = np.random.default_rng(0)
    model = nn.Conv4(n_way=2, filters=2, image_size=16, dtype="float64")

    def loss(params, x, y):
        return nn.cross_entropy(model(params, x), y)

    xs, xq = rng.standard_normal((2, 4, 1, 16, 16)), rng.standard_normal((2, 4, 1, 16, 16))
    ys, yq = np.array([[0, 0, 1, 1]] * 2), np.array([[0, 1, 0, 1]] * 2)
    results = []
    for batched in (True, False):
        maml = MAML(loss, inner_lr=0.4, inner_steps=1, batched=batched)
        results.append(maml.meta_grad(maml.init(model.init(0)), xs, ys, xq, yq))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-12)
    for n in results[0][1]:
        np.testing.assert_allclose(results[0][1][n].numpy(), results[1][1][n].numpy(), rtol=1e-10, atol=1e-12)


# ---- every algorithm, off the tested path ----------------------------------------------------------

EVERY_ALGORITHM = {
    **ALGORITHMS,
    "reptile": lambda loss, m: Reptile(loss, inner_lr=0.1, inner_steps=2),
    "imaml": lambda loss, m: iMAML(loss, inner_lr=0.1, inner_steps=3, cg_steps=2),
    "r2d2": lambda loss, m: R2D2(loss, m.features, head=m.head_names),  # ridge regression onto the targets
}
STEPLESS = {"r2d2"}  # solves its inner problem in closed form: no inner steps, φ_0 is already adapted
assert {name for name in tm.meta.ALGORITHMS} <= set(EVERY_ALGORITHM), "an algorithm is missing here"


def test_make_builds_every_algorithm_by_name_and_names_the_choices_otherwise():
    model = nn.MLP([1, 5, 1], context_dim=2)
    extra = {"anil": dict(head=model.head_names), "cavia": dict(context_dim=2)}
    for name, (cls, variant) in tm.meta.ALGORITHMS.items():
        if name in STEPLESS:
            assert type(tm.meta.make(name, mlp_loss(model), features=model.features, head=model.head_names)) is cls
            continue
        algorithm = tm.meta.make(name, mlp_loss(model), inner_lr=0.1, inner_steps=2, **extra.get(name, {}))
        assert type(algorithm) is cls and algorithm.inner_lr == 0.1 and algorithm.inner_steps == 2
        for setting, value in variant.items():
            assert getattr(algorithm, setting) == value
    assert tm.meta.make("fomaml", mlp_loss(model)).first_order and not tm.meta.make("maml", mlp_loss(model)).first_order
    with pytest.raises(ValueError, match="unknown algorithm 'mamll'; choose from maml, fomaml"):
        tm.meta.make("mamll", mlp_loss(model))


def setup(name: str, dtype: str = "float64"):
    model = nn.MLP([1, 5, 1], activation="tanh", context_dim=2 if name == "cavia" else 0, dtype=dtype)
    algorithm = EVERY_ALGORITHM[name](mlp_loss(model), model)
    return model, algorithm, algorithm.init(model.init(0))


@pytest.mark.parametrize("name", sorted(set(EVERY_ALGORITHM) - STEPLESS))
def test_fine_tune_with_zero_steps_yields_theta_alone(name):
    model, algorithm, theta = setup(name)
    xs, ys, _, _ = regression_tasks(np.random.default_rng(0), 3, 4)
    yielded = list(algorithm.fine_tune(theta, xs, ys, 0))
    assert len(yielded) == 1
    for n, p in yielded[0].items():
        start = theta[n].numpy() if n in theta else 0.0  # CAVIA's context starts at zero
        np.testing.assert_array_equal(np.broadcast_to(start, p.shape), p.numpy(), err_msg=n)
    assert len(list(algorithm.fine_tune(theta, xs, ys, np.int64(3)))) == 4
    with pytest.raises(ValueError, match="steps"):
        list(algorithm.fine_tune(theta, xs, ys, -1))


@pytest.mark.parametrize("name", sorted(EVERY_ALGORITHM))
def test_empty_task_or_example_axes_are_errors_naming_the_axis(name):
    _, algorithm, theta = setup(name)
    xs, ys, xq, yq = regression_tasks(np.random.default_rng(0), 3, 4)
    calls = {
        "meta_grad": lambda *d: algorithm.meta_grad(theta, *d),
        "adapt": lambda *d: algorithm.adapt(theta, *d[:2]),
        "fine_tune": lambda *d: list(algorithm.fine_tune(theta, *d[:2], 2)),
    }
    for call in calls.values():
        with pytest.raises(ValueError, match=r"x_support has no examples: its example axis \(axis 1, K\)"):
            call(xs[:, :0], ys[:, :0], xq, yq)
        with pytest.raises(ValueError, match=r"x_support has no tasks: its task axis \(axis 0, T\)"):
            call(xs[:0], ys[:0], xq[:0], yq[:0])
    with pytest.raises(ValueError, match=r"y_query has no examples"):
        algorithm.meta_grad(theta, xs, ys, xq, yq[:, :0])


@pytest.mark.parametrize("name", sorted(EVERY_ALGORITHM))
def test_a_float32_model_fed_float64_data_stays_float32_with_adam(name):
    model, algorithm, theta = setup(name, dtype="float32")
    data = regression_tasks(np.random.default_rng(0), 3, 4)  # float64 arrays
    adam = nn.Adam(lr=1e-2)
    state = adam.init(theta)
    for _ in range(2):
        _, grads = algorithm.meta_grad(theta, *data)
        assert all(grads[n].dtype == np.float32 for n in grads), {n: g.dtype for n, g in grads.items()}
        theta, state = adam.step(theta, grads, state)
    assert all(p.dtype == np.float32 for p in theta.values())
    assert all(a.dtype == np.float32 for key in ("m", "v") for a in state[key].values())
    assert all(p.dtype == np.float32 for phi in algorithm.fine_tune(theta, *data[:2], 2) for p in phi.values())


@pytest.mark.parametrize("name", sorted(EVERY_ALGORITHM))
def test_meta_gradients_and_adaptation_are_the_same_under_no_grad(name):
    # A meta-gradient needs its graph whatever the caller's no_grad; adaptation under no_grad takes
    # the same steps and keeps no graph.
    _, algorithm, theta = setup(name)
    data = regression_tasks(np.random.default_rng(1), 3, 4)
    loss, grads = algorithm.meta_grad(theta, *data)
    phi = algorithm.adapt(theta, *data[:2])
    steps = list(algorithm.fine_tune(theta, *data[:2], 3))
    with tm.no_grad():
        loss_ng, grads_ng = algorithm.meta_grad(theta, *data)
        phi_ng = algorithm.adapt(theta, *data[:2])
        steps_ng = list(algorithm.fine_tune(theta, *data[:2], 3))
    assert loss_ng == loss and any(np.abs(g.numpy()).sum() > 0 for g in grads.values())
    for n in grads:
        np.testing.assert_array_equal(grads_ng[n].numpy(), grads[n].numpy(), err_msg=n)
    for a, b in [(phi, phi_ng), *zip(steps, steps_ng)]:
        for n in a:
            np.testing.assert_allclose(b[n].numpy(), a[n].numpy(), rtol=1e-13, atol=1e-15, err_msg=n)
            assert b[n].creator is None


@pytest.mark.parametrize("name", sorted(EVERY_ALGORITHM))
def test_meta_parameters_are_copies_of_the_models_arrays(name):
    model, algorithm, _ = setup(name)
    params = model.init(0)
    theta = algorithm.init(params)
    for n, p in theta.items():
        if n in params:
            assert not shares_memory(p.data, params[n].data), n


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda loss: MAML(loss, adapt_only=[]), "adapt_only is empty"),
        (lambda loss: MAML(loss, adapt_only="layers.0.weight"), "adapt_only must be a list"),
        (lambda loss: MAML(loss, inner_lr=float("inf")), "inner_lr"),
        (lambda loss: MAML(loss, inner_lr=float("nan")), "inner_lr"),
        (lambda loss: MAML(loss, inner_steps=1.5), "inner_steps"),
        (lambda loss: MAML(loss, inner_steps=True), "inner_steps"),
        (lambda loss: MAML(loss, inner_steps=2, step_loss_weights=[0.5, float("nan")]), r"step_loss_weights\[1\]"),
        (lambda loss: Reptile(loss, inner_steps=0), "inner_steps"),
        (lambda loss: iMAML(loss, lam=float("nan")), "lam"),
        (lambda loss: iMAML(loss, lam=float("inf")), "lam"),
        (lambda loss: iMAML(loss, cg_steps=2.0), "cg_steps"),
        (lambda loss: iMAML(loss, cg_damping=float("nan")), "cg_damping"),
        (lambda loss: CAVIA(loss, context_dim=1.5), "context_dim"),
        (lambda loss: CAVIA(loss, context_dim=2, context_name=5), "context_name must be"),
        (lambda loss: tm.meta.make("fomaml", loss, first_order_until=10), "'fomaml' is first order at every"),
        (lambda loss: ANIL(loss, head=[]), "head"),
    ],
)
def test_bad_settings_are_errors_naming_the_argument(make, argument):
    with pytest.raises((ValueError, TypeError), match=argument):
        make(mlp_loss(nn.MLP([1, 2, 1])))


@pytest.mark.parametrize("name", sorted(EVERY_ALGORITHM))
def test_meta_parameters_that_are_not_float_tensors_are_refused_by_every_entry_point(name):
    # an integer meta-parameter (0 where 0.0 was meant) would get a zero meta-gradient, silently
    _, algorithm, theta = setup(name)
    xs, ys, xq, yq = regression_tasks(np.random.default_rng(3), 2, 3)
    first = next(n for n in theta if not n.startswith("r2d2."))
    integer = {**theta, first: tm.tensor(np.zeros(theta[first].shape, dtype=np.int64))}
    arrays = {n: p.numpy() for n, p in theta.items()}
    cases = [
        (integer, r"meta_params\['.*'\] must be floating point"),
        (arrays, r"meta_params\['.*'\] must be a Tensor"),
        ({}, "meta_params must be a non-empty dict"),
    ]
    for bad, message in cases:
        for call in (
            lambda: algorithm.meta_grad(bad, xs, ys, xq, yq),
            lambda: algorithm.adapt(bad, xs, ys),
            lambda: list(algorithm.fine_tune(bad, xs, ys, 1)),
        ):
            with pytest.raises(TypeError, match=message):
                call()


@pytest.mark.parametrize("cls", [MAML, Reptile, iMAML])
def test_a_loss_fn_that_cannot_be_called_as_loss_fn_params_x_y_is_refused_at_construction(cls):
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        cls(None)
    with pytest.raises(TypeError, match=r"does not take 3 positional arguments"):
        cls(lambda params, x: 0.0)


def test_step_sizes_of_another_variant_are_refused_not_indexed_or_broadcast():
    # Meta-SGD's α (one per entry) read by MAML++ (one per layer and step) would use α[0] for the layer
    model = nn.MLP([1, 5, 1])
    metasgd = MetaSGD(mlp_loss(model), inner_lr=0.1, inner_steps=1)
    lslr = MAML(mlp_loss(model), inner_lr=0.1, inner_steps=1, learn_inner_lr="per_layer_per_step")
    data = regression_tasks(np.random.default_rng(4), 2, 3)
    with pytest.raises(ValueError, match=r"'inner_lr.layers.0.weight'\] has shape \(1, 5\), but learn_inner_lr="):
        lslr.meta_grad(metasgd.init(model.init(0)), *data)
    with pytest.raises(ValueError, match=r"has shape \(1,\), but learn_inner_lr='per_parameter' learns step sizes"):
        metasgd.meta_grad(lslr.init(model.init(0)), *data)


def test_numpy_integer_settings_are_accepted():
    loss = mlp_loss(nn.MLP([1, 2, 1]))
    assert MAML(loss, inner_steps=np.int64(3)).inner_steps == 3
    assert iMAML(loss, inner_steps=np.int32(4), cg_steps=np.int64(2)).cg_steps == 2
    assert CAVIA(loss, context_dim=np.int64(2)).context_dim == 2


@pytest.mark.parametrize("name", sorted(EVERY_ALGORITHM))
def test_meta_parameters_that_do_not_require_grad_get_the_same_meta_gradient(name):
    # A θ rebuilt from saved arrays (tinymeta.tensor without requires_grad) is still differentiated.
    _, algorithm, theta = setup(name)
    data = regression_tasks(np.random.default_rng(2), 3, 4)
    loss, grads = algorithm.meta_grad(theta, *data)
    plain = {n: tm.tensor(p.numpy()) for n, p in theta.items()}
    loss_plain, grads_plain = algorithm.meta_grad(plain, *data)
    assert loss_plain == loss
    for n in grads:
        np.testing.assert_array_equal(grads_plain[n].numpy(), grads[n].numpy(), err_msg=n)


def test_inputs_and_targets_with_different_numbers_of_examples_are_named():
    _, algorithm, theta = setup("maml")
    xs, ys, xq, yq = regression_tasks(np.random.default_rng(0), 3, 4)
    with pytest.raises(ValueError, match=r"x_support has 4 examples per task .* but y_support has 3"):
        algorithm.meta_grad(theta, xs, ys[:, :3], xq, yq)
    with pytest.raises(ValueError, match=r"x_query has 4 examples per task .* but y_query has 2"):
        algorithm.meta_grad(theta, xs, ys, xq, yq[:, :2])
    with pytest.raises(ValueError, match=r"head must be a non-empty list"):
        ANIL(mlp_loss(nn.MLP([1, 2, 1])), head=np.array(["layers.1.weight", "layers.1.bias"]).reshape(1, 2))
    assert ANIL(mlp_loss(nn.MLP([1, 2, 1])), head=np.array(["layers.1.weight"])).adapt_only == ["layers.1.weight"]


@pytest.mark.parametrize("name", sorted(set(EVERY_ALGORITHM) - STEPLESS))
def test_fine_tunes_first_parameters_have_the_shapes_of_the_next(name):
    """φ_0 (θ) comes with the task axis the steps give φ_1, ..., so phi[n][t] is task t's at every step."""
    _, algorithm, theta = setup(name)
    xs, ys, _, _ = regression_tasks(np.random.default_rng(5), tasks=3, k=4)
    phi_0, phi_1 = list(algorithm.fine_tune(theta, xs, ys, steps=1))
    assert {n: p.shape for n, p in phi_0.items()} == {n: p.shape for n, p in phi_1.items()}


@pytest.mark.parametrize("name", sorted(set(EVERY_ALGORITHM) - {"reptile", "imaml"} - STEPLESS))
def test_fine_tune_steps_are_constants_equal_to_plain_detached_sgd(name):
    """fine_tune yields φ_0 = θ, then constants: the algorithm's own SGD steps, nothing recorded."""
    model, algorithm, theta = setup(name)
    xs, ys, _, _ = regression_tasks(np.random.default_rng(1), tasks=2, k=3)
    steps = algorithm.inner_steps
    trajectory = list(algorithm.fine_tune(theta, xs, ys, steps=steps + 1))
    assert len(trajectory) == steps + 2
    adapted = algorithm.adapt(theta, xs, ys)  # φ_S with the graph, S = inner_steps
    for n in adapted:
        np.testing.assert_allclose(trajectory[steps][n].numpy(), adapted[n].numpy(), rtol=1e-12, atol=1e-14)
    for phi in trajectory[1:]:
        for n in algorithm._adapted(phi):
            assert phi[n].creator is None and not phi[n].requires_grad


def test_the_inner_loop_names_a_bad_mode_and_maml_a_misplaced_step_size():
    model = nn.MLP([1, 4, 1])
    xs, ys, _, _ = regression_tasks(np.random.default_rng(0), tasks=2, k=3)
    maml = MAML(mlp_loss(model), inner_lr=0.1)
    theta = maml.init(model.init(0))
    with pytest.raises(ValueError, match="mode must be one of 'exact', 'first_order', 'detached', got 'exakt'"):
        next(tm.meta.inner_sgd(
            mlp_loss(model), theta, xs[0], ys[0], steps=1, step_size=lambda n, s: 0.1, adapt=list(theta),
            mode="exakt", loss_shape=(),
        ))  # fmt: skip
    settings = dict(steps=1, step_size=lambda n, s: 0.1, adapt=list(theta), mode="exact", loss_shape=())
    for changed, error, message in [
        (dict(adapt="layers.0.bias"), ValueError, r"adapt must be a list of names of params \['layers.0.bias'"),
        (dict(adapt=["layer.0.weight"]), ValueError, r"adapt must be a list of names .* got \['layer.0.weight'\]"),
        (dict(step_size=0.1), TypeError, r"step_size must be a function step_size\(name, step\)"),
        (dict(steps=-1), ValueError, "steps must be an integer >= 0"),
    ]:
        with pytest.raises(error, match=message):
            next(tm.meta.inner_sgd(mlp_loss(model), theta, xs[0], ys[0], **{**settings, **changed}))
    with pytest.raises(ValueError, match=r"the inner loop took no step: final needs at least one"):
        tm.meta.final(tm.meta.inner_sgd(mlp_loss(model), theta, xs[0], ys[0], **{**settings, "steps": 0}))
    with pytest.raises(TypeError, match="params must be a non-empty dict of name -> Tensor, got list"):
        next(tm.meta.inner_sgd(mlp_loss(model), list(theta.values()), xs[0], ys[0], **settings))
    with pytest.raises(ValueError, match=r"start with 'inner_lr\.'"):
        maml.init({**model.init(0), "inner_lr.w": tm.tensor(1.0)})
    metasgd_theta = MetaSGD(mlp_loss(model), inner_lr=0.1).init(model.init(0))
    with pytest.raises(ValueError, match="learn_inner_lr=None and would ignore them"):
        maml.meta_grad(metasgd_theta, xs, ys, xs, ys)
