"""Products and contractions: matmul (batched over leading axes with NumPy broadcasting), and
NumPy's other products built on it and on einsum.

matmul and einsum are the two Functions; everything else is a composition with its NumPy
definition: ``tensordot`` moves the contracted axes together and multiplies matrices, ``dot``,
``inner`` and ``vdot`` are tensordots (or matmuls), ``outer`` and ``kron`` are broadcast products,
``trace`` sums a diagonal.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from typing import Any

import numpy

from ..backend import array_module, asarray_like
from ..engine import Function, Tensor, TensorLike, as_tensor, binary_operands, check_same_backend
from .reduction import sum as _sum
from .shape import ScatterAdd, Transpose, _axis, broadcast_to, diagonal, ravel, reshape, sum_to, swapaxes

# this family's differentiable ops (their union is the registry: ops/__init__.py)
__all__ = ["matmul", "dot", "vdot", "inner", "outer", "tensordot", "einsum", "kron", "trace"]


class MatMul(Function):
    """y = a @ b for a (..., n, k) and b (..., k, m), the batch axes broadcast.

    ga = gy @ b^T and gb = a^T @ gy (transposing the last two axes), each summed back over the
    batch axes that broadcasting created.
    """

    __slots__ = ()

    def forward(self, a: Any, b: Any) -> Any:
        return array_module(a).matmul(a, b)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = self.inputs
        ga = sum_to(MatMul()(gy, swapaxes(b, -1, -2)), a.shape) if a.requires_grad else None
        gb = sum_to(MatMul()(swapaxes(a, -1, -2), gy), b.shape) if b.requires_grad else None
        return ga, gb


def matmul(a: TensorLike, b: TensorLike) -> Tensor:
    """a @ b with NumPy's rules: 1-D operands are promoted to a row/column and the added axis
    removed afterwards; (..., n, k) @ (..., k, m) -> (..., n, m) with broadcast batch axes."""
    a, b = binary_operands(a, b)
    check_same_backend("matmul", (a, b))
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul needs operands with at least one axis, got shapes {a.shape} and {b.shape}")
    a_vector, b_vector = a.ndim == 1, b.ndim == 1
    a2 = reshape(a, (1, a.shape[0])) if a_vector else a
    b2 = reshape(b, (b.shape[0], 1)) if b_vector else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} are not aligned "
            f"({a2.shape[-1]} columns in the first, {b2.shape[-2]} rows in the second)"
        )
    try:
        numpy.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch axes of shapes {a.shape} and {b.shape} do not broadcast") from None
    y = MatMul()(a2, b2)
    if a_vector:
        y = reshape(y, y.shape[:-2] + y.shape[-1:])
    if b_vector:
        y = reshape(y, y.shape[:-1])
    return y


def _contracted_axes(axes: Any, a: Tensor, b: Tensor) -> tuple[list[int], list[int]]:
    """tensordot's ``axes`` as two lists of non-negative axes (of a, of b), checked as NumPy reads them."""
    if isinstance(axes, (int, numpy.integer)) and not isinstance(axes, bool):
        n = int(axes)
        if n < 0 or n > a.ndim or n > b.ndim:  # AxisError: NumPy's IndexError and a ValueError
            raise numpy.exceptions.AxisError(
                f"tensordot: cannot contract {n} axes of shapes {a.shape} and {b.shape} "
                "(axes must be between 0 and the smaller number of axes)"
            )
        return list(range(a.ndim - n, a.ndim)), list(range(n))
    try:
        axes_a, axes_b = axes
    except (TypeError, ValueError):
        raise TypeError(f"tensordot: axes must be an integer or a pair of sequences of axes, got {axes!r}") from None
    axes_a = list(axes_a) if isinstance(axes_a, (list, tuple)) else [axes_a]
    axes_b = list(axes_b) if isinstance(axes_b, (list, tuple)) else [axes_b]
    if len(axes_a) != len(axes_b):
        raise ValueError(f"tensordot: axes {axes!r} name {len(axes_a)} axes of a but {len(axes_b)} of b")
    axes_a = [_axis(i, a.ndim, "tensordot axes of a") for i in axes_a]
    axes_b = [_axis(i, b.ndim, "tensordot axes of b") for i in axes_b]
    if len(set(axes_a)) != len(axes_a) or len(set(axes_b)) != len(axes_b):
        raise ValueError(f"tensordot: repeated axis in {axes!r}")
    return axes_a, axes_b


