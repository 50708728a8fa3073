"""The engine's contract: API semantics, dtypes, the graph's lifetime, errors, numerical stability."""

from __future__ import annotations

import gc
import re
import sys
import threading
import weakref

import numpy as np
import pytest
from memory import shares_memory, writeable

import tinymeta as tm
from tinymeta import backend
from tinymeta.testing import gradcheck


def host(t: tm.Tensor) -> np.ndarray:
    return t.numpy()


# ---- construction and dtypes -------------------------------------------------------------------


def test_python_floats_and_lists_give_float64() -> None:
    assert tm.tensor(1.5).dtype == np.float64
    assert tm.tensor([1, 2.5]).dtype == np.float64
    assert tm.tensor([[1.0], [2.0]]).shape == (2, 1)


def test_float32_is_not_upcast_by_python_scalars() -> None:
    x = tm.tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    for y in (x * 2.0, 2.0 * x, x + 1, 1 - x, x / 3.0, 3.0 / x, x**2.0, 2.0**x, -x, tm.exp(x)):
        assert y.dtype == np.float32, y
    (g,) = tm.grad(tm.sum(x * 2.0), x)
    assert g.dtype == np.float32


def test_dtypes_follow_numpy_promotion_for_arrays() -> None:
    x = tm.tensor(np.ones(2, dtype=np.float32))
    assert (x + np.ones(2, dtype=np.float64)).dtype == np.float64
    assert (x + np.ones(2, dtype=np.float32)).dtype == np.float32


def test_integer_tensor_cannot_require_grad() -> None:
    with pytest.raises(TypeError, match="int64"):
        tm.tensor([1, 2, 3], requires_grad=True)
    assert tm.tensor([1, 2, 3]).dtype == np.int64


def test_tensor_copies_its_data() -> None:
    a = np.array([1.0, 2.0])
    t = tm.tensor(a)
    a[0] = 100.0
    assert host(t)[0] == 1.0


def test_tensor_accessors() -> None:
    x = tm.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    assert x.shape == (1, 3) and x.ndim == 2 and x.size == 3 and len(x) == 1
    assert tm.tensor(4.0).item() == 4.0
    assert isinstance(x.numpy(), np.ndarray)
    assert "requires_grad=True" in repr(x)
    d = x.detach()
    assert not d.requires_grad and d.creator is None
    with pytest.raises(ValueError, match=r"\(1, 3\)"):
        x.item()
    assert bool(tm.tensor([2.0]) > 1) and not bool(tm.tensor(0.0))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(x > 1)


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="tpu"):
        tm.tensor([1.0], backend="tpu")


# ---- operators with constants on either side -----------------------------------------------------


def test_operators_accept_scalars_and_arrays_on_both_sides() -> None:
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    x = tm.tensor([0.5, -1.5], requires_grad=True)
    cases = {
        "2 * x": (lambda x: 2 * x, lambda x: 2 * x),
        "x - arr": (lambda x: x - a, lambda x: x - a),
        "arr - x": (lambda x: a - x, lambda x: a - x),
        "arr / x": (lambda x: a / x, lambda x: a / x),
        "x ** 2": (lambda x: x**2, lambda x: x**2),
        "3 ** x": (lambda x: 3**x, lambda x: 3**x),
        "arr @ x": (lambda x: a @ x, lambda x: a @ x),
        "x @ arr": (lambda x: x @ a, lambda x: x @ a),
        "-x": (lambda x: -x, lambda x: -x),
    }
    for name, (f, ref) in cases.items():
        np.testing.assert_allclose(host(f(x)), ref(host(x)), rtol=1e-15, err_msg=name)
        assert gradcheck(f, [x]), name


def test_comparisons_give_boolean_tensors_without_gradient() -> None:
    x = tm.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for mask, expected in [
        (x > 2, [False, False, True]),
        (x >= 2, [False, True, True]),
        (x < 2, [True, False, False]),
        (x <= 2, [True, True, False]),
        (x == 2, [False, True, False]),
        (x != 2, [True, False, True]),
    ]:
        assert mask.dtype == bool and not mask.requires_grad
        np.testing.assert_array_equal(host(mask), expected)
    np.testing.assert_array_equal(host(tm.where(x > 2, x, 0.0)), [0.0, 0.0, 3.0])


def test_indexing_with_a_tensor_of_indices() -> None:
    x = tm.tensor([1.0, 2.0, 3.0], requires_grad=True)
    idx = tm.tensor([2, 2, 0])
    (g,) = tm.grad(tm.sum(x[idx] * tm.tensor([1.0, 2.0, 3.0])), x)
    np.testing.assert_array_equal(host(g), [3.0, 0.0, 3.0])


