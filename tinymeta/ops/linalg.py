"""Linear algebra as ``numpy.linalg`` has it (used as ``tinymeta.linalg.solve`` and so on).

Every op takes stacks of matrices (..., m, n) as NumPy does, keeps float32 float32 and makes
integers float64. Each forward calls the backend's ``linalg`` (NumPy or CuPy); each backward is
written in tinymeta ops (matmul, the transposes, ``solve`` and ``inv`` themselves), so gradients of
every order follow. The matrix derivatives are those of Giles (2008), "Collected matrix derivative
results for forward and reverse mode algorithmic differentiation" (section 3 there); Cholesky's is
Murray (2016), "Differentiation of the Cholesky decomposition"; the SVD's is Townsend (2016),
"Differentiating the singular value decomposition". Below, A^T transposes the last two axes, and a
gradient written g_X is d(loss)/dX.

Ops that return several arrays (``slogdet``, ``eigh``, ``svd``) return NumPy's named tuples. ``eigh``
and ``svd`` compute their factors in one Function whose output packs them into one array (slices of
it are the factors), so one decomposition serves every factor and its backward sees all the
factors' gradients at once.

Where a derivative does not exist, the op says so: ``eigh`` and ``svd`` at a repeated eigenvalue or
singular value, for a loss that depends on the (then arbitrary) basis of the repeated space, raise
ValueError in the backward; ``slogdet`` and ``inv`` of a singular matrix raise NumPy's LinAlgError.
``det`` of a singular matrix has its gradient (the cofactor matrix) computed through the SVD.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy

from ..backend import array_module
from ..engine import (
    Function,
    Tensor,
    TensorLike,
    as_tensor,
    binary_operands,
    check_same_backend,
    is_grad_enabled,
    wrap_array,
)
from .elementwise import abs as _abs
from .elementwise import astype, where
from .products import matmul
from .reduction import max as _max
from .reduction import min as _min
from .reduction import sum as _sum
from .shape import _axis, getitem, moveaxis, reshape, stack, sum_to, swapaxes, tril, triu

# this family's differentiable ops (their union is the registry: ops/__init__.py)
__all__ = ["solve", "inv", "det", "slogdet", "cholesky", "eigh", "svd", "norm", "pinv"]


class SlogdetResult(NamedTuple):
    sign: Tensor
    logabsdet: Tensor


class EighResult(NamedTuple):
    eigenvalues: Tensor
    eigenvectors: Tensor


class SVDResult(NamedTuple):
    U: Tensor
    S: Tensor
    Vh: Tensor


# ---- helpers ---------------------------------------------------------------------------------------


def _t(x: Tensor) -> Tensor:
    """x with its last two axes swapped (the matrix transpose of every matrix in the stack)."""
    return swapaxes(x, -1, -2)


def _eye(n: int, like: Tensor) -> Any:
    """The n x n identity as a backend array of ``like``'s dtype (a constant)."""
    return array_module(like.data).eye(n, dtype=like.dtype)


def _diag_embed(v: Tensor) -> Tensor:
    """The stack of diagonal matrices with v (..., k) on their diagonals: (..., k, k)."""
    return reshape(v, v.shape[:-1] + (1, v.shape[-1])) * wrap_array(_eye(v.shape[-1], v))


def _col(v: Tensor) -> Tensor:
    """v (...) as (..., 1, 1), to scale each matrix of a stack."""
    return reshape(v, v.shape + (1, 1))


def _floating(x: Tensor) -> Tensor:
    """x itself if it is floating, else as float64 (NumPy's linalg makes integers float64)."""
    if x.dtype.kind == "f":
        return x
    if x.dtype.kind == "c":
        raise TypeError(f"tinymeta.linalg differentiates real matrices only, got dtype {x.dtype}")
    return astype(x, numpy.float64)


def _square(a: TensorLike, op: str) -> Tensor:
    a = _floating(as_tensor(a))
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: a must be square (..., n, n), got shape {a.shape}")
    return a


