"""Every differentiable op, property-based: forward vs NumPy, first, second and third order vs
central finite differences. One registry (``op_specs.SPECS``) drives all of it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from memory import shares_memory, writeable
from op_specs import SPECS, SPECS_BY_NAME, Case

import tinymeta as tm
from tinymeta.testing import gradcheck, gradgradcheck, projected_grad

ALL = [pytest.param(spec, id=spec.name) for spec in SPECS]
THIRD = [pytest.param(spec, id=spec.name) for spec in SPECS if spec.third_order]

# Forward tolerances: the reference may use another (equally valid) formula or summation order,
# so results differ by a few rounding errors per term: ~1e-15 per op in float64 over at most a few
# dozen terms; float32's unit roundoff is 6e-8, and softmax/logsumexp/sigmoid chain several ops.
FORWARD_TOLERANCE = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-6)}


def test_every_op_has_a_gradient_specification() -> None:
    missing = set(tm.ops.REGISTRY) - set(SPECS_BY_NAME)
    unknown = set(SPECS_BY_NAME) - set(tm.ops.REGISTRY)
    assert not missing, f"ops without gradient checks: {sorted(missing)}"
    assert not unknown, f"specs for ops that are not in tinymeta.ops.REGISTRY: {sorted(unknown)}"


def _tensors(case: Case, dtype: type = np.float64) -> list[tm.Tensor]:
    return [tm.tensor(a.astype(dtype)) for a in case.arrays]


@pytest.mark.parametrize("spec", ALL)
@given(data=st.data(), dtype=st.sampled_from([np.float64, np.float32]))
def test_forward_matches_numpy(spec, data, dtype) -> None:
    case = data.draw(spec.cases)
    arrays = [a.astype(dtype) for a in case.arrays]
    expected = np.asarray(case.ref(*arrays))
    result = case.fn(*_tensors(case, dtype))
    assert isinstance(result, tm.Tensor)
    assert result.shape == expected.shape
    assert result.dtype == expected.dtype, f"dtype {result.dtype}, NumPy gives {expected.dtype}"
    np.testing.assert_allclose(result.numpy(), expected, **FORWARD_TOLERANCE[dtype])


@pytest.mark.parametrize("spec", ALL)
@given(data=st.data())
def test_gradient_matches_finite_differences(spec, data) -> None:
    case = data.draw(spec.cases)
    originals = [a.copy() for a in case.arrays]
    inputs = _tensors(case)
    assert gradcheck(case.fn, inputs)
    for before, after in zip(originals, inputs):
        np.testing.assert_array_equal(before, after.numpy(), err_msg="the op mutated its input")


@pytest.mark.parametrize("spec", ALL)
@given(data=st.data())
def test_float32_gradient_stays_float32_and_matches_float64(spec, data) -> None:
    case = data.draw(spec.cases)
    grads = {}
    for dtype in (np.float32, np.float64):
        inputs = [tm.tensor(a.astype(dtype), requires_grad=True) for a in case.arrays]
        out = case.fn(*inputs)
        v = np.random.default_rng(0).standard_normal(out.shape).astype(dtype)
        grads[dtype] = tm.grad(out, inputs, grad_outputs=v, allow_unused=True)
    for g32, g64 in zip(grads[np.float32], grads[np.float64]):
        if g64 is None:
            assert g32 is None
            continue
        assert g32.dtype == np.float32
        # float32 rounding (6e-8 per op) through a handful of ops on O(1) values: ~1e-6 relative.
        np.testing.assert_allclose(g32.numpy(), g64.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", ALL)
@given(data=st.data())
def test_second_order_matches_finite_differences(spec, data) -> None:
    case = data.draw(spec.cases)
    assert gradgradcheck(case.fn, _tensors(case))


# Bilinear ops have a zero third derivative; composing with tanh makes the check informative.
_THIRD_ORDER_WRAP = {"matmul", "conv2d"}


@pytest.mark.parametrize("spec", THIRD)
@given(data=st.data())
def test_third_order_matches_finite_differences(spec, data) -> None:
    case = data.draw(spec.cases)
    fn = case.fn
    if spec.name in _THIRD_ORDER_WRAP:

        def fn(*ts):
            return tm.tanh(case.fn(*ts))

    assert gradgradcheck(projected_grad(fn, seed=2), _tensors(case))


def test_gradient_flows_through_repeated_integer_indices() -> None:
    # x[[0, 0, 2]] uses x[0] twice: its gradient must be 2, not 1 (scatter-add, not assignment).
    x = tm.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (g,) = tm.grad(tm.sum(x[[0, 0, 2]]), x)
    np.testing.assert_array_equal(g.numpy(), [2.0, 0.0, 1.0])


def test_max_shares_the_gradient_between_ties() -> None:
    x = tm.tensor([1.0, 3.0, 3.0], requires_grad=True)
    (g,) = tm.grad(tm.max(x), x)
    np.testing.assert_array_equal(g.numpy(), [0.0, 0.5, 0.5])


# ---- the whole registry, off the tested path -------------------------------------------------------

EDGES = [pytest.param(spec, edge, id=f"{spec.name}: {edge.note}") for spec in SPECS for edge in spec.edges]


@pytest.mark.parametrize("spec, edge", EDGES)
def test_derivatives_at_the_edge_of_the_domain(spec, edge) -> None:
    # Exact values (inf, -inf and NaN included: assert_allclose compares them as equal), to every order
    # given; RuntimeWarnings are errors in this suite, so none of this may warn either.
    inputs = [tm.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in edge.inputs]
    out = edge.fn(*inputs)
    np.testing.assert_allclose(out.numpy(), edge.value, rtol=1e-12, atol=1e-15, err_msg="value")
    current = [out]
    for order, expected in enumerate(edge.derivatives, start=1):
        total = tm.sum(tm.stack([tm.sum(c) for c in current]))
        grads = tm.grad(total, inputs, create_graph=True, allow_unused=True)
        grads = [tm.tensor(np.zeros(x.shape)) if g is None else g for g, x in zip(grads, inputs)]
        expected = expected if len(inputs) > 1 else [expected]
        for i, (g, e) in enumerate(zip(grads, expected)):
            assert g.shape == inputs[i].shape
            np.testing.assert_allclose(g.numpy(), e, rtol=1e-12, atol=1e-14, err_msg=f"order {order}, input {i}")
        current = grads


@pytest.mark.parametrize("spec", ALL)
@given(data=st.data())
def test_mixed_dtypes_promote_as_numpy_and_each_gradient_keeps_its_inputs_dtype(spec, data) -> None:
    # PyTorch's rule: a gradient has its input's dtype, even where the computation promoted to float64
    # (a float32 model fed float64 data), to second order.
    case = data.draw(spec.cases)
    dtypes = [data.draw(st.sampled_from([np.float32, np.float64])) for _ in case.arrays]
    arrays = [a.astype(d) for a, d in zip(case.arrays, dtypes)]
    differentiate = [data.draw(st.booleans()) for _ in arrays]
    differentiate[data.draw(st.integers(0, len(arrays) - 1))] = True
    inputs = [tm.tensor(a, requires_grad=r) for a, r in zip(arrays, differentiate)]
    out = case.fn(*inputs)
    assert out.dtype == np.asarray(case.ref(*arrays)).dtype
    leaves = [x for x in inputs if x.requires_grad]
    v = np.random.default_rng(0).standard_normal(out.shape)  # float64: cast to the output's dtype
    grads = tm.grad(out, leaves, grad_outputs=v, create_graph=True, allow_unused=True)
    for g, x in zip(grads, leaves):
        assert g is None or g.dtype == x.dtype, f"gradient {g.dtype} for a {x.dtype} input"
    second = [g for g in grads if g is not None and g.requires_grad]
    if second:
        for g, x in zip(
            tm.grad(second, leaves, grad_outputs=[np.ones(g.shape) for g in second], allow_unused=True), leaves
        ):
            assert g is None or g.dtype == x.dtype, f"second derivative {g.dtype} for a {x.dtype} input"


@pytest.mark.parametrize("spec", ALL)
@given(data=st.data(), create_graph=st.booleans())
def test_gradients_are_fresh_writable_arrays(spec, data, create_graph) -> None:
    # Writable, and never sharing memory with the caller's grad_outputs, an input or another gradient:
    # a caller may write into every gradient it gets. (A view of a temporary nothing else holds is fine.)
    case = data.draw(spec.cases)
    inputs = [tm.tensor(a, requires_grad=True) for a in case.arrays]
    seed = np.random.default_rng(0).standard_normal(case.fn(*inputs).shape)
    grads = tm.grad(case.fn(*inputs), inputs, grad_outputs=seed, create_graph=create_graph, allow_unused=True)
    case.fn(*inputs).backward(seed)
    for found in ([g for g in grads if g is not None], [x.grad for x in inputs if x.grad is not None]):
        arrays = [g.data for g in found]
        for i, a in enumerate(arrays):
            assert writeable(a), "a read-only array"
            assert not shares_memory(a, seed), "the caller's grad_outputs came back"
            assert not any(shares_memory(a, x.data) for x in inputs), "shares memory with an input"
            assert not any(shares_memory(a, b) for b in arrays[i + 1 :]), "two gradients share memory"


@pytest.mark.parametrize("spec", ALL)
@given(data=st.data())
def test_outputs_are_new_tensors_that_copy_where_numpy_copies(spec, data) -> None:
    # Never an input itself; and where the NumPy reference returns an array of its own, neither does the
    # op share memory with an input (a view is fine where NumPy's is one: reshape, transpose, slices).
    # tests/test_shape_ops.py adds the degenerate calls (a roll by the axis length, a pad of width 0, ...).
    case = data.draw(spec.cases)
    inputs = _tensors(case)
    out = case.fn(*inputs)
    assert all(out is not x for x in inputs), "an input came back"
    arrays = [a.copy() for a in case.arrays]
    expected = case.ref(*arrays)
    if isinstance(expected, np.ndarray) and not any(np.shares_memory(expected, a) for a in arrays):
        assert not any(shares_memory(out.data, x.data) for x in inputs), "shares memory with an input"


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


_AXIS_OPS = {  # every op that takes an axis: tinymeta op, its NumPy counterpart
    "sum": (lambda x, a: tm.sum(x, axis=a), lambda x, a: np.sum(x, axis=a)),
    "mean": (lambda x, a: tm.mean(x, axis=a), lambda x, a: np.mean(x, axis=a)),
    "max": (lambda x, a: tm.max(x, axis=a), lambda x, a: np.max(x, axis=a)),
    "min": (lambda x, a: tm.min(x, axis=a), lambda x, a: np.min(x, axis=a)),
    "logsumexp": (lambda x, a: tm.logsumexp(x, axis=a), lambda x, a: np.log(np.sum(np.exp(x), axis=a))),
    "softmax": (lambda x, a: tm.softmax(x, axis=a), _softmax),
    "log_softmax": (lambda x, a: tm.log_softmax(x, axis=a), lambda x, a: np.log(_softmax(x, a))),
    "expand_dims": (tm.expand_dims, np.expand_dims),
    "squeeze": (tm.squeeze, np.squeeze),
    "concatenate": (lambda x, a: tm.concatenate([x, x], a), lambda x, a: np.concatenate([x, x], a)),
    "stack": (lambda x, a: tm.stack([x, x], a), lambda x, a: np.stack([x, x], a)),
    "swapaxes first": (lambda x, a: tm.swapaxes(x, a, 0), lambda x, a: np.swapaxes(x, a, 0)),
    "swapaxes second": (lambda x, a: tm.swapaxes(x, 0, a), lambda x, a: np.swapaxes(x, 0, a)),
    "transpose": (lambda x, a: tm.transpose(x, (a, 0, 1)), lambda x, a: np.transpose(x, (a, 0, 1))),
    "flip": (tm.flip, np.flip),
    "roll": (lambda x, a: tm.roll(x, 1, a), lambda x, a: np.roll(x, 1, a)),
    "repeat": (lambda x, a: tm.repeat(x, 2, a), lambda x, a: np.repeat(x, 2, a)),
    "moveaxis source": (lambda x, a: tm.moveaxis(x, a, 0), lambda x, a: np.moveaxis(x, a, 0)),
    "moveaxis destination": (lambda x, a: tm.moveaxis(x, 0, a), lambda x, a: np.moveaxis(x, 0, a)),
    "split": (lambda x, a: tm.split(x, 1, a)[0], lambda x, a: np.split(x, 1, a)[0]),
    "array_split": (lambda x, a: tm.array_split(x, 2, a)[0], lambda x, a: np.array_split(x, 2, a)[0]),
    "diff": (lambda x, a: tm.diff(x, 1, a), lambda x, a: np.diff(x, 1, a)),
    "diagonal axis1": (lambda x, a: tm.diagonal(x, 0, a, 0), lambda x, a: np.diagonal(x, 0, a, 0)),
    "diagonal axis2": (lambda x, a: tm.diagonal(x, 0, 1, a), lambda x, a: np.diagonal(x, 0, 1, a)),
    "trace": (lambda x, a: tm.trace(x, 0, 2, a), lambda x, a: np.trace(x, 0, 2, a)),
    "tensordot": (
        lambda x, a: tm.tensordot(x, x, ([a], [a])),
        lambda x, a: np.tensordot(x, x, ([a], [a])),
    ),
}


@pytest.mark.parametrize("name", sorted(_AXIS_OPS))
def test_axes_are_checked_as_numpy_checks_them(name) -> None:
    # Out of range is NumPy's exception (AxisError, or IndexError where NumPy indexes the shape with
    # the axis; ValueError for a repeated axis), never wrapped modulo ndim; a valid axis gives NumPy's values.
    op, reference = _AXIS_OPS[name]
    x = np.arange(6.0).reshape(1, 2, 3)
    for axis in range(-6, 6):
        try:
            expected = reference(x, axis)
        except (np.exceptions.AxisError, IndexError, ValueError) as exc:
            with pytest.raises(type(exc)):
                op(tm.tensor(x), axis)
        else:
            np.testing.assert_allclose(op(tm.tensor(x), axis).numpy(), expected, rtol=1e-15, err_msg=f"axis={axis}")


@st.composite
def mask_indices(draw: st.DrawFn) -> tuple[np.ndarray, object]:
    """An array and an index holding a boolean mask, whose shape is sometimes wrong for its axes."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    x = draw(hnp.arrays(np.float64, shape, elements=st.floats(-3, 3)))
    form = draw(st.sampled_from(["alone", "leading", "after_ellipsis", "after_none", "after_int", "after_slice"]))
    axis = {"alone": 0, "leading": 0, "after_ellipsis": len(shape) - 1, "after_none": 0}.get(form, 1)
    if axis >= len(shape):
        form, axis = "alone", 0
    mask_ndim = draw(st.integers(1, len(shape) - axis)) if form in ("alone", "leading") else 1
    mask_shape = list(shape[axis : axis + mask_ndim])
    if draw(st.booleans()):  # a wrong length on one axis
        k = draw(st.integers(0, mask_ndim - 1))
        mask_shape[k] = draw(st.sampled_from([n for n in range(6) if n != mask_shape[k]]))
    mask = draw(hnp.arrays(bool, tuple(mask_shape)))
    index = {
        "alone": mask,
        "leading": (mask, Ellipsis),
        "after_ellipsis": (Ellipsis, mask),
        "after_none": (None, mask),
        "after_int": (0, mask),
        "after_slice": (slice(None, None, -1), mask),
    }[form]
    return x, index