# ---- grad and backward ---------------------------------------------------------------------------


def test_grad_of_a_cubic_to_third_order() -> None:
    x = tm.tensor(2.0, requires_grad=True)
    (d1,) = tm.grad(x**3, x, create_graph=True)
    (d2,) = tm.grad(d1, x, create_graph=True)
    (d3,) = tm.grad(d2, x)
    assert (d1.item(), d2.item(), d3.item()) == (12.0, 12.0, 6.0)


def test_backward_accumulates_into_leaves() -> None:
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    w = tm.tensor([3.0, 4.0], requires_grad=True)
    c = tm.tensor([5.0, 6.0])  # does not require grad: stays None
    loss = tm.sum(x * w * c)
    loss.backward()
    np.testing.assert_array_equal(host(x.grad), [15.0, 24.0])
    np.testing.assert_array_equal(host(w.grad), [5.0, 12.0])
    assert c.grad is None
    tm.sum(x * w * c).backward()
    np.testing.assert_array_equal(host(x.grad), [30.0, 48.0])


def test_backward_with_create_graph_gives_differentiable_grads() -> None:
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    tm.sum(x**3).backward(create_graph=True)
    assert x.grad.requires_grad
    (h,) = tm.grad(tm.sum(x.grad), x)  # d/dx sum(3 x^2) = 6 x
    np.testing.assert_array_equal(host(h), [6.0, 12.0])


def test_backward_of_a_non_scalar_with_an_upstream_gradient() -> None:
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    (x * x).backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(host(x.grad), [2.0, 40.0])


def test_grad_does_not_touch_leaf_grad_and_returns_detached_results() -> None:
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    (g,) = tm.grad(tm.sum(tm.exp(x)), x)
    assert x.grad is None
    assert g.creator is None and not g.requires_grad


def test_grad_with_respect_to_an_intermediate_tensor() -> None:
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    y = tm.sum(h * h)
    gh, gx = tm.grad(y, [h, x])
    np.testing.assert_allclose(host(gh), 2 * host(h))
    np.testing.assert_allclose(host(gx), 18 * host(x))


def test_grad_of_several_outputs_sums_their_contributions() -> None:
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    y1, y2 = x * x, tm.sin(x)
    v1, v2 = np.array([1.0, -1.0]), np.array([0.5, 2.0])
    (g,) = tm.grad([y1, y2], x, grad_outputs=[v1, v2])
    np.testing.assert_allclose(host(g), 2 * host(x) * v1 + np.cos(host(x)) * v2)


def test_a_tensor_used_many_times_gets_the_sum_of_its_gradients() -> None:
    x = tm.tensor(1.5, requires_grad=True)
    y = x * x * x + x * tm.sin(x) + x  # reuse in several branches
    (g,) = tm.grad(y, x)
    xv = 1.5
    assert g.item() == pytest.approx(3 * xv**2 + np.sin(xv) + xv * np.cos(xv) + 1, rel=1e-14)


def test_grad_of_a_non_scalar_output_needs_grad_outputs() -> None:
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"shape \(2,\).*grad_outputs"):
        tm.grad(x * 2, x)


def test_grad_outputs_of_the_wrong_shape_names_both_shapes() -> None:
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        tm.grad(x * 2, x, grad_outputs=np.ones(3))
    with pytest.raises(ValueError, match="one per output"):
        tm.grad([x * 2, x * 3], x, grad_outputs=[np.ones(2)])


def test_unused_input_is_an_error_unless_allowed() -> None:
    x = tm.tensor(1.0, requires_grad=True)
    z = tm.tensor(2.0, requires_grad=True)
    with pytest.raises(ValueError, match=r"inputs\[1\].*allow_unused"):
        tm.grad(x * 2, [x, z])
    gx, gz = tm.grad(x * 2, [x, z], allow_unused=True)
    assert gx.item() == 2.0 and gz is None


def test_input_that_does_not_require_grad_is_an_error() -> None:
    x = tm.tensor(1.0)
    with pytest.raises(ValueError, match="requires_grad=True"):
        tm.grad(x * 2, x)
    with pytest.raises(TypeError, match="Tensor"):
        tm.grad(x * 2, [np.ones(1)])


def _enter_grad_mode(enabled) -> None:
    with tm.grad_mode(enabled):
        pass


