"""vjp, jvp, hvp, jacobian, hessian: against each other and against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinymeta as tm

# Results built from the same exact derivatives agree to rounding (~1e-15 relative per op);
# finite differences in float64 with eps = 1e-6 agree to ~1e-7 for these O(1) quantities.
EXACT = dict(rtol=1e-10, atol=1e-12)
NUMERIC = dict(rtol=1e-5, atol=1e-6)


def elements(low: float = -2.0, high: float = 2.0) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_subnormal=False)


@st.composite
def problems(draw: st.DrawFn) -> tuple:
    """A random smooth scalar function of a vector (an MLP-like loss), a point and a direction."""
    n = draw(st.integers(1, 5))
    hidden = draw(st.integers(1, 4))
    w = draw(hnp.arrays(np.float64, (hidden, n), elements=elements()))
    b = draw(hnp.arrays(np.float64, (hidden,), elements=elements()))
    x = draw(hnp.arrays(np.float64, (n,), elements=elements()))
    v = draw(hnp.arrays(np.float64, (n,), elements=elements()))

    def vector_fn(z: tm.Tensor) -> tm.Tensor:
        h = tm.tanh(tm.matmul(w, z) + b)
        return tm.concatenate([h * tm.sin(tm.sum(z)), tm.log_softmax(z * 0.5)])

    def scalar_fn(z: tm.Tensor) -> tm.Tensor:
        return tm.sum(vector_fn(z) ** 2) + tm.logsumexp(z) + tm.sum(tm.softplus(z) * z)

    return scalar_fn, vector_fn, x, v


@given(problems())
def test_hvp_equals_hessian_times_v_and_finite_differences_of_the_gradient(problem) -> None:
    f, _, x, v = problem
    value, hv = tm.hvp(f, tm.tensor(x), tm.tensor(v))
    np.testing.assert_allclose(value.item(), f(tm.tensor(x)).item(), **EXACT)
    h = tm.hessian(f, tm.tensor(x)).numpy()
    np.testing.assert_allclose(h, h.T, **EXACT)
    np.testing.assert_allclose(hv.numpy(), h @ v, **EXACT)

    # central difference of the gradient along v
    eps = 1e-6

    def gradient(point: np.ndarray) -> np.ndarray:
        z = tm.tensor(point, requires_grad=True)
        return tm.grad(f(z), z)[0].numpy()

    numeric = (gradient(x + eps * v) - gradient(x - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.numpy(), numeric, **NUMERIC)


@given(problems())
def test_jvp_equals_jacobian_times_v(problem) -> None:
    _, g, x, v = problem
    value, jv = tm.jvp(g, (tm.tensor(x),), (tm.tensor(v),))
    jac = tm.jacobian(g, tm.tensor(x)).numpy()
    np.testing.assert_allclose(value.numpy(), g(tm.tensor(x)).numpy(), **EXACT)
    np.testing.assert_allclose(jv.numpy(), jac @ v, **EXACT)
    eps = 1e-6
    numeric = (g(tm.tensor(x + eps * v)).numpy() - g(tm.tensor(x - eps * v)).numpy()) / (2 * eps)
    np.testing.assert_allclose(jv.numpy(), numeric, **NUMERIC)


@given(problems(), st.data())
def test_vjp_equals_v_times_jacobian(problem, data) -> None:
    _, g, x, _ = problem
    value, vjp_fn = tm.vjp(g, tm.tensor(x))
    u = data.draw(hnp.arrays(np.float64, value.shape, elements=elements()))
    (uj,) = vjp_fn(tm.tensor(u))
    jac = tm.jacobian(g, tm.tensor(x)).numpy()
    np.testing.assert_allclose(uj.numpy(), u @ jac, **EXACT)
    (uj_again,) = vjp_fn(u)  # the vjp function can be called again
    np.testing.assert_allclose(uj_again.numpy(), uj.numpy(), **EXACT)


@given(problems())
def test_jacobian_equals_finite_differences(problem) -> None:
    _, g, x, _ = problem
    jac = tm.jacobian(g, tm.tensor(x)).numpy()
    eps = 1e-6
    columns = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        columns.append((g(tm.tensor(x + e)).numpy() - g(tm.tensor(x - e)).numpy()) / (2 * eps))
    np.testing.assert_allclose(jac, np.stack(columns, axis=-1), **NUMERIC)


@given(problems())
def test_hessian_columns_are_finite_differences_of_the_gradient(problem) -> None:
    f, _, x, _ = problem
    h = tm.hessian(f, tm.tensor(x)).numpy()

    def gradient(point: np.ndarray) -> np.ndarray:
        z = tm.tensor(point, requires_grad=True)
        return tm.grad(f(z), z)[0].numpy()

    eps = 1e-6
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = eps
        np.testing.assert_allclose(h[:, i], (gradient(x + e) - gradient(x - e)) / (2 * eps), **NUMERIC)


def test_hvp_with_several_primals_is_the_joint_hessian_block_product() -> None:
    a0, b0 = np.array([0.3, -0.7]), np.array([1.1, 0.4, -0.2])
    va, vb = np.array([1.0, 2.0]), np.array([-1.0, 0.5, 0.25])

    def f(a: tm.Tensor, b: tm.Tensor) -> tm.Tensor:
        return tm.sum(tm.tanh(tm.matmul(tm.reshape(b, (3, 1)), tm.reshape(a, (1, 2)))) ** 2) + tm.sum(a) * tm.sum(b**3)

    _, (ha, hb) = tm.hvp(f, (a0, b0), (va, vb))
    joint = tm.hessian(lambda z: f(z[:2], z[2:]), np.concatenate([a0, b0])).numpy()
    expected = joint @ np.concatenate([va, vb])
    np.testing.assert_allclose(np.concatenate([ha.numpy(), hb.numpy()]), expected, **EXACT)


def test_hvp_of_a_function_with_zero_hessian_is_zero() -> None:
    _, hv = tm.hvp(lambda x: tm.sum(x * 3.0), tm.tensor([1.0, 2.0]), tm.tensor([1.0, 1.0]))
    np.testing.assert_array_equal(hv.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(tm.hessian(lambda x: tm.sum(x), tm.tensor([1.0, 2.0])).numpy(), np.zeros((2, 2)))


def test_hvp_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match=r"scalar.*\(2,\)"):
        tm.hvp(lambda x: x * x, tm.tensor([1.0, 2.0]), tm.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match=r"tangents\[0\] has shape \(3,\).*\(2,\)"):
        tm.hvp(lambda x: tm.sum(x * x), tm.tensor([1.0, 2.0]), tm.tensor([1.0, 1.0, 1.0]))
    with pytest.raises(TypeError, match="floating point"):
        tm.hvp(lambda x: tm.sum(x * x), tm.tensor([1, 2]), tm.tensor([1, 1]))


def test_hvp_on_rosenbrock_matches_the_closed_form_hessian() -> None:
    def rosenbrock(x: tm.Tensor) -> tm.Tensor:
        return tm.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    x, v = np.array([-1.2, 1.0, 0.5]), np.array([0.3, -0.4, 2.0])
    h = np.zeros((3, 3))
    for i in range(2):  # the Hessian of 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2
        h[i, i] += 1200 * x[i] ** 2 - 400 * x[i + 1] + 2
        h[i, i + 1] += -400 * x[i]
        h[i + 1, i] += -400 * x[i]
        h[i + 1, i + 1] += 200
    _, hv = tm.hvp(rosenbrock, tm.tensor(x), tm.tensor(v))
    np.testing.assert_allclose(hv.numpy(), h @ v, **EXACT)