def _matrices(a: TensorLike, op: str) -> Tensor:
    a = _floating(as_tensor(a))
    if a.ndim < 2:
        raise ValueError(f"{op}: a must be a stack of matrices (..., m, n), got shape {a.shape}")
    return a


def _symmetric_from(a: Tensor, lower: bool) -> Tensor:
    """The symmetric matrices whose lower (or upper) triangle is a's: what LAPACK reads when told
    UPLO='L' ('U'). Differentiating through it gives the derivative of the function NumPy computes,
    which ignores the other triangle (its gradient is zero there)."""
    if lower:
        return tril(a) + _t(tril(a, -1))
    return triu(a) + _t(triu(a, 1))


def _reciprocal_off_diagonal(d: Tensor, skip: Any) -> Tensor:
    """1 / d where ``skip`` (a constant boolean mask) is False, 0 where it is True (never dividing
    by the skipped entries, so no warning and no infinity)."""
    return where(skip, 0.0, 1.0 / where(skip, 1.0, d))


def _ties(values: Any, signs: int = -1) -> tuple[Any, Any]:
    """For (..., k) values: the mask (..., k, k) of pairs i != j with v_j + signs * v_i == 0 (exact
    ties for signs=-1, pairs summing to zero for signs=+1), and the mask of pairs to skip (those and
    the diagonal)."""
    xp = array_module(values)
    k = values.shape[-1]
    pair = values[..., None, :] + signs * values[..., :, None]
    off = ~xp.eye(k, dtype=bool)
    tied = (pair == 0) & off
    return tied, tied | ~off


# ---- solve, inv ------------------------------------------------------------------------------------


class Solve(Function):
    """x = A^{-1} b for A (..., n, n) and b (..., n, k), the batch axes broadcast.

    Giles (2008) 3.2.2: g_b = A^{-T} g_x, g_A = -g_b x^T, each summed back over the batch axes that
    broadcasting created. g_b is itself a Solve, and x is this op's output: every order follows.
    """

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        xp = array_module(a)
        batch = numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        # Equal batch axes on both sides, so no backend can read b as a stack of vectors.
        return xp.linalg.solve(xp.broadcast_to(a, batch + a.shape[-2:]), xp.broadcast_to(b, batch + b.shape[-2:]))

    def backward(self, gx: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        gb = Solve()(_t(a), gx)
        ga = sum_to(-matmul(gb, _t(self.output())), a.shape) if a.requires_grad else None
        return ga, (sum_to(gb, b.shape) if b.requires_grad else None)


def solve(a: TensorLike, b: TensorLike) -> Tensor:
    """The solution x of a @ x = b, as ``numpy.linalg.solve`` (NumPy 2): a is (..., n, n); b is (n,)
    (one right-hand side, x (..., n)) when it is 1-D, else (..., n, k), the batch axes broadcast.

    >>> import tinymeta as tm
    >>> tm.linalg.solve([[2.0, 0.0], [0.0, 4.0]], [1.0, 1.0])
    tensor([0.5 , 0.25], dtype=float64)
    """
    a, b = binary_operands(a, b)
    check_same_backend("solve", (a, b))
    a, b = _square(a, "solve"), _floating(b)
    n = a.shape[-1]
    vector = b.ndim == 1
    if vector:
        if b.shape[0] != n:
            raise ValueError(f"solve: b of shape {b.shape} does not fit a of shape {a.shape} (b must have {n} rows)")
        b = reshape(b, (n, 1))
    elif b.ndim < 1 or b.shape[-2] != n:
        raise ValueError(
            f"solve: b must be (n,) or (..., n, k) with n = {n} rows for a of shape {a.shape}, got shape {b.shape}"
        )
    try:
        numpy.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"solve: the batch axes of a {a.shape} and b {b.shape} do not broadcast") from None
    x = Solve()(a, b)
    return reshape(x, x.shape[:-1]) if vector else x


class Inv(Function):
    """Y = A^{-1};  Giles (2008) 3.2.1: g_A = -Y^T g_Y Y^T, with Y this op's output."""

    __slots__ = ()

    def forward(self, a: Any) -> Any:
        return array_module(a).linalg.inv(a)

    def backward(self, gy: Tensor) -> Tensor:
        yt = _t(self.output())
        return -matmul(matmul(yt, gy), yt)