def _flag_settings():
    """Every flag of the library's own API (the ops take NumPy's), as (name, call with the value)."""
    from tinymeta import meta, solvers, viz

    loss = lambda params, x, y: tm.mean((params["w"] * x - y) ** 2)  # noqa: E731
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    y = tm.sum(x * x)
    return [
        ("requires_grad", lambda v: tm.tensor([1.0], requires_grad=v)),
        ("create_graph", lambda v: tm.grad(tm.sum(x * x), x, create_graph=v)),
        ("allow_unused", lambda v: tm.grad(tm.sum(x * x), x, allow_unused=v)),
        ("create_graph", lambda v: tm.sum(x * x).backward(create_graph=v)),
        ("first_order", lambda v: meta.MAML(loss, first_order=v)),
        ("batched", lambda v: meta.MAML(loss, batched=v)),
        ("loss_takes_step", lambda v: meta.MAML(lambda p, x, y, step=0: loss(p, x, y), loss_takes_step=v)),
        ("first_order", lambda v: meta.ANIL(loss, head=["w"], first_order=v)),
        ("first_order", lambda v: meta.MetaSGD(loss, first_order=v)),
        ("batched", lambda v: meta.CAVIA(loss, context_dim=1, batched=v)),
        ("batched", lambda v: meta.Reptile(loss, batched=v)),
        ("line_search", lambda v: meta.iMAML(loss, line_search=v)),
        ("batched", lambda v: solvers.conjugate_gradient(lambda u: u, [np.ones(2)], 2, batched=v)),
        ("constants", lambda v: viz.graph_stats(y, constants=v)),
        ("legend", lambda v: viz.to_dot(y, legend=v)),
        ("enabled", _enter_grad_mode),
    ]


@pytest.mark.parametrize("index", range(len(_flag_settings())))
def test_every_flag_takes_true_or_false_and_refuses_what_would_be_read_as_one(index) -> None:
    # first_order="no" would otherwise be truthy: first-order MAML, silently
    name, call = _flag_settings()[index]
    for value in (True, False, np.True_, np.False_):
        call(value)
    for value in ("no", 1, 0, None, np.array(True)):
        with pytest.raises(TypeError, match=re.escape(f"{name} must be True or False, got {value!r}")):
            call(value)


class _ForgetsAnInput(tm.Function):
    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        return gy * self.inputs[1]  # b's gradient forgotten


class _WrongShape(tm.Function):
    def forward(self, x):
        return x.sum()

    def backward(self, gy):
        return gy * 2  # () where x is (3,): should broadcast to x's shape


class _Unreduced(tm.Function):
    def forward(self, x):
        return x * np.ones(3)

    def backward(self, gy):
        return gy  # (3,) where x is (): should be summed back


class _ReturnsAnArray(tm.Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return gy.data * 2


@pytest.mark.parametrize(
    "function, inputs, message",
    [
        (_ForgetsAnInput, 2, r"_ForgetsAnInput.backward returned 1 gradient\(s\) for 2 input\(s\)"),
        (_WrongShape, 1, r"_WrongShape.backward returned a gradient of shape \(\) for input 0 of shape \(3,\)"),
        (_Unreduced, 0, r"_Unreduced.backward returned a gradient of shape \(3,\) for input 0 of shape \(\)"),
        (_ReturnsAnArray, 1, r"_ReturnsAnArray.backward returned a ndarray for input 0 of shape \(3,\)"),
    ],
)
def test_a_custom_function_whose_backward_gives_no_gradient_of_its_inputs_shape_is_named(function, inputs, message):
    # PyTorch refuses these too; without the check the gradient would be dropped or misshapen, silently
    x = tm.tensor(np.arange(3.0) if inputs else 2.0, requires_grad=True)
    args = (x, tm.tensor(np.ones(3), requires_grad=True)) if inputs == 2 else (x,)
    with pytest.raises(RuntimeError, match=message):
        tm.grad(tm.sum(function()(*args)), list(args))
    with pytest.raises(RuntimeError, match=message):
        tm.sum(function()(*args)).backward()


def test_a_custom_function_may_return_its_gradients_as_a_list() -> None:
    class Product(tm.Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy):
            a, b = self.inputs
            return [gy * b, gy * a]

    a, b = tm.tensor(2.0, requires_grad=True), tm.tensor(3.0, requires_grad=True)
    assert [g.item() for g in tm.grad(Product()(a, b), [a, b])] == [3.0, 2.0]
    assert Product.check_backward and not tm.ops.elementwise.Tanh.check_backward  # defined outside tinymeta or in

    class Unchecked(Product):
        check_backward = False  # a class's own choice is kept

    assert not Unchecked.check_backward


# ---- shape errors name both shapes ---------------------------------------------------------------


def test_broadcasting_error_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(2,3\).*\(4,\)"):
        tm.tensor(np.ones((2, 3))) + tm.tensor(np.ones(4))


def test_matmul_error_names_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        tm.matmul(np.ones((2, 3)), tm.tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match=r"\(2, 2, 3\).*\(3, 3, 1\)"):
        tm.matmul(tm.tensor(np.ones((2, 2, 3))), tm.tensor(np.ones((3, 3, 1))))


def test_conv2d_errors_name_both_shapes() -> None:
    x = tm.tensor(np.ones((1, 3, 5, 5)))
    with pytest.raises(ValueError, match=r"\(1, 3, 5, 5\).*\(4, 2, 3, 3\)"):
        tm.conv2d(x, tm.tensor(np.ones((4, 2, 3, 3))))
    with pytest.raises(ValueError, match="larger than the padded input"):
        tm.conv2d(x, tm.tensor(np.ones((4, 3, 7, 7))))


def test_broadcast_to_and_sum_to_reject_incompatible_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 4\)"):
        tm.broadcast_to(tm.tensor(np.ones(3)), (2, 4))
    with pytest.raises(ValueError, match=r"\(2, 4\).*\(3,\)"):
        tm.sum_to(tm.tensor(np.ones((2, 4))), (3,))


