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
and ``svd`` call LAPACK once; each factor (eigenvalues, eigenvectors; U, S, Vh) is then a node of
its own in the graph, with its own array and its own backward (the VJP is linear in the factors'
cotangents, so the gradients of the factors a loss uses simply add up).

Where a derivative does not exist, or is not determined by what the backward sees, the op says so
instead of returning a number that is not the derivative: a gradient through the eigenvectors of
``eigh`` at a repeated eigenvalue, or through U or Vh of ``svd`` at a repeated singular value (and
at a zero one where the matrix is not square, see ``svd``), raises ValueError in the backward;
``slogdet`` and ``inv`` of a singular matrix raise NumPy's LinAlgError. Eigenvalues and singular
values themselves are differentiable everywhere at first order (with the usual convention at ties),
and ``det`` to every order everywhere, singular matrices of any rank included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy

from ..backend import array_module, to_numpy
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
from .shape import _axis, concatenate, getitem, moveaxis, reshape, sum_to, swapaxes, tril, triu

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
    """y = det(A);  Giles (2008) 3.2.3: g_A = g y A^{-T}, y this op's output (its derivatives through
    ``inv``: every order).

    That formula needs A^{-1}, and its k-th derivative sums terms up to kappa(A)^k times larger than
    itself, so it loses accuracy near a singular matrix. For a matrix of the stack that is singular
    (y == 0) or ill-conditioned (a 1-norm condition number above 1/sqrt(eps) for a first derivative,
    above ``_CONDITION_LIMIT`` when the gradient is itself recorded for higher orders), the gradient is still the
    cofactor matrix cof(A) (for a 2 x 2 [[a, b], [c, d]], [[d, -c], [-b, a]]), a polynomial in A with
    derivatives of every order everywhere: ``_cofactor_through_svd`` computes it as an expression
    whose derivatives are exact to every order at A, whatever A's rank (a rank n - 2 matrix, where
    the Hessian has terms no derivative of the SVD can give, and the zero matrix included).
    ``invertible=True`` (for matrices known to be well conditioned) skips the check.
    """

    __slots__ = ("invertible",)

    def __init__(self, invertible: bool = False) -> None:
        self.invertible = invertible

    def forward(self, a: Any) -> Any:
        return array_module(a).linalg.det(a)

    def backward(self, gy: Tensor) -> Tensor:
        a, y = self.inputs[0], self.output()
        if self.invertible:
            return _col(gy * y) * _t(inv(a))
        # A first derivative (nothing records it) loses ~kappa eps through A^{-T}: only matrices near
        # singular (kappa > 1/sqrt(eps)) need the cofactor. Higher orders lose ~kappa^k eps: a lower limit.
        recording = is_grad_enabled()
        limit = _CONDITION_LIMIT if recording else 1 / math.sqrt(numpy.finfo(a.dtype).eps)
        hard, inverse = _ill_conditioned(a.data, y.data, limit)
        if not bool(hard.any()):
            if not recording:  # a constant: the inverse the check computed serves
                return wrap_array(gy.data[..., None, None] * y.data[..., None, None] * inverse.swapaxes(-1, -2))
            return _col(gy * y) * _t(inv(a))
        if a.ndim == 2:
            return gy * _cofactor_through_svd(a)
        # The well-conditioned matrices of the stack together, the others one by one through the SVD
        n, xp = a.shape[-1], array_module(hard)
        flat, hard = reshape(a, (-1, n, n)), xp.reshape(hard, -1)
        easy, through_svd = xp.nonzero(~hard)[0], xp.nonzero(hard)[0]
        parts = []
        if easy.size:
            matrices = getitem(flat, easy)
            parts.append(_col(Det(invertible=True)(matrices)) * _t(inv(matrices)))
        parts += [reshape(_cofactor_through_svd(getitem(flat, int(i))), (1, n, n)) for i in through_svd.tolist()]
        order = xp.argsort(xp.concatenate([easy, through_svd]))
        return _col(gy) * reshape(getitem(concatenate(parts, axis=0), order), a.shape)


# Above this 1-norm condition number, det's derivatives go through the SVD. Below it, the k-th
# derivative of det(A) A^{-T} loses at most ~kappa^k eps of its largest terms to cancellation:
# 2e-7 at the third order in float64.
_CONDITION_LIMIT = 1e3