def inv(a: TensorLike) -> Tensor:
    """The inverse of each matrix of a (..., n, n), as ``numpy.linalg.inv`` (a singular matrix raises
    NumPy's LinAlgError).

    >>> import tinymeta as tm
    >>> tm.linalg.inv([[2.0, 0.0], [0.0, 4.0]])
    tensor([[0.5 , 0.  ],
            [0.  , 0.25]], dtype=float64)
    """
    return Inv()(_square(a, "inv"))


# ---- determinants ----------------------------------------------------------------------------------


class Det(Function):
    """y = det(A);  Giles (2008) 3.2.3: g_A = g y A^{-T}, y this op's output.

    That formula needs A^{-1}. When a matrix of the stack is exactly singular (y == 0), the gradient
    is the cofactor matrix cof(A) = det(U) det(V) U diag(prod_{j != i} s_j) V^T from the SVD
    A = U diag(s) V^T (for every matrix of the stack), which exists there: for a 2 x 2 matrix
    [[a, b], [c, d]] it is [[d, -c], [-b, a]]. Its own derivatives are the SVD's, which need
    distinct singular values (a singular matrix of rank n - 1 with distinct nonzero ones is fine).
    """

    __slots__ = ()

    def forward(self, a: Any) -> Any:
        return array_module(a).linalg.det(a)

    def backward(self, gy: Tensor) -> Tensor:
        a, y = self.inputs[0], self.output()
        if not bool((y.data == 0).any()):
            return _col(gy * y) * _t(inv(a))
        u, s, vh = svd(a, full_matrices=False)
        xp = array_module(a.data)
        sign = wrap_array(xp.linalg.det(u.data) * xp.linalg.det(vh.data))  # +-1: a constant
        others = _products_of_the_others(s)
        cofactor = matmul(u * reshape(others, s.shape[:-1] + (1, s.shape[-1])), vh)
        return _col(gy * sign) * cofactor


def _products_of_the_others(s: Tensor) -> Tensor:
    """(..., k) -> (..., k): entry i is the product of the s_j with j != i, as prefix times suffix
    products: no division, so exact (to every order) where some s_j is zero or tiny, where
    prod(s) / s_i, and its derivatives, would lose everything to rounding."""
    k = s.shape[-1]
    parts = [getitem(s, (Ellipsis, i)) for i in range(k)]
    prefix: list[Tensor | None] = [None]
    suffix: list[Tensor | None] = [None]
    for i in range(1, k):
        prefix.append(parts[i - 1] if prefix[-1] is None else prefix[-1] * parts[i - 1])
        suffix.append(parts[k - i] if suffix[-1] is None else suffix[-1] * parts[k - i])
    ones = wrap_array(array_module(s.data).ones(s.shape[:-1], dtype=s.dtype))
    products = []
    for before, after in zip(prefix, reversed(suffix)):
        product = before if after is None else after if before is None else before * after
        products.append(ones if product is None else product)
    return stack(products, axis=-1)


def det(a: TensorLike) -> Tensor:
    """The determinant of each matrix of a (..., n, n), as ``numpy.linalg.det``.

    >>> import tinymeta as tm
    >>> a = tm.tensor([[2.0, 1.0], [1.0, 3.0]], requires_grad=True)
    >>> tm.grad(tm.linalg.det(a), a)[0]   # the cofactor matrix, det(a) a^{-T}
    tensor([[ 3., -1.],
            [-1.,  2.]], dtype=float64)
    """
    return Det()(_square(a, "det"))


class LogAbsDet(Function):
    """y = log |det(A)|;  Giles (2008) 3.2.3: g_A = g A^{-T} (through ``inv``, so the Hessian
    -A^{-T} dA^T A^{-T} follows). A singular matrix (y = -inf) has no derivative: LinAlgError."""

    __slots__ = ()

    def forward(self, a: Any) -> Any:
        return array_module(a).linalg.slogdet(a)[1]

    def backward(self, gy: Tensor) -> Tensor:
        return _col(gy) * _t(inv(self.inputs[0]))