# ---- backends ------------------------------------------------------------------------------------


class _FakeDeviceArray(np.ndarray):
    """An ndarray the test tells the backend seam to treat as living on another device."""


def test_mixing_backends_is_a_type_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_name = backend.backend_name
    monkeypatch.setattr(
        backend, "backend_name", lambda a: "fakegpu" if isinstance(a, _FakeDeviceArray) else real_name(a)
    )
    x = tm.tensor([1.0, 2.0], requires_grad=True, backend="numpy")
    on_device = tm.tensor([0.0, 0.0], backend="numpy")
    on_device.data = on_device.data.view(_FakeDeviceArray)
    for op in (lambda: x + on_device, lambda: tm.matmul(x, on_device), lambda: tm.stack([x, on_device])):
        with pytest.raises(TypeError, match=r"numpy.*fakegpu"):
            op()


@pytest.mark.skipif(backend.cupy_unavailable_reason() is not None, reason=str(backend.cupy_unavailable_reason()))
def test_mixing_numpy_and_cupy_is_a_type_error() -> None:
    x = tm.tensor([1.0, 2.0], backend="numpy")
    y = tm.tensor([1.0, 2.0], backend="cupy")
    assert y.backend == "cupy" and x.backend == "numpy"
    with pytest.raises(TypeError, match="cupy"):
        x + y


@pytest.mark.skipif(backend.cupy_unavailable_reason() is None, reason="CuPy and a GPU are available here")
def test_requesting_cupy_without_it_says_why() -> None:
    with pytest.raises(RuntimeError, match="cupy"):
        tm.tensor([1.0], backend="cupy")


# ---- the graph: depth, lifetime, cycles ----------------------------------------------------------


def test_a_100000_op_chain_differentiates_without_recursion() -> None:
    x = tm.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.00001
    limit = sys.getrecursionlimit()
    (g,) = tm.grad(y, x)
    assert sys.getrecursionlimit() == limit
    assert g.item() == pytest.approx(1.00001**100_000, rel=1e-9)


def _graph_with_watchers(create_graph: bool) -> tuple[list[weakref.ref], tm.Tensor]:
    x = tm.tensor(np.linspace(-1, 1, 5), requires_grad=True)
    h1 = tm.tanh(x)
    h2 = tm.exp(h1) * x
    loss = tm.sum(tm.log_softmax(h2))
    watchers = [weakref.ref(t) for t in (h1, h2, loss)] + [weakref.ref(h1.data), weakref.ref(h2.data)]
    (g,) = tm.grad(loss, x, create_graph=create_graph)
    return watchers, g


@pytest.mark.parametrize("create_graph", [False, True])
def test_nothing_keeps_intermediates_alive_and_there_are_no_cycles(create_graph: bool) -> None:
    gc.collect()
    gc.disable()  # only reference counting frees memory now: a cycle would keep the graph alive
    try:
        watchers, g = _graph_with_watchers(create_graph)
        if not create_graph:
            assert g.creator is None  # the gradient holds no graph
            assert all(w() is None for w in watchers), "intermediates of a first-order grad leaked"
        del g
        assert all(w() is None for w in watchers), "the graph was kept alive by a reference cycle"
    finally:
        gc.enable()


