"""tinymeta.linalg beyond the generated checks of test_ops.py: closed forms, errors, degenerate points,
batches, and the namespace."""

from __future__ import annotations

import numpy as np
import pytest

import tinymeta as tm
from tinymeta import linalg
from tinymeta.testing import gradcheck, gradgradcheck

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
    (g,) = tm.grad(tm.sum(w * np.array([1.0, 1.0, 2.0])), a)  # tr(S) + w_3, w_3 simple: exact
    np.testing.assert_allclose(g.numpy(), np.diag([1.0, 1.0, 2.0]), atol=1e-15)
    with pytest.raises(ValueError, match="repeated eigenvalue"):
        tm.grad(tm.sum(v[:, 0] * np.array([1.0, 2.0, 3.0])), a)
    # Even the eigenspace's projector, whose derivative exists, is refused: the backward cannot tell
    # it from V diag(f(w)) V^T, whose within-eigenspace derivative f'(w) (V^T G V)_ij depends on f.
    projector = v[:, :2] @ tm.transpose(v[:, :2])
    with pytest.raises(ValueError, match="repeated eigenvalue"):
        tm.grad(tm.sum(projector * np.arange(9.0).reshape(3, 3)), a)


def test_svd_at_repeated_singular_values_and_full_matrices() -> None:
    a = _leaf(np.eye(2) * 2.0)
    (g,) = tm.grad(tm.sum(linalg.svd(a, compute_uv=False)), a)
    np.testing.assert_allclose(g.numpy(), np.eye(2), atol=1e-15)
    u, s, vh = linalg.svd(a)
    with pytest.raises(ValueError, match="repeated singular value"):
        tm.grad(tm.sum(u[:, 0] * np.array([1.0, 2.0])), a)
    wide = _leaf(np.arange(6.0).reshape(2, 3))
    u_full, s_full, vh_full = linalg.svd(wide)  # NumPy's full SVD: U (2, 2), Vh (3, 3)
    assert u_full.shape == (2, 2) and vh_full.shape == (3, 3)
    (g,) = tm.grad(s_full[0], wide)  # S of a full SVD differentiates: u_1 v_1^T
    np.testing.assert_allclose(g.numpy(), np.outer(u_full.numpy()[:, 0], vh_full.numpy()[0]), atol=1e-14)
    with pytest.raises(ValueError, match="extra rows of Vh .* full_matrices=False"):
        tm.grad(tm.sum(linalg.svd(wide).Vh ** 2 * np.arange(9.0).reshape(3, 3)), wide)

    # The square factor of a full SVD is the thin one: it differentiates (u_1 u_1^T, sign-invariant).
    def top_left_projector(z):  # noqa: ANN001, ANN202
        u = linalg.svd(z).U[:, 0]
        return tm.sum(u[:, None] * u[None, :] * np.array([[1.0, 2.0], [3.0, 5.0]]))

    (g,) = tm.grad(top_left_projector(wide), wide)
    np.testing.assert_allclose(g.numpy(), _central_gradient(_value(top_left_projector), wide.numpy()), atol=1e-8)
    with tm.no_grad():  # without a graph, NumPy's full SVD
        assert linalg.svd(wide).Vh.shape == (3, 3)
    u, s, vh = linalg.svd(wide, full_matrices=False)
    np.testing.assert_allclose((u * s[None, :] @ vh).numpy(), wide.numpy(), atol=1e-13)


def test_norm_at_zero_has_zero_gradient_like_abs() -> None:
    x = _leaf(np.zeros((2, 3)))
    for y in (linalg.norm(x), linalg.norm(x, axis=1), linalg.norm(x, "fro")):
        (g,) = tm.grad(tm.sum(y), x)
        assert np.all(g.numpy() == 0)


# ---- eigh and svd: separate factors, ties, zero singular values ----------------------------------------