def _ill_conditioned(a: Any, y: Any, condition_limit: float) -> tuple[Any, Any]:
    """(mask, inverses): the (...) mask of the matrices of a (..., n, n) (determinants y) for which
    det(A) A^{-T} is not to be used, singular (y == 0) or with a 1-norm condition number
    ||A||_1 ||A^{-1}||_1 above ``condition_limit``, and the inverses (the identity for a singular
    matrix). NaN matrices are not flagged."""
    xp, n = array_module(a), a.shape[-1]
    if n == 0 or a.size == 0:
        return xp.zeros(a.shape[:-2], dtype=bool), xp.zeros_like(a)
    with numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
        singular = y == 0  # an exact zero pivot: LAPACK's inverse would fail
        inverse = xp.linalg.inv(xp.where(singular[..., None, None], xp.eye(n, dtype=a.dtype), a))
        condition = xp.abs(a).sum(axis=-2).max(axis=-1) * xp.abs(inverse).sum(axis=-2).max(axis=-1)
        return singular | (condition > condition_limit), inverse


def _cofactor_through_svd(a: Tensor) -> Tensor:
    """The cofactor matrix cof(X) = d det(X) / dX of one n x n matrix X, as an expression in X whose
    value and derivatives of every order are exact at X = A, the point given (singular or not).

    With A = U diag(s) V^T (LAPACK's SVD at the point, U and V constants) and c = det(U) det(V) = +-1,
    det(X) = c det(M) for every X, M = diag(s) + U^T (X - A) V (exactly diag(s) at X = A). Split the
    singular values at r, the number above s_1 / ``_CONDITION_LIMIT``, and M into blocks M11 (r x r,
    invertible and well conditioned near A), M12, M21, M22. Then, near A (Schur's complement),

        det(M) = D1 D0,   D1 = det(M11),   D0 = det(T),   T = M22 - M21 M11^{-1} M12   ((n - r) x (n - r)),

    a function of X with derivatives of every order, and with P = M11^{-1} M12, Q = M21 M11^{-1} and
    G = cof(T), its gradient is

        d det / dM = D1 [[D0 M11^{-T} + Q^T G P^T, -Q^T G], [-G P^T, G]],   cof(X) = c U (d det / dM) V^T.

    D1 M11^{-T} is ``Det`` (invertible) times ``inv``; D0 and G = adj(T)^T come from the
    Faddeev-LeVerrier recurrence, polynomials in T: no division by anything that vanishes, and at A,
    where T = diag(s_{r+1}, ..., s_n) >= 0, sums of products of one sign (elementary symmetric
    polynomials), so no cancellation either. The whole expression differentiates exactly at A.
    """
    xp = array_module(a.data)
    n = a.shape[-1]
    u, s, vh = xp.linalg.svd(a.data)
    c = 1.0 if float(xp.linalg.det(u) * xp.linalg.det(vh)) > 0 else -1.0
    r = int((s > s[0] / _CONDITION_LIMIT).sum()) if n else 0
    m = matmul(matmul(wrap_array(xp.swapaxes(u, -1, -2)), a - wrap_array(a.data.copy())), wrap_array(vh.T))
    m = m + wrap_array(xp.diag(s))
    # cof(X) = t^(n-1) cof(X / t) for any t > 0: with t = s_1, M / t is of order 1 and its determinants
    # neither underflow nor overflow where cof(A) itself is representable (det(1e-120 I) is 0 in float64)
    scale = float(s[0]) if n and s[0] > 0 else 1.0
    m, c = m * (1.0 / scale), c * scale ** (n - 1)
    if r == 0:
        return c * matmul(matmul(wrap_array(u), _faddeev_leverrier(m)[1]), wrap_array(vh))
    top, bottom = slice(None, r), slice(r, None)
    m11, m12, m21, m22 = (getitem(m, (i, j)) for i in (top, bottom) for j in (top, bottom))
    inv11 = inv(m11)
    d1 = Det(invertible=True)(m11)
    if r == n:  # well conditioned after all (det(A) == 0 by underflow, say): M is invertible
        return c * matmul(matmul(wrap_array(u), d1 * _t(inv11)), wrap_array(vh))
    p, q = matmul(inv11, m12), matmul(m21, inv11)
    d0, g = _faddeev_leverrier(m22 - matmul(m21, p))
    qg = matmul(_t(q), g)
    upper = concatenate([d0 * _t(inv11) + matmul(qg, _t(p)), -qg], axis=-1)
    lower = concatenate([-matmul(g, _t(p)), g], axis=-1)
    grad_m = d1 * concatenate([upper, lower], axis=-2)
    return c * matmul(matmul(wrap_array(u), grad_m), wrap_array(vh))