def test_no_grad_records_nothing_and_restores_on_exit() -> None:
    x = tm.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError):
        with tm.no_grad():
            assert not tm.is_grad_enabled()
            y = x * 2
            assert not y.requires_grad and y.creator is None
            raise RuntimeError("leave the block by an exception")
    assert tm.is_grad_enabled()
    assert (x * 2).requires_grad


def test_no_grad_is_per_thread() -> None:
    x = tm.tensor([1.0], requires_grad=True)
    inside, results = threading.Barrier(2), {}

    def without_grad() -> None:
        with tm.no_grad():
            inside.wait()
            results["no_grad thread"] = (x * 2).requires_grad
            inside.wait()

    def with_grad() -> None:
        inside.wait()  # the other thread is inside no_grad now
        results["other thread"] = (x * 2).requires_grad
        inside.wait()

    threads = [threading.Thread(target=without_grad), threading.Thread(target=with_grad)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"no_grad thread": False, "other thread": True}


def test_stop_gradient_blocks_the_gradient() -> None:
    x = tm.tensor(3.0, requires_grad=True)
    (g,) = tm.grad(x * tm.stop_gradient(x), x)
    assert g.item() == 3.0  # d/dx (x * c) with c = x held constant


# ---- numerical stability -------------------------------------------------------------------------

STABLE = {
    "logsumexp": lambda x: tm.logsumexp(x),
    "log_softmax": lambda x: tm.log_softmax(x),
    "softmax": lambda x: tm.softmax(x),
    "sigmoid": lambda x: tm.sigmoid(x),
    "softplus": lambda x: tm.softplus(x),
}


@pytest.mark.parametrize("name", sorted(STABLE))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_stable_ops_stay_finite_for_huge_inputs(name: str, dtype: type) -> None:
    # pytest turns RuntimeWarnings (overflow, invalid value) into errors for the whole suite.
    x = tm.tensor(np.array([-1e4, -30.0, 0.0, 30.0, 1e4], dtype=dtype), requires_grad=True)
    y = STABLE[name](x)
    assert np.all(np.isfinite(host(y))), host(y)
    (g,) = tm.grad(y, x, grad_outputs=np.ones(y.shape, dtype=dtype))
    assert np.all(np.isfinite(host(g))), host(g)
    assert y.dtype == dtype and g.dtype == dtype


def test_stable_ops_have_the_right_limits() -> None:
    x = tm.tensor([-1e4, 1e4])
    np.testing.assert_array_equal(host(tm.sigmoid(x)), [0.0, 1.0])
    np.testing.assert_array_equal(host(tm.softplus(x)), [0.0, 1e4])
    assert tm.logsumexp(x).item() == 1e4
    np.testing.assert_array_equal(host(tm.log_softmax(x)), [-2e4, 0.0])
    np.testing.assert_array_equal(host(tm.softmax(x)), [0.0, 1.0])


# ---- gradients: dtype, aliasing, seeds -------------------------------------------------------------


def test_a_gradient_has_its_inputs_dtype_and_seeds_take_the_outputs() -> None:
    # A float32 model fed float64 NumPy data: the forward promotes (NumPy's rule), the gradient does not.
    w = tm.tensor(np.ones((3, 2), dtype=np.float32), requires_grad=True)
    data = np.linspace(-1, 1, 12).reshape(4, 3)  # float64
    loss = tm.sum(tm.tanh(data @ w) ** 2)
    assert loss.dtype == np.float64
    (g,) = tm.grad(loss, w, create_graph=True)
    assert g.dtype == np.float32
    (h,) = tm.grad(tm.sum(g), w)
    assert h.dtype == np.float32
    y = w * 2.0  # a float64 seed for a float32 output is cast to float32 (and an integer seed too)
    for seed in (np.ones((3, 2)), np.ones((3, 2), dtype=int)):
        assert tm.grad(y, w, grad_outputs=seed)[0].dtype == np.float32


def test_returned_gradients_never_alias_each_other_or_the_callers_arrays() -> None:
    a, b = tm.tensor([1.0, 2.0], requires_grad=True), tm.tensor([3.0, 4.0], requires_grad=True)
    tm.sum(a + b).backward()
    assert a.grad is not b.grad and not shares_memory(a.grad.data, b.grad.data)
    v = np.array([5.0, 6.0])
    for out in (a, a * 1, a + b, tm.reshape(a, (2,))):  # the identity passes the seed straight through
        (g,) = tm.grad(out, a, grad_outputs=v)
        assert not shares_memory(g.data, v) and writeable(g.data)
    g1, g2 = tm.grad(tm.sum(a * 3), [a, a])
    assert g1 is not g2 and not shares_memory(g1.data, g2.data)
    g1.data[0] = 100.0  # writing into one gradient changes nothing else
    assert g2.numpy()[0] == 3.0


