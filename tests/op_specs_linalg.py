"""Gradient specifications of the linalg family (see op_specs.py: the strategies and the Case/Edge/OpSpec types).

The matrices are built to be well conditioned, so that finite differences (eps = 1e-6) and float32
measure the derivative and not the conditioning:

- general square matrices X + (n + 1) I with X in [-1, 1]: every singular value is in [1, 2n + 1]
  (||X||_2 <= n), and a flipped first row gives negative determinants too;
- symmetric positive definite matrices X X^T / n + I (eigenvalues in [1, n + 1]), with arbitrary
  values in the triangle LAPACK does not read (their derivative must be zero);
- for eigh and svd, Q diag(w) Q^T and Q1 diag(s) Q2^T with Q from a QR factorisation and eigenvalues
  or singular values at least 0.5 apart (and s >= 0.5), so 1/(w_j - w_i) and 1/s stay O(1).

Eigenvectors and singular vectors have LAPACK's signs: the checked functions of them are
sign-invariant (the projectors v_k v_k^T, the rank-one terms u_k v_k^T). Ops that return several
tensors are checked through one tensor holding them, flattened and joined.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from op_specs import Case, Edge, OpSpec, values

import tinymeta as tm

BATCHES = [(), (2,), (2, 1)]


def _sizes() -> st.SearchStrategy[int]:
    return st.integers(1, 3)


@st.composite
def square_matrices(draw: st.DrawFn, batch: tuple[int, ...], n: int) -> np.ndarray:
    """X + (n + 1) I, X in [-1, 1]: singular values in [1, 2n + 1]; sometimes the first row negated."""
    a = draw(values(batch + (n, n), -1.0, 1.0)) + (n + 1) * np.eye(n)
    if draw(st.booleans()):
        a[..., 0, :] *= -1
    return a


@st.composite
def spd_matrices(draw: st.DrawFn, batch: tuple[int, ...], n: int, lower: bool = True) -> np.ndarray:
    """X X^T / n + I (eigenvalues in [1, n + 1]) in the triangle read, arbitrary values in the other."""
    x = draw(values(batch + (n, n), -1.0, 1.0))
    s = x @ np.swapaxes(x, -1, -2) / n + np.eye(n)
    junk = draw(values(batch + (n, n), -3.0, 3.0))
    return np.tril(s) + np.triu(junk, 1) if lower else np.triu(s) + np.tril(junk, -1)


@st.composite
def orthogonal(draw: st.DrawFn, batch: tuple[int, ...], n: int) -> np.ndarray:
    return np.linalg.qr(draw(values(batch + (n, n), -1.0, 1.0)))[0]


@st.composite
def spread(draw: st.DrawFn, batch: tuple[int, ...], k: int, low: float) -> np.ndarray:
    """k values per batch entry, low + 0.7 j + jitter (j a permutation of 0..k-1): at least 0.5 apart."""
    order = np.array(draw(st.permutations(range(k))), dtype=np.float64)
    return low + 0.7 * order + draw(values(batch + (k,), 0.0, 0.2))


@st.composite
def solve_case(draw: st.DrawFn) -> Case:
    n = draw(_sizes())
    a = draw(square_matrices(draw(st.sampled_from([(), (2,)])), n))
    form = draw(st.sampled_from(["vector", "matrix"]))
    if form == "vector":
        b = draw(values((n,)))
    else:
        b = draw(values(draw(st.sampled_from([(), (1,), (2,)])) + (n, draw(st.integers(1, 2)))))
    return Case([a, b], tm.linalg.solve, np.linalg.solve, f"b {form}")


def square_case(fn, ref) -> st.SearchStrategy[Case]:  # noqa: ANN001
    return st.builds(
        lambda a: Case([a], fn, ref),
        st.tuples(st.sampled_from(BATCHES), _sizes()).flatmap(lambda bn: square_matrices(*bn)),
    )


@st.composite
def slogdet_case(draw: st.DrawFn) -> Case:
    a = draw(square_matrices(draw(st.sampled_from(BATCHES)), draw(_sizes())))

    def fn(t: tm.Tensor) -> tm.Tensor:
        sign, logdet = tm.linalg.slogdet(t)
        return tm.stack([tm.astype(sign, logdet.dtype), logdet])

    def ref(x: np.ndarray) -> np.ndarray:
        return np.stack(np.linalg.slogdet(x))

    return Case([a], fn, ref)


@st.composite
def cholesky_case(draw: st.DrawFn) -> Case:
    upper = draw(st.booleans())
    a = draw(spd_matrices(draw(st.sampled_from(BATCHES)), draw(_sizes()), lower=not upper))
    return Case(
        [a],
        lambda t: tm.linalg.cholesky(t, upper=upper),
        lambda x: np.linalg.cholesky(x, upper=upper),
        f"upper={upper}",
    )


def _projectors(xp, v):  # noqa: ANN001, ANN202
    """v_k v_k^T for every column k of v (..., n, n), flattened: sign-invariant."""
    p = xp.einsum("...ik,...jk->...kij", v, v)
    return xp.reshape(p, p.shape[:-3] + (-1,))


@st.composite
def eigh_case(draw: st.DrawFn) -> Case:
    batch, n = draw(st.sampled_from(BATCHES)), draw(_sizes())
    q, w = draw(orthogonal(batch, n)), draw(spread(batch, n, -1.0))
    s = q @ (w[..., :, None] * np.swapaxes(q, -1, -2))
    uplo = draw(st.sampled_from(["L", "U"]))
    junk = draw(values(batch + (n, n)))
    a = np.tril(s) + np.triu(junk, 1) if uplo == "L" else np.triu(s) + np.tril(junk, -1)

    def fn(t: tm.Tensor) -> tm.Tensor:
        w, v = tm.linalg.eigh(t, uplo)
        return tm.concatenate([w, _projectors(tm, v)], axis=-1)

    def ref(x: np.ndarray) -> np.ndarray:
        w, v = np.linalg.eigh(x, uplo)
        return np.concatenate([w, _projectors(np, v)], axis=-1)

    return Case([a], fn, ref, f"UPLO={uplo}")


@st.composite
def low_rank_free_matrices(draw: st.DrawFn, batch: tuple[int, ...], m: int, n: int) -> np.ndarray:
    """Q1 diag(s) Q2^T (m, n) with singular values s >= 0.5, at least 0.5 apart."""
    k = min(m, n)
    q1, q2 = draw(orthogonal(batch, m)), draw(orthogonal(batch, n))
    s = draw(spread(batch, k, 0.5))
    return (q1[..., :, :k] * s[..., None, :]) @ np.swapaxes(q2[..., :, :k], -1, -2)


@st.composite
def svd_case(draw: st.DrawFn) -> Case:
    batch, m, n = draw(st.sampled_from(BATCHES)), draw(_sizes()), draw(_sizes())
    a = draw(low_rank_free_matrices(batch, m, n))
    form = draw(st.sampled_from(["thin", "full" if m == n else "thin", "values"]))

    def joined(xp, u, s, vh):  # noqa: ANN001, ANN202
        terms = xp.einsum("...ik,...kj->...kij", u, vh)  # u_k v_k^T: sign-invariant
        return xp.concatenate([s, xp.reshape(terms, terms.shape[:-3] + (-1,))], axis=-1)

    if form == "values":
        return Case([a], lambda t: tm.linalg.svd(t, compute_uv=False), lambda x: np.linalg.svd(x, compute_uv=False))
    full = form == "full"
    return Case(
        [a],
        lambda t: joined(tm, *tm.linalg.svd(t, full_matrices=full)),
        lambda x: joined(np, *np.linalg.svd(x, full_matrices=full)),
        form,
    )


@st.composite
def signed_distinct(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """Magnitudes 0.5 + 2^j / 2^(N-1) (j a permutation of 0..N-1) with random signs: |x| >= 0.5 away
    from abs's kink, and sums of different sets of them differ (binary expansions), so max and min
    over the entries or over row and column sums never tie."""
    size = int(np.prod(shape))
    order = np.array(draw(st.permutations(range(size))), dtype=np.float64)
    signs = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=size, max_size=size)))
    return ((0.5 + 2.0**order / 2.0 ** max(size - 1, 0)) * signs).reshape(shape)


@st.composite
def norm_case(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["all", "vector", "matrix", "spectral"]))
    if kind == "all":  # ord None, axis None: every element, any shape
        shape = draw(st.sampled_from([(3,), (2, 3), (2, 1, 2)]))
        x, ord_, axis = draw(signed_distinct(shape)), None, None
    elif kind == "vector":
        shape = draw(st.sampled_from([(3,), (2, 3), (2, 3, 2)]))
        x = draw(signed_distinct(shape))
        ord_ = draw(st.sampled_from([None, 2, 1, np.inf, -np.inf, 3, 0.5, -1.5]))
        axis = draw(st.integers(-len(shape), len(shape) - 1)) if len(shape) > 1 else draw(st.sampled_from([None, 0]))
    elif kind == "matrix":
        ord_ = draw(st.sampled_from([None, "fro", 1, -1, np.inf, -np.inf]))
        shape = draw(st.sampled_from([(2, 3), (3, 3), (3, 2)] + ([(2, 2, 3)] if ord_ in (None, "fro") else [])))
        x = draw(signed_distinct(shape))
        axis = None if len(shape) == 2 else draw(st.sampled_from([(1, 2), (2, 0), (-1, -2)]))
    else:
        ord_ = draw(st.sampled_from(["nuc", 2, -2]))
        batch = draw(st.sampled_from([(), (2,)]))
        x = draw(low_rank_free_matrices(batch, draw(_sizes()), draw(_sizes())))
        axis = None if not batch else draw(st.sampled_from([(1, 2), (2, 1)]))
    keepdims = draw(st.booleans())
    note = f"ord={ord_}, axis={axis}, keepdims={keepdims}"
    return Case(
        [x],
        lambda t: tm.linalg.norm(t, ord_, axis, keepdims),
        lambda a: np.linalg.norm(a, ord_, axis, keepdims),
        note,
    )


@st.composite
def pinv_case(draw: st.DrawFn) -> Case:
    a = draw(low_rank_free_matrices(draw(st.sampled_from([(), (2,)])), draw(_sizes()), draw(_sizes())))
    return Case([a], tm.linalg.pinv, np.linalg.pinv)


SINGULAR = np.array([[1.0, 2.0], [2.0, 4.0]])

LINALG_SPECS: list[OpSpec] = [
    OpSpec("linalg.solve", solve_case(), third_order=True),
    OpSpec("linalg.inv", square_case(tm.linalg.inv, np.linalg.inv), third_order=True),
    OpSpec(
        "linalg.det",
        square_case(tm.linalg.det, np.linalg.det),
        third_order=True,
        edges=[
            # The cofactor matrix [[d, -c], [-b, a]], through the SVD (A^{-1} does not exist); the sum of
            # its entries is a - b - c + d, whose gradient is [[1, -1], [-1, 1]] and third derivative 0.
            Edge(
                "a singular matrix: the gradient is the cofactor matrix",
                tm.linalg.det,
                [SINGULAR],
                0.0,
                [np.array([[4.0, -2.0], [-2.0, 1.0]]), np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros((2, 2))],
            ),
            # Rank n - 2: both singular values are zero (tied), so the SVD's derivative cannot give the
            # second derivative; ad - bc has it all the same: the cofactor matrix is 0 there, and the
            # gradient of the sum of its entries a - b - c + d is [[1, -1], [-1, 1]].
            Edge(
                "the zero matrix: the Hessian of ad - bc",
                tm.linalg.det,
                [np.zeros((2, 2))],
                0.0,
                [np.zeros((2, 2)), np.array([[1.0, -1.0], [-1.0, 1.0]]), np.zeros((2, 2))],
            ),
        ],
    ),
    OpSpec("linalg.slogdet", slogdet_case(), third_order=True),
    OpSpec("linalg.cholesky", cholesky_case(), third_order=True),
    OpSpec(
        "linalg.eigh",
        eigh_case(),
        edges=[
            # A repeated eigenvalue: the eigenvalues' sum (the trace) differentiates, V diag(1) V^T = I;
            # its second derivative would go through the eigenvectors, which have none there.
            Edge(
                "the eigenvalues' sum at a repeated eigenvalue",
                lambda x: tm.sum(tm.linalg.eigh(x).eigenvalues),
                [np.eye(2)],
                2.0,
                [np.eye(2)],
            )
        ],
    ),
    OpSpec(
        "linalg.svd",
        svd_case(),
        edges=[
            # s_1 = 1 simple and positive: gradient u_1 v_1^T (it was 0/0 = NaN through the zero s_2).
            Edge(
                "the largest singular value of a rank-deficient 3 x 2 matrix",
                lambda x: tm.linalg.svd(x, compute_uv=False)[0],
                [np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])],
                1.0,
                [np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])],
            )
        ],
    ),
    OpSpec(
        "linalg.norm",
        norm_case(),
        edges=[
            Edge(
                f"the {name} at 0: subgradient 0, as abs",
                lambda x, order=order: tm.linalg.norm(x, order),
                [np.zeros(shape)],
                0.0,
                [np.zeros(shape)] * 2,
            )
            for name, order, shape in [
                ("2-norm", None, (3,)),
                ("3-norm", 3, (3,)),
                ("0.5-norm", 0.5, (3,)),
                ("Frobenius norm", "fro", (2, 2)),
            ]
        ],
    ),
    OpSpec("linalg.pinv", pinv_case()),
]
