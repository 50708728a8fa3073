"""tinymeta.nn: models against NumPy, task batching against a loop, losses, optimisers."""

from __future__ import annotations

import numpy as np
import pytest

import tinymeta as tm
from tinymeta import nn
from tinymeta.testing import gradcheck, gradgradcheck


def test_mlp_equals_a_numpy_forward_pass():
    model = nn.MLP([2, 5, 3], activation="tanh")
    params = model.init(0)
    x = np.random.default_rng(0).standard_normal((4, 2))
    p = {n: v.numpy() for n, v in params.items()}
    expected = np.tanh(x @ p["layers.0.weight"] + p["layers.0.bias"]) @ p["layers.1.weight"] + p["layers.1.bias"]
    np.testing.assert_allclose(model(params, x).numpy(), expected, rtol=1e-13)


@pytest.mark.parametrize(
    "model, x_shape",
    [
        (nn.MLP([3, 4, 2]), (5, 3)),
        (nn.MLP([1, 4, 1], context_dim=2), (5, 1)),
        (nn.Linear(3, 2), (5, 3)),
        (nn.Conv4(n_way=3, filters=4, image_size=16, dtype="float64"), (3, 1, 16, 16)),
    ],
    ids=["mlp", "mlp+context", "linear", "conv4"],
)
def test_task_batched_parameters_equal_a_loop_over_tasks(model, x_shape):
    rng = np.random.default_rng(1)
    tasks = 3
    per_task = [model.init(seed) for seed in range(tasks)]
    batched = {n: tm.stack([p[n] for p in per_task]) for n in per_task[0]}
    x = rng.standard_normal((tasks,) + x_shape)
    out = model(batched, x).numpy()
    for t in range(tasks):
        np.testing.assert_allclose(out[t], model(per_task[t], x[t]).numpy(), rtol=1e-12, atol=1e-13)


def test_conv4_shapes_and_per_task_batch_norm():
    model = nn.Conv4(n_way=5, filters=8)
    params = model.init(0)
    assert params["blocks.0.conv.weight"].shape == (8, 1, 3, 3) and params["head.weight"].shape == (8, 5)
    x = np.random.default_rng(0).standard_normal((2, 4, 1, 28, 28)).astype(np.float32)
    assert model(params, x).shape == (2, 4, 5)
    # Batch norm uses each task's own statistics. Scaling task 1's images by 3 scales its first
    # convolution's output by 3 (zero bias at init), which its batch norm undoes (up to eps): the
    # output is unchanged, and task 0, normalised with its own statistics, is untouched.
    scaled = x.copy()
    scaled[1] *= 3.0
    before, after = model(params, x).numpy(), model(params, scaled).numpy()
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_allclose(after[1], before[1], rtol=1e-3, atol=1e-3)


def test_batch_norm_normalises_each_channel_and_is_twice_differentiable():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 3, 3)) * 4 + 1
    out = nn.batch_norm(tm.tensor(x), tm.tensor(np.ones(2)), tm.tensor(np.zeros(2))).numpy()
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, rtol=1e-3)  # var / (var + eps)
    inputs = [rng.standard_normal((2, 2, 2, 2)), rng.standard_normal(2), rng.standard_normal(2)]
    assert gradcheck(nn.batch_norm, inputs)
    assert gradgradcheck(nn.batch_norm, inputs)


def test_losses_against_numpy_and_per_task_reduction():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 4, 3))
    labels = rng.integers(0, 3, (2, 4))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_p, labels[..., None], -1)[..., 0].mean(-1)
    np.testing.assert_allclose(nn.cross_entropy(tm.tensor(logits), labels).numpy(), expected, rtol=1e-13)
    np.testing.assert_allclose(nn.accuracy(tm.tensor(logits), labels).numpy(), (logits.argmax(-1) == labels).mean(-1))
    pred, target = rng.standard_normal((2, 4, 1)), rng.standard_normal((2, 4, 1))
    np.testing.assert_allclose(nn.mse_loss(tm.tensor(pred), target).numpy(), ((pred - target) ** 2).mean((1, 2)))
    assert gradgradcheck(lambda z: nn.cross_entropy(z, labels), [logits])
    huge = tm.tensor(np.array([[1e4, -1e4, 0.0]]))
    assert np.isfinite(nn.cross_entropy(huge, np.array([1])).item())