def test_backward_on_a_tensor_without_grad_raises() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        tm.tensor([1.0]).backward()
    with tm.no_grad():
        y = tm.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward(np.ones(1))
    x = tm.tensor(1.0, requires_grad=True)
    with pytest.raises(ValueError, match="none of the outputs requires grad"):
        tm.grad(tm.tensor(2.0) * 3, x)


def test_grad_of_something_that_is_not_a_tensor_says_so() -> None:
    x = tm.tensor(1.0, requires_grad=True)
    for bad in (3.0, np.ones(1), "x"):
        with pytest.raises(TypeError, match="outputs must be a Tensor"):
            tm.grad(bad, x)
    with pytest.raises(TypeError, match="dict"):
        tm.grad(x * 2, {"x": x})


def test_a_list_holding_a_tensor_that_requires_grad_is_stacked_by_an_op_and_refused_by_tensor() -> None:
    # An op stacks it (the gradient reaches each element); tensor() makes a new leaf, a copy that cannot
    # keep the graph, so it refuses instead of silently making a constant.
    x = tm.tensor([1.0, 2.0], requires_grad=True)
    (g,) = tm.grad(tm.sum(tm.exp([x[0], x[1]])) + tm.sum(x * [x[0], 1.0]), x)
    np.testing.assert_allclose(g.numpy(), np.exp([1.0, 2.0]) + [2 * 1.0, 1.0])
    with pytest.raises(TypeError, match="stack"):
        tm.tensor([[x[0]], [x[1]]])
    assert tm.exp([x[0].detach(), 2.0]).shape == (2,)  # constants are fine


# ---- Python protocols ------------------------------------------------------------------------------


def test_one_element_tensors_convert_like_numpy_scalars() -> None:
    t = tm.tensor([2.75], requires_grad=True)
    assert float(t) == 2.75 and int(t) == 2 and f"{t:.3f}" == "2.750" and round(t) == 3 and round(t, 1) == 2.8
    assert float(tm.tensor(np.float32(1.5))) == 1.5
    assert range(10)[tm.tensor(3)] == 3 and [0, 1, 2][tm.tensor(np.int64(1))] == 1
    assert f"{tm.tensor([1.0, 2.0])}" == str(tm.tensor([1.0, 2.0]))
    (g,) = tm.grad(tm.sum(abs(t * -1)) + tm.sum(+t), t)  # abs and unary plus are ops: differentiable
    assert g.item() == 2.0
    many = tm.tensor([1.0, 2.0])
    for convert in (float, int, round, lambda z: f"{z:.2f}"):
        with pytest.raises((TypeError, ValueError), match=r"\(2,\)"):
            convert(many)
    with pytest.raises(TypeError, match="index"):
        [0, 1][tm.tensor(1.0)]


def test_iteration_follows_numpy() -> None:
    with pytest.raises(TypeError, match="0-d"):
        list(tm.tensor(1.0))
    with pytest.raises(TypeError):
        len(tm.tensor(1.0))
    x = tm.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    rows = list(x)
    assert len(rows) == 2 and rows[1].shape == (2,)
    (g,) = tm.grad(tm.sum(rows[1] * 2), x)  # rows are x[i]: differentiable
    np.testing.assert_array_equal(g.numpy(), [[0.0, 0.0], [2.0, 2.0]])


def test_copies_and_pickles_of_leaves_are_independent_and_of_graph_tensors_refused() -> None:
    import copy
    import pickle

    x = tm.tensor([1.0, 2.0], requires_grad=True)
    tm.sum(x * x).backward()
    for clone in (copy.copy(x), copy.deepcopy(x), pickle.loads(pickle.dumps(x))):
        assert clone is not x and clone.requires_grad and clone.creator is None
        np.testing.assert_array_equal(clone.numpy(), x.numpy())
        np.testing.assert_array_equal(clone.grad.numpy(), [2.0, 4.0])
        assert not shares_memory(clone.data, x.data) and not shares_memory(clone.grad.data, x.grad.data)
        (g,) = tm.grad(tm.sum(clone * 3), clone)  # a working leaf of its own
        assert g.numpy().tolist() == [3.0, 3.0]
    params = {"w": x, "b": tm.tensor(0.5)}
    assert copy.deepcopy(params)["w"].requires_grad
    y = x * 2
    for clone in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(TypeError, match="computed inside a graph.*detach"):
            clone(y)
    assert copy.deepcopy(y.detach()).creator is None


