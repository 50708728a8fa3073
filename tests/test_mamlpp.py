"""MAML++'s remaining options (Antoniou, Edwards & Storkey, ICLR 2019, §4), each an option of the
existing pieces: derivative-order annealing (``MAML(first_order_until=N)``), per-step batch norm
(``nn.Conv4(per_step_bn=S)`` with ``MAML(loss_takes_step=True)``), cosine annealing of the meta
learning rate (``nn.cosine_schedule``), and their flags in the few-shot demo."""

from __future__ import annotations

import copy
import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinymeta as tm
from tinymeta import nn
from tinymeta.meta import MAML, annealed_step_loss_weights
from tinymeta.testing import gradcheck

ROOT = Path(__file__).resolve().parents[1]


def regression_tasks(seed: int, tasks: int = 3, k: int = 4) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    amplitude, phase = rng.uniform(0.5, 2.0, (tasks, 1, 1)), rng.uniform(0, np.pi, (tasks, 1, 1))
    xs, xq = rng.uniform(-2, 2, (2, tasks, k, 1))
    return xs, amplitude * np.sin(xs + phase), xq, amplitude * np.sin(xq + phase)


MLP = nn.MLP([1, 6, 1], activation="tanh")  # smooth: no kinks for finite differences to cross


def mlp_loss(params, x, y):
    return nn.mse_loss(MLP(params, x), y)


def same_gradients(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[n].numpy(), b[n].numpy()) for n in a)


MAMLPP = dict(inner_lr=0.1, inner_steps=3, learn_inner_lr="per_layer_per_step", step_loss_weights=[0.2, 0.3, 0.5])


# ---- derivative-order annealing ------------------------------------------------------------------


@pytest.mark.parametrize("options", [dict(inner_lr=0.1, inner_steps=2), MAMLPP], ids=["maml", "maml++"])
def test_annealing_is_fomaml_before_the_boundary_and_exact_maml_from_it_on(options):
    boundary = 5
    annealed = MAML(mlp_loss, first_order_until=boundary, **options)
    first, exact = MAML(mlp_loss, first_order=True, **options), MAML(mlp_loss, **options)
    theta = annealed.init(MLP.init(0))
    data = regression_tasks(1)
    fomaml_grads, maml_grads = first.meta_grad(theta, *data)[1], exact.meta_grad(theta, *data)[1]
    assert not same_gradients(fomaml_grads, maml_grads)  # the two orders differ here, so the switch shows
    for iteration in (0, 1, boundary - 1):
        assert annealed.is_first_order(iteration)
        assert same_gradients(annealed.meta_grad(theta, *data, iteration=iteration)[1], fomaml_grads)
    for iteration in (boundary, boundary + 1, 10**6):
        assert not annealed.is_first_order(iteration)
        assert same_gradients(annealed.meta_grad(theta, *data, iteration=iteration)[1], maml_grads)
    # adapt follows the same rule: first order (d φ / d θ = I) before the boundary
    phi_before = annealed.adapt(theta, *data[:2], iteration=boundary - 1)
    phi_after = annealed.adapt(theta, *data[:2], iteration=boundary)
    np.testing.assert_array_equal(phi_before["layers.0.weight"].numpy(), phi_after["layers.0.weight"].numpy())


def test_annealing_from_iteration_zero_is_exact_maml_and_the_iteration_is_harmless_otherwise():
    theta = MAML(mlp_loss).init(MLP.init(0))
    data = regression_tasks(2)
    exact = MAML(mlp_loss, inner_steps=2).meta_grad(theta, *data)[1]
    from_zero = MAML(mlp_loss, inner_steps=2, first_order_until=0)
    assert same_gradients(from_zero.meta_grad(theta, *data, iteration=0)[1], exact)
    # without annealing, the iteration is checked and changes nothing
    assert same_gradients(MAML(mlp_loss, inner_steps=2).meta_grad(theta, *data, iteration=7)[1], exact)
    assert MAML(mlp_loss, first_order=True).is_first_order(3) and not MAML(mlp_loss).is_first_order()


