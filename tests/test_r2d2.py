"""R2-D2 (Bertinetto et al. 2019): the closed-form head against the primal ridge solution, its
meta-gradient (first and second order) against finite differences, and the API's checks."""

from __future__ import annotations

import numpy as np
import pytest

import tinymeta as tm
from tinymeta import meta, nn
from tinymeta.testing import gradcheck, gradgradcheck

WAYS, SHOTS, QUERIES, TASKS, DIM, FEATURES = 3, 2, 4, 2, 5, 4


def features(params, x):
    """A one-layer body: tanh(x W), [T, K, DIM] -> [T, K, FEATURES]."""
    return tm.tanh(tm.matmul(x, params["body"]))


def model(params, x):
    h = features(params, x)
    return tm.matmul(h, params["head.weight"]) + tm.expand_dims(params["head.bias"], -2)


def loss(params, x, y):
    return nn.cross_entropy(model(params, x), y)


def episode(seed: int = 0):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((TASKS, WAYS * SHOTS, DIM))
    ys = np.tile(np.repeat(np.arange(WAYS), SHOTS), (TASKS, 1))
    xq = rng.standard_normal((TASKS, QUERIES, DIM))
    yq = rng.integers(0, WAYS, (TASKS, QUERIES))
    return xs, ys, xq, yq


def theta(seed: int = 1):
    rng = np.random.default_rng(seed)
    params = {
        "body": tm.tensor(rng.standard_normal((DIM, FEATURES)), requires_grad=True),
        "head.weight": tm.tensor(np.zeros((FEATURES, WAYS)), requires_grad=True),
        "head.bias": tm.tensor(np.zeros(WAYS), requires_grad=True),
    }
    return meta.R2D2(loss, features, WAYS, lam=0.7, scale=2.5).init(params)


def test_the_closed_form_head_is_the_primal_ridge_solution() -> None:
    # Woodbury: X^T (X X^T + λ I_K)^{-1} Y = (X^T X + λ I_d)^{-1} X^T Y, the minimiser of ||XW - Y||² + λ||W||²
    algorithm = meta.R2D2(loss, features, WAYS, lam=0.7, scale=2.5)
    params = theta()
    xs, ys, _, _ = episode()
    phi = algorithm.adapt(params, xs, ys)
    for t in range(TASKS):
        x = np.tanh(xs[t] @ params["body"].numpy())
        y = np.eye(WAYS)[ys[t]]
        primal = np.linalg.solve(x.T @ x + 0.7 * np.eye(FEATURES), x.T @ y)
        np.testing.assert_allclose(phi["head.weight"].numpy()[t], 2.5 * primal, rtol=1e-12, atol=1e-13)
        # the normal equations hold: X^T (X W - Y) + λ W = 0
        np.testing.assert_allclose(x.T @ (x @ primal - y) + 0.7 * primal, 0, atol=1e-13)
    np.testing.assert_array_equal(phi["head.bias"].numpy(), np.zeros((TASKS, WAYS)))
    assert set(params) == {"body", "head.weight", "head.bias", "r2d2.log_lambda", "r2d2.scale", "r2d2.bias"}
    np.testing.assert_allclose(params["r2d2.log_lambda"].item(), np.log(0.7), rtol=1e-15)


def test_the_meta_gradient_through_the_solve_matches_finite_differences_to_second_order() -> None:
    algorithm = meta.R2D2(loss, features, WAYS)
    params = theta()
    names = sorted(n for n in params if not n.startswith("head."))  # the model's own head is unused
    head = {n: params[n] for n in params if n.startswith("head.")}
    xs, ys, xq, yq = episode()

    def meta_loss(*tensors):
        return algorithm.meta_loss({**head, **dict(zip(names, tensors))}, xs, ys, xq, yq)

    inputs = [tm.tensor(params[n].numpy()) for n in names]
    assert gradcheck(meta_loss, inputs)
    assert gradgradcheck(meta_loss, inputs)
    value, grads = algorithm.meta_grad(params, xs, ys, xq, yq)
    leaves = [tm.tensor(params[n].numpy(), requires_grad=True) for n in names]
    expected = tm.grad(meta_loss(*leaves), leaves)
    assert value == meta_loss(*inputs).item()
    for n, e in zip(names, expected):
        np.testing.assert_array_equal(grads[n].numpy(), e.numpy())
        assert np.abs(e.numpy()).max() > 0  # λ, α, β and the body all learn
    for n in head:
        np.testing.assert_array_equal(grads[n].numpy(), 0.0)  # ...and the model's own head does not


def test_fine_tune_yields_the_solved_head_without_a_graph() -> None:
    algorithm = meta.R2D2(loss, features, WAYS)
    params = theta()
    xs, ys, _, _ = episode()
    phis = list(algorithm.fine_tune(params, xs, ys, 3))
    assert len(phis) == 4 and all(p is phis[0] for p in phis)
    assert not phis[0]["head.weight"].requires_grad
    np.testing.assert_array_equal(
        phis[0]["head.weight"].numpy(), algorithm.adapt(params, xs, ys)["head.weight"].numpy()
    )


def test_bad_settings_and_parameters_are_named() -> None:
    with pytest.raises(TypeError, match=r"loss_fn is called as loss_fn\(params, x, y\)"):
        meta.R2D2(lambda phi, x: 0.0, features, WAYS)
    with pytest.raises(TypeError, match=r"features is called as features\(params, x\)"):
        meta.R2D2(loss, lambda params: params, WAYS)
    with pytest.raises(ValueError, match="lam must be a finite number > 0"):
        meta.R2D2(loss, features, WAYS, lam=0.0)
    with pytest.raises(ValueError, match="ways must be"):
        meta.R2D2(loss, features, 1)
    with pytest.raises(ValueError, match="head must name the linear head"):
        meta.R2D2(loss, features, WAYS, head="head.weight")
    with pytest.raises(ValueError, match=r"params have no \['head.weight'\]"):
        meta.R2D2(loss, features, WAYS, head=("head.weight", "head.bias")).init({"head.bias": tm.tensor([0.0])})
    algorithm = meta.R2D2(loss, features, WAYS)
    xs, ys, _, _ = episode()
    with pytest.raises(ValueError, match="make them with R2D2.init"):
        algorithm.adapt({"body": tm.tensor(np.ones((DIM, FEATURES)))}, xs, ys)
    with pytest.raises(TypeError, match="needs features"):
        meta.make("r2d2", loss, ways=WAYS)
    assert isinstance(meta.make("r2d2", loss, features=features, ways=WAYS), meta.R2D2)
    with pytest.raises(ValueError, match=r"must give \[T, K, d\] features, d = 4 as the head 'head.weight' reads"):
        meta.R2D2(loss, model, WAYS).adapt(theta(), xs, ys)  # the model's logits, not its features
    with pytest.raises(ValueError, match=r"already hold R2D2's \['r2d2.log_lambda'"):
        algorithm.init(theta())  # it would reset the learned λ (0.7 here), α and β to their defaults
