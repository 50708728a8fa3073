"""The elementwise functions and reductions beyond the generated checks (tests/op_specs.py): the
integer-valued argmax/argmin/argsort, keyword checks, and the conventions at degenerate inputs."""

from __future__ import annotations

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.testing import gradgradcheck, projected_grad


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
    with pytest.raises(TypeError, match="ddof"):
        tm.var(x, ddof=0.5)


def test_prod_of_nothing_is_one_and_its_gradient_empty() -> None:
    x = tm.tensor(np.zeros((2, 0)), requires_grad=True)
    y = tm.prod(x, axis=1)
    np.testing.assert_array_equal(y.numpy(), [1.0, 1.0])
    (g,) = tm.grad(tm.sum(y), x)
    assert g.shape == (2, 0)


def test_clip_needs_a_bound_and_sends_the_gradient_to_the_bound_it_takes() -> None:
    with pytest.raises(ValueError, match="give a_min, a_max or both"):
        tm.clip(tm.tensor([1.0]))
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