def test_annealed_maml_plus_plus_equals_finite_differences_from_the_boundary_on():
    annealed = MAML(mlp_loss, first_order_until=3, **MAMLPP)
    theta = annealed.init(MLP.init(3))
    names, data = list(theta), regression_tasks(3)
    loss = lambda *values: annealed.meta_loss(dict(zip(names, values)), *data, iteration=3)  # noqa: E731
    assert gradcheck(loss, [theta[n] for n in names])


def test_first_order_phase_still_learns_the_step_sizes():
    annealed = MAML(mlp_loss, first_order_until=10, **MAMLPP)
    theta = annealed.init(MLP.init(0))
    grads = annealed.meta_grad(theta, *regression_tasks(4), iteration=0)[1]
    assert all(float(abs(grads[n].numpy()).max()) > 0 for n in theta if n.startswith("inner_lr."))


# ---- per-step batch norm ---------------------------------------------------------------------------


def tiny_conv4(per_step_bn: int | None = 2) -> nn.Conv4:
    return nn.Conv4(n_way=2, filters=2, image_size=16, dtype="float64", per_step_bn=per_step_bn)


def images(seed: int, tasks: int = 2, n: int = 4) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    xs, xq = rng.standard_normal((2, tasks, n, 1, 16, 16))
    labels = np.array([[0, 1] * (n // 2)] * tasks)
    return xs, labels, xq, labels[:, ::-1].copy()


def test_conv4_per_step_bn_names_init_and_step_choice():
    model, plain = tiny_conv4(3), tiny_conv4(None)
    params, base = model.init(0), plain.init(0)
    norms = sorted(n for n in params if ".norm." in n)
    assert norms[:6] == [f"blocks.0.norm.{kind}.step{s}" for kind in ("bias", "weight") for s in range(3)]
    assert len(norms) == 4 * 2 * 3 and not any(n.endswith("norm.weight") for n in params)
    shared = [n for n in base if ".norm." not in n]  # the same draws: batch norm's init takes no randomness
    assert all(np.array_equal(params[n].numpy(), base[n].numpy()) for n in shared)
    assert all(np.array_equal(params[n].numpy(), np.ones(2)) for n in norms if ".weight." in n)
    x = images(0)[0][0]
    # with every step's weights equal to the plain model's, each step computes the plain model
    for step in range(4):
        np.testing.assert_array_equal(model(params, x, step=step).numpy(), plain(base, x).numpy())
    assert np.array_equal(plain(base, x, step=2).numpy(), plain(base, x).numpy())  # step is ignored without it
    # step s uses its own weights; a step past the last uses the last's
    moved = {**params, "blocks.1.norm.bias.step1": tm.tensor(np.full(2, 0.5))}
    outputs = [model(moved, x, step=s).numpy() for s in range(4)]
    assert np.array_equal(outputs[0], outputs[2]) and not np.array_equal(outputs[0], outputs[1])
    other = {**params, "blocks.1.norm.bias.step2": tm.tensor(np.full(2, 0.5))}
    assert np.array_equal(model(other, x, step=5).numpy(), model(other, x, step=2).numpy())


def stepwise_loss(model):
    return lambda params, x, y, step: nn.cross_entropy(model(params, x, step=step), y)


@pytest.mark.parametrize("weights", [None, [0.4, 0.6]], ids=["final-loss", "multi-step-loss"])
def test_per_step_bn_meta_gradient_equals_finite_differences(weights):
    model = tiny_conv4(2)
    maml = MAML(stepwise_loss(model), inner_lr=0.3, inner_steps=2, step_loss_weights=weights, loss_takes_step=True)
    theta = maml.init(model.init(0))
    names, data = list(theta), images(1)
    loss = lambda *values: maml.meta_loss(dict(zip(names, values)), *data)  # noqa: E731
    assert gradcheck(loss, [theta[n] for n in names], atol=1e-7, rtol=1e-5)
    # each step's weights get their own gradient
    grads = maml.meta_grad(theta, *data)[1]
    for block in range(4):
        for kind in ("weight", "bias"):
            g0, g1 = (grads[f"blocks.{block}.norm.{kind}.step{s}"].numpy() for s in (0, 1))
            assert np.abs(g0).max() > 0 and np.abs(g1).max() > 0 and not np.allclose(g0, g1)


def test_per_step_bn_with_maml_plus_plus_options_against_finite_differences_and_unused_steps_get_zero():
    model = tiny_conv4(3)  # three sets of weights, two inner steps: step 2's are never used
    maml = MAML(stepwise_loss(model), inner_lr=0.2, inner_steps=2, learn_inner_lr="per_layer_per_step",
                step_loss_weights=[0.3, 0.7], first_order_until=4, loss_takes_step=True)  # fmt: skip
    theta = maml.init(model.init(1))
    names, data = list(theta), images(2)
    loss = lambda *values: maml.meta_loss(dict(zip(names, values)), *data, iteration=4)  # noqa: E731
    assert gradcheck(loss, [theta[n] for n in names], atol=1e-7, rtol=1e-5)
    for iteration in (0, 4):  # first order and exact alike
        grads = maml.meta_grad(theta, *data, iteration=iteration)[1]
        assert all(not grads[n].numpy().any() for n in names if n.endswith(".step2"))
        assert all(grads[n].numpy().any() for n in names if n.endswith(".step1") and ".norm." in n)


def test_a_stepwise_loss_takes_the_same_steps_as_the_plain_inner_loop():
    # loss_takes_step gives inner_sgd each step's loss: with a loss that ignores the step, the same
    # meta-gradient as the plain path
    stepwise = lambda params, x, y, step: mlp_loss(params, x, y)  # noqa: E731
    data = regression_tasks(5)
    for options, exact in ((MAMLPP, True), (dict(inner_lr=0.1, inner_steps=3, first_order=True), False)):
        plain, by_step = MAML(mlp_loss, **options), MAML(stepwise, loss_takes_step=True, **options)
        theta = plain.init(MLP.init(0))
        (a_loss, a), (b_loss, b) = plain.meta_grad(theta, *data), by_step.meta_grad(theta, *data)
        assert a_loss == b_loss
        for n in a:
            if exact:
                np.testing.assert_array_equal(a[n].numpy(), b[n].numpy())
            else:  # first order with fixed steps: θ plus a constant
                np.testing.assert_allclose(a[n].numpy(), b[n].numpy(), rtol=1e-12, atol=1e-15)
        fine = [phi["layers.0.weight"].numpy() for phi in by_step.fine_tune(theta, *data[:2], 5)]
        assert len(fine) == 6 and all(np.isfinite(f).all() for f in fine)


def test_the_steps_the_loss_is_told():
    seen: list[int] = []

    def loss(params, x, y, step):
        seen.append(step)
        return mlp_loss(params, x, y)

    data = regression_tasks(6)
    theta = MAML(mlp_loss).init(MLP.init(0))
    MAML(loss, inner_steps=3, loss_takes_step=True).meta_loss(theta, *data)
    assert seen == [0, 1, 2, 2]  # support losses of steps 0, 1, 2; the query loss of φ_3, made by step 2
    seen.clear()
    MAML(loss, inner_steps=3, step_loss_weights=[0.2, 0.3, 0.5], loss_takes_step=True).meta_loss(theta, *data)
    assert seen == [0, 0, 1, 1, 2, 2]  # each step's support loss, then the query loss of what it made
    seen.clear()
    list(MAML(loss, inner_steps=2, loss_takes_step=True).fine_tune(theta, *data[:2], 4))
    assert seen == [0, 1, 2, 3]  # the model decides what steps past the trained ones mean (Conv4: the last)


# ---- cosine annealing of the meta learning rate ----------------------------------------------------------


def test_cosine_schedule_equals_its_formula():
    lr, total, low = 1e-3, 37, 1e-5
    schedule = nn.cosine_schedule(lr, total, low)
    for t in range(total + 1):
        assert schedule(t) == pytest.approx(low + (lr - low) * (1 + math.cos(math.pi * t / total)) / 2, rel=1e-15)
    assert schedule(0) == lr and schedule(total) == low and schedule(10 * total) == low
    assert all(schedule(t + 1) < schedule(t) for t in range(total))
    assert nn.cosine_schedule(0.5, 4)(2) == 0.25  # min_lr defaults to 0: half-way, half the rate
    # a float equal to its peak rate, wherever a number is recorded or printed; a schedule when copied
    assert schedule == lr and f"{schedule:g}" == "0.001" and json.dumps({"lr": schedule}) == '{"lr": 0.001}'
    for clone in (copy.deepcopy(schedule), pickle.loads(pickle.dumps(schedule))):
        assert isinstance(clone, nn.CosineSchedule) and clone(5) == schedule(5)


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_optimisers_take_a_schedule_one_rate_per_update(name):
    rng = np.random.default_rng(0)
    params = {"w": tm.tensor(rng.standard_normal((3, 2)), requires_grad=True), "b": tm.tensor(rng.standard_normal(2))}
    grads = [{n: tm.tensor(rng.standard_normal(p.shape)) for n, p in params.items()} for _ in range(6)]
    schedule = nn.cosine_schedule(0.1, 5, 0.01)
    make = {"adam": lambda lr: nn.Adam(lr=lr), "sgd": lambda lr: nn.SGD(lr=lr, momentum=0.9)}[name]
    scheduled = make(schedule)
    state, theta = scheduled.init(params), dict(params)
    by_hand_state, by_hand = make(0.1).init(params), dict(params)
    for t, g in enumerate(grads):  # update t with a fixed-rate optimiser at schedule(t), on the same state
        theta, state = scheduled.step(theta, g, state)
        rate = schedule(t)
        by_hand, by_hand_state = make(rate).step(by_hand, g, by_hand_state)
        for n in theta:
            np.testing.assert_array_equal(theta[n].numpy(), by_hand[n].numpy())
    assert (state["step"] if name == "adam" else state["updates"]) == 6
    # any function of the step count is a schedule; what it returns is checked
    bad = make(lambda t: float("nan"))
    with pytest.raises(ValueError, match=r"lr schedule\(0\) must be a finite number >= 0, got nan"):
        bad.step(params, grads[0], bad.init(params))


# ---- bad option values: one-line errors naming the argument ---------------------------------------------


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: MAML(mlp_loss, first_order_until=-1), ValueError, "first_order_until must be an integer >= 0"),
        (lambda: MAML(mlp_loss, first_order_until=2.5), TypeError, "first_order_until must be an integer"),
        (lambda: MAML(mlp_loss, first_order=True, first_order_until=3), ValueError, "give one of them"),
        (lambda: MAML(mlp_loss, loss_takes_step="yes"), TypeError, "loss_takes_step must be True or False"),
        (
            lambda: MAML(mlp_loss, first_order_until=3).meta_grad(
                MAML(mlp_loss).init(MLP.init(0)), *regression_tasks(0)
            ),
            ValueError,
            r"first_order_until=3\) needs the outer iteration: meta_grad, meta_loss and adapt\(..., iteration=i\)",
        ),
        (
            lambda: MAML(mlp_loss).meta_grad(MAML(mlp_loss).init(MLP.init(0)), *regression_tasks(0), iteration=-1),
            ValueError,
            "iteration must be an integer >= 0",
        ),
        (lambda: MAML(mlp_loss, first_order_until=3).is_first_order(True), TypeError, "iteration must be an integer"),
        (lambda: nn.Conv4(2, per_step_bn=0), ValueError, "Conv4 per_step_bn must be an integer >= 1"),
        (lambda: nn.Conv4(2, per_step_bn=2.0), TypeError, "Conv4 per_step_bn must be an integer"),
        (
            lambda: tiny_conv4(2)(tiny_conv4(2).init(0), images(0)[0][0]),
            ValueError,
            r"Conv4\(per_step_bn=2\) needs the inner step: model\(params, x, step=s\)",
        ),
        (
            lambda: tiny_conv4(2)(tiny_conv4(2).init(0), images(0)[0][0], step=-1),
            ValueError,
            "Conv4 step must be an integer >= 0",
        ),
        (lambda: nn.cosine_schedule(0.0, 10), ValueError, "cosine_schedule lr must be a finite number > 0"),
        (lambda: nn.cosine_schedule(float("nan"), 10), ValueError, "cosine_schedule lr"),
        (lambda: nn.cosine_schedule(1e-3, 0), ValueError, "cosine_schedule total_steps must be an integer >= 1"),
        (lambda: nn.cosine_schedule(1e-3, 10.0), TypeError, "cosine_schedule total_steps must be an integer"),
        (lambda: nn.cosine_schedule(1e-3, 10, -1e-5), ValueError, "min_lr must be a finite number >= 0"),
        (lambda: nn.cosine_schedule(1e-3, 10, 1e-2), ValueError, r"cosine_schedule min_lr must be <= lr \(0.001\)"),
        (lambda: nn.cosine_schedule(1e-3, 10)(-1), ValueError, "schedule step must be an integer >= 0"),
        (lambda: nn.Adam(lr="fast"), TypeError, "Adam lr must be a real number"),
        (
            lambda: nn.SGD(lr=lambda: 0.1),
            TypeError,
            r"SGD lr \(a schedule\) is called as lr\(step\), but .* 1 positional",
        ),
        (
            lambda: MAML(mlp_loss, inner_steps=2, step_loss_weights=[-1, 2]),
            ValueError,
            r"weights\[0\] must be a finite",
        ),
        (lambda: MAML(mlp_loss, inner_steps=2, step_loss_weights=[0, 0]), ValueError, "are all zero: the meta-loss"),
        (lambda: annealed_step_loss_weights(3, 100)(-1), ValueError, "iteration must be an integer >= 0"),
        (lambda: annealed_step_loss_weights(3, 100)(2.5), TypeError, "iteration must be an integer"),
        (
            lambda: MAML(mlp_loss, loss_takes_step=True),
            TypeError,
            r"loss_takes_step=True is called as loss_fn\(params, x, y, step\), but .* 4 positional arguments",
        ),
    ],
)
def test_bad_option_values_get_one_line_errors_naming_the_argument(make, error, match):
    with pytest.raises(error, match=match) as caught:
        make()
    assert "\n" not in str(caught.value)