def tensordot(a: TensorLike, b: TensorLike, axes: int | Sequence[Any] = 2) -> Tensor:
    """sum over the paired axes of a and b of a * b, as ``numpy.tensordot``: ``axes=n`` pairs the last n
    axes of a with the first n of b; ``axes=(axes_a, axes_b)`` names them. The result's axes are a's
    free axes then b's.

    NumPy's definition: move the contracted axes of a last and those of b first, flatten both to
    matrices (free, K) and (K, free), multiply, reshape. The gradient is matmul's, taken back through
    the reshapes and transposes.
    """
    a, b = binary_operands(a, b)
    check_same_backend("tensordot", (a, b))
    axes_a, axes_b = _contracted_axes(axes, a, b)
    for i, j in zip(axes_a, axes_b):
        if a.shape[i] != b.shape[j]:
            raise ValueError(
                f"tensordot: shape mismatch for sum: axis {i} of a (shape {a.shape}) has length {a.shape[i]}, "
                f"axis {j} of b (shape {b.shape}) has length {b.shape[j]}"
            )
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [j for j in range(b.ndim) if j not in axes_b]
    shape_a, shape_b = [a.shape[i] for i in free_a], [b.shape[j] for j in free_b]
    k = math.prod(a.shape[i] for i in axes_a)
    a2 = reshape(_permuted(a, free_a + axes_a), (math.prod(shape_a), k))
    b2 = reshape(_permuted(b, axes_b + free_b), (k, math.prod(shape_b)))
    return reshape(MatMul()(a2, b2), (*shape_a, *shape_b))


def _permuted(x: Tensor, order: list[int]) -> Tensor:
    return x if order == list(range(x.ndim)) else Transpose(tuple(order))(x)


def dot(a: TensorLike, b: TensorLike) -> Tensor:
    """``numpy.dot``: a product with a 0-d operand; the inner product of vectors; the matrix product;
    and for N-D a, M-D b the sum over a's last axis and b's second-to-last (b's last for a 1-D b), the
    result's axes being a's others then b's: dot(a, b)[i, j, k, m] = sum(a[i, j, :] * b[k, :, m])."""
    a, b = binary_operands(a, b)
    check_same_backend("dot", (a, b))
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    k = a.shape[-1]
    j = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k != j:
        raise ValueError(f"dot: shapes {a.shape} and {b.shape} are not aligned ({k} != {j})")
    if a.ndim <= 2 and b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, ([a.ndim - 1], [max(b.ndim - 2, 0)]))


def vdot(a: TensorLike, b: TensorLike) -> Tensor:
    """The dot product of a and b flattened: sum(ravel(a) * ravel(b)), a 0-d tensor (``numpy.vdot`` for
    real tensors; tinymeta has no complex conjugate)."""
    a, b = binary_operands(a, b)
    check_same_backend("vdot", (a, b))
    if a.dtype.kind == "c" or b.dtype.kind == "c":
        raise TypeError("vdot: tinymeta's vdot is for real tensors only (it does not conjugate)")
    if a.size != b.size:
        raise ValueError(f"vdot: a (shape {a.shape}) has {a.size} elements but b (shape {b.shape}) has {b.size}")
    return matmul(ravel(a), ravel(b))


def inner(a: TensorLike, b: TensorLike) -> Tensor:
    """``numpy.inner``: the sum over the last axes of a and b (a product if either is 0-d); the
    result's axes are a's others then b's: inner(a, b)[i, j] = sum(a[i, :] * b[j, :])."""
    a, b = binary_operands(a, b)
    check_same_backend("inner", (a, b))
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"inner: the last axes of shapes {a.shape} and {b.shape} differ")
    return tensordot(a, b, ([a.ndim - 1], [b.ndim - 1]))


