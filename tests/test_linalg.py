"""tinymeta.linalg beyond the generated checks of test_ops.py: closed forms, errors, degenerate points,
batches, and the namespace."""

from __future__ import annotations

import numpy as np
import pytest

import tinymeta as tm
from tinymeta import linalg
from tinymeta.testing import gradcheck

A = np.array([[3.0, 1.0, 0.5], [-1.0, 2.0, 0.3], [0.2, 0.4, 4.0]])


def _leaf(x: np.ndarray) -> tm.Tensor:
    return tm.tensor(x, requires_grad=True)


# ---- closed forms ------------------------------------------------------------------------------------


def test_det_gradient_is_det_times_inverse_transpose() -> None:
    a = _leaf(A)
    (g,) = tm.grad(linalg.det(a), a)
    np.testing.assert_allclose(g.numpy(), np.linalg.det(A) * np.linalg.inv(A).T, rtol=1e-13)


def test_logdet_gradient_and_hessian_vector_product() -> None:
    # d logdet = tr(A^{-1} dA): gradient A^{-T}; second derivative along V, W: -tr(A^{-1} V A^{-1} W).
    rng = np.random.default_rng(0)
    v, w = rng.standard_normal((2, 3, 3))
    a = _leaf(A)
    (g,) = tm.grad(linalg.slogdet(a).logabsdet, a, create_graph=True)
    np.testing.assert_allclose(g.numpy(), np.linalg.inv(A).T, rtol=1e-13)
    (hv,) = tm.grad(tm.sum(g * v), a)
    ainv = np.linalg.inv(A)
    np.testing.assert_allclose(np.sum(hv.numpy() * w), -np.trace(ainv @ v @ ainv @ w), rtol=1e-12)


def test_inverse_and_solve_gradients_in_closed_form() -> None:
    rng = np.random.default_rng(1)
    b, gy = rng.standard_normal((2, 3))
    a, tb = _leaf(A), _leaf(b)
    x = np.linalg.solve(A, b)
    ga, gb = tm.grad(linalg.solve(a, tb), [a, tb], grad_outputs=gy)
    lam = np.linalg.solve(A.T, gy)
    np.testing.assert_allclose(gb.numpy(), lam, rtol=1e-13)
    np.testing.assert_allclose(ga.numpy(), -np.outer(lam, x), rtol=1e-13)
    g = rng.standard_normal((3, 3))
    (gi,) = tm.grad(linalg.inv(a), a, grad_outputs=g)
    ainv = np.linalg.inv(A)
    np.testing.assert_allclose(gi.numpy(), -ainv.T @ g @ ainv.T, rtol=1e-12)


def test_eigenvalue_gradient_is_the_eigenvector_outer_product() -> None:
    s = A + A.T
    w, v = np.linalg.eigh(s)
    a = _leaf(s)
    (g,) = tm.grad(linalg.eigh(a).eigenvalues[2], a)
    # dw_2 = v_2^T dS v_2, and only the lower triangle is read: off-diagonal entries count twice.
    expected = np.tril(2 * np.outer(v[:, 2], v[:, 2])) - np.diag(v[:, 2] ** 2)
    np.testing.assert_allclose(g.numpy(), expected, atol=1e-14)


def test_singular_values_gradient_and_nuclear_norm() -> None:
    x = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    u, s, vh = np.linalg.svd(x, full_matrices=False)
    t = _leaf(x)
    (g,) = tm.grad(linalg.norm(t, "nuc"), t)
    np.testing.assert_allclose(g.numpy(), u @ vh, rtol=1e-12)  # d sum(s) = tr(U^T dA V)
    (g2,) = tm.grad(linalg.norm(t, 2), t)
    np.testing.assert_allclose(g2.numpy(), np.outer(u[:, 0], vh[0]), rtol=1e-12)


def test_cholesky_reconstructs_and_its_gradient_ignores_the_upper_triangle() -> None:
    s = A @ A.T
    junk = s + np.triu(np.full((3, 3), 7.0), 1)
    a = _leaf(junk)
    lower = linalg.cholesky(a)
    np.testing.assert_allclose((lower @ lower.T).numpy(), s, rtol=1e-13)
    (g,) = tm.grad(tm.sum(lower**2), a)
    assert np.all(np.triu(g.numpy(), 1) == 0)
    # sum(L^2) = tr(L L^T) = tr(S): its gradient on the lower triangle read is the identity.
    np.testing.assert_allclose(g.numpy(), np.eye(3), atol=1e-13)


def test_pinv_of_a_full_column_rank_matrix_and_its_gradient() -> None:
    x = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    t = _leaf(x)
    np.testing.assert_allclose(linalg.pinv(t).numpy(), np.linalg.solve(x.T @ x, x.T), rtol=1e-12)
    assert gradcheck(lambda z: tm.linalg.solve(tm.swapaxes(z, 0, 1) @ z, tm.swapaxes(z, 0, 1)), [x])
    g = np.arange(6.0).reshape(2, 3)
    (ours,) = tm.grad(linalg.pinv(t), t, grad_outputs=g)
    (formula,) = tm.grad(tm.linalg.solve(t.T @ t, t.T), t, grad_outputs=g)
    np.testing.assert_allclose(ours.numpy(), formula.numpy(), rtol=1e-12)