def test_loss_input_errors():
    with pytest.raises(ValueError, match=r"labels of shape \(4,\)"):
        nn.cross_entropy(tm.tensor(np.zeros((4, 3))), np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        nn.cross_entropy(tm.tensor(np.zeros((2, 3))), np.array([0, 3]))
    with pytest.raises(TypeError, match="integers"):
        nn.cross_entropy(tm.tensor(np.zeros((2, 3))), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(4, 1\).*\(4, 2\)"):
        nn.mse_loss(tm.tensor(np.zeros((4, 1))), np.zeros((4, 2)))


def test_adam_and_sgd_match_their_update_rules():
    params = {"w": tm.tensor(np.array([1.0, -2.0]), requires_grad=True)}
    g = np.array([0.5, -0.25])
    grads = {"w": tm.tensor(g)}
    adam = nn.Adam(lr=0.1)
    state = adam.init(params)
    p1, state = adam.step(params, grads, state)
    p2, state = adam.step(p1, grads, state)
    m, v, w = np.zeros(2), np.zeros(2), np.array([1.0, -2.0])
    for t in (1, 2):
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        w = w - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    np.testing.assert_allclose(p2["w"].numpy(), w, rtol=1e-12)
    assert p2["w"].requires_grad and p2["w"].creator is None

    sgd = nn.SGD(lr=0.1, momentum=0.9)
    s = sgd.init(params)
    q1, s = sgd.step(params, grads, s)
    q2, s = sgd.step(q1, grads, s)
    np.testing.assert_allclose(q2["w"].numpy(), np.array([1.0, -2.0]) - 0.1 * g - 0.1 * (0.9 * g + g), rtol=1e-12)


def test_clip_grad_norm_scales_all_gradients_together():
    grads = {"a": tm.tensor([3.0]), "b": tm.tensor([4.0])}
    clipped, norm = nn.clip_grad_norm(grads, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose([clipped["a"].item(), clipped["b"].item()], [0.6, 0.8], rtol=1e-9)
    same, _ = nn.clip_grad_norm(grads, 10.0)
    assert same["a"].item() == 3.0

    # clipped or not, the result is constants: whether it kept a graph must not depend on the norm
    x = tm.tensor([3.0, 4.0], requires_grad=True)
    (g,) = tm.grad(tm.sum(x**3), x, create_graph=True)
    for max_norm in (1e9, 1.0):
        assert not nn.clip_grad_norm({"x": g}, max_norm)[0]["x"].requires_grad
    # a norm that is not finite is an error: scaling by max_norm / inf would give NaN and hide a NaN entry
    for bad in (np.inf, np.nan):
        with pytest.raises(FloatingPointError, match="clip_grad_norm: the gradients' norm is"):
            nn.clip_grad_norm({"a": tm.tensor([bad, 1.0])}, 1.0)


def test_optimisers_and_clipping_name_what_is_not_a_dict_of_tensors():
    params = {"w": tm.tensor([1.0], requires_grad=True), "b": tm.tensor([0.0], requires_grad=True)}
    grads = {"w": tm.tensor([0.5]), "b": None}  # grad(..., allow_unused=True) gives None for an unused input
    for optimiser in (nn.SGD(0.1), nn.Adam(0.1)):
        state = optimiser.init(params)
        with pytest.raises(TypeError, match=r"grads\['b'\] must be a Tensor, got NoneType \(grad\(..., allow_unused"):
            optimiser.step(params, grads, state)
        with pytest.raises(TypeError, match=r"grads\['w'\] must be a Tensor, got ndarray"):
            optimiser.step(params, {"w": np.ones(1), "b": tm.tensor([0.0])}, state)
        with pytest.raises(TypeError, match="params must be a dict of name -> Tensor, got list"):
            optimiser.init(list(params.values()))
    with pytest.raises(TypeError, match=r"grads\['b'\] must be a Tensor, got NoneType"):
        nn.clip_grad_norm(grads, 1.0)
    with pytest.raises(TypeError, match="grads must be a dict of name -> Tensor, got list"):
        nn.clip_grad_norm([tm.tensor([1.0])], 1.0)


def test_optimiser_errors():
    with pytest.raises(ValueError, match="lr"):
        nn.Adam(lr=-1.0)
    params = {"w": tm.tensor([1.0], requires_grad=True)}
    with pytest.raises(ValueError, match="keys"):
        nn.SGD(0.1).step(params, {"v": tm.tensor([1.0])}, nn.SGD(0.1).init(params))


@pytest.mark.parametrize(
    "model, example_shape",
    [
        (nn.Linear(3, 2), (3,)),
        (nn.MLP([3, 4, 2]), (3,)),
        (nn.MLP([1, 4, 1], context_dim=2), (1,)),
        (nn.Conv4(n_way=3, filters=2, image_size=16, dtype="float64"), (1, 16, 16)),
    ],
    ids=["linear", "mlp", "mlp+context", "conv4"],
)
def test_task_batched_parameters_need_inputs_with_their_task_axis(model, example_shape):
    # With T tasks' parameters and N = T examples without a task axis, broadcasting would add the
    # bias of task i to example i: every model refuses the input instead.
    tasks = 4
    per_task = [model.init(seed) for seed in range(tasks)]
    batched = {n: tm.stack([p[n] for p in per_task]) for n in per_task[0]}
    x = np.ones((tasks,) + example_shape)
    with pytest.raises(ValueError, match=r"task axis \(4 tasks\).*\[4, N, \.\.\.\]"):
        model(batched, x)
    assert model(batched, x[None].repeat(tasks, axis=0)).shape[:2] == (tasks, tasks)


@pytest.mark.parametrize(
    "make, argument",
    [
        (lambda: nn.SGD(lr=float("nan")), "lr"),
        (lambda: nn.SGD(lr=-0.1), "lr"),
        (lambda: nn.SGD(lr=0.1, momentum=float("nan")), "momentum"),
        (lambda: nn.SGD(lr=0.1, momentum=1.0), "momentum"),
        (lambda: nn.Adam(lr=float("nan")), "lr"),
        (lambda: nn.Adam(lr=float("inf")), "lr"),
        (lambda: nn.Adam(lr=0.0), "lr"),
        (lambda: nn.Adam(eps=float("nan")), "eps"),
        (lambda: nn.Adam(eps=-1e-8), "eps"),
        (lambda: nn.Adam(betas=(0.9, float("nan"))), "betas"),
        (lambda: nn.Adam(betas=(1.0, 0.999)), "betas"),
        (lambda: nn.Adam(betas=(0.9,)), "betas"),
        (lambda: nn.clip_grad_norm({"w": tm.tensor([1.0])}, float("nan")), "max_norm"),
        (lambda: nn.clip_grad_norm({"w": tm.tensor([1.0])}, -1.0), "max_norm"),
        (lambda: nn.clip_grad_norm({"w": tm.tensor([1.0])}, 0.0), "max_norm"),
    ],
)
def test_optimisers_and_clipping_refuse_nan_and_out_of_range_settings(make, argument):
    with pytest.raises(ValueError, match=argument):
        make()


def test_clipping_to_an_infinite_norm_clips_nothing():
    grads, norm = nn.clip_grad_norm({"a": tm.tensor([3.0]), "b": tm.tensor([4.0])}, float("inf"))
    assert norm == 5.0 and grads["a"].item() == 3.0


@pytest.mark.parametrize("optimiser", [nn.SGD(lr=0.1, momentum=0.9), nn.Adam(lr=0.1)], ids=["sgd", "adam"])
def test_optimisers_keep_each_parameters_dtype_and_check_their_state(optimiser):
    params = {"w": tm.tensor(np.ones(3, dtype=np.float32), requires_grad=True)}
    state = optimiser.init(params)
    for _ in range(2):  # float64 gradients for a float32 parameter: cast, never promoted
        params, state = optimiser.step(params, {"w": tm.tensor(np.full(3, 0.5))}, state)
    arrays = [params["w"].data] + [buffer["w"] for key, buffer in state.items() if key != "step"]
    assert all(a.dtype == np.float32 for a in arrays)
    with pytest.raises(ValueError, match="state"):
        optimiser.step({"v": params["w"]}, {"v": params["w"]}, state)


def test_models_check_their_settings():
    with pytest.raises(ValueError, match="dtype"):
        nn.MLP([1, 2, 1], dtype="int32")
    with pytest.raises(TypeError, match=r"MLP sizes\[1\]"):
        nn.MLP([1, 2.5, 1])
    with pytest.raises(ValueError, match="context_dim"):
        nn.MLP([1, 2, 1], context_dim=-1)
    with pytest.raises(ValueError, match="n_way"):
        nn.Conv4(n_way=0)
    assert nn.Linear(np.int64(2), np.int32(3)).shapes["weight"] == (2, 3)
    for model in (nn.Linear(1, 1), nn.MLP([1, 2, 1]), nn.Conv4(n_way=2, filters=2)):
        for seed, error in ((True, TypeError), (None, TypeError), (1.5, TypeError), (-1, ValueError)):
            with pytest.raises(error, match="seed must be an integer"):
                model.init(seed)  # the same seed, the same parameters: None (fresh entropy) would break that
        drawn = model.init(np.random.default_rng(3))  # or a Generator to draw them from
        assert all(np.array_equal(drawn[n].numpy(), p.numpy()) for n, p in model.init(3).items())


def test_batch_norm_and_the_losses_name_bad_input_and_take_plain_arrays():
    x = tm.tensor(np.random.default_rng(0).random((2, 3, 4, 4)))
    weight, bias = tm.tensor(np.ones(3)), tm.tensor(np.zeros(3))
    with pytest.raises(ValueError, match="batch_norm eps must be a finite number >= 0, got -1"):
        nn.batch_norm(x, weight, bias, eps=-1)
    for bad_x, w, b in ((x, np.ones(4), np.zeros(4)), (tm.tensor(np.ones((2, 3))), np.ones(3), np.zeros(3))):
        with pytest.raises(ValueError, match=r"batch_norm needs x \[..., N, C, H, W\] and weight, bias \[C\]"):
            nn.batch_norm(bad_x, tm.tensor(w), tm.tensor(b))
    with pytest.raises(ValueError, match=r"cross_entropy expects logits \[..., N, C\] .* got shape \(3,\)"):
        nn.cross_entropy(tm.tensor(np.zeros(3)), np.array(1))
    logits, labels = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]]), np.array([0, 1, 1])
    assert nn.accuracy(logits, labels).item() == pytest.approx(2 / 3)
    assert nn.mse_loss([[0.0], [1.0]], [[0.0], [3.0]]).item() == pytest.approx(2.0)