def slogdet(a: TensorLike) -> SlogdetResult:
    """(sign, logabsdet) with det(a) = sign * exp(logabsdet), as ``numpy.linalg.slogdet``. The sign is
    a constant (piecewise constant in a: zero derivative); logabsdet is differentiable, with
    d logabsdet / dA = A^{-T}.

    >>> import tinymeta as tm
    >>> sign, logdet = tm.linalg.slogdet([[-2.0, 0.0], [0.0, 3.0]])
    >>> float(sign), round(float(logdet), 6)
    (-1.0, 1.791759)
    """
    a = _square(a, "slogdet")
    sign = array_module(a.data).linalg.slogdet(a.data)[0]
    return SlogdetResult(wrap_array(sign), LogAbsDet()(a))


# ---- Cholesky --------------------------------------------------------------------------------------


class Cholesky(Function):
    """L = cholesky(S), S = L L^T symmetric positive definite, L lower triangular.

    Murray (2016), eq. 9 with Giles's notation: dL = L Phi(L^{-1} dS L^{-T}), where Phi takes the lower
    triangle and halves the diagonal, so for symmetric dS

        g_S = sym(L^{-T} Phi(L^T g_L) L^{-1}),   sym(X) = (X + X^T) / 2,

    computed with two ``solve`` s by L^T (a triangular matrix: LU with pivoting on it is stable), so it
    differentiates again. ``cholesky`` applies this to the symmetric matrix built from the triangle
    LAPACK reads, so the gradient is that of NumPy's function (zero on the other triangle).
    """

    __slots__ = ()

    def forward(self, s: Any) -> Any:
        return array_module(s).linalg.cholesky(s)

    def backward(self, gl: Tensor) -> Tensor:
        lower = self.output()
        lt = _t(lower)
        m = matmul(lt, gl)
        phi = tril(m) - 0.5 * (m * wrap_array(_eye(m.shape[-1], m)))
        y = Solve()(lt, phi)  # L^{-T} Phi
        p = _t(Solve()(lt, _t(y)))  # L^{-T} Phi L^{-1}
        return 0.5 * (p + _t(p))


def cholesky(a: TensorLike, /, *, upper: bool = False) -> Tensor:
    """The Cholesky factor of each symmetric positive definite matrix of a (..., n, n), as
    ``numpy.linalg.cholesky``: L lower triangular with a = L L^T, read from a's lower triangle; with
    ``upper=True``, U = L^T read from the upper triangle. A matrix that is not positive definite
    raises NumPy's LinAlgError.

    >>> import tinymeta as tm
    >>> tm.linalg.cholesky([[4.0, 2.0], [2.0, 2.0]])
    tensor([[2., 0.],
            [1., 1.]], dtype=float64)
    """
    a = _square(a, "cholesky")
    if upper:
        return _t(Cholesky()(_symmetric_from(_t(a), lower=True)))
    return Cholesky()(_symmetric_from(a, lower=True))


# ---- eigh ------------------------------------------------------------------------------------------