# ---- degenerate points -------------------------------------------------------------------------------


def test_det_at_a_singular_matrix_gives_the_cofactor_matrix_of_a_3x3() -> None:
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])  # rank 2
    cofactor = np.array([[-3.0, 6.0, -3.0], [6.0, -12.0, 6.0], [-3.0, 6.0, -3.0]])
    t = _leaf(x)
    y = linalg.det(t)
    if y.item() != 0.0:  # LAPACK's LU may round det to a tiny nonzero: then A^{-T} det is used
        pytest.skip(f"det rounded to {y.item()!r}, not 0")
    (g,) = tm.grad(y, t)
    np.testing.assert_allclose(g.numpy(), cofactor, atol=1e-12)


def test_slogdet_and_inv_of_a_singular_matrix_raise_numpys_error() -> None:
    singular = _leaf(np.array([[1.0, 2.0], [2.0, 4.0]]))
    sign, logdet = linalg.slogdet(singular)
    assert sign.item() == 0.0 and logdet.item() == -np.inf
    with pytest.raises(np.linalg.LinAlgError):
        tm.grad(logdet, singular)
    with pytest.raises(np.linalg.LinAlgError):
        linalg.inv(singular)
    with pytest.raises(np.linalg.LinAlgError):
        linalg.solve(singular, [1.0, 1.0])
    with pytest.raises(np.linalg.LinAlgError):
        linalg.cholesky(-np.eye(2))


def test_eigh_at_a_repeated_eigenvalue_differentiates_eigenvalues_and_refuses_eigenvectors() -> None:
    s = np.diag([1.0, 1.0, 3.0])
    a = _leaf(s)
    w, v = linalg.eigh(a)
    (g,) = tm.grad(tm.sum(w * np.array([1.0, 1.0, 2.0])), a)  # does not depend on the basis: exact
    np.testing.assert_allclose(g.numpy(), np.diag([1.0, 1.0, 2.0]), atol=1e-15)
    projector = v[:, :2] @ tm.transpose(v[:, :2])  # the eigenspace's projector: basis-free, exact too
    (gp,) = tm.grad(tm.sum(projector * np.arange(9.0).reshape(3, 3)), a)
    assert np.all(np.isfinite(gp.numpy()))
    with pytest.raises(ValueError, match="repeated eigenvalue"):
        tm.grad(tm.sum(v[:, 0] * np.array([1.0, 2.0, 3.0])), a)


def test_svd_at_repeated_singular_values_and_full_matrices() -> None:
    a = _leaf(np.eye(2) * 2.0)
    (g,) = tm.grad(tm.sum(linalg.svd(a, compute_uv=False)), a)
    np.testing.assert_allclose(g.numpy(), np.eye(2), atol=1e-15)
    u, s, vh = linalg.svd(a)
    with pytest.raises(ValueError, match="repeated singular value"):
        tm.grad(tm.sum(u[:, 0] * np.array([1.0, 2.0])), a)
    wide = _leaf(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match="full_matrices=False"):
        linalg.svd(wide)
    with tm.no_grad():  # without a graph, NumPy's full SVD
        assert linalg.svd(wide).Vh.shape == (3, 3)
    u, s, vh = linalg.svd(wide, full_matrices=False)
    np.testing.assert_allclose((u * s[None, :] @ vh).numpy(), wide.numpy(), atol=1e-13)


def test_norm_at_zero_has_zero_gradient_like_abs() -> None:
    x = _leaf(np.zeros((2, 3)))
    for y in (linalg.norm(x), linalg.norm(x, axis=1), linalg.norm(x, "fro")):
        (g,) = tm.grad(tm.sum(y), x)
        assert np.all(g.numpy() == 0)


# ---- batches, arguments, errors -----------------------------------------------------------------------