# ---- the few-shot demo's flags -------------------------------------------------------------------------

SMALL = ["--classes", "12", "5", "6", "--filters", "4", "--meta-batch", "2", "--eval-episodes", "4",
         "--val-episodes", "2", "--eval-steps", "2", "--no-progress"]  # fmt: skip
MAMLPP_FLAGS = ["--algo", "maml++", "--inner-steps", "2", "--multi-step-loss", "--per-step-bn"]


def fewshot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "demos.fewshot", *args], cwd=ROOT, capture_output=True, text=True)


def test_fewshot_with_every_mamlpp_option_trains_records_and_evaluates_as_trained(tmp_path):
    run = fewshot(*SMALL, *MAMLPP_FLAGS, "--first-order-until", "2", "--cosine-lr", "1e-5", "--iterations", "4",
                  "--checkpoint-every", "2", "--out", str(tmp_path))  # fmt: skip
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "results" / "maml++_5way1shot.json").read_text())
    assert record["per_step_bn"] and record["multi_step_loss"] and record["first_order_until"] == 2
    assert record["cosine_lr"] == 1e-5 and record["cosine_lr_steps"] == 4 and len(record["curves"]) == 2
    from demos import common

    checkpoint = tmp_path / "checkpoints" / "maml++_5way1shot.npz"
    arrays, info = common.load_checkpoint(checkpoint)
    assert "param/blocks.3.norm.bias.step1" in arrays and "param/blocks.3.norm.bias" not in arrays
    assert info["meta_lr"] == 1e-3 and info["cosine_lr"] == 1e-5 and info["per_step_bn"] is True
    best = tmp_path / "checkpoints" / "maml++_5way1shot_best.npz"  # what the run was tested with
    again = fewshot("--eval-only", str(best), "--out", str(tmp_path), "--no-progress")
    assert again.returncode == 0, again.stderr
    assert "per_step_bn=True" in again.stdout and "first_order_until=2" in again.stdout
    assert json.loads((tmp_path / "results" / "maml++_5way1shot.json").read_text()) == record  # kept as it was
    evaluated = json.loads((tmp_path / "results" / "maml++_5way1shot_best_eval.json").read_text())
    assert evaluated.pop("checkpoint") == str(best)
    for key in ("cost", "curves", "iterations"):  # the best checkpoint holds the parameters and record of its time
        evaluated.pop(key), record.pop(key)
    assert evaluated == record  # the same parameters and settings: the same test accuracy
    # --eval-only refuses training flags it would ignore, and a model flag the checkpoint contradicts
    ignored = fewshot("--eval-only", str(checkpoint), "--cosine-lr", "0", "--first-order-until", "3")
    assert ignored.returncode == 2 and "drop --cosine-lr, --first-order-until" in ignored.stderr
    trained_plain = fewshot(*SMALL, "--iterations", "2", "--checkpoint-every", "2", "--out", str(tmp_path / "plain"))
    assert trained_plain.returncode == 0, trained_plain.stderr
    clash = fewshot("--eval-only", str(tmp_path / "plain" / "checkpoints" / "maml_5way1shot.npz"), "--per-step-bn")
    assert clash.returncode == 2 and "--per-step-bn True (the checkpoint: False)" in clash.stderr