def outer(a: TensorLike, b: TensorLike) -> Tensor:
    """out[i, j] = ravel(a)[i] * ravel(b)[j] (inputs flattened, as ``numpy.outer``): a broadcast product."""
    a, b = binary_operands(a, b)
    check_same_backend("outer", (a, b))
    return reshape(a, (a.size, 1)) * reshape(b, (1, b.size))


def kron(a: TensorLike, b: TensorLike) -> Tensor:
    """The Kronecker product: blocks a[i, j] * b, as ``numpy.kron`` (the shorter shape padded with 1s).

    A broadcast product: a as (n0, 1, n1, 1, ...) times b as (1, m0, 1, m1, ...), merged to
    (n0 m0, n1 m1, ...)."""
    a, b = binary_operands(a, b)
    check_same_backend("kron", (a, b))
    d = max(a.ndim, b.ndim)
    sa, sb = (1,) * (d - a.ndim) + a.shape, (1,) * (d - b.ndim) + b.shape
    product = reshape(a, tuple(m for n in sa for m in (n, 1))) * reshape(b, tuple(m for n in sb for m in (1, n)))
    return reshape(product, tuple(n * m for n, m in zip(sa, sb)))


def trace(a: TensorLike, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
    """The sum of the ``offset``-th diagonal (over ``axis1`` and ``axis2``), as ``numpy.trace``:
    ``sum(diagonal(a, offset, axis1, axis2), axis=-1)``."""
    a = as_tensor(a)
    if a.ndim < 2:
        raise ValueError(f"trace: needs a tensor with at least two axes, got shape {a.shape}")
    return _sum(diagonal(a, offset, axis1, axis2), axis=-1)


# ---- einsum ------------------------------------------------------------------------------------


class Einsum(Function):
    """y = einsum("<terms>-><output>", *xs) with explicit letters (no ellipsis) and operands whose
    axes already agree in length (``einsum`` below broadcasts them first).

    The gradient of operand i is the einsum of gy with the other operands that gives operand i's
    letters: y is linear in each operand, with coefficients the product of the others. Two cases
    need more than that einsum. A letter only operand i has (summed inside it, e.g. j in 'ij->i')
    does not reach gy: the gradient is broadcast along it. A letter repeated in operand i (its
    diagonal, e.g. 'ii->i') is one letter of the einsum: the result is scattered onto that diagonal,
    zeros elsewhere (ScatterAdd, whose own gradient gathers the diagonal back). All of it is made of
    tinymeta ops, so gradients of every order follow.
    """

    __slots__ = ("terms", "output_term")  # not "output": Function keeps its result there

    def __init__(self, terms: tuple[str, ...], output: str) -> None:
        self.terms = terms
        self.output_term = output

    def forward(self, *xs: Any) -> Any:
        return array_module(xs[0]).einsum(",".join(self.terms) + "->" + self.output_term, *xs)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        return tuple(self._operand_grad(i, gy) if x.requires_grad else None for i, x in enumerate(self.inputs))

    def _operand_grad(self, i: int, gy: Tensor) -> Tensor:
        x, term = self.inputs[i], self.terms[i]
        others = [t for j, t in enumerate(self.terms) if j != i]
        letters = "".join(dict.fromkeys(term))  # each letter once, in order
        reached = set(self.output_term).union(*others)
        kept = "".join(c for c in letters if c in reached)
        if others or kept != self.output_term:
            operands = [gy, *(t for j, t in enumerate(self.inputs) if j != i)]
            g = Einsum((self.output_term, *others), kept)(*operands)
        else:
            g = gy
        length = dict(zip(term, x.shape))
        if kept != letters:  # letters summed inside x alone: the gradient is the same all along them
            g = reshape(g, tuple(length[c] if c in kept else 1 for c in letters))
            g = broadcast_to(g, tuple(length[c] for c in letters))
        if letters != term:  # a repeated letter: onto the diagonal
            places = []
            for c in term:
                shape = [1] * len(letters)
                shape[letters.index(c)] = length[c]
                places.append(asarray_like(numpy.arange(length[c]).reshape(shape), x.data))
            g = ScatterAdd(tuple(places), x.shape)(g)
        return g


def _einsum_terms(subscripts: str, shapes: list[tuple[int, ...]]) -> tuple[list[str], str]:
    """The subscripts with every '...' replaced by letters of its own (right-aligned, as broadcasting
    aligns axes) and the output letters (NumPy's implicit output when there is no '->': the broadcast
    axes, then the letters used once, in alphabetical order)."""
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    if "->" in output:
        raise ValueError(f"einsum: subscripts {subscripts!r} hold '->' more than once")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: subscripts {subscripts!r} name {len(terms)} operands, but {len(shapes)} were given")
    for term in [*terms, output]:
        if term.replace("...", "", 1).strip(string.ascii_letters):
            raise ValueError(
                f"einsum: invalid subscripts {subscripts!r}: only letters and one '...' per operand are allowed"
            )
    spare = [c for c in string.ascii_letters if c not in spec]
    broadcast = max((len(s) - len(t) + 3 for t, s in zip(terms, shapes) if "..." in t), default=0)
    ellipsis = "".join(spare[:broadcast])
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        named = len(term) - 3 if "..." in term else len(term)
        if named > len(shape) or ("..." not in term and named != len(shape)):
            raise ValueError(
                f"einsum: operand {i} has shape {shape}, which does not fit its subscripts {term!r} "
                f"({named} letters{' and ...' if '...' in term else ''})"
            )
        terms[i] = term.replace("...", ellipsis[broadcast - (len(shape) - named) :])
    if arrow:
        if "..." in output:
            output = output.replace("...", ellipsis)
        elif ellipsis:
            raise ValueError(
                f"einsum: subscripts {subscripts!r} broadcast {broadcast} axes ('...') but the output has no '...'"
            )
        for c in output:
            if output.count(c) > 1 or not any(c in t for t in terms):
                raise ValueError(f"einsum: output letter {c!r} of {subscripts!r} is repeated or in no operand")
    else:
        counts = "".join(terms)
        output = ellipsis + "".join(sorted(c for c in set(counts) if counts.count(c) == 1 and c not in ellipsis))
    return terms, output


def einsum(subscripts: str, *operands: TensorLike) -> Tensor:
    """Einstein summation, as ``numpy.einsum(subscripts, *operands)``: 'ij,jk->ik' (matmul),
    'ii->i' (diagonal), 'ii' (trace), 'bij,bjk->bik', '...ij->...ji', implicit outputs ('ij,jk'),
    axes of length 1 broadcast. The operands are first broadcast to the lengths their letters take,
    then one :class:`Einsum` computes the sum (its gradient is an einsum too; see there).

    >>> import tinymeta as tm
    >>> x = tm.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> tm.einsum("ii", x)  # the trace
    tensor(5., dtype=float64, requires_grad=True)
    >>> tm.grad(tm.einsum("ii", x), x)[0]  # its gradient lies on the diagonal
    tensor([[1., 0.],
            [0., 1.]], dtype=float64)
    """
    if not isinstance(subscripts, str):
        raise TypeError(
            f"einsum: subscripts must be a string such as 'ij,jk->ik', got {type(subscripts).__name__} "
            "(NumPy's interleaved operand/sublist form is not supported)"
        )
    if not operands:
        raise ValueError("einsum needs at least one operand")
    tensors = [as_tensor(x) for x in operands]
    check_same_backend("einsum", tensors)
    terms, output = _einsum_terms(subscripts, [t.shape for t in tensors])
    length: dict[str, int] = {}  # each letter's length: the one not 1 where operands differ (broadcasting)
    for i, (term, t) in enumerate(zip(terms, tensors)):
        for c, n in zip(term, t.shape):
            if n != t.shape[term.index(c)]:
                raise ValueError(f"einsum: operand {i} (shape {t.shape}) repeats {c!r} over axes of unequal length")
            seen = length.setdefault(c, n)
            if n != seen and 1 not in (n, seen):
                raise ValueError(
                    f"einsum: letter {c!r} of {subscripts!r} has length {seen} in one operand and {n} in "
                    f"operand {i} (shape {t.shape})"
                )
            length[c] = n if seen == 1 else seen
    tensors = [broadcast_to(t, tuple(length[c] for c in term)) for term, t in zip(terms, tensors)]
    return Einsum(tuple(terms), output)(*tensors)