def _central_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:  # noqa: ANN001
    """Central differences of the scalar function f (NumPy array -> float), entry by entry: truncation
    eps^2 |f^(3)| / 6 plus rounding ~1e-16 |f| / eps, so ~1e-10 for the O(1) functions below."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def _value(f):  # noqa: ANN001, ANN202
    return lambda x: f(tm.tensor(x)).item()


@pytest.mark.parametrize("transpose", [False, True])
def test_largest_singular_value_of_a_rank_deficient_non_square_matrix_has_its_exact_gradient(transpose) -> None:
    # s_1 = 1 is simple and positive, so differentiable, with gradient u_1 v_1^T; the zero singular
    # value's u (or v) is arbitrary but enters only through g_s = 0 (this was 0/0 = NaN everywhere).
    x = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    x = x.T.copy() if transpose else x
    losses = {
        "norm 2": lambda t: linalg.norm(t, 2),
        "S alone": lambda t: linalg.svd(t, compute_uv=False)[0],
        "S of the thin SVD": lambda t: linalg.svd(t, full_matrices=False).S[0],
    }
    for name, f in losses.items():
        t = _leaf(x)
        (g,) = tm.grad(f(t), t)
        np.testing.assert_allclose(g.numpy(), x, atol=1e-15, err_msg=name)
        np.testing.assert_allclose(_central_gradient(_value(f), x), x, atol=1e-8, err_msg=name)
    rank_one = np.outer([1.0, -2.0, 0.5, 1.5], [0.3, 1.0, -0.7])  # 4 x 3, two zero singular values
    u, s, vh = np.linalg.svd(rank_one)
    t = _leaf(rank_one)
    (g,) = tm.grad(linalg.svd(t, compute_uv=False)[0], t)
    np.testing.assert_allclose(g.numpy(), np.outer(u[:, 0], vh[0]), atol=1e-15)
    numeric = _central_gradient(_value(lambda z: linalg.norm(z, 2)), rank_one)
    np.testing.assert_allclose(g.numpy(), numeric, atol=1e-8)


def test_eigenvectors_at_a_repeated_eigenvalue_raise_even_where_their_cotangent_is_zero() -> None:
    # L(S) = sum((V diag(w - 1) V^T) * C) = sum((S - I) * C): at S = I, g_V = 2 C V diag(w - 1) = 0,
    # yet the gradient is C (on the triangle read), not the diag(C) that V diag(g_w) V^T alone gives.
    c = np.arange(9.0).reshape(3, 3)

    def loss(t):  # noqa: ANN001, ANN202
        w, v = linalg.eigh(t)
        return tm.sum(((v * (w - 1.0)[None, :]) @ tm.transpose(v)) * c)

    t = _leaf(np.eye(3))
    with pytest.raises(
        ValueError, match=r"eigenvalues 0 and 1 of the matrix are equal \(1\.0, a repeated eigenvalue\)"
    ):
        tm.grad(loss(t), t)
    with pytest.raises(ValueError, match=r"eigenvalues alone \(eigh\(a\)\.eigenvalues\) differentiate fine"):
        tm.grad(loss(t), t)
    # At distinct eigenvalues the same loss has its exact gradient: tril(C + C^T) - diag(C).
    exact = np.tril(c + c.T) - np.diag(np.diag(c))
    t = _leaf(A + A.T)
    (g,) = tm.grad(loss(t), t)
    np.testing.assert_allclose(g.numpy(), exact, rtol=1e-12, atol=1e-12)
    # Only the matrices with a tie matter, and the message says which one.
    t = _leaf(np.stack([A + A.T, np.diag([2.0, 5.0, 5.0])]))
    with pytest.raises(ValueError, match=r"eigenvalues 1 and 2 of the matrix at batch index \(1,\) are equal"):
        tm.grad(tm.sum(linalg.eigh(t).eigenvectors ** 2 * np.arange(9.0).reshape(3, 3)), t)


def test_eigenvalues_alone_differentiate_at_a_repeated_eigenvalue_and_refuse_second_order() -> None:
    # w_1 + w_2 + 2 w_3 = tr(S) + w_3 with w_3 simple: smooth, gradient I + v_3 v_3^T (lower triangle).
    q = np.linalg.qr(np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0], [2.0, 0.3, -1.0]]))[0]
    s = q @ np.diag([1.0, 1.0, 3.0]) @ q.T

    def f(t):  # noqa: ANN001, ANN202
        return tm.sum(linalg.eigh(t).eigenvalues * np.array([1.0, 1.0, 2.0]))

    t = _leaf(s)
    (g,) = tm.grad(f(t), t)
    full = np.eye(3) + np.outer(q[:, 2], q[:, 2])
    np.testing.assert_allclose(g.numpy(), np.tril(2 * full) - np.diag(np.diag(full)), atol=1e-14)
    np.testing.assert_allclose(g.numpy(), _central_gradient(_value(f), s), atol=1e-8)
    # The second derivatives go through the eigenvectors: refused at the tie rather than guessed, an
    # exact one or (q's rounding splits the one above by ~1e-16) one to working precision.
    for x, how in [(np.diag([1.0, 1.0, 3.0]), r"are equal \(1\.0, a"), (s, "are equal to working precision")]:
        t = _leaf(x)
        (g,) = tm.grad(f(t), t, create_graph=True)
        with pytest.raises(ValueError, match=f"eigenvalues 0 and 1 of the matrix {how}"):
            tm.grad(tm.sum(g * g), t)


def test_eigenvectors_of_eigenvalues_equal_to_working_precision_are_refused_too() -> None:
    # eigh(q diag(1, 1, 3) q^T) has w_1, w_2 ~1e-16 apart: LAPACK's v_1, v_2 are an arbitrary basis of
    # their plane, and 1 / (w_2 - w_1) ~ 1e16 turned rounding errors into O(1) errors, silently: the
    # gradient of the plane's projector (which exists) came out wrong, and V diag(exp(w)) V^T's too.
    q = np.linalg.qr(np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0], [2.0, 0.3, -1.0]]))[0]
    s = q @ np.diag([1.0, 1.0, 3.0]) @ q.T
    w = np.linalg.eigvalsh(s)
    assert 0 < abs(w[1] - w[0]) < 1e-14 or w[1] == w[0]
    c = np.arange(9.0).reshape(3, 3)
    t = _leaf(s)
    v = linalg.eigh(t).eigenvectors
    with pytest.raises(ValueError, match="eigenvalues 0 and 1 of the matrix are equal"):
        tm.grad(tm.sum((v[:, :2] @ tm.transpose(v[:, :2])) * c), t)
    # Eigenvalues well apart (here 0.5) are not ties: the projector's gradient matches the differences.
    x = q @ np.diag([1.0, 1.5, 3.0]) @ q.T

    def projector(z):  # noqa: ANN001, ANN202
        v = linalg.eigh(z).eigenvectors
        return tm.sum((v[:, :2] @ tm.transpose(v[:, :2])) * c)

    t = _leaf(x)
    (g,) = tm.grad(projector(t), t)
    np.testing.assert_allclose(g.numpy(), _central_gradient(_value(projector), x), atol=1e-8)


def test_singular_vectors_raise_where_undetermined_and_differentiate_elsewhere() -> None:
    c = np.arange(9.0).reshape(3, 3)
    t = _leaf(np.eye(3))
    u, s, vh = linalg.svd(t)  # U diag(exp(s)) Vh, expm-like: its true gradient e C needs f'(1)
    with pytest.raises(ValueError, match=r"singular values 0 and 1 of the matrix \(of shape 3 x 3\) are equal"):
        tm.grad(tm.sum(((u * tm.exp(s)[None, :]) @ vh) * c), t)
    # Rank 1, 3 x 2: s = (s_1, 0) (exactly: a zero column). The null space of a (v_2) is determined;
    # u_2 is any unit vector orthogonal to u_1. The other way round for the 2 x 3 transpose.
    tall = np.array([[1.0, 0.0], [-2.0, 0.0], [0.5, 0.0]])
    for x, undetermined, free in [(tall, "U", "Vh"), (tall.T.copy(), "Vh", "U")]:
        t = _leaf(x)
        factor = getattr(linalg.svd(t, full_matrices=False), undetermined)
        weights = np.arange(float(factor.size)).reshape(factor.shape)
        message = rf"singular value 1 .* is zero, and the gradient goes .*\({undetermined}\)"
        with pytest.raises(ValueError, match=message):
            tm.grad(tm.sum(factor**2 * weights), t)

        def projector(z, free=free):  # noqa: ANN001, ANN202  (the free side's first singular vector)
            w = getattr(linalg.svd(z, full_matrices=False), free)
            w = w[:, 0] if free == "U" else w[0]
            return tm.sum(w[:, None] * w[None, :] * np.arange(float(w.size**2)).reshape(w.size, w.size))

        (g,) = tm.grad(projector(t), t)
        np.testing.assert_allclose(g.numpy(), _central_gradient(_value(projector), x), atol=1e-8, err_msg=free)
    # A square matrix with one zero singular value: U and Vh are determined (up to a joint sign).
    square = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 1.0], [3.0, 4.0, 1.0]])  # row 3 = row 1 + row 2

    def null_pair(z):  # noqa: ANN001, ANN202  (u_3 u_3^T and v_3 v_3^T: sign-invariant, smooth)
        u, _, vh = linalg.svd(z)
        return tm.sum((u[:, 2:] @ tm.transpose(u[:, 2:])) * c) + tm.sum((tm.transpose(vh[2:]) @ vh[2:]) * c.T)

    t = _leaf(square)
    (g,) = tm.grad(null_pair(t), t)
    np.testing.assert_allclose(g.numpy(), _central_gradient(_value(null_pair), square), atol=1e-8)


def test_factors_are_fresh_arrays_and_writing_into_them_changes_no_gradient() -> None:
    s = A + A.T
    c = np.array([1.0, -2.0, 0.5])
    for decompose, k in [(linalg.eigh, 0), (linalg.svd, 1)]:  # k: where the values are
        t = _leaf(s)
        arrays = [o.numpy() for o in decompose(t)]
        for i, x in enumerate(arrays):
            assert not np.shares_memory(x, t.numpy())
            assert not any(np.shares_memory(x, y) for y in arrays[:i])
        (before,) = tm.grad(tm.sum(decompose(t)[k] * c), t)
        out = decompose(t)
        loss = tm.sum(out[k] * c)  # (mul's backward reads c, not the values)
        for o in out:
            o.numpy()[...] = 7.0  # the user's arrays: the backward must not read them
        (after,) = tm.grad(loss, t)
        np.testing.assert_array_equal(before.numpy(), after.numpy())


# ---- det at singular matrices: the Hessian at any rank ---------------------------------------------------


def _cofactor(a: np.ndarray) -> np.ndarray:
    n = a.shape[0]
    out = np.zeros_like(a)
    for i in range(n):
        for j in range(n):
            minor = np.delete(np.delete(a, i, 0), j, 1)
            out[i, j] = (-1) ** (i + j) * (np.linalg.det(minor) if minor.size else 1.0)
    return out


def _det_hessian(a: np.ndarray) -> np.ndarray:
    """d^2 det / da_ij da_km = o (-1)^(i+j+k+m) det(a without rows i, k and columns j, m) for i != k
    and j != m (o = -1 where the pairs are in opposite orders, i < k and j > m or the reverse), 0
    otherwise: the closed form, (n, n, n, n)."""
    n = a.shape[0]
    h = np.zeros((n, n, n, n))
    for i, j, k, m in np.ndindex(n, n, n, n):
        if i != k and j != m:
            minor = np.delete(np.delete(a, [i, k], 0), [j, m], 1)
            order = 1.0 if (i < k) == (j < m) else -1.0
            h[i, j, k, m] = order * (-1) ** (i + j + k + m) * (np.linalg.det(minor) if minor.size else 1.0)
    return h


def _singular_matrix(n: int, rank: int, seed: int, zero_rows: bool = False) -> np.ndarray:
    """An n x n matrix of the given rank: rank random rows in [-2, 2], mixed at random positions
    among n - rank rows that are combinations of them (generic: its zero singular values come out of
    LAPACK as distinct ~1e-16 numbers) or, with ``zero_rows``, zeros (exactly zero singular values,
    all tied: the case the SVD's derivative cannot handle)."""
    rng = np.random.default_rng(seed)
    rows = rng.uniform(-2.0, 2.0, (rank, n))
    mix = np.zeros((n - rank, rank)) if zero_rows else rng.uniform(-1.0, 1.0, (n - rank, rank))
    return np.concatenate([rows, mix @ rows])[rng.permutation(n)]


@pytest.mark.parametrize("n, nullity", [(n, nullity) for n in (2, 3, 4) for nullity in range(1, n + 1)])
def test_det_gradient_and_hessian_at_singular_matrices_of_every_rank(n, nullity) -> None:
    for seed in range(4):
        x = _singular_matrix(n, n - nullity, seed, zero_rows=seed % 2 == 0)
        t = _leaf(x)
        (g,) = tm.grad(linalg.det(t), t, create_graph=True)
        # The cofactor matrix, of O(1) entries here: rounding through the SVD's rotations ~1e-15 each.
        np.testing.assert_allclose(g.numpy(), _cofactor(x), atol=1e-12)
        hessian = np.stack([tm.grad(gi, t)[0].numpy() for gi in tm.reshape(g, (-1,))]).reshape(n, n, n, n)
        np.testing.assert_allclose(hessian, _det_hessian(x), atol=1e-12)
        # The closed form, itself checked by central differences of the cofactor (a polynomial of
        # degree n - 1 <= 3): truncation eps^2 / 6 * O(10) ~ 2e-8 for eps = 1e-4, rounding ~1e-12.
        numeric = np.stack([_central_gradient(lambda z, k=k: _cofactor(z).ravel()[k], x, 1e-4) for k in range(n * n)])
        np.testing.assert_allclose(hessian.reshape(n * n, n * n), numeric.reshape(n * n, n * n), atol=1e-6)


def test_det_derivatives_at_the_zero_matrix_in_closed_form() -> None:
    h = tm.hessian(linalg.det, tm.tensor(np.zeros((2, 2)))).numpy().reshape(4, 4)
    np.testing.assert_array_equal(h, [[0, 0, 0, 1], [0, 0, -1, 0], [0, -1, 0, 0], [1, 0, 0, 0]])  # was missing -bc
    h = tm.hessian(linalg.det, tm.tensor(np.diag([1.0, 0.0, 0.0]))).numpy().reshape(3, 3, 3, 3)
    np.testing.assert_allclose(h, _det_hessian(np.diag([1.0, 0.0, 0.0])), atol=1e-15)  # was off by 1
    # det(x + tE) is a cubic in t; its derivatives at t = 0 along E are those of det at x along E:
    # at x = 0, det(tE) = t^3 det(E), so 0, 0 and 6 det(E).
    e = np.array([[1.0, 2.0, 0.5], [-1.0, 0.3, 2.0], [0.7, -0.4, 1.0]])
    for x in (np.zeros((3, 3)), _singular_matrix(3, 1, 0)):
        cubic = np.polynomial.polynomial.polyfit(
            [-1.0, 0.0, 1.0, 2.0], [np.linalg.det(x + k * e) for k in (-1, 0, 1, 2)], 3
        )
        t = _leaf(x)
        (g,) = tm.grad(linalg.det(t), t, create_graph=True)
        (h,) = tm.grad(tm.sum(g * e), t, create_graph=True)
        (third,) = tm.grad(tm.sum(h * e), t)
        np.testing.assert_allclose(np.sum(g.numpy() * e), cubic[1], atol=1e-12)
        np.testing.assert_allclose(np.sum(h.numpy() * e), 2 * cubic[2], atol=1e-12)
        np.testing.assert_allclose(np.sum(third.numpy() * e), 6 * cubic[3], rtol=1e-12)
        np.testing.assert_allclose(6 * cubic[3], 6 * np.linalg.det(e), rtol=1e-12)


def test_det_derivatives_near_a_singular_matrix_keep_their_accuracy() -> None:
    # A 3 x 3 determinant is a cubic: its third derivative along E is 6 det(E) at every matrix. Through
    # det(a) a^{-T} it lost ~1e-4 at diag(2, 3, 1e-6) (terms kappa^3 times larger than the result
    # cancel); the ill-conditioned matrices go through the SVD, exact there as at singular ones.
    e = np.array([[1.0, 2.0, 0.5], [-1.0, 0.3, 2.0], [0.7, -0.4, 1.0]])
    for x in (np.diag([2.0, 3.0, 1e-6]), np.diag([2.0, 3.0, -1e-9]), _singular_matrix(3, 2, 1) + 1e-8 * e):
        t = _leaf(x)
        (g,) = tm.grad(linalg.det(t), t, create_graph=True)
        (h,) = tm.grad(tm.sum(g * e), t, create_graph=True)
        (third,) = tm.grad(tm.sum(h * e), t)
        np.testing.assert_allclose(g.numpy(), _cofactor(x), atol=1e-13)
        np.testing.assert_allclose(h.numpy(), np.einsum("ijkl,ij->kl", _det_hessian(x), e), atol=1e-12)
        np.testing.assert_allclose(np.sum(third.numpy() * e), 6 * np.linalg.det(e), rtol=1e-12)


def test_det_of_a_stack_mixing_singular_and_invertible_matrices() -> None:
    stack_ = np.stack([A, _singular_matrix(3, 1, 1), np.zeros((3, 3))])
    t = _leaf(stack_)
    (g,) = tm.grad(tm.sum(linalg.det(t)), t, create_graph=True)
    e = np.random.default_rng(3).standard_normal((3, 3, 3))
    (h,) = tm.grad(tm.sum(g * e), t)
    for i in range(3):
        np.testing.assert_allclose(g.numpy()[i], _cofactor(stack_[i]), atol=1e-12)
        expected = np.einsum("ijkl,ij->kl", _det_hessian(stack_[i]), e[i])
        np.testing.assert_allclose(h.numpy()[i], expected, atol=1e-12)


# ---- p-norms at zero, empty norms ---------------------------------------------------------------------


@pytest.mark.parametrize("ord_", [3, 1.5, 0.5, -1, -1.5])
def test_p_norms_at_zero_have_zero_derivatives_and_elsewhere_the_exact_ones(ord_) -> None:
    # At x = 0 every p-norm is |x|-like (a kink): 0, abs's subgradient (PyTorch gives 0 too), and so are
    # its higher derivatives. Was NaN for every p but 1, 2 and inf.
    x = _leaf(np.zeros(3))
    with np.errstate(divide="ignore"):  # NumPy's own 0 ** p, p < 0, warns
        (g,) = tm.grad(linalg.norm(x, ord_), x, create_graph=True)
    np.testing.assert_array_equal(g.numpy(), np.zeros(3))
    (h,) = tm.grad(tm.sum(g), x)
    np.testing.assert_array_equal(h.numpy(), np.zeros(3))
    # A zero entry among nonzero ones: |x|^p has derivative 0 there for p > 1 (exact), a kink for
    # 0 < p <= 1 (0 by convention, with the exact derivative elsewhere); for p < 0 the norm is 0 there,
    # and |x_1|-like: 0.
    y = np.array([0.0, 1.0, -2.0])
    t = _leaf(y)
    with np.errstate(divide="ignore"):  # NumPy's own 0 ** p, p < 0, warns
        (g,) = tm.grad(linalg.norm(t, ord_), t)
    if ord_ > 1:
        np.testing.assert_allclose(g.numpy(), _central_gradient(_value(lambda z: linalg.norm(z, ord_)), y), atol=1e-8)
    elif ord_ > 0:
        rest = y[1:]
        exact = np.sign(rest) * (np.abs(rest) / np.linalg.norm(rest, ord_)) ** (ord_ - 1)
        np.testing.assert_allclose(g.numpy(), [0.0, *exact], rtol=1e-13)
    else:
        np.testing.assert_array_equal(g.numpy(), np.zeros(3))
    z = np.array([0.5, -1.0, 2.0, 1.5])
    assert gradcheck(lambda u: linalg.norm(u, ord_), [z])
    assert gradgradcheck(lambda u: linalg.norm(u, ord_), [z])


def test_max_type_norms_of_empty_arrays_are_zero_as_numpy() -> None:
    for shape, axis in [((0,), None), ((0, 3), 0), ((3, 0), 1), ((0, 3), 1)]:
        for ord_ in (np.inf, 1, 2, 3, None):
            expected = np.linalg.norm(np.zeros(shape), ord_, axis)
            np.testing.assert_array_equal(linalg.norm(np.zeros(shape), ord_, axis).numpy(), expected)
    for shape in [(0, 0), (0, 3), (3, 0)]:
        for ord_ in ("fro", "nuc", 1, 2, np.inf):
            assert linalg.norm(np.zeros(shape), ord_).item() == np.linalg.norm(np.zeros(shape), ord_) == 0.0
        x = _leaf(np.zeros(shape))
        (g,) = tm.grad(linalg.norm(x, 2), x)
        assert g.shape == shape
    with pytest.raises(ValueError, match="zero-size array"):  # NumPy raises too: min has no identity
        linalg.norm(np.zeros(0), -np.inf)


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


def test_vectors_next_to_a_near_tie_the_cotangent_does_not_touch_differentiate() -> None:
    # PCA of a rank-deficient covariance: X^T X (5 x 5, rank 3) has two eigenvalues ~1e-16 apart, equal
    # to working precision; the top eigenvector is simple, and its projector's gradient (and the largest
    # singular vector's, through svd) exists: the near-tied pair, which the cotangent does not touch, is
    # left out, not refused.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5))
    cov = x.T @ x
    c = rng.standard_normal((5, 5))

    def top_projector(z):  # noqa: ANN001, ANN202
        v = linalg.eigh(z).eigenvectors[:, -1]
        return tm.sum(v[:, None] * v[None, :] * c)

    t = _leaf(cov)
    (g,) = tm.grad(top_projector(t), t)
    np.testing.assert_allclose(g.numpy(), _central_gradient(_value(top_projector), cov), atol=1e-7)
    y = rng.standard_normal((6, 2)) @ rng.standard_normal((2, 4))  # rank 2: two zero singular values

    def top_right_vector(z):  # noqa: ANN001, ANN202
        v = linalg.svd(z, full_matrices=False).Vh[0]
        return tm.sum(v[:, None] * v[None, :] * c[:4, :4])

    t = _leaf(y)
    (g,) = tm.grad(top_right_vector(t), t)
    np.testing.assert_allclose(g.numpy(), _central_gradient(_value(top_right_vector), y), atol=1e-7)
    # Second order of a simple value beside a near-tied pair: the Hessian of the largest eigenvalue of
    # q diag(1, 1, 3) q^T and of ||B||_2 at a rank-2 4 x 3 matrix, against differences of the gradient.
    q = np.linalg.qr(np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 1.0], [2.0, 0.3, -1.0]]))[0]
    s = q @ np.diag([1.0, 1.0, 3.0]) @ q.T
    b = rng.standard_normal((4, 2)) @ rng.standard_normal((2, 3))
    for point, f in [(s, lambda z: linalg.eigh(z).eigenvalues[-1]), (b, lambda z: linalg.norm(z, 2))]:
        direction = rng.standard_normal(point.shape)
        _, hv = tm.hvp(f, tm.tensor(point), tm.tensor(direction))

        def gradient(z, f=f):  # noqa: ANN001, ANN202
            t = _leaf(z)
            return tm.grad(f(t), t)[0].numpy()

        h = 1e-5  # central differences of an exact gradient: ~h^2 truncation, ~eps / h rounding
        numeric = (gradient(point + h * direction) - gradient(point - h * direction)) / (2 * h)
        np.testing.assert_allclose(hv.numpy(), numeric, atol=1e-8)


def test_an_exactly_tied_padding_matrix_in_a_stack_is_named() -> None:
    # Exact ties are refused whatever the cotangent (zero included: a loss that masks the matrix out
    # cannot be told from one whose cotangent vanishes at the point); the message says which matrix.
    stack = np.stack([np.diag([1.0, 2.0, 4.0]) + 0.1, np.eye(3)])
    t = _leaf(stack)
    v = linalg.eigh(t).eigenvectors
    with pytest.raises(ValueError, match=r"batch index \(1,\) are equal.*give it distinct eigenvalues"):
        tm.grad(tm.sum(v[0] ** 2 * np.arange(9.0).reshape(3, 3)), t)