@given(mask_indices())
def test_boolean_masks_index_and_fail_exactly_as_numpy(example) -> None:
    x, index = example
    try:
        expected = x[index]
    except IndexError:
        with pytest.raises(IndexError):
            tm.tensor(x)[index]
        return
    t = tm.tensor(x, requires_grad=True)
    out = t[index]
    np.testing.assert_array_equal(out.numpy(), expected)
    w = np.random.default_rng(0).standard_normal(expected.shape)
    (g,) = tm.grad(out, t, grad_outputs=w)
    scattered = np.zeros_like(x)
    scattered[index] += w  # a mask selects each element at most once
    np.testing.assert_array_equal(g.numpy(), scattered)


_COMPLEX = {  # every way a complex value can meet a tensor that requires grad
    "x * 1j": lambda x: x * 1j,
    "1j - x": lambda x: 1j - x,
    "x / complex array": lambda x: x / (np.ones(3) + 1j),
    "x ** 1j": lambda x: x**1j,
    "where": lambda x: tm.where(np.array([True, False, True]), x, 1j),
    "concatenate": lambda x: tm.concatenate([x, tm.tensor(np.ones(2) * 1j)]),
    "stack": lambda x: tm.stack([x, np.ones(3) * 1j]),
    "matmul": lambda x: tm.matmul(x, np.ones((3, 2)) * 1j),
    "astype": lambda x: tm.astype(x, np.complex128),
}