def test_batched_results_and_gradients_equal_the_loop_over_matrices() -> None:
    rng = np.random.default_rng(2)
    stack_ = rng.uniform(-1, 1, (4, 3, 3)) + 4 * np.eye(3)
    rhs = rng.standard_normal((4, 3, 2))
    ops = {
        "solve": lambda a: linalg.solve(a, rhs if a.ndim == 3 else rhs[i]),
        "inv": linalg.inv,
        "det": linalg.det,
        "logdet": lambda a: linalg.slogdet(a)[1],
        "cholesky": lambda a: linalg.cholesky(a @ tm.swapaxes(a, -1, -2)),
        "eigenvalues": lambda a: linalg.eigh(a)[0],
        "singular values": lambda a: linalg.svd(a, compute_uv=False),
        "pinv": linalg.pinv,
    }
    for name, op in ops.items():
        t = _leaf(stack_)
        out = op(t)
        seed = rng.standard_normal(out.shape)
        (g,) = tm.grad(out, t, grad_outputs=seed)
        for i in range(4):
            ti = _leaf(stack_[i])
            oi = op(ti)
            np.testing.assert_allclose(out.numpy()[i], oi.numpy(), rtol=1e-12, atol=1e-13, err_msg=name)
            (gi,) = tm.grad(oi, ti, grad_outputs=seed[i])
            np.testing.assert_allclose(g.numpy()[i], gi.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_solve_follows_numpy_2_shapes_and_broadcasts_batches() -> None:
    a = np.eye(3) * 2 + np.ones((2, 1, 3, 3)) * 0.1
    for b in (np.ones(3), np.ones((3, 2)), np.ones((4, 3, 1)), np.ones((2, 4, 3, 2))):
        out = linalg.solve(a, b)
        np.testing.assert_allclose(out.numpy(), np.linalg.solve(a, b), rtol=1e-13)
    with pytest.raises(ValueError, match=r"b must be \(n,\) or \(\.\.\., n, k\)"):
        linalg.solve(np.eye(3)[None].repeat(2, 0), np.ones((2, 3)))  # NumPy 2: (2, 3) is one (n, k) matrix
    t, b = _leaf(np.eye(2) * 3), _leaf(np.ones((5, 2, 1)))
    ga, gb = tm.grad(tm.sum(linalg.solve(t, b)), [t, b])  # a broadcast over b's batch: its gradient summed
    assert ga.shape == (2, 2) and gb.shape == (5, 2, 1)
    np.testing.assert_allclose(ga.numpy(), -5 * np.full((2, 2), 1 / 9), rtol=1e-13)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: linalg.inv(np.ones((2, 3))), r"inv: a must be square \(\.\.\., n, n\), got shape \(2, 3\)"),
        (lambda: linalg.det(np.ones(3)), r"det: a must be square .* got shape \(3,\)"),
        (lambda: linalg.solve(np.ones((2, 3)), np.ones(2)), r"solve: a must be square .* \(2, 3\)"),
        (lambda: linalg.solve(np.eye(2), np.ones(3)), r"b of shape \(3,\) does not fit a of shape \(2, 2\)"),
        (lambda: linalg.solve(np.ones((2, 2, 2)), np.ones((3, 2, 1))), "batch axes"),
        (lambda: linalg.eigh(np.eye(2), UPLO="X"), "UPLO must be 'L' or 'U'"),
        (lambda: linalg.cholesky(np.ones((3, 2))), "cholesky: a must be square"),
        (lambda: linalg.svd(np.ones(3)), r"svd: a must be a stack of matrices .* \(3,\)"),
        (lambda: linalg.norm(np.ones((2, 2, 2)), 1), "improper number of dimensions"),
        (lambda: linalg.norm(np.ones((2, 2)), "fro", axis=0), "invalid norm order 'fro' for vectors"),
        (lambda: linalg.norm(np.ones((2, 2)), 3), "invalid norm order 3 for matrices"),
        (lambda: linalg.norm(np.ones((2, 2)), axis=(0, 0)), "duplicate axes"),
    ],
)
def test_bad_arguments_say_what_is_wrong(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_norm_matches_numpy_for_every_order_it_supports() -> None:
    x = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0]])
    for ord_ in (None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
        np.testing.assert_allclose(linalg.norm(x, ord_).numpy(), np.linalg.norm(x, ord_), rtol=1e-13)
    for ord_ in (None, 0, 1, 2, 3, 0.5, np.inf, -np.inf):
        for axis in (0, 1, -1):
            for keepdims in (False, True):
                expected = np.linalg.norm(x, ord_, axis, keepdims)
                np.testing.assert_allclose(linalg.norm(x, ord_, axis, keepdims).numpy(), expected, rtol=1e-13)
    np.testing.assert_allclose(linalg.norm(np.ones((2, 3, 4)), keepdims=True).numpy(), np.sqrt(24) * np.ones((1, 1, 1)))


def test_plain_arrays_lists_integers_and_float32() -> None:
    np.testing.assert_allclose(linalg.solve([[2, 0], [0, 4]], [1, 1]).numpy(), [0.5, 0.25])
    assert linalg.det(np.eye(2, dtype=int)).dtype == np.float64  # integers become float64, as NumPy
    a32 = np.eye(2, dtype=np.float32) * 2
    for result in (linalg.inv(a32), linalg.det(a32), linalg.slogdet(a32)[1], linalg.cholesky(a32), linalg.pinv(a32)):
        assert result.dtype == np.float32
    assert linalg.eigh(a32).eigenvectors.dtype == np.float32 and linalg.svd(a32).S.dtype == np.float32
    assert linalg.norm(a32).dtype == np.float32


def test_namespace_and_named_results() -> None:
    assert tm.linalg.solve is linalg.solve
    assert set(tm.linalg.__all__) == {"solve", "inv", "det", "slogdet", "cholesky", "eigh", "svd", "norm", "pinv"}
    res = linalg.slogdet(np.eye(2))
    assert res.sign.item() == 1.0 and res.logabsdet.item() == 0.0
    assert linalg.eigh(np.eye(2))._fields == ("eigenvalues", "eigenvectors")
    assert linalg.svd(np.eye(2))._fields == ("U", "S", "Vh")
    assert "linalg.solve" in tm.ops.REGISTRY and "solve" not in tm.ops.__all__