class Eigh(Function):
    """w, V = eigh(S) for symmetric S (..., n, n): S = V diag(w) V^T, w ascending. The output packs
    them as (..., n + 1, n): row 0 is w, rows 1.. are V.

    Giles (2008) 3.1 (for symmetric matrices): dw = diag(V^T dS V), dV = V (F o (V^T dS V)) with
    F_ij = 1 / (w_j - w_i) for i != j and F_ii = 0, so for symmetric dS

        g_S = sym(V (diag(g_w) + F o (V^T g_V)) V^T).

    At an exactly repeated eigenvalue w_i = w_j the eigenvectors of that eigenspace are any of its
    orthonormal bases: they have no derivative. The pair's term is then left out (F_ij = 0), which
    is exact for any loss that does not depend on the basis chosen (a function of the eigenvalues,
    of the eigenspace's projector): for those, M = V^T g_V is symmetric on the tied pairs. For any
    other loss (M_ij != M_ji on a tied pair) the backward raises ValueError rather than return a
    number that is not a derivative. Nearly repeated eigenvalues give large gradients, 1 / (w_j - w_i).
    """

    __slots__ = ()

    def forward(self, s: Any) -> Any:
        xp = array_module(s)
        w, v = xp.linalg.eigh(s)
        return xp.concatenate([w[..., None, :], v], axis=-2)

    def backward(self, gy: Tensor) -> Tensor:
        packed = self.output()
        w, v = getitem(packed, (Ellipsis, 0, slice(None))), getitem(packed, (Ellipsis, slice(1, None), slice(None)))
        gw, gv = getitem(gy, (Ellipsis, 0, slice(None))), getitem(gy, (Ellipsis, slice(1, None), slice(None)))
        m = matmul(_t(v), gv)
        tied, skip = _ties(w.data)
        if bool(tied.any()) and bool((tied & (m.data != array_module(m.data).swapaxes(m.data, -1, -2))).any()):
            raise ValueError(
                "eigh: the gradient depends on the eigenvectors of a repeated eigenvalue, which have no "
                "derivative (any orthonormal basis of the eigenspace is an answer); only functions of the "
                "eigenvalues, or invariant under rotations inside each repeated eigenspace, can be differentiated"
            )
        d = reshape(w, w.shape[:-1] + (1, w.shape[-1])) - reshape(w, w.shape + (1,))  # d_ij = w_j - w_i
        inner = _diag_embed(gw) + _reciprocal_off_diagonal(d, skip) * m
        g = matmul(matmul(v, inner), _t(v))
        return 0.5 * (g + _t(g))


def eigh(a: TensorLike, UPLO: str = "L") -> EighResult:  # noqa: N803  (NumPy's name)
    """Eigenvalues (ascending) and eigenvectors (the columns) of each symmetric matrix of a
    (..., n, n), as ``numpy.linalg.eigh``: only the lower (UPLO='L') or upper ('U') triangle is read,
    and the gradient is zero on the other one.

    Each eigenvector's sign is LAPACK's choice, so only sign-invariant functions of the eigenvectors
    (v v^T, v * v, V diag(f(w)) V^T) are functions of a; at a repeated eigenvalue see :class:`Eigh`.

    >>> import tinymeta as tm
    >>> w, v = tm.linalg.eigh([[2.0, 1.0], [1.0, 2.0]])
    >>> w
    tensor([1., 3.], dtype=float64)
    """
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    a = _square(a, "eigh")
    packed = Eigh()(_symmetric_from(a, lower=UPLO == "L"))
    return EighResult(
        getitem(packed, (Ellipsis, 0, slice(None))), getitem(packed, (Ellipsis, slice(1, None), slice(None)))
    )


# ---- SVD -------------------------------------------------------------------------------------------