@pytest.mark.parametrize("name", sorted(_COMPLEX))
def test_complex_numbers_never_enter_a_graph(name) -> None:
    x = tm.tensor([0.5, -1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="complex"):
        _COMPLEX[name](x)
    with tm.no_grad():  # without a graph, complex arithmetic is NumPy's
        assert _COMPLEX[name](x).dtype.kind == "c"


@pytest.mark.parametrize(
    "dtype, scales", [(np.float32, [1e-25, 1e-10, 1e10, 3e19]), (np.float64, [1e-200, 1e-100, 1e100, 1e200])]
)
def test_division_differentiates_at_every_scale_its_dtype_can_hold(dtype, scales) -> None:
    # d(a/b)/db = -a/b^2 = -(a/b)/b: never through b*b, which under- or overflows long before the result.
    for s in scales:
        b = tm.tensor(np.array(s, dtype=dtype), requires_grad=True)
        (g,) = tm.grad(s / b, b)
        np.testing.assert_allclose(g.numpy(), -1 / s, rtol=1e-6)
        (zero,) = tm.grad(0.0 / b, b)
        assert zero.item() == 0.0
        if abs(np.log10(2) - 3 * np.log10(s)) < np.log10(np.finfo(dtype).max):  # 2/b^3 fits the dtype
            (first,) = tm.grad(1.0 / b, b, create_graph=True)
            (second,) = tm.grad(first, b)
            np.testing.assert_allclose(second.numpy(), 2 / np.float64(s) ** 3, rtol=1e-6)


@pytest.mark.parametrize(
    "b, hessian",
    [
        (0.0, [[0.0, np.nan], [np.nan, np.nan]]),
        (0.5, [[np.nan, np.nan], [np.nan, np.nan]]),  # the first derivative in a is already inf
        (1.0, [[0.0, np.nan], [np.nan, np.nan]]),  # d/db (b a^(b-1)) = 1 + log a = -inf: PyTorch says 1
        (2.0, [[2.0, 0.0], [np.nan, np.nan]]),
        (3.0, [[0.0, 0.0], [np.nan, np.nan]]),
    ],
)
def test_power_at_a_zero_base_keeps_what_exists_and_is_nan_where_nothing_does_in_every_mode(b, hessian) -> None:
    # Row i holds the derivatives of d f / d v_i: the derivatives in a alone are exact (as PyTorch's, given
    # separate tensors), d/db (b a^(b-1)) exists for b > 1; those of a^b log a beyond the first do not (as
    # PyTorch). Reverse over reverse, forward over reverse (jvp of grad) and hvp's tangent all agree.
    def f(v: tm.Tensor) -> tm.Tensor:
        return v[0] ** v[1]

    def grad_f(z: tm.Tensor) -> tm.Tensor:
        return tm.grad(f(z), z, create_graph=True)[0]

    x = tm.tensor([0.0, b])
    with np.errstate(divide="ignore", invalid="ignore"):  # b = 0.5: the first derivative itself is inf
        first = grad_f(tm.tensor([0.0, b], requires_grad=True)).numpy()
        modes = [
            tm.hessian(f, x).numpy(),
            np.stack([tm.jvp(grad_f, x, tm.tensor(e))[1].numpy() for e in np.eye(2)], axis=1),
            tm.jacobian(lambda v: tm.hvp(f, x, v)[1], tm.tensor([1.0, 1.0])).numpy().T,
        ]
    np.testing.assert_array_equal(first, [np.inf if 0 < b < 1 else float(b == 1), 0.0])
    for h in modes:
        np.testing.assert_array_equal(h, np.array(hessian))


def test_a_missing_derivative_at_one_element_never_reaches_another() -> None:
    a, b = tm.tensor([0.0, 1.5], requires_grad=True), tm.tensor([2.0, 2.0], requires_grad=True)
    ga, _ = tm.grad(tm.sum(a**b), [a, b], create_graph=True)
    np.testing.assert_allclose(tm.grad(ga[1], a)[0].numpy(), [0.0, 2.0], rtol=1e-14)  # b (b-1) a^(b-2) = 2
    np.testing.assert_allclose(tm.grad(ga[1], b)[0].numpy(), [0.0, 1.5 * (1 + 2 * np.log(1.5))], rtol=1e-14)


def test_max_pooling_never_chooses_its_padding_and_gives_ties_to_the_first_maximum() -> None:
    # PyTorch's rule: the first maximum of each window among the image's own positions, row-major.
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.choice([-np.inf, 0.0, 1.0, 2.0], size=(1, 1, 4, 5))
        k, stride, padding = int(rng.integers(2, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
        t = tm.tensor(x, requires_grad=True)
        out = tm.max_pool2d(t, k, stride, padding)
        w = rng.standard_normal(out.shape)
        (g,) = tm.grad(out, t, grad_outputs=w)
        expected = np.zeros_like(x)
        for p in range(out.shape[-2]):
            for q in range(out.shape[-1]):
                rows = range(max(p * stride - padding, 0), min(p * stride - padding + k, 4))
                cols = range(max(q * stride - padding, 0), min(q * stride - padding + k, 5))
                window = [(i, j) for i in rows for j in cols]
                i, j = max(window, key=lambda ij: (x[0, 0][ij], -window.index(ij)))
                assert out.numpy()[0, 0, p, q] == x[0, 0, i, j]
                expected[0, 0, i, j] += w[0, 0, p, q]
        np.testing.assert_allclose(g.numpy(), expected, rtol=1e-15, atol=1e-15)  # sums of the same terms


def test_reductions_of_empty_integer_tensors_are_floating_as_numpys() -> None:
    x = tm.tensor(np.zeros((2, 0), dtype=int))
    assert tm.logsumexp(x, axis=-1).dtype == np.float64 and tm.logsumexp(x, axis=-1).numpy().tolist() == [-np.inf] * 2
    for op in (tm.softmax, tm.log_softmax):
        assert op(x).dtype == np.exp(np.zeros(1, dtype=int)).dtype and op(x).shape == (2, 0)


def test_every_axis_argument_is_an_integer_and_a_0d_tensor_takes_axis_0_or_minus_1_as_numpy() -> None:
    x = tm.tensor(np.ones((2, 3)))
    for bad in (1.0, True, "1", (0, 1.5)):
        with pytest.raises(TypeError, match="axis must be an integer"):
            tm.sum(x, axis=bad)
    scalar = np.array(2.0)
    for axis in (0, -1, ()):  # (mean, var and std take no integer axis on a 0-d array: NumPy's AxisError)
        for op, reference in ((tm.sum, np.sum), (tm.max, np.max), (tm.logsumexp, np.sum)):
            assert op(tm.tensor(scalar), axis=axis).item() == reference(scalar, axis=axis)
    assert tm.softmax(tm.tensor(scalar)).item() == 1.0 and tm.log_softmax(tm.tensor(scalar)).item() == 0.0
    for axis in (1, (0,), (-1,)):
        with pytest.raises(np.exceptions.AxisError):
            np.sum(scalar, axis=axis)
        with pytest.raises(np.exceptions.AxisError):
            tm.sum(tm.tensor(scalar), axis=axis)
    assert tm.broadcast_to(tm.tensor([1.0]), 3).shape == (3,) and tm.sum_to(tm.tensor(np.ones(3)), 1).shape == (1,)
    with pytest.raises(ValueError, match="at least 1x1"):
        tm.conv2d(tm.tensor(np.ones((1, 1, 3, 3))), np.ones((1, 1, 0, 0)))


def test_derivative_products_are_taken_in_the_order_that_does_not_overflow() -> None:
    # As PyTorch: -gy (y / b) for division, gy (b a^(b-1)) for a power: a large or small upstream
    # gradient, or a huge exponent, overflows only where the result itself does.
    for a, b, gy in [(1e-30, 1e-10, 1e-26), (1e30, 1e10, 1e20)]:
        tb = tm.tensor(np.float32(b), requires_grad=True)
        (g,) = tm.grad(np.float32(a) / tb, tb, grad_outputs=np.float32(gy))
        np.testing.assert_allclose(g.item(), -gy * a / b**2, rtol=1e-5)
    x = tm.tensor(0.5, requires_grad=True)
    (d1,) = tm.grad(x**1e300, x, create_graph=True)
    (d2,) = tm.grad(d1, x)
    assert d1.item() == 0.0 and d2.item() == 0.0  # 1e300 (1e300 - 1) 0.5^(1e300 - 2) underflows to 0


def test_numpy_functions_and_ufuncs_on_a_tensor_are_tinymetas_and_keep_the_graph() -> None:
    t = tm.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    a = np.array([[0.5, -1.0], [2.0, 0.25]])
    calls = {  # NumPy's call on a Tensor, and the tinymeta call it must equal, value and gradient
        "sum": (lambda z: np.sum(z, axis=0), lambda z: tm.sum(z, axis=0)),
        "mean": (np.mean, tm.mean),
        "reshape": (lambda z: np.reshape(z, 4), lambda z: tm.reshape(z, 4)),
        "concatenate": (lambda z: np.concatenate([z, z]), lambda z: tm.concatenate([z, z])),
        "einsum": (lambda z: np.einsum("ij,jk->ik", z, a), lambda z: tm.einsum("ij,jk->ik", z, a)),
        "exp (a ufunc)": (np.exp, tm.exp),
        "array - tensor": (lambda z: a - z, lambda z: tm.sub(a, z)),
        "array @ tensor": (lambda z: a @ z, lambda z: tm.matmul(a, z)),
        "maximum": (lambda z: np.maximum(a, z), lambda z: tm.maximum(a, z)),
        "remainder": (lambda z: np.remainder(z, 1.5), lambda z: tm.mod(z, 1.5)),
    }
    w = np.array([[1.0, -2.0], [0.5, 3.0]])
    for name, (numpy_call, tinymeta_call) in calls.items():
        out, expected = numpy_call(t), tinymeta_call(t)
        assert isinstance(out, tm.Tensor) and out.requires_grad, name
        np.testing.assert_array_equal(out.numpy(), expected.numpy(), err_msg=name)
        (g,) = tm.grad(tm.sum(out * w[: out.shape[-1]].sum() if out.ndim else out), t)
        (e,) = tm.grad(tm.sum(expected * w[: expected.shape[-1]].sum() if expected.ndim else expected), t)
        np.testing.assert_array_equal(g.numpy(), e.numpy(), err_msg=name)
    np.testing.assert_array_equal((a > t).numpy(), a > t.numpy())  # comparisons: constant booleans
    unsupported = {
        "numpy.sum on a tinymeta Tensor: tinymeta.sum does not take these arguments": lambda: np.sum(t, dtype=float),
        r"numpy.add.reduce on a tinymeta Tensor: tinymeta.add does not take the ufunc method .reduce": lambda: (
            np.add.reduce(t)
        ),
        r"numpy.add on a tinymeta Tensor: tinymeta.add does not take keywords \['out'\]": lambda: np.add(
            a, t, out=np.empty((2, 2))
        ),
        "numpy.cbrt has no tinymeta counterpart, and on a Tensor it would drop the graph": lambda: np.cbrt(t),
    }
    for message, call in unsupported.items():
        with pytest.raises(TypeError, match=message):
            call()
    assert np.allclose(t, t)  # a question that carries no graph is answered (tests/test_engine.py has the rest)
    np.testing.assert_array_equal(np.asarray(t.detach()), t.numpy())  # the values are still one call away


def test_a_list_of_tensors_given_to_an_op_is_stacked_and_keeps_the_graph() -> None:
    t = tm.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = tm.sum([t[0], [t[1] * 2, 5.0]][0]) + tm.sum([[t[0], t[1]], [t[2], 1.0]])  # nested, with a constant
    (g,) = tm.grad(y, t)
    np.testing.assert_array_equal(g.numpy(), [2.0, 1.0, 1.0])
    assert tm.stack([t[0], t[2]]).requires_grad
    with pytest.raises(TypeError, match=r"use tinymeta.stack\(...\) to keep it"):
        tm.tensor([t[0], t[1]])  # a new leaf copies values: the graph cannot come along, so it is refused


def test_python_scalars_take_the_other_operands_dtype_on_either_side_and_matrices_are_arrays() -> None:
    arr32 = np.ones(3, dtype=np.float32)
    for result in (tm.add(arr32, 2.0), tm.add(2.0, arr32), tm.where(arr32 > 0, arr32, 0.0), tm.mul(arr32, 3)):
        assert result.dtype == np.float32
    with pytest.warns(PendingDeprecationWarning):  # NumPy's own note on np.matrix
        m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(tm.mul(m, m).numpy(), np.asarray(m) * np.asarray(m))  # elementwise
    image = tm.tensor(np.arange(16).reshape(1, 1, 4, 4))  # an integer image pads with its lowest value
    np.testing.assert_array_equal(tm.max_pool2d(image, 3, 1, 1).numpy()[0, 0], [[5, 6, 7, 7], [9, 10, 11, 11],
                                  [13, 14, 15, 15], [13, 14, 15, 15]])  # fmt: skip
