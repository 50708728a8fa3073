"""vjp, jvp, hvp, jacobian, hessian: against each other and against finite differences."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from memory import shares_memory

import tinymeta as tm
from tinymeta.testing import gradcheck, gradgradcheck

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
    with pytest.raises(ValueError, match=r"tangents has shape \(3,\) but the primal has shape \(2,\)"):
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


# ---- composition: every transform nested in every other ------------------------------------------
#
# On f(x) = exp(A x) (a vector, e_k = exp(A_k . x)) and s(x) = <c, f(x)>, every transform is a sum
# I(x) = sum_k e_k(x) T_k with constant tensors T_k, so each derivative of it is explicit:
# dI/dx = sum_k e_k T_k (x) A_k. An outer transform that drops a term or returns constants fails.


@st.composite
def exp_problems(draw: st.DrawFn) -> dict:
    n, m = draw(st.integers(1, 3)), draw(st.integers(1, 3))

    def arr(*shape: int) -> np.ndarray:
        return draw(hnp.arrays(np.float64, shape, elements=elements(-1.0, 1.0)))

    return dict(A=arr(m, n), c=arr(m), x=arr(n), u=arr(m), t=arr(n), v=arr(n), t2=arr(n), v2=arr(n))


def inner_transforms(p: dict) -> dict:
    """name -> (z -> the transform of f or s at z, the coefficients T of shape (m, *output shape))."""
    a, c = p["A"], p["c"]
    eye = np.eye(len(c))

    def f(z: tm.Tensor) -> tm.Tensor:
        return tm.exp(tm.matmul(a, z))

    def s(z: tm.Tensor) -> tm.Tensor:
        return tm.sum(c * f(z))

    return {
        "grad": (lambda z: tm.grad(s(z), z, create_graph=True)[0], c[:, None] * a),
        "vjp": (lambda z: tm.vjp(f, z)[1](p["u"])[0], p["u"][:, None] * a),
        "jvp": (lambda z: tm.jvp(f, z, p["t"])[1], eye * (a @ p["t"])[:, None]),
        "hvp": (lambda z: tm.hvp(s, z, p["v"])[1], (c * (a @ p["v"]))[:, None] * a),
        "jacobian": (lambda z: tm.jacobian(f, z), eye[:, :, None] * a[:, None, :]),
        "hessian": (lambda z: tm.hessian(s, z), c[:, None, None] * a[:, :, None] * a[:, None, :]),
    }


def outer_transform(name: str, inner, x: np.ndarray, r: np.ndarray, p: dict) -> tm.Tensor:
    def sigma(z: tm.Tensor) -> tm.Tensor:  # a scalar of the inner result, for grad, hvp and hessian
        return tm.sum(r * inner(z))

    if name == "grad":
        z = tm.tensor(x, requires_grad=True)
        return tm.grad(sigma(z), z)[0]
    return {
        "vjp": lambda: tm.vjp(inner, tm.tensor(x))[1](r)[0],
        "jvp": lambda: tm.jvp(inner, tm.tensor(x), p["t2"])[1],
        "hvp": lambda: tm.hvp(sigma, tm.tensor(x), p["v2"])[1],
        "jacobian": lambda: tm.jacobian(inner, tm.tensor(x)),
        "hessian": lambda: tm.hessian(sigma, tm.tensor(x)),
    }[name]()


def outer_reference(name: str, coefficients: np.ndarray, r: np.ndarray, p: dict) -> np.ndarray:
    a, e = p["A"], np.exp(p["A"] @ p["x"])
    projected = (coefficients * r).reshape(len(e), -1).sum(axis=1)  # <r, T_k>
    return {
        "grad": lambda: (e * projected) @ a,
        "vjp": lambda: (e * projected) @ a,
        "jvp": lambda: np.tensordot(e * (a @ p["t2"]), coefficients, axes=1),
        "hvp": lambda: (e * projected * (a @ p["v2"])) @ a,
        "jacobian": lambda: np.einsum("k,k...,kj->...j", e, coefficients, a),
        "hessian": lambda: np.einsum("k,ki,kj->ij", e * projected, a, a),
    }[name]()


TRANSFORM_NAMES = ["grad", "vjp", "jvp", "hvp", "jacobian", "hessian"]


@pytest.mark.parametrize("inner_name", TRANSFORM_NAMES)
@pytest.mark.parametrize("outer_name", TRANSFORM_NAMES)
@given(p=exp_problems())
def test_every_transform_nests_in_every_other(outer_name, inner_name, p) -> None:
    inner, coefficients = inner_transforms(p)[inner_name]
    r = np.random.default_rng(0).standard_normal(coefficients.shape[1:])
    result = outer_transform(outer_name, inner, p["x"], r, p)
    np.testing.assert_allclose(result.numpy(), outer_reference(outer_name, coefficients, r, p), **EXACT)
    assert not result.requires_grad  # nothing outside required grad: a constant, no graph kept


def test_jacobian_of_jacobian_is_the_hessian_and_grad_of_hvp_the_third_derivative() -> None:
    # f(x) = sum(x sin x): H = diag(2 cos x - x sin x); d/dx sum(H v) = (-3 sin x - x cos x) v.
    x, v = np.array([0.3, -1.2, 2.0]), np.array([1.0, -0.5, 2.0])

    def f(z: tm.Tensor) -> tm.Tensor:
        return tm.sum(z * tm.sin(z))

    hessian = np.diag(2 * np.cos(x) - x * np.sin(x))
    gradient = lambda z: tm.grad(f(z), z, create_graph=True)[0]  # noqa: E731
    np.testing.assert_allclose(tm.jacobian(gradient, x).numpy(), hessian, **EXACT)
    np.testing.assert_allclose(tm.jacobian(lambda z: tm.jacobian(f, z), x).numpy(), hessian, **EXACT)
    z = tm.tensor(x, requires_grad=True)
    (third,) = tm.grad(tm.sum(tm.hvp(f, z, v)[1]), z)
    np.testing.assert_allclose(third.numpy(), (-3 * np.sin(x) - x * np.cos(x)) * v, **EXACT)


# ---- transforms are differentiable in everything: primals, tangents, closures --------------------


def _network(w: tm.Tensor, z: tm.Tensor) -> tm.Tensor:
    return tm.tanh(tm.matmul(w, z) + 0.3) * tm.sin(tm.sum(z))


def _scalar(w: tm.Tensor, z: tm.Tensor) -> tm.Tensor:
    return tm.sum(_network(w, z) ** 2) + tm.logsumexp(z * w[0])


DIFFERENTIABLE = {  # (x, w, direction) -> every output of the transform; f closes over w
    "vjp": lambda x, w, d: (*tm.vjp(lambda z: _network(w, z), x)[1](d[:2]), tm.vjp(lambda z: _network(w, z), x)[0]),
    "jvp": lambda x, w, d: tm.jvp(lambda z: _network(w, z), x, d[:3]),
    "hvp": lambda x, w, d: tm.hvp(lambda z: _scalar(w, z), x, d[:3]),
    "jacobian": lambda x, w, d: tm.jacobian(lambda z: _network(w, z), x) * tm.sum(d),
    "hessian": lambda x, w, d: tm.hessian(lambda z: _scalar(w, z), x) * tm.sum(d),
}


@pytest.mark.parametrize("name", sorted(DIFFERENTIABLE))
@given(
    x=hnp.arrays(np.float64, (3,), elements=elements(-1.5, 1.5)),
    w=hnp.arrays(np.float64, (2, 3), elements=elements(-1.5, 1.5)),
    d=hnp.arrays(np.float64, (3,), elements=elements(-1.5, 1.5)),
)
def test_transform_results_differentiate_in_primals_tangents_and_closures(name, x, w, d) -> None:
    # A jvp, vjp or hvp inside a loss contributes its gradient, to the closure's weights too: first and
    # second derivatives of each transform's outputs against central differences.
    assert gradcheck(DIFFERENTIABLE[name], [x, w, d])
    assert gradgradcheck(DIFFERENTIABLE[name], [x, w, d])


def test_a_closure_that_is_the_primal_itself_is_held_fixed() -> None:
    # As in JAX: the transform differentiates its own copy of the primal; f's closure is a constant.
    x = tm.tensor([0.5, -1.0], requires_grad=True)
    jac = tm.jacobian(lambda z: z * x, x)  # diag(x), and d/dx of it is the identity pattern
    np.testing.assert_allclose(jac.numpy(), np.diag(x.numpy()), **EXACT)
    (g,) = tm.grad(tm.sum(jac), x)
    np.testing.assert_allclose(g.numpy(), [1.0, 1.0], **EXACT)


# ---- several inputs and outputs --------------------------------------------------------------------


def _two_inputs(a: tm.Tensor, b: tm.Tensor) -> tm.Tensor:
    return tm.tanh(tm.matmul(tm.reshape(b, (3, 1)), tm.reshape(a, (1, 2)))) * tm.sum(a) + tm.sum(b**3)


def test_jacobian_and_hessian_of_several_inputs_are_blocks_of_the_joint_ones() -> None:
    a0, b0 = np.array([0.3, -0.7]), np.array([1.1, 0.4, -0.2])
    joint = np.concatenate([a0, b0])
    ja, jb = tm.jacobian(_two_inputs, (a0, b0))
    j = tm.jacobian(lambda z: _two_inputs(z[:2], z[2:]), joint).numpy()
    np.testing.assert_allclose(ja.numpy(), j[..., :2], **EXACT)
    np.testing.assert_allclose(jb.numpy(), j[..., 2:], **EXACT)

    def scalar(a: tm.Tensor, b: tm.Tensor) -> tm.Tensor:
        return tm.sum(_two_inputs(a, b) ** 2)

    blocks = tm.hessian(scalar, (a0, b0))
    h = tm.hessian(lambda z: scalar(z[:2], z[2:]), joint).numpy()
    parts = (slice(0, 2), slice(2, 5))
    for i in range(2):
        for k in range(2):
            np.testing.assert_allclose(blocks[i][k].numpy(), h[parts[i], parts[k]], **EXACT)
    assert tm.hessian(scalar, [a0, b0])[0][1].shape == (2, 3)  # a list means several primals too


def test_several_outputs_give_one_result_per_output() -> None:
    x, t, u = np.array([0.2, -0.4, 1.0]), np.array([1.0, 2.0, -1.0]), (np.array(1.5), np.array([1.0, -2.0, 0.5]))

    def two(z: tm.Tensor) -> tuple[tm.Tensor, tm.Tensor]:
        return tm.sum(z**2), tm.sin(z) * z

    j_sum, j_vec = tm.jacobian(two, x)
    np.testing.assert_allclose(j_sum.numpy(), 2 * x, **EXACT)
    np.testing.assert_allclose(j_vec.numpy(), np.diag(np.cos(x) * x + np.sin(x)), **EXACT)
    (y0, y1), (jt0, jt1) = tm.jvp(two, x, t)
    np.testing.assert_allclose(jt0.numpy(), j_sum.numpy() @ t, **EXACT)
    np.testing.assert_allclose(jt1.numpy(), j_vec.numpy() @ t, **EXACT)
    (ys, vjp_fn) = tm.vjp(two, x)
    np.testing.assert_allclose(vjp_fn(u)[0].numpy(), u[0] * j_sum.numpy() + u[1] @ j_vec.numpy(), **EXACT)
    with pytest.raises(ValueError, match="tuple of 2 cotangents"):
        vjp_fn(u[1])


@pytest.mark.parametrize(
    "returned",
    [1.5, np.ones(2), [np.ones(2)], None, "complex tensor"],  # the tensor is made in the test, on its backend
    ids=["a float", "an ndarray", "a list of arrays", "None", "a complex tensor"],
)
@pytest.mark.parametrize("name", ["vjp", "jvp", "hvp", "jacobian", "hessian"])
def test_a_function_that_returns_no_tensor_is_a_type_error(name, returned) -> None:
    x = tm.tensor([1.0, 2.0])
    call = {
        "vjp": lambda f: tm.vjp(f, x),
        "jvp": lambda f: tm.jvp(f, x, x),
        "hvp": lambda f: tm.hvp(f, x, x),
        "jacobian": lambda f: tm.jacobian(f, x),
        "hessian": lambda f: tm.hessian(f, x),
    }[name]
    if isinstance(returned, str):
        returned = tm.tensor(1j)
    with pytest.raises(TypeError, match="return|complex"):
        call(lambda z: returned)


def test_hvp_and_hessian_need_one_scalar_tensor_and_errors_name_the_argument() -> None:
    x = tm.tensor([1.0, 2.0])
    for transform in (lambda f: tm.hvp(f, x, x), lambda f: tm.hessian(f, x)):
        with pytest.raises(TypeError, match="one scalar Tensor, got a tuple"):
            transform(lambda z: (tm.sum(z), tm.sum(z)))
    with pytest.raises(TypeError, match="tuple of tangents"):
        tm.hvp(lambda a, b: tm.sum(a * b), (x, x), x)
    with pytest.raises(ValueError, match="got 1 tangents for 2 primals"):
        tm.jvp(lambda a, b: a * b, (x, x), (x,))
    _, vjp_fn = tm.vjp(lambda z: z * 2, x)
    with pytest.raises(ValueError, match=r"cotangent has shape \(3,\) but f's output has shape \(2,\)"):
        vjp_fn(np.ones(3))
    with pytest.raises(TypeError, match="real"):
        vjp_fn(np.ones(2) * 1j)
    with pytest.raises(TypeError, match="real"):
        tm.jvp(tm.sin, x, x * 1j)
    with pytest.raises(TypeError, match="outputs must be a Tensor.*got float"):
        tm.grad(3.0, tm.tensor(1.0, requires_grad=True))


@pytest.mark.parametrize("name", ["vjp", "jvp", "hvp", "jacobian", "hessian"])
def test_transforms_under_no_grad_give_the_same_numbers_as_constants(name) -> None:
    x, v = tm.tensor([0.3, -0.8, 1.4], requires_grad=True), np.array([1.0, -1.0, 0.5])
    f = lambda z: tm.sum(tm.tanh(z) ** 3)  # noqa: E731
    run = {
        "vjp": lambda: tm.vjp(tm.tanh, x)[1](v)[0],
        "jvp": lambda: tm.jvp(tm.tanh, x, v)[1],
        "hvp": lambda: tm.hvp(f, x, v)[1],
        "jacobian": lambda: tm.jacobian(tm.tanh, x),
        "hessian": lambda: tm.hessian(f, x),
    }[name]
    outside = run()
    assert outside.requires_grad  # x requires grad: the result carries its graph
    with tm.no_grad():
        inside = run()
    assert not inside.requires_grad and inside.creator is None
    np.testing.assert_allclose(inside.numpy(), outside.numpy(), **EXACT)
    assert np.abs(inside.numpy()).sum() > 0


def test_vjp_takes_its_primals_as_arguments_and_remembers_no_grad() -> None:
    a, b = tm.tensor([1.0, 2.0]), tm.tensor([3.0, 4.0])
    with pytest.raises(TypeError, match=r"vjp\(f, a, b\)"):
        tm.vjp(lambda x, y: x * y, (a, b))
    w = tm.tensor([0.5, -1.0], requires_grad=True)  # a closure that requires grad
    with tm.no_grad():
        y, vjp_fn = tm.vjp(lambda x: x * w, a)
    (g,) = vjp_fn(np.ones(2))  # called outside no_grad: still the constants no_grad asked for
    assert not y.requires_grad and not g.requires_grad
    np.testing.assert_array_equal(g.numpy(), w.numpy())
    value, _ = tm.vjp(lambda x: x, a)
    assert not shares_memory(value.data, a.data)  # never the caller's array


def test_the_hessian_of_a_one_element_output_has_its_axis_as_jaxs() -> None:
    x = tm.tensor([0.5, -1.0])
    h = tm.hessian(lambda z: tm.reshape(tm.sum(z**3), (1,)), x)
    assert h.shape == (1, 2, 2)
    np.testing.assert_allclose(h.numpy()[0], np.diag(6 * x.numpy()), **EXACT)
    (hab,) = tm.hessian(lambda a, b: tm.reshape(tm.sum(a * b), (1,)), (x, x))[0][1:]
    assert hab.shape == (1, 2, 2)