class Svd(Function):
    """The thin SVD A = U diag(s) V^T of A (..., m, n), k = min(m, n): U (..., m, k), s (..., k)
    descending, V (..., n, k). The output packs them as (..., m + 1 + n, k): U, then s, then V.

    Townsend (2016), eq. 29-31: with A_ = U^T g_U - g_U^T U, B_ = V^T g_V - g_V^T V (antisymmetric),

        g_A = U (C + diag(g_s)) V^T + (I - U U^T) g_U diag(1/s) V^T + U diag(1/s) g_V^T (I - V V^T),
        C_ij = (A_ + B_)_ij / (2 (s_j - s_i)) + (A_ - B_)_ij / (2 (s_j + s_i)),  C_ii = 0,

    (Townsend's F o A_ S + S F o B_, F_ij = 1/(s_j^2 - s_i^2), split so that the part that is finite at
    a tie stays finite). The last two terms exist only for non-square A and need s > 0 (else inf).
    At exactly repeated singular values the vectors of that space are any of its bases; as for
    :class:`Eigh`, the tied pair's term is left out, which is exact when the loss does not depend
    on the basis ((A_ + B_)_ij = 0 on tied pairs, (A_ - B_)_ij = 0 on pairs of zeros), and anything
    else raises ValueError.
    """

    __slots__ = ("hermitian",)

    def __init__(self, hermitian: bool = False) -> None:
        self.hermitian = hermitian

    def forward(self, a: Any) -> Any:
        xp = array_module(a)
        if self.hermitian:
            u, s, vh = xp.linalg.svd(a, full_matrices=False, hermitian=True)
        else:
            u, s, vh = xp.linalg.svd(a, full_matrices=False)
        return xp.concatenate([u, s[..., None, :], xp.swapaxes(vh, -1, -2)], axis=-2)

    def backward(self, gy: Tensor) -> Tensor:
        m, n = self.inputs[0].shape[-2:]
        u, s, v = _svd_parts(self.output(), m)
        gu, gs, gv = _svd_parts(gy, m)
        mu, mv = matmul(_t(u), gu), matmul(_t(v), gv)
        skew_u, skew_v = mu - _t(mu), mv - _t(mv)
        tied, skip_minus = _ties(s.data, -1)
        zeros, skip_plus = _ties(s.data, +1)
        if (bool(tied.any()) and bool((tied & ((skew_u + skew_v).data != 0)).any())) or (
            bool(zeros.any()) and bool((zeros & ((skew_u - skew_v).data != 0)).any())
        ):
            raise ValueError(
                "svd: the gradient depends on the singular vectors of a repeated singular value, which have no "
                "derivative (any orthonormal basis of that space is an answer); only functions of the singular "
                "values, or invariant under rotations inside each repeated space, can be differentiated"
            )
        row = s.shape[:-1] + (1, s.shape[-1])
        s_j, s_i = reshape(s, row), reshape(s, s.shape + (1,))
        c = 0.5 * (skew_u + skew_v) * _reciprocal_off_diagonal(s_j - s_i, skip_minus)
        c = c + 0.5 * (skew_u - skew_v) * _reciprocal_off_diagonal(s_j + s_i, skip_plus)
        g = matmul(matmul(u, c + _diag_embed(gs)), _t(v))
        k = s.shape[-1]
        if m > k:
            g = g + matmul((gu - matmul(u, mu)) / reshape(s, row), _t(v))
        if n > k:
            g = g + matmul(u, _t((gv - matmul(v, mv)) / reshape(s, row)))
        return g


def _svd_parts(packed: Tensor, m: int) -> tuple[Tensor, Tensor, Tensor]:
    """U, s, V from Svd's packed (..., m + 1 + n, k) array."""
    u = getitem(packed, (Ellipsis, slice(None, m), slice(None)))
    v = getitem(packed, (Ellipsis, slice(m + 1, None), slice(None)))
    return u, getitem(packed, (Ellipsis, m, slice(None))), v


def svd(
    a: TensorLike, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False
) -> SVDResult | Tensor:
    """The singular value decomposition a = U @ diag(S) @ Vh of each matrix of a (..., m, n), as
    ``numpy.linalg.svd``: (U, S, Vh), S descending, or S alone with ``compute_uv=False``. With
    ``hermitian=True`` a is taken symmetric and only its lower triangle is read (as NumPy).

    Derivatives (see :class:`Svd`): S is differentiable wherever its values are distinct (g_A =
    U diag(g_S) Vh); U and Vh where the singular values are distinct and, for a non-square a, nonzero.
    With ``full_matrices=True`` a non-square a's extra columns of U (rows of Vh) are an arbitrary basis
    of the complement: they have no derivative, so differentiating that call is an error; use
    ``full_matrices=False`` (U (..., m, k), Vh (..., k, n), k = min(m, n)) or ``compute_uv=False``.
    Each pair of singular vectors has LAPACK's sign: only functions invariant under flipping u_i and
    v_i together are functions of a.

    >>> import tinymeta as tm
    >>> tm.linalg.svd([[3.0, 0.0], [0.0, -4.0]], compute_uv=False)
    tensor([4., 3.], dtype=float64)
    """
    a = _matrices(a, "svd")
    m, n = a.shape[-2:]
    if hermitian:
        if m != n:
            raise ValueError(f"svd: hermitian=True needs square matrices (..., n, n), got shape {a.shape}")
        a = _symmetric_from(a, lower=True)
    if compute_uv and full_matrices and m != n:
        if a.requires_grad and is_grad_enabled():
            raise ValueError(
                f"svd: with full_matrices=True the extra columns of U or rows of Vh of a non-square matrix (shape "
                f"{a.shape}) are an arbitrary basis and have no derivative; pass full_matrices=False to "
                "differentiate U and Vh (or compute_uv=False for the singular values alone)"
            )
        xp = array_module(a.data)
        u, s, vh = xp.linalg.svd(a.data, full_matrices=True, hermitian=hermitian)
        return SVDResult(wrap_array(u), wrap_array(s), wrap_array(vh))
    u, s, v = _svd_parts(Svd(hermitian)(a), m)
    if not compute_uv:
        return s
    return SVDResult(u, s, _t(v))