def _faddeev_leverrier(t: Tensor) -> tuple[Tensor, Tensor]:
    """(det(T), cof(T)) for one d x d matrix T (d >= 1), as polynomials in its entries (the
    Faddeev-LeVerrier recurrence: M_1 = I, c_{d-k} = -tr(T M_k) / k, M_{k+1} = T M_k + c_{d-k} I; then
    det(T) = (-1)^d c_0 and adj(T) = (-1)^(d+1) M_d, for every T, singular or not). d matrix products:
    meant for the small block of (near) zero singular values, where T is near 0 and the recurrence
    loses nothing."""
    d = t.shape[-1]
    eye = wrap_array(_eye(d, t))
    mk, coefficient = eye, None
    for k in range(1, d + 1):
        product = matmul(t, mk)
        coefficient = -_sum(product * eye) / k
        if k < d:
            mk = product + coefficient * eye
    sign = -1.0 if d % 2 else 1.0
    return sign * coefficient, -sign * _t(mk)


def det(a: TensorLike) -> Tensor:
    """The determinant of each matrix of a (..., n, n), as ``numpy.linalg.det``. Differentiable to
    every order everywhere, singular matrices of any rank included (see :class:`Det`).

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
#
# One LAPACK call in the wrapper computes every factor; each factor is then the output of a Function
# of its own (its own node, its own backward, its own fresh array), all holding the same private
# arrays from LAPACK. A backward that needs another factor as a differentiable tensor makes a fresh
# node of that factor's Function on the same input (never the user's tensor, which may have been
# written into since): gradients of every order follow without a reference cycle.


class _Tie(NamedTuple):
    batch: tuple[int, ...]  # which matrix of the stack
    i: int
    j: int  # == i for a value that is zero
    first: float
    second: float
    tolerance: float

    def equal(self, what: str) -> str:
        """'are equal (...)' for the message: exactly, or to working precision."""
        if self.first == self.second:
            return f"are equal ({self.first!r}, a repeated {what})"
        return (
            f"are equal to working precision ({self.first!r} and {self.second!r} differ by no more than "
            f"{self.tolerance:.2g}, the rounding error of the decomposition: a repeated {what} as far as its "
            "vectors can tell)"
        )

    def zero(self) -> str:
        if self.first == 0:
            return "is zero"
        return f"is zero to working precision ({self.first!r}, below {self.tolerance:.2g}, the rounding error)"


def _undetermined(values: Any, size: int, touched: Any, zero: bool = False) -> tuple[_Tie | None, Any, Any]:
    """Where the vectors of sorted (..., k) values (eigenvalues or singular values of matrices of the
    given size, max(m, n)) have no derivative that the cotangent can determine: (the first such tie or
    None, skip (..., k, k), small (..., k)). ``touched`` (..., k, k) marks the pairs (i, j) on which the
    cotangent has a component (M_ij or M_ji nonzero, M = V^T g_V), its diagonal the columns whose
    cotangent is nonzero.

    Two values tie to working precision when they differ by no more than size * eps * max|values| of
    their matrix (LAPACK's decomposition is exact for a matrix within about that of the one given, so
    its vectors for such a pair are any basis of their space); with ``zero``, a value no larger than
    that tolerance counts too (a zero singular value of the longer side). A tie to working precision
    that the cotangent does not touch adds nothing and is skipped (``skip``, ``small``: the pairs and
    values left out of the formula); one it touches is undetermined. An exact tie (or an exact zero)
    is undetermined whatever the cotangent, zero included: there a loss can use the vectors with a
    cotangent that vanishes at the point (V diag(w - 1) V^T at S = I), which no rule on the cotangent
    can tell from one that does not use them (PyTorch gives NaN there)."""
    xp = numpy
    values, touched = to_numpy(values), to_numpy(touched)
    k = values.shape[-1]
    tolerance = size * xp.finfo(values.dtype).eps * xp.abs(values).max(axis=-1, keepdims=True) if k else values
    off = ~xp.eye(k, dtype=bool)
    gap = values[..., None, :] - values[..., :, None]
    near = (xp.abs(gap) <= tolerance[..., None]) & off
    exact = (gap == 0) & off
    small = xp.abs(values) <= tolerance if zero else xp.zeros(values.shape, dtype=bool)
    exact_zero = (values == 0) if zero else small
    columns = xp.diagonal(touched, axis1=-2, axis2=-1)
    bad_pairs = exact | (near & (touched | xp.swapaxes(touched, -1, -2)))
    bad_values = exact_zero | (small & columns)
    tie = None
    if bad_pairs.any() or bad_values.any():
        pairs, singles = xp.argwhere(bad_pairs), xp.argwhere(bad_values)
        if len(pairs):
            where = pairs[0]
            batch, i, j = tuple(int(x) for x in where[:-2]), int(where[-2]), int(where[-1])
            i, j = min(i, j), max(i, j)
        else:
            where = singles[0]
            batch, i = tuple(int(x) for x in where[:-1]), int(where[-1])
            j = i
        limit = float(tolerance[batch + (0,)])
        tie = _Tie(batch, i, j, float(values[batch + (i,)]), float(values[batch + (j,)]), limit)
    return tie, near | ~off, small


def _which_matrix(batch: tuple[int, ...]) -> str:
    return f"the matrix at batch index {batch}" if batch else "the matrix"


class EighValues(Function):
    """w = eigh(S).eigenvalues for symmetric S (..., n, n), S = V diag(w) V^T, w ascending.

    Giles (2008) 3.1: dw_i = v_i^T dS v_i, so g_S = V diag(g_w) V^T (symmetric; exact at distinct
    eigenvalues). At a repeated eigenvalue the same formula, with LAPACK's basis V_b of the
    eigenspace, is the convention (PyTorch's). It is exact for every differentiable function of the
    eigenvalues, which treats the tied ones alike (their sum, sum(f(w)) = tr f(S)): then g_w is equal
    on the tie, and V_b diag(c) V_b^T = c V_b V_b^T is the eigenspace's projector, whatever basis V_b
    LAPACK chose. An individual eigenvalue has no derivative there (the smallest of a tied pair is only
    directionally differentiable): it gets v_i v_i^T for LAPACK's v_i, a subgradient. Its own
    derivatives are those of V, so second and higher orders need distinct eigenvalues (see
    :class:`EighVectors`).
    """

    __slots__ = ("factors",)

    def __init__(self, factors: tuple[Any, Any]) -> None:
        self.factors = factors  # LAPACK's (w, V), private: never handed out, never written

    def forward(self, s: Any) -> Any:
        return self.factors[0].copy()

    def backward(self, gw: Tensor) -> Tensor:
        v = EighVectors(self.factors)(self.inputs[0])
        return matmul(v * reshape(gw, gw.shape[:-1] + (1, gw.shape[-1])), _t(v))


class EighVectors(Function):
    """V = eigh(S).eigenvectors (the columns) for symmetric S (..., n, n), with distinct eigenvalues.

    Giles (2008) 3.1: dV = V (F o (V^T dS V)), F_ij = 1 / (w_j - w_i) for i != j, F_ii = 0, so for
    symmetric dS

        g_S = sym(V (F o (V^T g_V)) V^T),   sym(X) = (X + X^T) / 2,

    with V and w fresh nodes on S, so it differentiates again. (The whole gradient of a loss of (w, V)
    is this plus :class:`EighValues`' V diag(g_w) V^T: the VJP is linear in the cotangents.)

    At an exactly repeated eigenvalue, w_i = w_j, the eigenvectors of that eigenspace are any of its
    orthonormal bases: V has no derivative there, and neither does a loss through V in general; where
    one does exist it is not determined by (g_w, g_V) at the point. For instance the matrix function
    V diag(f(w)) V^T has the within-eigenspace derivative f'(w_i) (V^T dS V)_ij, which depends on f,
    and L(S) = sum((V diag(w - 1) V^T) * C) at S = I has g_V = 0 yet gradient C. So this backward
    raises ValueError whenever a matrix of the stack has a tie among its eigenvalues, whatever g_V is
    (zero included), rather than return a number that is not the derivative. A tie is to working
    precision: |w_j - w_i| <= n eps max|w| (LAPACK's V is then exactly that of a matrix with an exact
    tie within rounding of S, an arbitrary basis of the pair's space, and 1 / (w_j - w_i) would turn
    rounding errors into O(1) errors). Eigenvalues farther apart give large gradients, 1 / (w_j - w_i):
    the derivative is large there, and computed to about eps max|w| / |w_j - w_i| relative accuracy.
    """

    __slots__ = ("factors",)

    def __init__(self, factors: tuple[Any, Any]) -> None:
        self.factors = factors

    def forward(self, s: Any) -> Any:
        return self.factors[1].copy()

    def backward(self, gv: Tensor) -> Tensor:
        s = self.inputs[0]
        v, w = EighVectors(self.factors)(s), EighValues(self.factors)(s)
        m = matmul(_t(v), gv)  # M = V^T g_V
        tie, skip, _ = _undetermined(self.factors[0], s.shape[-1], _touched(m, gv.data))
        if tie is not None:
            raise ValueError(
                f"eigh: eigenvalues {tie.i} and {tie.j} of {_which_matrix(tie.batch)} {tie.equal('eigenvalue')}, and "
                "the gradient goes through their eigenvectors, which have no derivative there (any orthonormal basis "
                "of the eigenspace is an answer); functions of the eigenvalues alone (eigh(a).eigenvalues) "
                "differentiate fine at first order, but their second derivatives go through the eigenvectors too "
                "(a padding matrix in a stack: give it distinct eigenvalues)"
            )
        d = reshape(w, w.shape[:-1] + (1, w.shape[-1])) - reshape(w, w.shape + (1,))  # d_ij = w_j - w_i
        f = _reciprocal_off_diagonal(d, skip)
        g = matmul(matmul(v, f * m), _t(v))
        return 0.5 * (g + _t(g))


def eigh(a: TensorLike, UPLO: str = "L") -> EighResult:  # noqa: N803  (NumPy's name)
    """Eigenvalues (ascending) and eigenvectors (the columns) of each symmetric matrix of a
    (..., n, n), as ``numpy.linalg.eigh``: only the lower (UPLO='L') or upper ('U') triangle is read,
    and the gradient is zero on the other one.

    One LAPACK call; the eigenvalues and the eigenvectors are then two nodes of the graph, each with
    its own array (:class:`EighValues`, :class:`EighVectors`). The eigenvalues are differentiable
    everywhere at first order (at a repeated eigenvalue with the convention of :class:`EighValues`);
    a gradient that goes through the eigenvectors raises ValueError at a repeated eigenvalue, where it
    is not determined (exactly repeated: always; repeated to working precision: where the gradient
    touches those eigenvectors; see :class:`EighVectors`). Each eigenvector's sign is LAPACK's choice, so only
    sign-invariant functions of the eigenvectors (v v^T, v * v, V diag(f(w)) V^T) are functions of a.

    >>> import tinymeta as tm
    >>> w, v = tm.linalg.eigh([[2.0, 1.0], [1.0, 2.0]])
    >>> w
    tensor([1., 3.], dtype=float64)
    """
    if UPLO not in ("L", "U"):
        raise ValueError(f"eigh: UPLO must be 'L' or 'U', got {UPLO!r}")
    a = _square(a, "eigh")
    s = _symmetric_from(a, lower=UPLO == "L")
    w, v = array_module(s.data).linalg.eigh(s.data)
    if not (s.requires_grad and is_grad_enabled()):
        return EighResult(wrap_array(w), wrap_array(v))
    factors = (w, v)
    return EighResult(EighValues(factors)(s), EighVectors(factors)(s))


# ---- SVD -------------------------------------------------------------------------------------------


class SvdValues(Function):
    """s of the thin SVD A = U diag(s) V^T of A (..., m, n), k = min(m, n), s (..., k) descending.

    ds_i = u_i^T dA v_i, so g_A = U diag(g_s) V^T (Townsend (2016), eq. 29's first term), with U and V
    fresh nodes on A. Exact, for any shape and rank, wherever every singular value with a nonzero g_s
    is simple and positive (so differentiable): one with g_s = 0 adds nothing, even a zero one whose
    u or v is any unit vector of a larger space (it enters multiplied by 0, and is never divided by:
    this was 0/0 = NaN). Where s_i is not differentiable (tied to another; zero, |x|'s kink)
    the same formula with LAPACK's singular vectors is the convention (PyTorch's): exact for smooth
    functions that treat tied values alike (their sum: g_s equal on the tie makes U_b diag(c) V_b^T =
    c U_b V_b^T, the same for every basis LAPACK may pick), a subgradient otherwise (u_i v_i^T at a
    zero s_i, for ||A||_nuc or s_min; max/min of s share it between ties). Its own derivatives are
    those of U and V: second and higher orders need what :class:`SvdU` and :class:`SvdVh` need.
    """

    __slots__ = ("factors",)

    def __init__(self, factors: tuple[Any, Any, Any]) -> None:
        self.factors = factors  # LAPACK's thin (U, s, Vh), private: never handed out, never written

    def forward(self, a: Any) -> Any:
        return self.factors[1].copy()

    def backward(self, gs: Tensor) -> Tensor:
        a = self.inputs[0]
        u, vh = SvdU(self.factors)(a), SvdVh(self.factors)(a)
        return matmul(u * reshape(gs, gs.shape[:-1] + (1, gs.shape[-1])), vh)


def _touched(m: Tensor, g: Any) -> Any:
    """What the cotangent g_V (..., r, k) of k vectors V touches, for ``_undetermined``: the pairs
    (i, j) with M_ij != 0 (M = V^T g_V, given), and on the diagonal the columns of g_V that are nonzero
    anywhere (their component outside the span of V counts too: the (I - U U^T) g_U term)."""
    xp = array_module(g)
    columns = (g != 0).any(axis=-2)
    return (m.data != 0) | (xp.eye(m.shape[-1], dtype=bool) & columns[..., None, :])


def _svd_check(factors: tuple[Any, Any, Any], shape: tuple[int, ...], which: str, touched: Any) -> tuple[Any, Any]:
    """(skip, small) for the backward of the singular vectors ``which`` ('U' or 'Vh'), or ValueError
    where they have no derivative the cotangent can determine (see ``_undetermined``): two equal
    singular values (two zeros included), or, for U of a matrix with more rows than columns (Vh: more
    columns than rows), a zero singular value, whose left (right) singular vector is then any unit
    vector of a space of dimension |m - n| + 1 >= 2."""
    m, n = shape[-2:]
    tie, skip, small = _undetermined(factors[1], max(m, n), touched, zero=m > n if which == "U" else n > m)
    if tie is None:
        return skip, small
    matrix = f"{_which_matrix(tie.batch)} (of shape {m} x {n})"
    if tie.i != tie.j:
        raise ValueError(
            f"svd: singular values {tie.i} and {tie.j} of {matrix} {tie.equal('singular value')}, and the gradient "
            f"goes through their singular vectors ({which}), which have no derivative there (any orthonormal basis "
            "of that space is an answer); functions of the singular values alone (svd(a, compute_uv=False)) "
            "differentiate fine at first order"
        )
    side, more = ("left", "rows than columns") if which == "U" else ("right", "columns than rows")
    raise ValueError(
        f"svd: singular value {tie.i} of {matrix} {tie.zero()}, and the gradient goes through its {side} singular "
        f"vector ({which}): with more {more} that is any unit vector of a space of dimension {abs(m - n) + 1} and has "
        "no derivative; functions of the singular values alone (svd(a, compute_uv=False)) differentiate fine at "
        "first order"
    )


def _svd_coefficients(s: Tensor, sign: float, skip: Any) -> Tensor:
    """(..., k, k): (1 / (s_j - s_i) + sign / (s_j + s_i)) / 2 off the diagonal, 0 on it; that is
    s_j / (s_j^2 - s_i^2) for sign = +1, s_i / (s_j^2 - s_i^2) for -1 (Townsend's F S and S F),
    split so that a single zero singular value (s_j + s_i = s_j) costs no accuracy; 0 on the ``skip``
    pairs (the diagonal, and ties to working precision the cotangent does not touch), so no
    denominator is zero."""
    k = s.shape[-1]
    s_j, s_i = reshape(s, s.shape[:-1] + (1, k)), reshape(s, s.shape + (1,))
    return 0.5 * (_reciprocal_off_diagonal(s_j - s_i, skip) + sign * _reciprocal_off_diagonal(s_j + s_i, skip))


class SvdU(Function):
    """U (..., m, k) of the thin SVD A = U diag(s) V^T (see :class:`SvdValues`).

    Townsend (2016), eq. 29-31, the terms in g_U: with J = U^T g_U - g_U^T U (antisymmetric),

        g_A = U (J o K) V^T + (I - U U^T) g_U diag(1/s) V^T,   K_ij = s_j / (s_j^2 - s_i^2), K_ii = 0,

    the second term only for m > k; U, s, V fresh nodes on A, so it differentiates again. U has no
    derivative where a matrix of the stack has two equal singular values or, for m > n, a zero one:
    there, as for :class:`EighVectors`, this backward raises ValueError at an exact tie (or zero)
    whatever g_U is, and at one to working precision where g_U touches it (see ``_undetermined``);
    an untouched near tie or near zero is left out. A single zero singular value of a square matrix
    is fine: its u and v are determined.
    """

    __slots__ = ("factors",)

    def __init__(self, factors: tuple[Any, Any, Any]) -> None:
        self.factors = factors

    def forward(self, a: Any) -> Any:
        return self.factors[0].copy()

    def backward(self, gu: Tensor) -> Tensor:
        a = self.inputs[0]
        u, s, vh = SvdU(self.factors)(a), SvdValues(self.factors)(a), SvdVh(self.factors)(a)
        mu = matmul(_t(u), gu)  # U^T g_U
        skip, small = _svd_check(self.factors, a.shape, "U", _touched(mu, gu.data))
        g = matmul(matmul(u, (mu - _t(mu)) * _svd_coefficients(s, +1.0, skip)), vh)
        if a.shape[-2] > s.shape[-1]:  # a column of a small s_i has no cotangent here: 0, not 0 / 0
            s_safe = where(small, 1.0, s)
            g = g + matmul((gu - matmul(u, mu)) / reshape(s_safe, s.shape[:-1] + (1, s.shape[-1])), vh)
        return g


class SvdVh(Function):
    """Vh = V^T (..., k, n) of the thin SVD A = U diag(s) V^T (see :class:`SvdValues`).

    Townsend (2016), eq. 29-31, the terms in g_V = g_Vh^T: with J = V^T g_V - g_V^T V,

        g_A = U (J o K) V^T + U diag(1/s) g_V^T (I - V V^T),   K_ij = s_i / (s_j^2 - s_i^2), K_ii = 0,

    the second term only for n > k. No derivative (ValueError, as :class:`SvdU`) where a matrix of the
    stack has two equal singular values or, for n > m, a zero one.
    """

    __slots__ = ("factors",)

    def __init__(self, factors: tuple[Any, Any, Any]) -> None:
        self.factors = factors

    def forward(self, a: Any) -> Any:
        return self.factors[2].copy()

    def backward(self, gvh: Tensor) -> Tensor:
        a = self.inputs[0]
        u, s, vh = SvdU(self.factors)(a), SvdValues(self.factors)(a), SvdVh(self.factors)(a)
        mv = matmul(vh, _t(gvh))  # V^T g_V
        skip, small = _svd_check(self.factors, a.shape, "Vh", _touched(mv, gvh.data.swapaxes(-1, -2)))
        g = matmul(matmul(u, (mv - _t(mv)) * _svd_coefficients(s, -1.0, skip)), vh)
        if a.shape[-1] > s.shape[-1]:  # a row of a small s_i has no cotangent here: 0, not 0 / 0
            s_safe = where(small, 1.0, s)
            g = g + matmul(u, (gvh - matmul(_t(mv), vh)) / reshape(s_safe, s.shape + (1,)))
        return g


class _FullSvdFactor(Function):
    """U (..., m, m) of ``svd(a, full_matrices=True)`` for m > n, or Vh (..., n, n) for n > m: its extra
    columns (rows) are an arbitrary orthonormal basis of the complement, with no derivative, so a
    gradient through it raises ValueError (S, and the other factor, square already, differentiate as
    usual)."""

    __slots__ = ("factor", "name")

    def __init__(self, factor: Any, name: str) -> None:
        self.factor, self.name = factor, name

    def forward(self, a: Any) -> Any:
        return self.factor.copy()

    def backward(self, g: Tensor) -> Tensor:
        raise ValueError(
            f"svd: with full_matrices=True the extra {'columns of U' if self.name == 'U' else 'rows of Vh'} of a "
            f"non-square matrix (shape {self.inputs[0].shape}) are an arbitrary basis and have no derivative, so a "
            f"gradient through {self.name} is not defined; call svd(a, full_matrices=False) to differentiate U "
            "and Vh (S differentiates either way)"
        )


def svd(
    a: TensorLike, full_matrices: bool = True, compute_uv: bool = True, hermitian: bool = False
) -> SVDResult | Tensor:
    """The singular value decomposition a = U @ diag(S) @ Vh of each matrix of a (..., m, n), as
    ``numpy.linalg.svd``: (U, S, Vh), S descending, or S alone with ``compute_uv=False``. With
    ``hermitian=True`` a is taken symmetric and only its lower triangle is read (as NumPy).

    One LAPACK call; U, S and Vh are then three nodes of the graph, each with its own array.
    Derivatives: S is differentiable everywhere at first order, for any shape and rank (g_A =
    U diag(g_S) Vh; conventions at repeated and zero singular values in :class:`SvdValues`). A
    gradient through U or Vh needs distinct singular values, and, for U of a matrix with more rows
    than columns (Vh: more columns than rows), nonzero ones; elsewhere it raises ValueError (always
    at an exact tie or zero; at one to working precision where the gradient touches those vectors; see
    :class:`SvdU`, :class:`SvdVh`). Second and higher derivatives of S go through U and Vh, and need
    the same. With ``full_matrices=True`` a non-square a's extra columns of U (rows of Vh) are an
    arbitrary basis of the complement: they have no derivative, so a gradient through that call's U
    (m > n) or Vh (n > m) is an error (its S and other factor differentiate); use
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
    differentiable = a.requires_grad and is_grad_enabled()
    linalg = array_module(a.data).linalg
    options: dict[str, Any] = {"hermitian": True} if hermitian else {}
    if not differentiable:
        if not compute_uv:
            return wrap_array(linalg.svd(a.data, compute_uv=False, **options))
        u, s, vh = linalg.svd(a.data, full_matrices=full_matrices, **options)
        return SVDResult(wrap_array(u), wrap_array(s), wrap_array(vh))
    factors = tuple(linalg.svd(a.data, full_matrices=False, **options))
    s = SvdValues(factors)(a)
    if not compute_uv:
        return s
    u, vh = SvdU(factors)(a), SvdVh(factors)(a)
    if full_matrices and m != n:  # the longer side's full factor holds an arbitrary basis of the complement
        full_u, _, full_vh = linalg.svd(a.data, full_matrices=True, **options)
        u, vh = (_FullSvdFactor(full_u, "U")(a), vh) if m > n else (u, _FullSvdFactor(full_vh, "Vh")(a))
    return SVDResult(u, s, vh)


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


class NormP(Function):
    """y = (sum |x|^p over ``axis``)^(1/p) (kept as a size-1 axis), for a real p other than 0, 1, 2, +-inf,
    computed as NumPy does (so a zero entry with p < 0 gives y = 0, and an empty axis 0, or inf for p < 0).

    g_x = g sign(x) (|x| / y)^(p - 1), with the conventions of ``abs`` (and PyTorch) where that has no
    value: 0 at a zero entry (the derivative there for p > 1, a subgradient of the kink for p <= 1) and
    0 wherever y = 0 (all of x zero, or p < 0 and some entry zero: y is then |x|-like, a kink). The
    backward masks those entries out (``where``), so its own derivatives are exact elsewhere and 0 there.
    """

    __slots__ = ("p", "axis")

    def __init__(self, p: Any, axis: int) -> None:
        self.p, self.axis = p, axis

    def forward(self, x: Any) -> Any:
        xp = array_module(x)
        total = (xp.abs(x) ** self.p).sum(axis=self.axis, keepdims=True)
        return total ** xp.reciprocal(xp.asarray(self.p, dtype=total.dtype))  # 1/p in the result's dtype, as NumPy

    def backward(self, gy: Tensor) -> Tensor:
        x, y = self.inputs[0], self.output()
        zero_y = y.data == 0
        skip = (x.data == 0) | zero_y
        ratio = where(skip, 1.0, _abs(x)) / where(zero_y, 1.0, y)
        sign = wrap_array(array_module(x.data).sign(x.data))
        return gy * where(skip, 0.0, ratio ** (self.p - 1)) * sign


def _max_from_zero(x: Tensor, axis: int, keepdims: bool) -> Tensor:
    """max over ``axis`` of x >= 0, with NumPy's ``initial=0``: an empty axis gives 0 (a sum over it)."""
    if x.shape[axis] == 0:
        return _sum(x, axis=axis, keepdims=keepdims)
    return _max(x, axis=axis, keepdims=keepdims)


def _vector_norm(x: Tensor, ord: Any, axis: int, keepdims: bool) -> Tensor:
    if ord is None or ord == 2:
        y = Norm2((axis,))(x)
    elif isinstance(ord, str):
        raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
    elif ord == math.inf:
        return _max_from_zero(_abs(x), axis, keepdims)
    elif ord == -math.inf:
        return _min(_abs(x), axis=axis, keepdims=keepdims)
    elif ord == 0:  # the number of nonzero entries: a constant
        return wrap_array((x.data != 0).astype(x.dtype).sum(axis=axis, keepdims=keepdims))
    elif ord == 1:
        return _sum(_abs(x), axis=axis, keepdims=keepdims)
    else:
        y = NormP(ord, axis)(x)
    return y if keepdims else reshape(y, x.shape[:axis] + x.shape[axis + 1 :])


def _matrix_norm(x: Tensor, ord: Any, row: int, col: int, keepdims: bool) -> Tensor:
    if ord is None or ord == "fro":
        y = Norm2(tuple(sorted((row, col))))(x)
    elif ord in ("nuc", 2, -2):
        s = svd(moveaxis(x, (row, col), (-2, -1)), compute_uv=False)
        y = _sum(s, axis=-1) if ord == "nuc" else _max_from_zero(s, -1, False) if ord == 2 else _min(s, axis=-1)
        y = reshape(y, tuple(1 if i in (row, col) else n for i, n in enumerate(x.shape)))
    elif ord in (1, -1, math.inf, -math.inf):
        inner, outer = (row, col) if ord in (1, -1) else (col, row)
        sums = _sum(_abs(x), axis=inner, keepdims=True)
        y = _max_from_zero(sums, outer, True) if ord in (1, math.inf) else _min(sums, axis=outer, keepdims=True)
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
    subgradient); 1 and inf inherit abs's and max's conventions, and the other p-norms abs's: 0 at a
    zero entry where |x|^p has no derivative, and 0 where the norm is 0 (see :class:`NormP`), as
    PyTorch. 2, -2 and 'nuc' are functions of the singular values (``svd(x, compute_uv=False)``):
    differentiable at first order for any matrix (conventions at ties and zeros in
    :class:`SvdValues`), at second order where the singular vectors are (see ``svd``). As NumPy, the
    max-type norms (inf for vectors; 1, inf, 2 for matrices) of an empty vector or matrix are 0.

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
