"""Conjugate gradient (tinymeta.solvers), the one solver iMAML and the Newton-CG demo share."""

from __future__ import annotations

import numpy as np
import pytest

import tinymeta as tm
from tinymeta.solvers import conjugate_gradient


def batched_matvec(a: np.ndarray):
    return lambda v: [np.einsum("tij,tj->ti", a, v[0])]


def test_batched_systems_are_solved_independently_and_stop_on_negative_curvature():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((2, 4, 4))
    h = np.stack([m[0] @ m[0].T, -(m[1] @ m[1].T) * 10])  # task 0: positive definite; task 1: indefinite system
    a = np.eye(4) + h / 2.0  # iMAML's I + H/λ with λ = 2
    b = [rng.standard_normal((2, 4))]
    (u,) = conjugate_gradient(batched_matvec(a), b, steps=4, batched=True)
    np.testing.assert_allclose(u[0], np.linalg.solve(a[0], b[0][0]), rtol=1e-8)
    assert np.all(np.isfinite(u[1]))  # stopped where the curvature turned non-positive, no overflow
    # The definite task's answer does not depend on the other task's (it is solved on its own).
    (alone,) = conjugate_gradient(batched_matvec(a[:1]), [b[0][:1]], steps=4, batched=True)
    np.testing.assert_array_equal(alone[0], u[0])


@pytest.mark.parametrize("n", [1, 3, 8])
def test_one_system_over_several_blocks_is_solved_in_n_steps(n):
    """A vector held as two blocks (two parameters) is one system: n steps solve an n x n SPD system."""
    rng = np.random.default_rng(n)
    m = rng.standard_normal((n + 2, n + 2))
    a = m @ m.T + np.eye(n + 2)
    b = rng.standard_normal(n + 2)

    def matvec(v):
        product = a @ np.concatenate([v[0], v[1]])
        return [product[:n], product[n:]]

    u = conjugate_gradient(matvec, [b[:n], b[n:]], steps=n + 2)
    np.testing.assert_allclose(np.concatenate(u), np.linalg.solve(a, b), rtol=1e-8, atol=1e-10)


def test_it_stops_at_the_tolerance_and_keeps_a_zero_answer_for_a_zero_right_hand_side():
    a = np.diag([1.0, 10.0, 100.0])
    calls = []

    def matvec(v):
        calls.append(1)
        return [a @ v[0]]

    b = [np.array([1.0, 1.0, 1.0])]
    (u,) = conjugate_gradient(matvec, b, steps=50, tol=1e-3)
    assert np.linalg.norm(b[0] - a @ u) <= 1e-3
    assert len(calls) <= 3  # at most n steps on a 3 x 3 system
    calls.clear()
    (zero,) = conjugate_gradient(matvec, [np.zeros(3)], steps=5)
    assert not zero.any() and not calls  # nothing to solve: no product is asked for


def test_negative_curvature_at_the_first_step_returns_zero():
    (u,) = conjugate_gradient(lambda v: [-v[0]], [np.array([1.0, 2.0])], steps=3)
    np.testing.assert_array_equal(u, [0.0, 0.0])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: conjugate_gradient(lambda v: v, [], steps=3), TypeError, "b must be a non-empty list"),
        (lambda: conjugate_gradient(lambda v: v, np.ones(3), steps=3), TypeError, "b must be a non-empty list"),
        (lambda: conjugate_gradient(lambda v: v, [tm.tensor(np.ones(3))], steps=3), TypeError, r"b\[0\] must be a Num"),
        (lambda: conjugate_gradient(lambda v: v, [[1.0, 1.0]], steps=3), TypeError, r"b\[0\] must be a NumPy or CuPy"),
        (
            lambda: conjugate_gradient(lambda v: [tm.tensor(v[0])], [np.ones(3)], steps=3),
            TypeError,
            "matvec must return a list of arrays, got Tensors in it",
        ),
        (lambda: conjugate_gradient(lambda v: v, [np.ones(3)], steps=-1), ValueError, "steps must be an integer >= 0"),
        (lambda: conjugate_gradient(lambda v: v, [np.ones(3)], steps=2.5), TypeError, "steps must be an integer"),
        (lambda: conjugate_gradient(lambda v: v, [np.ones(3)], steps=3, tol=-1), ValueError, "tol must be"),
        (lambda: conjugate_gradient(lambda v: v, [np.ones(3)], steps=3, tol=np.nan), ValueError, "tol must be"),
        (lambda: conjugate_gradient(lambda v: v[0], [np.ones(3)], steps=3), ValueError, "matvec must return a list"),
        (lambda: conjugate_gradient(lambda v: [], [np.ones(3)], steps=3), ValueError, "matvec must return a list"),
        (
            lambda: conjugate_gradient(lambda v: [np.ones((2, 3))], [np.ones(3)], steps=3),
            ValueError,
            r"shaped like b's blocks \[\(3,\)\], got \[\(2, 3\)\]",
        ),
        (
            lambda: conjugate_gradient(lambda v: v, [np.ones((2, 3)), np.ones((1, 3))], steps=3, batched=True),
            ValueError,
            "same leading",
        ),
    ],
)
def test_bad_input_is_named_not_solved_wrongly(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_float32_stays_float32():
    a = np.diag(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    (u,) = conjugate_gradient(lambda v: [a @ v[0]], [np.ones(3, dtype=np.float32)], steps=3)
    assert u.dtype == np.float32
    np.testing.assert_allclose(u, [1.0, 0.5, 1 / 3], rtol=1e-6)