# ---- norms -----------------------------------------------------------------------------------------


class Norm2(Function):
    """y = sqrt(sum of x^2 over ``axes``) (kept as size-1 axes);  g_x = g x / y.

    At y = 0 the norm has no derivative (it is |x| there); the gradient is taken as 0 there, the
    subgradient ``abs`` also uses, and so are the derivatives of every higher order.
    """

    __slots__ = ("axes",)

    def __init__(self, axes: tuple[int, ...]) -> None:
        self.axes = axes

    def forward(self, x: Any) -> Any:
        return array_module(x).sqrt((x * x).sum(axis=self.axes, keepdims=True))

    def backward(self, gy: Tensor) -> Tensor:
        x, y = self.inputs[0], self.output()
        zero = y.data == 0
        if bool(zero.any()):
            return where(zero, 0.0, gy / where(zero, 1.0, y)) * x
        return (gy / y) * x


def _vector_norm(x: Tensor, ord: Any, axis: int, keepdims: bool) -> Tensor:
    if ord is None or ord == 2:
        y = Norm2((axis,))(x)
        return y if keepdims else reshape(y, x.shape[:axis] + x.shape[axis + 1 :])
    if isinstance(ord, str):
        raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
    if ord == math.inf:
        return _max(_abs(x), axis=axis, keepdims=keepdims)
    if ord == -math.inf:
        return _min(_abs(x), axis=axis, keepdims=keepdims)
    if ord == 0:  # the number of nonzero entries: a constant
        return wrap_array((x.data != 0).astype(x.dtype).sum(axis=axis, keepdims=keepdims))
    if ord == 1:
        return _sum(_abs(x), axis=axis, keepdims=keepdims)
    p = float(ord)
    return _sum(_abs(x) ** p, axis=axis, keepdims=keepdims) ** (1.0 / p)


def _matrix_norm(x: Tensor, ord: Any, row: int, col: int, keepdims: bool) -> Tensor:
    if ord is None or ord == "fro":
        y = Norm2(tuple(sorted((row, col))))(x)
    elif ord in ("nuc", 2, -2):
        s = svd(moveaxis(x, (row, col), (-2, -1)), compute_uv=False)
        y = _sum(s, axis=-1) if ord == "nuc" else _max(s, axis=-1) if ord == 2 else _min(s, axis=-1)
        y = reshape(y, tuple(1 if i in (row, col) else n for i, n in enumerate(x.shape)))
    elif ord in (1, -1, math.inf, -math.inf):
        inner, outer = (row, col) if ord in (1, -1) else (col, row)
        sums = _sum(_abs(x), axis=inner, keepdims=True)
        y = (_max if ord in (1, math.inf) else _min)(sums, axis=outer, keepdims=True)
    else:
        raise ValueError(f"norm: invalid norm order {ord!r} for matrices")
    return y if keepdims else reshape(y, tuple(n for i, n in enumerate(x.shape) if i not in (row, col)))