def test_fewshot_resume_continues_derivative_order_annealing_exactly(tmp_path):
    # the switch (iteration 3) comes before the stop (4); the resumed iterations 4, 5 must be exact MAML's
    flags = [*SMALL, "--algo", "maml", "--inner-steps", "2", "--first-order-until", "3", "--checkpoint-every", "2"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert fewshot(*flags, "--iterations", "6", "--out", str(straight)).returncode == 0
    assert fewshot(*flags, "--iterations", "4", "--out", str(resumed)).returncode == 0
    finished = fewshot(*flags, "--iterations", "6", "--resume", "--out", str(resumed))
    assert finished.returncode == 0, finished.stderr
    a = json.loads((straight / "results" / "maml_5way1shot.json").read_text())
    b = json.loads((resumed / "results" / "maml_5way1shot.json").read_text())
    a.pop("cost"), b.pop("cost")  # measured, not replayed: the peak can differ by a few bytes
    assert a == b
    # the annealing setting and the cosine schedule's length are the run's: resuming otherwise is refused
    other = fewshot(*flags[:-6], "--first-order-until", "2", "--checkpoint-every", "2", "--iterations", "8",
                    "--resume", "--out", str(resumed))  # fmt: skip
    assert other.returncode == 2 and "first_order_until=3 (this run: 2)" in other.stderr
    cosine = tmp_path / "cosine"
    assert fewshot(*SMALL, "--cosine-lr", "0", "--iterations", "2", "--out", str(cosine)).returncode == 0
    longer = fewshot(*SMALL, "--cosine-lr", "0", "--iterations", "4", "--resume", "--out", str(cosine))
    assert longer.returncode == 2 and "with --cosine-lr 0 over --iterations 2, a schedule fixed when" in longer.stderr


@pytest.mark.parametrize(
    "flags, message",
    [
        (
            ["--algo", "anil", "--inner-steps", "2", "--per-step-bn"],
            "--per-step-bn is an option of MAML's inner loop: use it with --algo maml, fomaml, maml++, not anil",
        ),
        (["--algo", "reptile", "--first-order-until", "3"], "--first-order-until is an option of MAML's inner loop"),
        (["--per-step-bn"], "--per-step-bn gives batch-norm weights to each inner step: it needs --inner-steps 2"),
        (["--multi-step-loss"], "--multi-step-loss weighs the query loss after each inner step: it needs"),
        (["--first-order-until", "0"], "--first-order-until must be at least 1, got 0"),
        (["--first-order-until", "3000"], "--first-order-until 3000 is not below --iterations 3000"),
        (["--algo", "fomaml", "--first-order-until", "3"], "--algo fomaml is first order throughout"),
        (["--first-order-until", "soon"], "argument --first-order-until: invalid int value: 'soon'"),
        (["--cosine-lr", "-0.00001"], "--cosine-lr must be a finite number >= 0 and below --meta-lr (0.001), got -1e"),
        (["--cosine-lr", "0.01"], "--cosine-lr must be a finite number >= 0 and below --meta-lr (0.001), got 0.01"),
        (["--cosine-lr", "nan"], "--cosine-lr must be a finite number >= 0"),
        (["--inner-steps", "2", "--anneal-multi-step-loss", "5"], "--anneal-multi-step-loss anneals the multi-step"),
        (
            ["--inner-steps", "2", "--multi-step-loss", "--anneal-multi-step-loss", "0"],
            "--anneal-multi-step-loss must be at least 1, got 0",
        ),
        (["--algo", "anil", "--anneal-multi-step-loss", "3"], "--anneal-multi-step-loss is an option of MAML's"),
    ],
)
def test_fewshot_refuses_bad_mamlpp_flags_in_one_line_before_any_work(flags, message, tmp_path):
    result = fewshot(*flags, "--out", str(tmp_path))
    assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1
    assert message in result.stderr, result.stderr


# ---- the multi-step loss's annealed weights --------------------------------------------------------


def test_annealed_step_loss_weights_follow_maml_plus_plus_schedule():
    steps, until = 5, 200
    weights = annealed_step_loss_weights(steps, until)
    assert all(math.isclose(w, 0.2, rel_tol=1e-15) for w in weights(0)) and len(weights(0)) == 5  # equal at first
    for i in range(until):
        w = weights(i)
        assert len(w) == steps and math.isclose(sum(w), 1.0, rel_tol=1e-12)
        expected_earlier = max(0.2 * (1 - i / until), 0.03 / steps)  # linear decay to the floor
        assert all(math.isclose(e, expected_earlier, rel_tol=1e-12) for e in w[:-1])
    lasts = [weights(i)[-1] for i in range(until)]
    assert all(a <= b for a, b in zip(lasts, lasts[1:])) and lasts[-1] > 0.97  # towards the last step
    assert weights(until) == weights(10 * until) == [0.0, 0.0, 0.0, 0.0, 1.0]  # then the final loss only
    assert annealed_step_loss_weights(1, 10)(0) == [1.0]
    with pytest.raises(ValueError, match="anneal_until"):
        annealed_step_loss_weights(2, 0)
    with pytest.raises(TypeError, match="inner_steps"):
        annealed_step_loss_weights(2.5, 10)


def test_a_weight_schedule_gives_the_fixed_weights_of_its_iteration_exactly():
    from tinymeta.meta import annealed_step_loss_weights

    schedule = annealed_step_loss_weights(3, 10)
    scheduled = MAML(mlp_loss, inner_lr=0.1, inner_steps=3, step_loss_weights=schedule)
    theta = scheduled.init(MLP.init(2))
    data = regression_tasks(7)
    for iteration in (0, 4, 9):
        fixed = MAML(mlp_loss, inner_lr=0.1, inner_steps=3, step_loss_weights=schedule(iteration))
        a, b = scheduled.meta_grad(theta, *data, iteration=iteration), fixed.meta_grad(theta, *data)
        assert a[0] == b[0] and same_gradients(a[1], b[1])
    # past the annealing only the final step's query loss counts: plain MAML's meta-gradient
    final_only = scheduled.meta_grad(theta, *data, iteration=10)
    plain = MAML(mlp_loss, inner_lr=0.1, inner_steps=3).meta_grad(theta, *data)
    assert final_only[0] == plain[0] and same_gradients(final_only[1], plain[1])
    names = list(theta)
    loss = lambda *values: scheduled.meta_loss(dict(zip(names, values)), *data, iteration=3)  # noqa: E731
    assert gradcheck(loss, [theta[n] for n in names], atol=1e-8, rtol=1e-6)


def test_a_weight_schedule_is_checked():
    data = regression_tasks(8)
    theta = MAML(mlp_loss).init(MLP.init(0))
    maml = MAML(mlp_loss, inner_steps=2, step_loss_weights=lambda i: [0.5, 0.5])
    with pytest.raises(ValueError, match=r"needs the outer iteration: meta_grad\(..., iteration=i\) weighs"):
        maml.meta_grad(theta, *data)
    with pytest.raises(ValueError, match=r"step_loss_weights\(3\) needs one weight per inner step \(2\), got 3"):
        MAML(mlp_loss, inner_steps=2, step_loss_weights=lambda i: [0.2, 0.3, 0.5]).meta_grad(theta, *data, iteration=3)
    with pytest.raises(TypeError, match=r"step_loss_weights\(0\)\[1\]"):
        MAML(mlp_loss, inner_steps=2, step_loss_weights=lambda i: [0.5, "x"]).meta_loss(theta, *data, iteration=0)
    with pytest.raises(TypeError, match="weights\\(iteration\\)"):
        MAML(mlp_loss, inner_steps=2, step_loss_weights=lambda: [0.5, 0.5])
    with pytest.raises(TypeError, match="sequence of one weight per inner step"):
        MAML(mlp_loss, inner_steps=2, step_loss_weights=0.5)


def test_fewshot_anneals_the_multi_step_loss_weights_and_resumes_them_exactly(tmp_path):
    flags = [*SMALL, "--algo", "maml++", "--inner-steps", "2", "--multi-step-loss", "--anneal-multi-step-loss", "3",
             "--checkpoint-every", "2"]  # fmt: skip
    straight, resumed, fixed = tmp_path / "straight", tmp_path / "resumed", tmp_path / "fixed"
    assert fewshot(*flags, "--iterations", "6", "--out", str(straight)).returncode == 0
    assert fewshot(*flags, "--iterations", "4", "--out", str(resumed)).returncode == 0
    finished = fewshot(*flags, "--iterations", "6", "--resume", "--out", str(resumed))
    assert finished.returncode == 0, finished.stderr
    a = json.loads((straight / "results" / "maml++_5way1shot.json").read_text())
    b = json.loads((resumed / "results" / "maml++_5way1shot.json").read_text())
    assert a["anneal_multi_step_loss"] == 3 and a["multi_step_loss"] is True
    a.pop("cost"), b.pop("cost")
    assert a == b
    # the schedule is used: fixed 0.3 / 0.7 weights train to other parameters
    assert fewshot(*flags[:-4], "--checkpoint-every", "2", "--iterations", "6", "--out", str(fixed)).returncode == 0
    c = json.loads((fixed / "results" / "maml++_5way1shot.json").read_text())
    assert c["anneal_multi_step_loss"] is None and c["curves"][0]["meta_loss"] != a["curves"][0]["meta_loss"]