def test_numpy_integers_are_accepted_wherever_an_int_is() -> None:
    i2, i1, i0 = np.int64(2), np.int32(1), np.int64(0)
    x = tm.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    results = [
        tm.reshape(x, (i1 * 3, i2)), x.reshape(np.int64(6)), tm.sum(x, axis=i1), tm.mean(x, axis=(i0,)),
        tm.transpose(x, (i1, i0)), tm.swapaxes(x, i0, i1), tm.expand_dims(x, i2), tm.concatenate([x, x], i1),
        tm.stack([x, x], axis=i1), tm.softmax(x, axis=i0), x[i1], x[i0, i2], x ** np.int64(2),
        tm.max_pool2d(tm.reshape(x, (1, 1, 2, 3)), i2, stride=i1, padding=i1),
        tm.avg_pool2d(tm.reshape(x, (1, 1, 2, 3)), kernel_size=i1),
        tm.conv2d(tm.reshape(x, (1, 1, 2, 3)), np.ones((1, 1, 2, 2)), stride=i1, padding=i0),
    ]  # fmt: skip
    for r in results:
        assert r.requires_grad
    assert tm.nn.MLP([i1, np.int64(4), i1])(tm.nn.MLP([1, 4, 1]).init(0), np.ones((3, 1))).shape == (3, 1)
    for bad in (1.0, True, "2"):
        with pytest.raises(TypeError, match="kernel_size must be an integer"):
            tm.max_pool2d(tm.reshape(x, (1, 1, 2, 3)), bad)


def test_tensor_transpose_takes_its_axes_as_ndarray_transpose_does() -> None:
    a = np.arange(24.0).reshape(2, 3, 4)
    t = tm.tensor(a)
    for args in [(), (None,), ((2, 0, 1),), ([1, 2, 0],), (np.array([1, 0, 2]),), (2, 0, 1), (-1, 0, 1)]:
        np.testing.assert_array_equal(t.transpose(*args).numpy(), a.transpose(*args), err_msg=str(args))
    for args in [(0,), (0, 1), ((0, 0, 1),)]:
        with pytest.raises(ValueError):
            a.transpose(*args)
        with pytest.raises(ValueError):
            t.transpose(*args)


# ---- NumPy interop: conversions, which functions map, graph-free questions --------------------------


def test_a_tensor_that_requires_grad_never_becomes_an_array_implicitly() -> None:
    # NumPy does not dispatch into lists: np.sum([p, q]) converts each tensor with __array__, which
    # would drop the graph and return a plain float. PyTorch refuses the conversion too.
    p, q = tm.tensor([1.0, 2.0], requires_grad=True), tm.tensor([3.0, 4.0], requires_grad=True)
    for call in (
        lambda: np.asarray(p),
        lambda: np.array(p),
        lambda: np.sum([p, q]),
        lambda: np.mean([p, q]),
        lambda: np.linalg.norm([p, q]),
        lambda: np.exp([p, q]),
    ):
        with pytest.raises(
            TypeError, match=r"cannot become a NumPy array implicitly.*tm\.stack.*t\.numpy\(\).*no_grad"
        ):
            call()
    # the ways out: tinymeta's ops keep the graph; .numpy(), .detach() and no_grad give the values
    (g,) = tm.grad(tm.sum([p, q]), p)
    np.testing.assert_array_equal(g.numpy(), [1.0, 1.0])
    assert np.sum([p.detach(), q.detach()]) == 10.0 and np.asarray(p.detach()).tolist() == [1.0, 2.0]
    with tm.no_grad():
        assert np.sum([p, q]) == 10.0 and np.asarray(p).tolist() == [1.0, 2.0]
    assert np.asarray(tm.tensor([1.0, 2.0])).tolist() == [1.0, 2.0]  # a constant converts as before
    assert np.asarray(p > 1.5).tolist() == [False, True]  # and so does a comparison's boolean tensor


