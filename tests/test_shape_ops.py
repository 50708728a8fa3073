"""NumPy's shape functions and products beyond the generated checks of test_ops.py: errors as NumPy's,
axes checked as NumPy checks them, einsum against numpy.einsum, the parts of split, the forms
atleast_* returns, plain lists and arrays as inputs, and the products' third derivatives (through tanh)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from memory import shares_memory, writeable
from op_specs import SPECS_BY_NAME  # first: op_specs imports op_specs_shape

import tinymeta as tm
from tinymeta.testing import gradcheck, gradgradcheck, projected_grad

AxisError = np.exceptions.AxisError
X = np.arange(6.0).reshape(2, 3)
V = np.arange(3.0)

# ---- bad input: NumPy's exception type, with a message naming the op and the bad value ------------

# (op's name, the bad value as the message shows it, tinymeta's call, NumPy's call)
_BAD = [
    ("flip", "2", lambda m: m.flip(X, axis=2)),
    ("flip", "(0, 0)", lambda m: m.flip(X, axis=(0, 0))),
    ("roll", "2", lambda m: m.roll(X, 1, axis=2)),
    ("roll", "(1, 2)", lambda m: m.roll(X, (1, 2), axis=(0, 1, 1))),
    ("moveaxis", "5", lambda m: m.moveaxis(X, 0, 5)),
    ("moveaxis", "(0,)", lambda m: m.moveaxis(X, (0, 1), (0,))),
    ("moveaxis", "[0, 0]", lambda m: m.moveaxis(X, [0, 0], [0, 1])),
    ("repeat", "[1, 2]", lambda m: m.repeat(V, [1, 2])),
    ("repeat", "-1", lambda m: m.repeat(V, -1)),
    ("repeat", "1", lambda m: m.repeat(V, 2, axis=1)),
    ("tile", "-1", lambda m: m.tile(V, -1)),
    ("tile", "1.5", lambda m: m.tile(V, 1.5)),
    ("pad", "-1", lambda m: m.pad(V, -1)),
    ("pad", "1.5", lambda m: m.pad(V, 1.5)),
    ("pad", "((1, 2), (1, 2))", lambda m: m.pad(V, ((1, 2), (1, 2)))),
    ("pad", "foo", lambda m: m.pad(V, 1, mode="foo")),
    ("pad", "axis 0", lambda m: m.pad(np.ones(0), 1, mode="reflect")),
    ("split", "4", lambda m: m.split(V, 4)),
    ("split", "1", lambda m: m.split(V, 1, axis=1)),
    ("array_split", "0", lambda m: m.array_split(V, 0)),
    ("array_split", "2", lambda m: m.array_split(X, 2, axis=2)),
    ("diff", "-1", lambda m: m.diff(V, n=-1)),
    ("diff", "0-d", lambda m: m.diff(np.float64(1.0))),
    ("diff", "2", lambda m: m.diff(X, axis=2)),
    ("diagonal", "(3,)", lambda m: m.diagonal(V)),
    ("diagonal", "0", lambda m: m.diagonal(X, axis1=0, axis2=0)),
    ("diagonal", "3", lambda m: m.diagonal(X, axis1=0, axis2=3)),
    ("diag", "(1, 2, 3)", lambda m: m.diag(np.ones((1, 2, 3)))),
    ("trace", "(3,)", lambda m: m.trace(V)),
    ("tensordot", "length 3", lambda m: m.tensordot(V, np.ones(4), axes=1)),
    ("tensordot", "5", lambda m: m.tensordot(V, V, axes=([5], [0]))),
    ("tensordot", "2", lambda m: m.tensordot(V, V, axes=2)),
    ("dot", "(2,)", lambda m: m.dot(V, np.ones(2))),
    ("inner", "(2,)", lambda m: m.inner(V, np.ones(2))),
    ("vdot", "(2,)", lambda m: m.vdot(V, np.ones(2))),
    ("einsum", "'ij,jk'", lambda m: m.einsum("ij,jk", X, np.ones((4, 5)))),
    ("einsum", "'ij->ii'", lambda m: m.einsum("ij->ii", X)),
    ("einsum", "'ij->k'", lambda m: m.einsum("ij->k", X)),
    ("einsum", "'ij,jk'", lambda m: m.einsum("ij,jk", X)),
    ("einsum", "'i1'", lambda m: m.einsum("i1", X)),
    ("einsum", "(2,)", lambda m: m.einsum("ij", V[:2])),
    ("einsum", "'i'", lambda m: m.einsum("ii", X)),
    ("einsum", "'...i->i'", lambda m: m.einsum("...i->i", X)),
    ("einsum", "'..i'", lambda m: m.einsum("..i", V)),
]


@pytest.mark.parametrize(
    "name, bad, call", [pytest.param(*case, id=f"{case[0]}({case[1]})") for case in _BAD]
)  # fmt: skip
def test_bad_input_raises_numpys_exception_naming_the_op_and_the_value(name, bad, call) -> None:
    with pytest.raises(Exception) as expected:
        call(np)
    with pytest.raises(expected.type) as raised:  # NumPy's type, or a subclass of it:
        call(tm)  # AxisError where NumPy's IndexError is an axis out of range (array_split, tensordot)
    assert name in str(raised.value) and bad in str(raised.value), str(raised.value)


def test_where_numpy_raises_an_accidental_exception_tinymeta_raises_the_meaningful_one() -> None:
    with pytest.raises(ZeroDivisionError):  # NumPy's split divides by the number of sections
        np.split(V, 0)
    with pytest.raises(ValueError, match="split: the number of sections must be positive, got 0"):
        tm.split(V, 0)
    with pytest.raises(TypeError):  # NumPy's tril of a 0-d array fails to call tri() with its shape
        np.tril(np.float64(1.0))
    for op in (tm.tril, tm.triu):
        with pytest.raises(ValueError, match="needs a tensor with at least one axis"):
            op(np.float64(1.0))
    # NumPy reads a negative axes=n as "no axes" (an outer product); tinymeta refuses it.
    assert np.tensordot(V, V, axes=-1).shape == (3, 3)
    with pytest.raises(ValueError, match="cannot contract -1 axes"):  # (an AxisError, which is one)
        tm.tensordot(V, V, axes=-1)
    with pytest.raises(ValueError, match="mode='constant' only"):
        tm.pad(V, 1, mode="edge", constant_values=1.0)
    with pytest.raises(TypeError, match="real tensors only"):
        tm.vdot(V * 1j, V)
    with pytest.raises(TypeError, match="interleaved"):
        tm.einsum(V, [0], [0])


# ---- einsum ---------------------------------------------------------------------------------------

_EINSUM = [  # subscripts, operand shapes
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ij->ji", [(2, 3)]),
    ("ij", [(2, 3)]),
    ("ji", [(2, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iij->ij", [(2, 2, 3)]),
    ("iji->j", [(2, 3, 2)]),
    ("iii->", [(2, 2, 2)]),
    ("ii,i->i", [(3, 3), (3,)]),
    ("ij,ij->", [(2, 3), (2, 3)]),
    ("ij,ij->ij", [(1, 3), (2, 3)]),
    ("ij,jk->ik", [(2, 1), (3, 4)]),
    ("i,j->ij", [(2,), (3,)]),
    ("i,i", [(3,), (3,)]),
    ("i->", [(3,)]),
    ("ij->", [(2, 3)]),
    ("ij->i", [(2, 3)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 2)]),
    ("bij,bkj->bik", [(2, 2, 3), (2, 2, 3)]),
    ("ij,jk,kl->il", [(2, 3), (3, 2), (2, 2)]),
    ("ab,AB", [(2, 3), (2, 2)]),
    ("aB", [(2, 3)]),
    ("...ij->...ji", [(2, 2, 3)]),
    ("...ij", [(4, 2, 3)]),
    ("...ji", [(4, 2, 3)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("i...,i...", [(3, 2), (3, 1, 2)]),
    ("ij...,jk...", [(2, 3, 4), (3, 2, 1)]),
    ("...i,i", [(2, 3), (3,)]),
    ("i->...", [(2,)]),
    ("...,...", [(2,), ()]),
    ("", [()]),
    ("->", [()]),
    (" i j , j -> i ", [(2, 3), (3,)]),
]


@pytest.mark.parametrize("subscripts, shapes", _EINSUM, ids=[s for s, _ in _EINSUM])
def test_einsum_matches_numpy_and_its_gradients_match_finite_differences(subscripts, shapes) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    for dtype in (np.float32, np.float64):
        typed = [a.astype(dtype) for a in arrays]
        expected = np.einsum(subscripts, *typed)
        out = tm.einsum(subscripts, *[tm.tensor(a) for a in typed])
        assert out.shape == expected.shape and out.dtype == expected.dtype
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    tensors = [tm.tensor(a) for a in arrays]
    assert gradcheck(lambda *ts: tm.einsum(subscripts, *ts), tensors)
    assert gradgradcheck(lambda *ts: tm.tanh(tm.einsum(subscripts, *ts)), tensors)


def test_the_gradient_of_a_repeated_index_lies_on_the_diagonal() -> None:
    x = tm.tensor(np.arange(9.0).reshape(3, 3), requires_grad=True)
    (g,) = tm.grad(tm.einsum("ii", x), x)
    np.testing.assert_array_equal(g.numpy(), np.eye(3))
    w = np.array([1.0, -2.0, 3.0])
    (g,) = tm.grad(tm.einsum("ii->i", x), x, grad_outputs=w)
    np.testing.assert_array_equal(g.numpy(), np.diag(w))
    # d/dx of sum_i x_ii^2 twice: 2 on the diagonal of the Hessian's diagonal blocks
    (g,) = tm.grad(tm.einsum("ii,ii", x, x), x, create_graph=True)
    np.testing.assert_array_equal(g.numpy(), 2 * np.diag(np.diag(x.numpy())))
    (h,) = tm.grad(tm.sum(g), x)
    np.testing.assert_array_equal(h.numpy(), 2 * np.eye(3))


# ---- results in several parts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, sections, axis",
    [((6,), 3, 0), ((6,), [2, 4], 0), ((7,), 3, 0), ((2, 5), 2, 1), ((2, 5), [1, 9, 3], -1), ((4,), 6, 0),
     ((3, 2), [], 0), ((3, 2), np.array([1]), 0), ((5,), 5.0, 0)],
)  # fmt: skip
def test_split_and_array_split_give_numpys_parts(shape, sections, axis) -> None:
    x = np.arange(float(np.prod(shape))).reshape(shape)
    for op, reference in ((tm.split, np.split), (tm.array_split, np.array_split)):
        try:
            expected = reference(x, sections, axis)
        except ValueError:
            with pytest.raises(ValueError):
                op(x, sections, axis)
            continue
        parts = op(x, sections, axis)
        assert isinstance(parts, list) and len(parts) == len(expected)
        for part, e in zip(parts, expected):
            assert isinstance(part, tm.Tensor)
            np.testing.assert_array_equal(part.numpy(), e)
            assert part.shape == e.shape


def test_atleast_returns_one_tensor_for_one_input_and_a_tuple_for_several() -> None:
    inputs = [np.float64(1.0), np.ones(2), np.ones((2, 3)), np.ones((1, 2, 3, 4))]
    for op, reference in (
        (tm.atleast_1d, np.atleast_1d),
        (tm.atleast_2d, np.atleast_2d),
        (tm.atleast_3d, np.atleast_3d),
    ):
        for x in inputs:
            out = op(x)
            assert isinstance(out, tm.Tensor) and out.shape == reference(x).shape
        several = op(*inputs)
        assert isinstance(several, tuple) and [t.shape for t in several] == [a.shape for a in reference(*inputs)]
        assert op() == reference() == ()


# ---- plain lists and NumPy arrays as inputs ----------------------------------------------------------

M = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
_CALLS = {  # module m (numpy or tinymeta), matrix M (a list, or an array): the same call on either
    "ravel": lambda m, M: m.ravel(M),
    "flip": lambda m, M: m.flip(M, 0),
    "roll": lambda m, M: m.roll(M, 1),
    "moveaxis": lambda m, M: m.moveaxis(M, 0, 1),
    "repeat": lambda m, M: m.repeat(M, [1, 0, 2], axis=1),
    "tile": lambda m, M: m.tile(M[0], (2, 1)),
    "pad": lambda m, M: m.pad(M, ((1, 0), (0, 2)), mode="reflect"),
    "split": lambda m, M: m.split(M, [1, 2])[1],  # (NumPy's split(list, 3) fails: a list has no .shape)
    "array_split": lambda m, M: m.array_split(M, 2, axis=1)[0],
    "atleast_1d": lambda m, M: m.atleast_1d(M[0][0]),
    "atleast_2d": lambda m, M: m.atleast_2d(M[0]),
    "atleast_3d": lambda m, M: m.atleast_3d(M),
    "hstack": lambda m, M: m.hstack([M, M]),
    "vstack": lambda m, M: m.vstack([M[0], M]),
    "diff": lambda m, M: m.diff(M, 2, axis=0),
    "diagonal": lambda m, M: m.diagonal(M, 1),
    "diag": lambda m, M: m.diag(M[0], -1),
    "tril": lambda m, M: m.tril(M, -1),
    "triu": lambda m, M: m.triu(M, 1),
    "dot": lambda m, M: m.dot(M, M[0]),
    "vdot": lambda m, M: m.vdot(M, M),
    "inner": lambda m, M: m.inner(M, M),
    "outer": lambda m, M: m.outer(M[0], M[1]),
    "tensordot": lambda m, M: m.tensordot(M, M, 1),
    "einsum": lambda m, M: m.einsum("ij,jk->ki", M, M),
    "kron": lambda m, M: m.kron(M[0], M),
    "trace": lambda m, M: m.trace(M, -1),
}


@pytest.mark.parametrize("name", sorted(_CALLS))
def test_each_op_takes_lists_and_arrays_as_numpy_does(name) -> None:
    # Nested lists, and NumPy integer arrays (whose dtype the result keeps as NumPy's does).
    for matrix in (M, np.asarray(M, dtype=np.int64)):
        expected = np.asarray(_CALLS[name](np, matrix))
        out = _CALLS[name](tm, matrix)
        assert isinstance(out, tm.Tensor) and out.shape == expected.shape
        assert out.dtype == expected.dtype, f"dtype {out.dtype}, NumPy gives {expected.dtype}"
        np.testing.assert_array_equal(out.numpy(), expected)


def test_every_new_op_is_called_above() -> None:
    shape_ops = {
        "ravel", "flip", "roll", "moveaxis", "repeat", "tile", "pad", "split", "array_split", "atleast_1d",
        "atleast_2d", "atleast_3d", "hstack", "vstack", "diff", "diagonal", "diag", "tril", "triu",
    }  # fmt: skip
    products = set(tm.ops.products.__all__) - {"matmul"}
    assert shape_ops | products == set(_CALLS)
    assert shape_ops <= set(tm.ops.shape.__all__)


# ---- Tensor methods ----------------------------------------------------------------------------------


def test_ravel_may_share_memory_and_flatten_never_does() -> None:
    t = tm.tensor(X)
    assert shares_memory(t.ravel().data, t.data)
    flat = t.flatten()
    assert not shares_memory(flat.data, t.data)
    np.testing.assert_array_equal(flat.numpy(), X.flatten())
    assert tm.tensor(np.ones((1, 3, 1))).squeeze().shape == (3,)
    assert tm.tensor(np.ones((1, 3, 1))).squeeze(axis=-1).shape == (1, 3)
    with pytest.raises(ValueError):
        tm.tensor(np.ones((1, 3, 1))).squeeze(axis=1)


# ---- degenerate calls: a new tensor, and a copy wherever NumPy's is one ---------------------------------

S = np.array(2.5)
# (label, the input, tinymeta's call, NumPy's): each call changes nothing, or next to nothing
_DEGENERATE = [
    ("roll by the axis length", X, lambda m, a: m.roll(a, 3, axis=1)),
    ("roll by 0", X, lambda m, a: m.roll(a, 0)),
    ("roll by whole turns on two axes", X, lambda m, a: m.roll(a, (2, -3), axis=(0, 1))),
    ("roll flattened by the size", X, lambda m, a: m.roll(a, 6)),
    ("pad by 0", X, lambda m, a: m.pad(a, 0)),
    ("pad by 0 with a fill", X, lambda m, a: m.pad(a, ((0, 0), (0, 0)), constant_values=5.0)),
    ("pad by 0, edge", X, lambda m, a: m.pad(a, 0, mode="edge")),
    ("pad by 0, reflect", V, lambda m, a: m.pad(a, 0, mode="reflect")),
    ("pad a 0-d array", S, lambda m, a: m.pad(a, 1)),
    ("tile by 1", X, lambda m, a: m.tile(a, 1)),
    ("tile by (1, 1, 1)", X, lambda m, a: m.tile(a, (1, 1, 1))),
    ("tile a 0-d array", S, lambda m, a: m.tile(a, 3)),
    ("tile along a length-1 axis", V[:1], lambda m, a: m.tile(a, 4)),
    ("repeat once", X, lambda m, a: m.repeat(a, 1, axis=0)),
    ("concatenate one", X, lambda m, a: m.concatenate([a])),
    ("stack one", X, lambda m, a: m.stack([a])),
    ("hstack one", X, lambda m, a: m.hstack([a])),
    ("vstack one", X, lambda m, a: m.vstack([a])),
    ("clip without bounds", X, lambda m, a: m.clip(a, None, None)),
    ("copy", X, lambda m, a: m.copy(a) if m is np else np.copy(a)),
    ("reshape to its own shape", X, lambda m, a: m.reshape(a, (2, 3))),
    ("squeeze nothing", X, lambda m, a: m.squeeze(a)),
    ("ravel a 1-D array", V, lambda m, a: m.ravel(a)),
    ("moveaxis nowhere", X, lambda m, a: m.moveaxis(a, 0, 0)),
    ("transpose by the identity", X, lambda m, a: m.transpose(a, (0, 1))),
    ("swapaxes of one axis", X, lambda m, a: m.swapaxes(a, 1, 1)),
    ("broadcast_to its own shape", X, lambda m, a: m.broadcast_to(a, (2, 3))),
    ("flip no axis", X, lambda m, a: m.flip(a, ())),
    ("atleast_1d of 1-D", V, lambda m, a: m.atleast_1d(a)),
    ("atleast_2d of 2-D", X, lambda m, a: m.atleast_2d(a)),
    ("atleast_3d of 3-D", X[..., None], lambda m, a: m.atleast_3d(a)),
    ("diff of order 0", X, lambda m, a: m.diff(a, 0)),
    ("split into one", X, lambda m, a: m.split(a, 1)[0]),
    ("array_split into one", X, lambda m, a: m.array_split(a, 1, axis=1)[0]),
    ("astype, copy=False, same dtype", X, lambda m, a: m.astype(a, np.float64, copy=False)),
]


@pytest.mark.parametrize("label, a, call", _DEGENERATE, ids=[case[0] for case in _DEGENERATE])
def test_a_degenerate_call_gives_a_new_tensor_and_copies_where_numpy_copies(label, a, call) -> None:
    # An op never returns its input; where NumPy's result is an array of its own (roll, pad, tile, ...),
    # tinymeta's is too (a writable copy); where NumPy's is a view (reshape, slices, atleast_*), it may be.
    x = tm.tensor(a, requires_grad=True)
    y = call(tm, x)
    expected = call(np, a)
    assert y is not x and isinstance(y, tm.Tensor) and y.requires_grad
    np.testing.assert_array_equal(y.numpy(), expected)
    assert y.dtype == expected.dtype
    if not np.shares_memory(expected, a):
        assert not shares_memory(y.data, x.data) and writeable(y.data), "NumPy copies, tinymeta shares memory"
    (g,) = tm.grad(tm.sum(y * 2.0), x)  # and it still differentiates
    assert g.shape == x.shape and (g.numpy() > 0).all()


def test_tensor_methods_and_unary_plus_give_new_tensors() -> None:
    t = tm.tensor(X, requires_grad=True)
    for y in (t.reshape(2, 3), t.reshape((2, 3)), t.squeeze(), t.astype(np.float64), t.flatten(), +t):
        assert y is not t
    for y in (t.astype(np.float64), t.flatten(), +t):  # NumPy's are copies (np.positive for +)
        assert not shares_memory(y.data, t.data)
    v = tm.tensor(V)
    assert v.ravel() is not v and tm.ravel(v) is not v


def test_concatenate_with_axis_none_flattens_as_numpy() -> None:
    a, b = np.arange(4.0).reshape(2, 2), np.array([7.0, 8.0, 9.0])
    ta, tb = tm.tensor(a, requires_grad=True), tm.tensor(b, requires_grad=True)
    out = tm.concatenate([ta, tb, 5.0], axis=None)
    np.testing.assert_array_equal(out.numpy(), np.concatenate([a, b, 5.0], axis=None))
    ga, gb = tm.grad(tm.sum(out * np.arange(8.0)), [ta, tb])
    np.testing.assert_array_equal(ga.numpy(), [[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(gb.numpy(), [4.0, 5.0, 6.0])
    assert isinstance(np.concatenate([ta, tb], axis=None), tm.Tensor)  # NumPy's own call reaches it


def test_diff_prepends_and_appends_as_numpy_and_differentiates_them() -> None:
    a = np.array([[1.0, 4.0, 9.0], [2.0, 3.0, 7.0]])
    x = tm.tensor(a, requires_grad=True)
    for kwargs in [
        dict(prepend=0.0),
        dict(append=[[1.0], [2.0]]),
        dict(prepend=5, append=-1.0, n=2),
        dict(axis=0, prepend=a[:1]),
    ]:
        np.testing.assert_array_equal(tm.diff(x, **kwargs).numpy(), np.diff(a, **kwargs))
    np.testing.assert_array_equal(tm.diff(tm.tensor([1, 5, 2]), prepend=3).numpy(), np.diff([1, 5, 2], prepend=3))
    first = tm.tensor([[0.5], [1.5]], requires_grad=True)  # a tensor prepended receives its gradient
    y = tm.diff(x, prepend=first)  # columns: x0 - first, x1 - x0, x2 - x1
    gx, gf = tm.grad(tm.sum(y * np.array([1.0, 2.0, 3.0])), [x, first])
    np.testing.assert_array_equal(gx.numpy(), [[-1.0, -1.0, 3.0]] * 2)
    np.testing.assert_array_equal(gf.numpy(), [[-1.0], [-1.0]])
    assert isinstance(np.diff(x, append=0.0), tm.Tensor)
    np.testing.assert_array_equal(tm.diff(tm.tensor(S), 0).numpy(), np.diff(S, 0))  # n=0: a itself, even 0-d


def test_gradients_add_up_over_every_copy_of_an_element() -> None:
    x = tm.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (g,) = tm.grad(tm.sum(tm.pad(x, 2, mode="edge")), x)
    np.testing.assert_array_equal(g.numpy(), [3.0, 1.0, 3.0])
    (g,) = tm.grad(tm.sum(tm.pad(x, 2, mode="reflect")), x)  # 3 2 | 1 2 3 | 2 1
    np.testing.assert_array_equal(g.numpy(), [2.0, 3.0, 2.0])
    (g,) = tm.grad(tm.sum(tm.tile(x, (2, 2))), x)
    np.testing.assert_array_equal(g.numpy(), [4.0, 4.0, 4.0])
    (g,) = tm.grad(tm.sum(tm.repeat(x, [0, 1, 3])), x)
    np.testing.assert_array_equal(g.numpy(), [0.0, 1.0, 3.0])
    (g,) = tm.grad(tm.sum(tm.pad(x, 1, constant_values=5.0)), x)
    np.testing.assert_array_equal(g.numpy(), [1.0, 1.0, 1.0])


# ---- third order of the products, through tanh (their own third derivative is zero) ---------------------

_BILINEAR = ["dot", "inner", "vdot", "outer", "kron", "tensordot", "einsum"]


@pytest.mark.parametrize("name", _BILINEAR)
@given(data=st.data())
def test_third_order_of_the_products_through_tanh(name, data) -> None:
    case = data.draw(SPECS_BY_NAME[name].cases)

    def fn(*ts: tm.Tensor) -> tm.Tensor:
        return tm.tanh(case.fn(*ts))

    assert gradgradcheck(projected_grad(fn, seed=2), [tm.tensor(a) for a in case.arrays])