def test_cross_entropy_of_masked_classes_and_accuracy_of_no_examples():
    # A masked class (logit -inf) that is not the label costs nothing: not -inf * 0 = NaN.
    logits = np.array([[-np.inf, 0.0, 1.0], [0.5, -np.inf, 2.0]])
    labels = np.array([1, 2])
    finite = np.where(np.isinf(logits), -1e300, logits)  # the same losses, computed without infinities
    log_p = (
        finite
        - np.log(np.exp(finite - finite.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - finite.max(-1, keepdims=True)
    )
    t = tm.tensor(logits, requires_grad=True)
    loss = nn.cross_entropy(t, labels)
    np.testing.assert_allclose(loss.item(), -log_p[[0, 1], labels].mean(), rtol=1e-14)
    (g,) = tm.grad(loss, t)
    assert np.isfinite(g.numpy()).all() and g.numpy()[0, 0] == 0.0
    assert np.isnan(nn.accuracy(tm.tensor(np.zeros((2, 0, 3))), np.zeros((2, 0), dtype=int)).numpy()).all()


def test_optimisers_and_clipping_refuse_complex_gradients():
    params = {"w": tm.tensor([1.0], requires_grad=True)}
    complex_grads = {"w": tm.tensor([1.0 + 1j])}
    for optimiser in (nn.SGD(lr=0.1), nn.Adam()):
        with pytest.raises(TypeError, match="real"):
            optimiser.step(params, complex_grads, optimiser.init(params))
    with pytest.raises(TypeError, match="real"):
        nn.clip_grad_norm(complex_grads, 1.0)