def norm(x: TensorLike, ord: Any = None, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
    """A vector or matrix norm, as ``numpy.linalg.norm``.

    Vectors (an integer axis, or a 1-D x): ord None or 2 (Euclidean), 1, inf, -inf, 0 (the count of
    nonzeros, a constant) and any other real p: (sum |x|^p)^(1/p). Matrices (a pair of axes, or a 2-D
    x): None or 'fro' (Frobenius), 'nuc' (sum of singular values), 2 and -2 (largest and smallest
    singular value, through ``svd``), 1 and -1 (max/min column sum of |x|), inf and -inf (row sums).
    axis None with ord None is the 2-norm of all the elements, whatever x's shape.

    The 2-norm's (and Frobenius's) gradient x / ||x|| is taken as 0 at x = 0, as abs's at 0 (a
    subgradient); 1, inf and p-norms inherit abs's and max's conventions; 2, -2, 'nuc' need distinct
    singular values (see ``svd``).

    >>> import tinymeta as tm
    >>> tm.linalg.norm([3.0, -4.0]), tm.linalg.norm([3.0, -4.0], 1)
    (tensor(5., dtype=float64), tensor(7., dtype=float64))
    """
    x = _floating(as_tensor(x))
    if axis is None:
        if ord is None:
            y = Norm2(tuple(range(x.ndim)))(x)
            return y if keepdims else reshape(y, ())
        if x.ndim not in (1, 2):
            raise ValueError(f"norm: improper number of dimensions to norm: ord={ord!r} needs 1 or 2, got {x.shape}")
        axes: tuple[int, ...] = tuple(range(x.ndim))
    elif isinstance(axis, (tuple, list)):
        axes = tuple(_axis(i, x.ndim, "norm axis") for i in axis)
    else:
        axes = (_axis(axis, x.ndim, "norm axis"),)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) == 2:
        if axes[0] == axes[1]:
            raise ValueError(f"norm: duplicate axes given: {axis!r}")
        return _matrix_norm(x, ord, axes[0], axes[1], keepdims)
    raise ValueError(f"norm: improper number of dimensions to norm: axis={axis!r} names {len(axes)} axes")


# ---- pinv ------------------------------------------------------------------------------------------


class Pinv(Function):
    """P = A^+ (Moore-Penrose) of A (..., m, n), computed by the backend (through the SVD).

    Golub & Pereyra (1973), Theorem 4.3: where the rank of A is locally constant,
    dP = -P dA P + P P^T dA^T (I - A P) + (I - P A) dA^T P^T P, whose adjoint is

        g_A = -P^T g_P P^T + (I - A P) g_P^T P P^T + P^T P g_P^T (I - P A),

    matmuls of A and the output P, so it differentiates again. It needs no distinct singular values,
    only a rank that does not change near A (no singular value near the cutoff rcond * s_max).
    """

    __slots__ = ("options",)

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def forward(self, a: Any) -> Any:
        return array_module(a).linalg.pinv(a, **self.options)

    def backward(self, gp: Tensor) -> Tensor:
        a, p = self.inputs[0], self.output()
        pt, gpt = _t(p), _t(gp)
        z = matmul(gpt, matmul(p, pt))
        w = matmul(matmul(pt, p), gpt)
        return -matmul(matmul(pt, gp), pt) + (z - matmul(a, matmul(p, z))) + (w - matmul(matmul(w, p), a))


def pinv(a: TensorLike, rcond: Any = None, hermitian: bool = False, *, rtol: Any = None) -> Tensor:
    """The Moore-Penrose pseudo-inverse of each matrix of a (..., m, n), as ``numpy.linalg.pinv``
    (singular values below rtol * s_max, or rcond * s_max, count as zero; ``hermitian=True`` reads the
    lower triangle only). Differentiable wherever the rank is locally constant (see :class:`Pinv`).

    >>> import tinymeta as tm
    >>> tm.linalg.pinv([[1.0], [1.0]])
    tensor([[0.5, 0.5]], dtype=float64)
    """
    a = _matrices(a, "pinv")
    options: dict[str, Any] = {}
    if rcond is not None:
        options["rcond"] = rcond
    if rtol is not None:
        options["rtol"] = rtol
    if hermitian:
        if a.shape[-1] != a.shape[-2]:
            raise ValueError(f"pinv: hermitian=True needs square matrices (..., n, n), got shape {a.shape}")
        options["hermitian"] = True
        a = _symmetric_from(a, lower=True)
    return Pinv(options)(a)
