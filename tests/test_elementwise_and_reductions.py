"""The elementwise functions and reductions beyond the generated checks (tests/op_specs.py): the
integer-valued argmax/argmin/argsort, keyword checks, and the conventions at degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.testing import gradcheck, gradgradcheck, projected_grad


def _x() -> np.ndarray:
    return np.array([[0.5, -2.0, 3.0, 3.0], [1.0, 4.0, -1.0, 0.0]])


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (1, True), (-1, False)])
def test_argmax_and_argmin_are_numpys_and_constants(name, axis, keepdims) -> None:
    x = tm.tensor(_x(), requires_grad=True)
    result = getattr(tm, name)(x, axis=axis, keepdims=keepdims)
    expected = getattr(np, name)(_x(), axis=axis, keepdims=keepdims)
    np.testing.assert_array_equal(result.numpy(), expected)
    assert result.dtype == expected.dtype and not result.requires_grad


def test_argsort_is_stable_and_sort_follows_it() -> None:
    x = tm.tensor(_x(), requires_grad=True)
    np.testing.assert_array_equal(tm.argsort(x).numpy(), np.argsort(_x(), kind="stable"))
    np.testing.assert_array_equal(tm.argsort(x, axis=None).numpy(), np.argsort(_x(), axis=None, kind="stable"))
    # the tie (3.0, 3.0) keeps its order: the first 3.0 takes the next-to-last place
    (g,) = tm.grad(tm.sum(tm.sort(x) * np.arange(4.0)), x)
    np.testing.assert_array_equal(g.numpy(), [[1.0, 0.0, 2.0, 3.0], [2.0, 3.0, 0.0, 1.0]])
    np.testing.assert_array_equal(tm.sort(x, axis=None).numpy(), np.sort(_x(), axis=None))


def test_out_of_range_axes_are_numpys_axis_error() -> None:
    x = tm.tensor(_x())
    for fn in (tm.cumsum, tm.cumprod, tm.argmax, tm.sort, tm.prod, tm.var):
        with pytest.raises(np.exceptions.AxisError):
            fn(x, axis=2)
    with pytest.raises(TypeError, match="axis must be an integer or None"):
        tm.cumsum(x, axis=(0, 1))
    with pytest.raises(np.exceptions.AxisError):
        tm.cumsum(tm.tensor(1.0), axis=0)


def test_take_along_axis_checks_its_indices() -> None:
    x = tm.tensor(_x(), requires_grad=True)
    with pytest.raises(TypeError, match="indices must be integers, got dtype float64"):
        tm.take_along_axis(x, np.zeros((2, 1)), axis=1)
    with pytest.raises(ValueError, match=r"indices \(1-D, shape \(2,\)\) must have as many axes as arr"):
        tm.take_along_axis(x, np.array([0, 1]), axis=1)
    with pytest.raises(ValueError, match="axis=None needs 1-D indices"):
        tm.take_along_axis(x, np.zeros((2, 1), dtype=int), axis=None)
    with pytest.raises(IndexError):
        tm.take_along_axis(x, np.array([[4]]), axis=1)
    flat = tm.take_along_axis(x, np.array([7, 0, 7]), axis=None)
    np.testing.assert_array_equal(flat.numpy(), np.take_along_axis(_x(), np.array([7, 0, 7]), axis=None))
    (g,) = tm.grad(tm.sum(flat), x)
    assert g.numpy()[1, 3] == 2.0 and g.numpy()[0, 0] == 1.0  # read twice, once


def test_var_and_std_with_no_degrees_of_freedom_are_nan_without_a_warning() -> None:
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    for ddof in (2, 3):
        assert np.isnan(tm.var(x, ddof=ddof).item()) and np.isnan(tm.std(x, ddof=ddof).item())
    assert np.isnan(tm.var(tm.tensor(np.zeros((2, 0))), axis=1).numpy()).all()
    assert np.isnan(tm.var(x, ddof=2.5).item())


def test_var_and_std_take_numpys_signature_and_any_real_ddof() -> None:
    # np.var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=...): ddof positional after out, and
    # any real number (n - ddof as a float). Values to a few ulps of NumPy's (same formula, same sums).
    a = np.array([[1.0, 2.0, 4.0], [0.5, -3.0, 2.0]])
    x = tm.tensor(a, requires_grad=True)
    for fn, ref in ((tm.var, np.var), (tm.std, np.std)):
        for args, kwargs in [((1, None, None, 1), {}), ((), dict(ddof=0.5)), ((0,), dict(ddof=np.float32(1.5)))]:
            np.testing.assert_allclose(fn(x, *args, **kwargs).numpy(), ref(a, *args, **kwargs), rtol=1e-14)
        np.testing.assert_allclose(
            fn(x, 1, keepdims=True, ddof=1).numpy(), ref(a, 1, keepdims=True, ddof=1), rtol=1e-14
        )
        y = fn(x, None, np.float32, ddof=1)  # dtype: the dtype it is computed in, as NumPy's
        assert y.dtype == np.float32 and tm.grad(y, x)[0].dtype == np.float64
        np.testing.assert_allclose(y.item(), ref(a, dtype=np.float32, ddof=1), rtol=1e-6)
        with pytest.raises(TypeError, match="ddof must be a real number, got '1'"):
            fn(x, ddof="1")
        with pytest.raises(TypeError, match="out= is not supported"):
            fn(x, 0, None, np.empty(3))
    # d var / dx_i = 2 (x_i - mean) / (n - ddof), with a float ddof too
    (g,) = tm.grad(tm.var(x, ddof=0.5), x)
    np.testing.assert_allclose(g.numpy(), 2 * (a - a.mean()) / (a.size - 0.5), rtol=1e-14)
    assert np.var(x, ddof=1.5).requires_grad  # and NumPy's own call reaches it


def test_mean_var_and_std_of_a_0d_tensor_refuse_an_integer_axis_as_numpy() -> None:
    # unlike sum and max, NumPy's mean, var and std count the elements of the axis, which a 0-d array lacks
    scalar = np.array(2.0)
    for fn, ref in ((tm.mean, np.mean), (tm.var, np.var), (tm.std, np.std)):
        for axis in (0, -1):
            with pytest.raises(np.exceptions.AxisError):
                ref(scalar, axis=axis)
            with pytest.raises(np.exceptions.AxisError, match="out of bounds for array of dimension 0"):
                fn(tm.tensor(scalar), axis=axis)
        assert fn(tm.tensor(scalar), axis=()).item() == ref(scalar, axis=())
        assert fn(tm.tensor(scalar)).item() == ref(scalar)
    assert tm.sum(tm.tensor(scalar), axis=0).item() == 2.0  # sum and max take it, as NumPy's


def test_prod_of_nothing_is_one_and_its_gradient_empty() -> None:
    x = tm.tensor(np.zeros((2, 0)), requires_grad=True)
    y = tm.prod(x, axis=1)
    np.testing.assert_array_equal(y.numpy(), [1.0, 1.0])
    (g,) = tm.grad(tm.sum(y), x)
    assert g.shape == (2, 0)


def test_clip_sends_the_gradient_to_the_bound_it_takes() -> None:
    x = tm.tensor([-2.0, 0.0, 2.0, 1.0], requires_grad=True)
    low = tm.tensor([-1.0, -1.0, -1.0, 1.0], requires_grad=True)  # x = 1.0 sits on its bound: x takes it
    high = tm.tensor(1.5, requires_grad=True)
    y = tm.clip(x, low, high)
    np.testing.assert_array_equal(y.numpy(), np.clip(x.numpy(), low.numpy(), high.numpy()))
    gx, gl, gh = tm.grad(tm.sum(y), [x, low, high])
    np.testing.assert_array_equal(gx.numpy(), [0.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(gl.numpy(), [1.0, 0.0, 0.0, 0.0])
    assert gh.item() == 1.0
    # a_min > a_max: NumPy's definition, minimum(maximum(x, a_min), a_max), gives a_max
    assert tm.clip(tm.tensor(0.0), 2.0, 1.0).item() == 1.0


def test_softplus_options_are_checked_and_switch_to_the_line_above_the_threshold() -> None:
    with pytest.raises(ValueError, match="beta must be a positive finite number, got 0.0"):
        tm.softplus(tm.tensor([1.0]), beta=0)
    x = tm.tensor([25.0, 0.0], requires_grad=True)
    y = tm.softplus(x)  # 25 > 20: the line x itself, slope exactly 1
    assert y.numpy()[0] == 25.0 and y.numpy()[1] == np.log(2.0)
    (g,) = tm.grad(tm.sum(y), x)
    np.testing.assert_array_equal(g.numpy(), [1.0, 0.5])


def test_rounding_functions_have_zero_derivatives_and_keep_the_dtype() -> None:
    for fn in (tm.sign, tm.floor, tm.ceil, tm.round):
        x = tm.tensor(np.array([-1.5, 0.2, 2.7], dtype=np.float32), requires_grad=True)
        y = fn(x)
        assert y.dtype == np.float32
        (g,) = tm.grad(tm.sum(y), x)
        np.testing.assert_array_equal(g.numpy(), np.zeros(3, dtype=np.float32))
    np.testing.assert_array_equal(tm.round(tm.tensor([0.5, 1.5, 2.25]), 1).numpy(), np.round([0.5, 1.5, 2.25], 1))
    with pytest.raises(TypeError, match="decimals"):
        tm.round(tm.tensor([1.0]), 0.5)


def test_reciprocal_of_integers_refuses_numpys_truncation() -> None:
    with pytest.raises(TypeError, match="NumPy would truncate"):
        tm.reciprocal(tm.tensor([2, 3]))


def test_weighted_logsumexp_is_scipys_and_differentiates_the_weights() -> None:
    a = np.array([[0.0, 1.0, -INF], [2.0, -1.0, 0.5]])
    b = np.array([0.5, 2.0, 3.0])
    x, w = tm.tensor(a, requires_grad=True), tm.tensor(b, requires_grad=True)
    y = tm.logsumexp(x, axis=1, b=w)
    with np.errstate(divide="ignore"):
        expected = np.log(np.sum(b * np.exp(a), axis=1))
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-14)
    gx, gw = tm.grad(tm.sum(y), [x, w])
    weights = b * np.exp(a - expected[:, None])
    np.testing.assert_allclose(gx.numpy(), weights, rtol=1e-14)
    np.testing.assert_allclose(gw.numpy(), (np.exp(a - expected[:, None])).sum(axis=0), rtol=1e-14)
    empty = tm.logsumexp(tm.tensor(np.zeros((2, 0))), axis=1, b=np.ones(0))
    np.testing.assert_array_equal(empty.numpy(), [-INF, -INF])


INF = np.inf


@pytest.mark.parametrize("name", ["prod", "cumprod"])
def test_products_have_exact_third_derivatives_away_from_zero(name) -> None:
    # (at exact zeros, their edges in op_specs.py give the third derivative's closed form)
    x = np.array([[0.7, -1.3, 1.1], [-0.4, 0.9, 1.6]])
    fn = {"prod": lambda t: tm.prod(t, axis=1), "cumprod": lambda t: tm.cumprod(t, axis=1)}[name]
    assert gradgradcheck(projected_grad(fn, seed=2), [tm.tensor(x)])


def test_clip_with_a_nan_bound_is_nan_and_without_bounds_is_a_copy_as_numpy() -> None:
    a = np.array([0.5, 2.0, -1.0])
    x = tm.tensor(a, requires_grad=True)
    for low, high in ((np.nan, 1.0), (0.0, np.nan), (np.array([np.nan, 0.0, 0.0]), 1.0)):
        np.testing.assert_array_equal(tm.clip(x, low, high).numpy(), np.clip(a, low, high))
    bound = tm.tensor([np.nan, 0.0, 0.0], requires_grad=True)  # the NaN is the value taken: it gets the gradient
    gx, gb = tm.grad(tm.sum(tm.clip(x, bound, 1.0)), [x, bound])
    np.testing.assert_array_equal(gx.numpy(), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(gb.numpy(), [1.0, 0.0, 1.0])
    copy = tm.clip(x, None, None)  # NumPy 2: a copy of a
    assert copy is not x and not np.shares_memory(copy.data, x.data)
    np.testing.assert_array_equal(copy.numpy(), np.clip(a, None, None))
    np.testing.assert_array_equal(tm.grad(tm.sum(copy), x)[0].numpy(), np.ones(3))


@pytest.mark.parametrize("name, x", [("floor", 0.5), ("ceil", -0.5), ("round", 0.4), ("sign", 0.0), ("relu", -1.0)])
def test_a_zero_derivative_is_exactly_zero_under_an_infinite_upstream_gradient(name, x) -> None:
    # sqrt's derivative at 0 is inf; the op before it is flat there, so the chain rule gives 0 (PyTorch: 0),
    # not inf * 0 = NaN.
    t = tm.tensor([x, 2.7], requires_grad=True)
    with np.errstate(divide="ignore"):  # sqrt's own 1 / (2 sqrt(0)): the infinite upstream gradient
        (g,) = tm.grad(tm.sum(tm.sqrt(getattr(tm, name)(t))), t)  # ceil(-0.5) = -0.0: sqrt's -inf
    expected = 0.0 if name != "relu" else 0.5 / np.sqrt(2.7)
    np.testing.assert_array_equal(g.numpy(), [0.0, expected])


def test_zero_derivative_ops_keep_higher_orders_and_transforms_working() -> None:
    # f = floor(x) x^3 + round(x) sin(x): f' = 3 floor(x) x^2 + round(x) cos(x), f'' = 6 floor(x) x - round(x) sin(x)
    a = np.array([1.3, -0.6, 2.2])
    x = tm.tensor(a, requires_grad=True)

    def f(t):
        return tm.sum(tm.floor(t) * t**3 + tm.round(t) * tm.sin(t))

    (g,) = tm.grad(f(x), x, create_graph=True)
    np.testing.assert_allclose(g.numpy(), 3 * np.floor(a) * a**2 + np.round(a) * np.cos(a), rtol=1e-14)
    hessian = tm.hessian(f, tm.tensor(a)).numpy()
    np.testing.assert_allclose(hessian, np.diag(6 * np.floor(a) * a - np.round(a) * np.sin(a)), rtol=1e-14, atol=0)
    _, tangent = tm.jvp(lambda t: tm.sign(t) * t, tm.tensor(a), tm.tensor(np.ones(3)))
    np.testing.assert_array_equal(tangent.numpy(), np.sign(a))
    (zero,) = tm.grad(tm.sum(tm.ceil(x)), x, create_graph=True)
    assert not zero.requires_grad and zero.numpy().tolist() == [0.0] * 3  # a constant: every order is 0


def test_hypot_at_the_origin_has_every_derivative_zero_as_linalg_norm() -> None:
    # the convention of the 2-norm at 0 (linalg.norm's, and abs's): the subgradient 0, and 0 beyond it
    # (the Hessian was the identity: d/da of gy a / 1)
    def f(t):
        return tm.hypot(t[0], t[1])

    np.testing.assert_array_equal(tm.hessian(f, tm.tensor([0.0, 0.0])).numpy(), np.zeros((2, 2)))
    x = tm.tensor([0.0, 0.0], requires_grad=True)
    (g,) = tm.grad(f(x), x, create_graph=True)
    (h,) = tm.grad(tm.sum(g), x, create_graph=True)
    (third,) = tm.grad(tm.sum(h), x, allow_unused=True)
    assert not g.numpy().any() and not h.numpy().any() and (third is None or not third.numpy().any())
    # away from the origin, the closed form [[b^2, -ab], [-ab, a^2]] / r^3 (r = 1 here)
    a, b = 0.6, -0.8
    hessian = tm.hessian(f, tm.tensor([a, b])).numpy()
    np.testing.assert_allclose(hessian, np.array([[b * b, -a * b], [-a * b, a * a]]), rtol=1e-14)


def _scipy_logsumexp(a: np.ndarray, b: np.ndarray, axis=None) -> np.ndarray:
    """scipy.special.logsumexp(a, axis, b=b) (SciPy is not installed here): weight-0 entries set to -inf,
    then the max-shifted sum."""
    a = np.where(b == 0, -np.inf, a)
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):
        return np.squeeze(np.log(np.sum(b * np.exp(a - m), axis=axis, keepdims=True)) + m, axis=axis)


def test_weighted_logsumexp_ignores_the_entries_of_weight_zero_as_scipy() -> None:
    # Masking the largest entry with b = 0 leaves log(sum of the others): log(1 e^1) = 1, not -inf
    # (the shift by the unmasked max made the others' exp underflow to 0), in float32 too.
    cases = [
        (np.array([1000.0, 1.0]), np.array([0.0, 1.0]), 1.0),
        (np.array([120.0, 0.0], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32), 0.0),
        (np.array([np.inf, 1.0]), np.array([0.0, 1.0]), 1.0),
        (np.array([-np.inf, 1.0, np.nan]), np.array([1.0, 1.0, 0.0]), 1.0),
    ]
    for a, b, expected in cases:
        x = tm.tensor(a, requires_grad=True)
        y = tm.logsumexp(x, b=b)
        assert y.item() == expected == _scipy_logsumexp(a, b) and y.dtype == a.dtype
        (g,) = tm.grad(y, x)  # dy/dx_i = b_i exp(x_i - y): exactly 0 where b_i = 0
        np.testing.assert_array_equal(g.numpy(), np.where(b == 0, 0.0, b * np.exp(np.where(b == 0, 0, a) - y.item())))
    rows = np.array([[1000.0, 1.0, 2.0], [3.0, -1.0, np.inf]])
    weights = np.array([[0.0, 1.0, 2.0], [1.0, 0.5, 0.0]])
    y = tm.logsumexp(tm.tensor(rows), axis=1, b=weights)
    np.testing.assert_allclose(y.numpy(), _scipy_logsumexp(rows, weights, axis=1), rtol=1e-15)
    np.testing.assert_allclose(y.numpy(), [np.log(np.e + 2 * np.e**2), np.log(np.e**3 + 0.5 / np.e)], rtol=1e-15)


def test_weighted_logsumexp_keeps_the_infinity_conventions_of_the_unweighted_one() -> None:
    # A row with nothing to sum: y = -inf and every derivative 0. A row holding +inf: its +inf entries
    # share the weight in proportion to b (dy/dx_i = b_i / B, dy/db_i = 1 / B, B = their weights' sum),
    # the others 0; the second derivatives are those of these in b (0 in x, as without weights): for
    # F = sum(dy/dx) + sum(dy/db) = 1 + k / B (k +inf entries), dF/db_i = -k / B^2 at the +inf entries.
    for row, b, value, gx, gb, second_b in [
        ([-np.inf, -np.inf], [1.0, 1.0], -np.inf, [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]),
        ([np.inf, 1.0], [1.0, 1.0], np.inf, [1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]),
        ([np.inf, np.inf, 1.0], [3.0, 1.0, 1.0], np.inf, [0.75, 0.25, 0.0], [0.25, 0.25, 0.0], [-0.125, -0.125, 0.0]),
        ([1.0, -np.inf], [0.0, 1.0], -np.inf, [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]),  # nothing left to sum
    ]:
        x, w = tm.tensor([row], requires_grad=True), tm.tensor(b, requires_grad=True)
        y = tm.logsumexp(x, axis=1, b=w)
        assert y.item() == value
        first = tm.grad(tm.sum(y), [x, w], create_graph=True)
        np.testing.assert_array_equal(first[0].numpy(), [gx])
        np.testing.assert_array_equal(first[1].numpy(), gb)
        second = tm.grad(tm.sum(first[0]) + tm.sum(first[1]), [x, w], allow_unused=True)
        assert second[0] is None or not second[0].numpy().any()
        np.testing.assert_array_equal(np.zeros(len(b)) if second[1] is None else second[1].numpy(), second_b)
        if b == [1.0] * len(b):  # the same as without weights
            plain = tm.tensor([row], requires_grad=True)
            (g,) = tm.grad(tm.sum(tm.logsumexp(plain, axis=1)), plain)
            np.testing.assert_array_equal(g.numpy(), [gx])


def test_weighted_logsumexp_differentiates_a_zero_weight_to_third_order() -> None:
    # y = log(sum b e^x) is smooth in b at b_0 = 0 (the sum stays positive): dy/db_0 = e^(x_0 - y) there,
    # and d2y/dx_0 db_0 = e^(x_0 - y), though dy/dx_0 = 0; finite differences cross b_0 = 0.
    a, b = np.array([2.0, 1.0, -1.0]), np.array([0.0, 1.0, 0.5])
    x, w = tm.tensor(a, requires_grad=True), tm.tensor(b, requires_grad=True)
    y = tm.logsumexp(x, b=w)
    s = np.e + 0.5 / np.e
    assert y.item() == pytest.approx(np.log(s), rel=1e-15)
    gx, gw = tm.grad(y, [x, w], create_graph=True)
    p = np.exp(a) / s
    np.testing.assert_allclose(gx.numpy(), b * p, rtol=1e-14)  # [0, e/s, e^-1/(2s)]: a few roundings each
    np.testing.assert_allclose(gw.numpy(), p, rtol=1e-14)
    (mixed,) = tm.grad(gx[0], w)  # d/db (b_0 p_0) = p_0 e_0 - b_0 p_0 p: at b_0 = 0, p_0 e_0
    np.testing.assert_allclose(mixed.numpy(), [p[0], 0.0, 0.0], rtol=1e-14)

    def f(t, v):
        return tm.logsumexp(t, b=v)

    assert gradcheck(f, [a, b]) and gradgradcheck(f, [a, b]) and gradgradcheck(projected_grad(f, seed=3), [a, b])
    # where e^(x_0 - y) overflows, dy/db_0 is that true inf, and dy/dx_0 is still an exact 0 (not 0 * inf)
    x, w = tm.tensor([1000.0, 1.0], requires_grad=True), tm.tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(over="ignore"):
        gx, gw = tm.grad(tm.logsumexp(x, b=w), [x, w])
    np.testing.assert_array_equal(gx.numpy(), [0.0, 1.0])
    np.testing.assert_array_equal(gw.numpy(), [np.inf, 1.0])


@pytest.mark.parametrize("name", ["prod", "cumprod"])
@pytest.mark.parametrize("axis", [0, 1, None])
def test_products_with_zeros_are_exact_to_third_order_along_every_axis(name, axis) -> None:
    # zeros in some rows only, one and several in a row: the other rows are exact too
    x = np.array([[0.7, 0.0, 1.1, -0.9], [-0.4, 0.9, 1.6, 1.2], [0.0, 1.3, 0.0, -0.8]])
    fn = {"prod": tm.prod, "cumprod": tm.cumprod}[name]

    def f(t):
        return fn(t, axis=axis)

    assert gradcheck(f, [x]) and gradgradcheck(f, [x]) and gradgradcheck(projected_grad(f, seed=4), [x])


def test_the_products_of_the_others_are_exact_where_several_entries_are_zero() -> None:
    # d prod / dx_i = the product of the others; d2 / dx_i dx_j = the product of all but i and j
    a = np.array([0.0, 2.0, 0.0, 3.0])
    x = tm.tensor(a, requires_grad=True)
    (g,) = tm.grad(tm.prod(x), x, create_graph=True)
    np.testing.assert_array_equal(g.numpy(), np.zeros(4))
    hessian = np.array([tm.grad(g[i], x)[0].numpy() for i in range(4)])
    expected = [[np.prod(np.delete(a, [i, j])) if i != j else 0.0 for j in range(4)] for i in range(4)]
    np.testing.assert_array_equal(hessian, expected)  # 6 at (0, 2) and (2, 0), else 0


def test_products_with_a_zero_take_linear_memory() -> None:
    # One zero used to put prod's gradient and cumprod (forward included) on an (n, n) path: at n = 20000,
    # 3.2 GB per array. Now O(n): a few float64 arrays of 160 kB; 16 MB leaves room for the graph's own.
    import tracemalloc

    n = 20000
    a = np.exp(0.5 * np.sin(np.arange(n)))  # every running product within e^(+-1.1): no overflow, no underflow
    a[7] = 0.0
    for label, run in [
        ("cumprod of a constant", lambda: tm.cumprod(tm.tensor(a))),
        ("prod's gradient", lambda: tm.grad(tm.prod(x), x)),
        ("cumprod's gradient", lambda: tm.grad(tm.sum(tm.cumprod(x)), x)),
        ("prod's Hessian-vector product", lambda: tm.hvp(tm.prod, tm.tensor(a), tm.tensor(np.ones(n)))),
    ]:
        x = tm.tensor(a, requires_grad=True)
        tracemalloc.start()
        try:
            run()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 16e6, f"{label}: peak {peak / 1e6:.1f} MB"


def test_linear_recurrence_is_its_closed_form_and_exact_to_third_order_with_zero_coefficients() -> None:
    # s_k = h_k + c_k s_(k-1) = sum over i <= k of h_i c_(i+1) ... c_k (from the end with reverse)
    from tinymeta.ops.reduction import LinearRecurrence

    rng = np.random.default_rng(5)
    h, c = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    c[0, 2] = c[2, 1] = c[2, 3] = 0.0
    for reverse in (False, True):
        for axis in (0, 1):
            n = h.shape[axis]
            hm, cm = np.moveaxis(h, axis, 0), np.moveaxis(c, axis, 0)
            terms = [
                [hm[i] * np.prod(cm[i + 1 : k + 1] if not reverse else cm[k:i], axis=0) for i in range(n)
                 if (i <= k if not reverse else i >= k)]
                for k in range(n)
            ]  # fmt: skip
            expected = np.moveaxis(np.array([np.sum(t, axis=0) for t in terms]), 0, axis)
            np.testing.assert_allclose(LinearRecurrence(axis, reverse)(tm.tensor(h), tm.tensor(c)).numpy(), expected,
                                       rtol=1e-13, atol=1e-14)  # fmt: skip

            def f(a, b):
                return LinearRecurrence(axis, reverse)(a, b)

            assert (
                gradcheck(f, [h, c]) and gradgradcheck(f, [h, c]) and gradgradcheck(projected_grad(f, seed=6), [h, c])
            )