def test_only_numpys_own_functions_map_to_tinymetas_ops() -> None:
    # Dispatch is by the function object, not its bare name: numpy.emath's sqrt of -4 is 2j, not NaN.
    t = tm.tensor([-4.0], requires_grad=True)
    for call in (
        lambda: np.emath.sqrt(t),
        lambda: np.emath.log(t),
        lambda: np.emath.arcsin(t),
        lambda: np.emath.power(t, 0.5),
    ):
        with pytest.raises(TypeError, match=r"numpy\.lib\.scimath\.\w+ \(not numpy\.\w+\) has no tinymeta counterpart"):
            call()
    with pytest.raises(TypeError, match=r"numpy\.fft\.fft has no tinymeta counterpart"):
        np.fft.fft(t)
    with pytest.raises(TypeError, match=r"numpy\.linalg\.outer has no tinymeta counterpart"):
        np.linalg.outer(t, t)  # 1-D only, unlike numpy.outer (numpy.linalg's own function, not tm.outer)
    # NumPy's own functions still map, top-level and numpy.linalg
    assert isinstance(np.sqrt(t * t), tm.Tensor) and np.linalg.norm(t).item() == 4.0
    assert np.outer(t, t).requires_grad


def test_graph_free_numpy_questions_are_answered() -> None:
    t = tm.tensor([[1.0, np.nan], [np.inf, 4.0]], requires_grad=True)
    a = t.numpy()
    assert np.shape(t) == (2, 2) and np.ndim(t) == 2 and np.size(t) == 4 and np.size(t, 1) == 2
    for name in ("isnan", "isinf", "isfinite", "signbit"):  # constant boolean tensors, as the comparisons
        out = getattr(np, name)(t)
        assert isinstance(out, tm.Tensor) and not out.requires_grad and out.dtype == bool
        np.testing.assert_array_equal(out.numpy(), getattr(np, name)(a))
    u = tm.tensor([1.0, 2.0], requires_grad=True)
    assert np.allclose(u, [1.0, 2.0 + 1e-12]) is True and np.allclose(u, u * 2) is False
    assert np.array_equal(u, [1.0, 2.0]) is True and np.array_equiv(u, u) is True
    close = np.isclose(u, [1.0, 2.5])
    assert isinstance(close, tm.Tensor) and close.numpy().tolist() == [True, False]


def test_numpys_aliases_copy_and_positive_are_tinymetas_ops() -> None:
    x = np.array([[0.5, -1.5], [2.5, 3.25]])
    t = tm.tensor(x, requires_grad=True)
    for numpy_call, expected in (
        (lambda z: np.amax(z, axis=0), np.amax(x, axis=0)),
        (lambda z: np.amin(z), np.amin(x)),
        (lambda z: np.around(z, 1), np.around(x, 1)),
        (np.rint, np.rint(x)),  # rint rounds halves to even, as round: the same function for floats
    ):
        out = numpy_call(t)
        assert isinstance(out, tm.Tensor) and out.requires_grad
        np.testing.assert_array_equal(out.numpy(), expected)
    ints = np.array([1, -2], dtype=np.int8)
    assert np.rint(tm.tensor(ints)).dtype == np.rint(ints).dtype  # float16, as NumPy's rint of int8
    for copy in (np.copy(t), np.positive(t), +t):
        assert copy is not t and not shares_memory(copy.data, t.data)
        np.testing.assert_array_equal(copy.numpy(), x)
        (g,) = tm.grad(tm.sum(copy * 3.0), t)
        np.testing.assert_array_equal(g.numpy(), np.full((2, 2), 3.0))
    with pytest.raises(TypeError, match=r"numpy\.copy on a tinymeta Tensor: give the tensor alone"):
        np.copy(t, order="F")


def test_numpy_answers_what_tinymeta_has_no_op_for_when_nothing_requires_grad() -> None:
    # No graph to keep or drop: NumPy computes on the arrays, as for any array-like.
    t = tm.tensor([1.0, np.inf, -4.0])
    assert not np.all(np.isfinite(t)) and np.any(np.isinf(t))
    assert np.count_nonzero(t) == 3 and np.median(t) == 1.0
    np.testing.assert_array_equal(np.emath.sqrt(tm.tensor([-4.0])), [2j])  # NumPy's, not tm.sqrt's NaN
    m = tm.tensor([[3.0, 1.0], [0.0, 5.0]])  # an argument or ufunc method tinymeta's op does not take
    np.testing.assert_array_equal(np.add.reduce(m), [3.0, 6.0])
    assert np.sum(m, dtype=np.float32).dtype == np.float32
    # With a tensor that requires grad, the same calls still refuse rather than drop its graph.
    g = tm.tensor([1.0, 2.0], requires_grad=True)
    for call in (np.median, np.emath.sqrt, np.add.reduce, lambda t: np.sum(t, dtype=np.float32)):
        with pytest.raises(TypeError, match="tinymeta"):
            call(g)
