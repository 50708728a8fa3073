"""Every differentiable op, property-based: forward vs NumPy, first, second and third order vs
central finite differences. One registry (``op_specs.SPECS``) drives all of it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
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
    missing = set(tm.ops.__all__) - set(SPECS_BY_NAME)
    unknown = set(SPECS_BY_NAME) - set(tm.ops.__all__)
    assert not missing, f"ops without gradient checks: {sorted(missing)}"
    assert not unknown, f"specs for ops that are not in tinymeta.ops.__all__: {sorted(unknown)}"


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
