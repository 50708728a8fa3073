"""The conditional neural process (tinymeta.meta.CNP): a black-box meta-learner that reads its support set."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.meta import CNP, CNPModel
from tinymeta.testing import gradcheck


def small(likelihood: str = "gaussian", dtype: str = "float64", activation: str = "tanh") -> tuple[CNPModel, CNP]:
    model = CNPModel(encoder=(6,), representation=4, decoder=(5,), likelihood=likelihood, activation=activation,
                     dtype=dtype)  # fmt: skip
    return model, CNP(model)


def tasks(rng: np.random.Generator, t: int = 3, k: int = 5, n: int = 4, dtype: str = "float64") -> tuple:
    """Sinusoid tasks: support [t, k, 1] and query [t, n, 1] sets."""
    amplitude, phase = rng.uniform(0.5, 2, (t, 1, 1)), rng.uniform(0, np.pi, (t, 1, 1))
    x = rng.uniform(-3, 3, (t, k + n, 1))
    y = amplitude * np.sin(x + phase)
    return tuple(a.astype(dtype) for a in (x[:, :k], y[:, :k], x[:, k:], y[:, k:]))


def predict(cnp: CNP, theta: dict, xs, ys, x) -> np.ndarray:
    with tm.no_grad():
        return cnp.model(cnp.adapt(theta, xs, ys), x).numpy()


def test_the_prediction_is_the_same_for_any_order_of_the_support_points():
    rng = np.random.default_rng(0)
    model, cnp = small(activation="relu")
    theta = cnp.init(model.init(1))
    xs, ys, xq, _ = tasks(rng)
    order = np.stack([rng.permutation(xs.shape[1]) for _ in range(xs.shape[0])])  # one permutation per task
    shuffled_x, shuffled_y = np.take_along_axis(xs, order[..., None], 1), np.take_along_axis(ys, order[..., None], 1)
    assert not np.array_equal(shuffled_x, xs)
    r = cnp.adapt(theta, xs, ys)["representation"].numpy()
    np.testing.assert_allclose(cnp.adapt(theta, shuffled_x, shuffled_y)["representation"].numpy(), r, rtol=1e-12)
    np.testing.assert_allclose(predict(cnp, theta, shuffled_x, shuffled_y, xq), predict(cnp, theta, xs, ys, xq),
                               rtol=1e-12, atol=1e-14)  # fmt: skip


def test_the_prediction_depends_on_the_support_set_and_on_nothing_else_of_other_tasks():
    rng = np.random.default_rng(1)
    model, cnp = small()
    theta = cnp.init(model.init(2))
    xs, ys, xq, _ = tasks(rng)
    before = predict(cnp, theta, xs, ys, xq)
    changed = ys.copy()
    changed[1, 0, 0] += 1.0  # one support label of task 1
    after = predict(cnp, theta, xs, changed, xq)
    assert np.abs(after[1] - before[1]).min() > 1e-6  # every query point of task 1 moves
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])  # the other tasks do not


def test_the_meta_gradient_equals_finite_differences():
    for likelihood in ("gaussian", "mse"):
        model, cnp = small(likelihood)
        theta = cnp.init(model.init(3))
        names = list(theta)
        data = tasks(np.random.default_rng(3), t=2, k=3, n=2)

        def meta_loss(*params):
            return cnp.meta_loss(dict(zip(names, params)), *data)

        assert gradcheck(meta_loss, [theta[n] for n in names])
        value, grads = cnp.meta_grad(theta, *data)
        assert value == pytest.approx(meta_loss(*theta.values()).item(), rel=1e-15)
        assert set(grads) == set(names) and all(grads[n].shape == theta[n].shape for n in names)


def test_the_gaussian_loss_is_the_negative_log_likelihood_of_support_and_query_points():
    rng = np.random.default_rng(4)
    model, cnp = small()
    theta = cnp.init(model.init(4))
    xs, ys, xq, yq = tasks(rng)
    with tm.no_grad():
        phi = cnp.adapt(theta, xs, ys)
        mean, std = model.distribution(phi, np.concatenate([xs, xq], axis=1))
        loss = cnp.meta_loss(theta, xs, ys, xq, yq).item()
    mean, std, y = mean.numpy(), std.numpy(), np.concatenate([ys, yq], axis=1)
    nll = np.log(std) + (y - mean) ** 2 / (2 * std**2) + 0.5 * math.log(2 * math.pi)
    assert loss == pytest.approx(nll.mean(), rel=1e-12)
    assert std.min() >= model.min_std  # σ = 0.1 + 0.9 softplus(.) never reaches zero


def test_a_batch_of_tasks_is_each_task_on_its_own():
    rng = np.random.default_rng(5)
    model, cnp = small()
    theta = cnp.init(model.init(5))
    data = tasks(rng, t=4)
    together = predict(cnp, theta, *data[:3])
    loss, grads = cnp.meta_grad(theta, *data)
    alone = [cnp.meta_grad(theta, *(a[t : t + 1] for a in data)) for t in range(4)]
    for t in range(4):
        one = predict(cnp, theta, data[0][t : t + 1], data[1][t : t + 1], data[2][t : t + 1])
        np.testing.assert_allclose(together[t : t + 1], one, rtol=1e-12, atol=1e-14)
    assert loss == pytest.approx(np.mean([value for value, _ in alone]), rel=1e-12)
    for n in grads:  # the meta-gradient of the batch is the mean of the tasks' own
        mean = np.mean([g[n].numpy() for _, g in alone], axis=0)
        np.testing.assert_allclose(grads[n].numpy(), mean, rtol=1e-10, atol=1e-13, err_msg=n)


def test_float32_stays_float32_and_float64_data_gives_float32_gradients():
    model, cnp = small(dtype="float32")
    theta = cnp.init(model.init(6))
    for data_dtype in ("float32", "float64"):
        data = tasks(np.random.default_rng(6), dtype=data_dtype)
        _, grads = cnp.meta_grad(theta, *data)
        assert all(g.dtype == np.float32 for g in grads.values())
    for data_dtype in ("float64", "float32"):  # float64 data must not make the representation float64
        data = tasks(np.random.default_rng(6), dtype=data_dtype)
        phi = cnp.adapt(theta, data[0], data[1])
        assert phi["representation"].dtype == np.float32 and phi["representation"].shape == (3, 4)
    mean, std = model.distribution(phi, data[2])
    assert mean.dtype == std.dtype == np.float32 and mean.shape == data[3].shape


def test_fine_tune_reads_the_support_set_once_and_yields_it_for_every_step():
    rng = np.random.default_rng(7)
    model, cnp = small()
    theta = cnp.init(model.init(7))
    xs, ys, _, _ = tasks(rng)
    phis = list(cnp.fine_tune(theta, xs, ys, 3))
    assert len(phis) == 4 and all(phi is phis[0] for phi in phis)  # no steps: the same φ throughout
    assert not phis[0]["representation"].requires_grad  # read with nothing recorded
    assert len(list(cnp.fine_tune(theta, xs, ys, 0))) == 1
    np.testing.assert_array_equal(phis[0]["representation"].numpy(), cnp.adapt(theta, xs, ys)["representation"].numpy())


def test_meta_grad_records_under_no_grad_and_needs_no_leaves():
    model, cnp = small()
    theta = cnp.init(model.init(8))
    data = tasks(np.random.default_rng(8))
    expected = cnp.meta_grad(theta, *data)
    with tm.no_grad():
        value, grads = cnp.meta_grad({n: p.detach() for n, p in theta.items()}, *data)
    assert value == expected[0]
    for n in grads:
        np.testing.assert_array_equal(grads[n].numpy(), expected[1][n].numpy())


def test_mistakes_are_errors_that_say_what_to_do():
    model, cnp = small()
    theta = cnp.init(model.init(0))
    xs, ys, xq, yq = tasks(np.random.default_rng(9))
    with pytest.raises(ValueError, match="likelihood must be one of 'gaussian', 'mse'"):
        CNPModel(likelihood="laplace")
    with pytest.raises(ValueError, match="min_std must be < 1"):
        CNPModel(min_std=1.0)
    for widths, error, message in [
        (dict(encoder=16), TypeError, r"encoder must be a sequence of hidden-layer widths, e.g. \(128, 128\), got 16"),
        (dict(decoder="16"), TypeError, "decoder must be a sequence of hidden-layer widths"),
        (dict(encoder=(16.0,)), TypeError, r"encoder\[0\] must be an integer, got 16.0"),
        (dict(decoder=(8, 0)), ValueError, r"decoder\[1\] must be an integer >= 1, got 0"),
    ]:
        with pytest.raises(error, match=message):
            CNPModel(**widths)
    assert CNPModel(encoder=np.array([8, 8])).encoder.sizes == CNPModel(encoder=(8, 8)).encoder.sizes
    with pytest.raises(TypeError, match="seed must be an integer, got None"):
        model.init(seed=None)
    with pytest.raises(TypeError, match="CNP needs a CNPModel"):
        CNP(tm.nn.MLP([1, 4, 1]))
    with pytest.raises(ValueError, match="missing \\['decoder.layers.1.bias'\\]"):
        cnp.init({n: p for n, p in model.init(0).items() if n != "decoder.layers.1.bias"})
    with pytest.raises(ValueError, match=r"meta_params must be the CNPModel's: missing \[\], unexpected \['extra'\]"):
        cnp.meta_grad({**theta, "extra": tm.tensor(np.ones(2))}, xs, ys, xq, yq)  # it would get a zero gradient
    with pytest.raises(ValueError, match="phi has no 'representation': make it with CNP.adapt"):
        model({n: p for n, p in theta.items() if n.startswith("decoder.")}, xq)
    with pytest.raises(ValueError, match="x_support has 5 examples per task .* but y_support has 4"):
        cnp.adapt(theta, xs, ys[:, :4])
    with pytest.raises(ValueError, match="the task axes"):
        cnp.meta_grad(theta, xs, ys, xq[:2], yq[:2])
    two_features = np.concatenate([xs, xs], axis=-1)  # a model made for x_dim=1 given 2 features
    with pytest.raises(ValueError, match=r"x must be \[tasks, points, x_dim=1\], got shape \(3, 5, 2\): this CNPModel"):
        cnp.adapt(theta, two_features, ys)
    with pytest.raises(ValueError, match=r"x must be \[tasks, points, x_dim=1\], got shape \(4, 1\)"):
        model(cnp.adapt(theta, xs, ys), xq[0])  # one task's points without the task axis
    with pytest.raises(ValueError, match=r"y must be \[tasks, points, y_dim=1\], got shape \(3, 5, 2\)"):
        cnp.meta_grad(theta, xs, np.concatenate([ys, ys], axis=-1), xq, yq)
    assert "cnp" not in tm.meta.ALGORITHMS  # built from its network, not by meta.make (see meta/__init__.py)
