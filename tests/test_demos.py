"""The demos run end to end, as a user runs them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinymeta as tm
from demos import newton
from demos.common import load_checkpoint as load_demo_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_newton_cg_converges_on_rosenbrock_in_few_iterations(capsys) -> None:
    assert newton.main(["--quiet", "--gd-max-iter", "50"]) == 0
    out = capsys.readouterr().out
    assert "Newton-CG (hvp)" in out and "gradient descent" in out


def test_newton_cg_reaches_the_minimum_exactly() -> None:
    run = newton.minimize(newton.rosenbrock, np.array([-1.2, 1.0]), "newton", tol=1e-10, max_iter=100, verbose=False)
    assert run["converged"] and run["iterations"] < 40
    np.testing.assert_allclose(run["x"], [1.0, 1.0], atol=1e-8)


def test_newton_demo_as_a_module_with_help() -> None:
    result = subprocess.run([sys.executable, "-m", "demos.newton", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "--dim" in result.stdout


def test_newton_demo_rejects_bad_input() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "demos.newton", "--dim", "1"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 2 and "--dim must be at least 2" in result.stderr


# ---- shared pieces -------------------------------------------------------------------------------


def test_confidence_interval_on_known_values():
    from demos.common import mean_ci

    values = np.array([1.0, 2.0, 3.0, 4.0])
    mean, half_width = mean_ci(values)
    assert mean == 2.5
    assert half_width == pytest.approx(1.96 * np.sqrt(1.25) / 2)  # population std of 1..4 is sqrt(1.25)


def run_demo(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"demos.{module}", *args, "--no-progress"], cwd=ROOT, capture_output=True, text=True
    )


# ---- sinusoid ------------------------------------------------------------------------------------


def test_sinusoid_runs_end_to_end_and_writes_its_outputs(tmp_path):
    result = run_demo("sinusoid", "--algo", "maml,cavia", "--iterations", "6", "--checkpoint-every", "3",
                      "--eval-tasks", "20", "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    for name in ("maml", "cavia", "pretrained"):
        assert (tmp_path / "checkpoints" / f"{name}.npz").is_file()
        record = json.loads((tmp_path / "results" / f"{name}.json").read_text())
        assert record["iterations"] == 6 and len(record["eval"]["10"]["mse"]) == 11
    assert (tmp_path / "results.csv").is_file() and "| maml |" in (tmp_path / "results.md").read_text()
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "fig2_adaptation.png").is_file() and (tmp_path / "fig3_steps.png").is_file()
    # --eval-only re-evaluates checkpoints into another folder, with the same numbers
    checkpoints = [str(tmp_path / "checkpoints" / f"{name}.npz") for name in ("maml", "pretrained")]
    again = run_demo("sinusoid", "--eval-only", *checkpoints, "--eval-tasks", "20", "--out", str(tmp_path / "eval"))
    assert again.returncode == 0, again.stderr
    for name in ("maml", "pretrained"):
        first = json.loads((tmp_path / "results" / f"{name}.json").read_text())
        second = json.loads((tmp_path / "eval" / "results" / f"{name}.json").read_text())
        assert first == second


def test_sinusoid_resume_continues_exactly(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = ["--algo", "metasgd", "--no-baseline", "--eval-tasks", "5", "--checkpoint-every", "4"]
    assert run_demo("sinusoid", *common, "--iterations", "8", "--out", str(straight)).returncode == 0
    assert run_demo("sinusoid", *common, "--iterations", "4", "--out", str(resumed)).returncode == 0
    assert run_demo("sinusoid", *common, "--iterations", "8", "--resume", "--out", str(resumed)).returncode == 0
    a, b = np.load(straight / "checkpoints" / "metasgd.npz"), np.load(resumed / "checkpoints" / "metasgd.npz")
    for key in a.files:
        if key != "__info__":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_sinusoid_evaluation_matches_a_direct_computation():
    from demos import sinusoid

    model = sinusoid.make_model("maml", "float64")
    algorithm = sinusoid.make_algorithm("maml", model, 0.01)
    theta = algorithm.init(model.init(0))
    data = sinusoid.evaluation_tasks(seed=1, tasks=7, dtype="float64")
    results = sinusoid.evaluate(theta, algorithm, model, data)
    # step 0 is the unadapted network: its MSE on each task's 100-point curve, averaged over tasks
    p = {n: v.numpy() for n, v in theta.items()}
    hidden = np.maximum(np.maximum(data["grid"] @ p["layers.0.weight"] + p["layers.0.bias"], 0)
                        @ p["layers.1.weight"] + p["layers.1.bias"], 0)  # fmt: skip
    prediction = hidden @ p["layers.2.weight"] + p["layers.2.bias"]
    per_task = ((prediction - data["truth"]) ** 2).mean(axis=(1, 2))
    assert results["5"]["mse"][0] == pytest.approx(per_task.mean(), rel=1e-10)
    assert results["5"]["ci95"][0] == pytest.approx(1.96 * per_task.std() / np.sqrt(7), rel=1e-10)
    assert len(results["20"]["mse"]) == sinusoid.EVAL_STEPS + 1


def test_sinusoid_bad_input_is_one_line_and_keeps_earlier_checkpoints(tmp_path):
    result = run_demo("sinusoid", "--algo", "nope")
    assert (
        result.returncode == 2
        and result.stderr.strip().count("\n") == 0
        and "unknown algorithm 'nope'" in result.stderr
    )
    assert run_demo("sinusoid", "--algo", "maml", "--no-baseline", "--iterations", "2", "--eval-tasks", "3",
                    "--out", str(tmp_path)).returncode == 0  # fmt: skip
    checkpoint = tmp_path / "checkpoints" / "maml.npz"
    before = checkpoint.read_bytes()
    clash = run_demo("sinusoid", "--algo", "maml", "--no-baseline", "--iterations", "4", "--resume",
                     "--dtype", "float64", "--out", str(tmp_path))  # fmt: skip
    assert clash.returncode == 2 and "dtype" in clash.stderr
    assert checkpoint.read_bytes() == before
    wrong = run_demo("sinusoid", "--eval-only", str(tmp_path / "results" / "maml.json"))
    assert wrong.returncode == 2 and "not a tinymeta demo checkpoint" in wrong.stderr


def test_diverging_tasks_are_counted_and_the_rest_summarised():
    from demos import sinusoid

    inf, nan = np.inf, np.nan
    per_task = np.array([[1.0, 2.0, 3.0, 10.0], [1.0, inf, 3.0, 2e6], [inf, 1e30, nan, inf]])
    summary = sinusoid.summarize(per_task)
    assert summary["diverged"] == [0, 2, 4]
    assert summary["mse"][:2] == [4.0, 2.0] and summary["median"][:2] == [2.5, 2.0]
    assert summary["ci95"][0] == pytest.approx(1.96 * np.sqrt(12.5) / 2) and summary["ci95"][1] == pytest.approx(
        1.96 / np.sqrt(2)
    )
    assert summary["mse"][2] is None and summary["ci95"][2] is None and summary["median"][2] is None
    cells = [sinusoid._cell("maml", summary, step, 4) for step in range(3)]
    assert cells == ["4.000 ± 3.465", "2.000 (median 2.000; 2 of 4 diverged)", "all 4 tasks diverged"]
    old = {"mse": [1.0, None], "ci95": [0.1, None]}  # a record from before tasks were counted
    assert sinusoid._cell("maml", old, 1, 4).startswith("diverged (--eval-only again")


def test_a_step_size_that_blows_up_some_tasks_is_reported_per_task():
    """α = 0.6 on the unadapted network overflows the tasks with the steepest support loss within 10 steps."""
    from demos import sinusoid

    model = sinusoid.make_model("maml", "float64")
    algorithm = sinusoid.make_algorithm("maml", model, 0.6)
    theta = algorithm.init(model.init(0))
    data = sinusoid.evaluation_tasks(seed=1, tasks=20, dtype="float64")
    result = sinusoid.evaluate(theta, algorithm, model, data)["5"]
    diverged = result["diverged"]
    assert diverged[0] == 0 and 0 < diverged[-1] < 20, diverged
    assert result["mse"][-1] <= sinusoid.DIVERGED_MSE
    assert result["mse"][-1] is not None and np.isfinite(result["mse"][-1]) and result["median"][-1] is not None


def test_the_inner_solve_summary_pools_reports_and_counts_what_is_not_finite():
    from demos import common
    from tinymeta.meta.imaml import InnerReport

    def report(residual, initial, steps, converged):
        return InnerReport(np.array(residual), np.array(initial), np.array(steps), np.array(converged), 1e-3, 0, 0)

    first = report([0.5, 0.0, np.nan], [1.0, 0.0, 2.0], [10, 0, 3], [False, True, False])
    second = report([0.01, 3.0], [0.1, 1.5], [10, 10], [False, False])
    summary = common.inner_solve_summary([first, None, second])
    # relative residuals 0.5, 0 (solved where it started), NaN, 0.1, 2.0 (ended farther than it started)
    assert summary == dict(tasks=5, solved=1, tol=1e-3, not_finite=1, median_relative_residual=0.3,
                           max_relative_residual=2.0, median_steps=10.0, max_steps=10)  # fmt: skip
    line = common.describe_inner_solve(summary)
    assert line.startswith("1 of 5 inner problems solved to tol 0.001; ||∇L_prox(φ)|| median 0.3")
    assert "1 not finite" in line
    assert common.inner_solve_summary([None, None]) is None


def test_imamls_evaluation_says_how_well_its_inner_problems_were_solved(tmp_path):
    from demos import sinusoid

    data = sinusoid.evaluation_tasks(seed=1, tasks=6, dtype="float64")
    for algo in ("imaml", "maml"):
        model = sinusoid.make_model(algo, "float64")
        algorithm = sinusoid.make_algorithm(algo, model, 0.01, sinusoid.INNER_STEPS[algo])
        result = sinusoid.evaluate(algorithm.init(model.init(0)), algorithm, model, data)
        for k in sinusoid.SHOTS:
            solved = result[str(k)].get("inner_solve")
            if algo == "maml":
                assert solved is None
                continue
            # the last batch evaluated is this K's: its residuals are the ones the solver reported
            assert solved["tasks"] == 6 and solved["max_steps"] <= sinusoid.EVAL_STEPS
            assert 0 < solved["median_relative_residual"] < 1  # ten line-searched steps from θ reduce it


def test_a_checkpoint_from_another_architecture_is_refused(tmp_path):
    assert run_demo("sinusoid", "--algo", "maml", "--no-baseline", "--iterations", "2", "--eval-tasks", "3",
                    "--out", str(tmp_path)).returncode == 0  # fmt: skip
    result = run_demo("fewshot", "--eval-only", str(tmp_path / "checkpoints" / "maml.npz"), "--classes", "8", "5", "6",
                      "--filters", "4", "--eval-episodes", "2")  # fmt: skip
    assert result.returncode == 2 and "is not a few-shot checkpoint" in result.stderr


# ---- few-shot classification ---------------------------------------------------------------------


def test_generated_characters_are_deterministic_and_disjoint():
    from demos import characters

    a, b = characters.generated_splits(3, 5, 2, 3, examples=4), characters.generated_splits(3, 5, 2, 3, examples=4)
    np.testing.assert_array_equal(a["train"].images, b["train"].images)
    assert a["train"].images.shape == (5, 4, 1, 28, 28) and a["test"].classes == 3
    assert 0.0 <= a["train"].images.min() and a["train"].images.max() <= 1.0
    xs, ys, xq, yq = a["train"].episodes(np.random.default_rng(0), 2, 3, 1, 2)
    assert xs.shape == (2, 3, 1, 28, 28) and xq.shape == (2, 6, 1, 28, 28)
    np.testing.assert_array_equal(ys[0], [0, 1, 2])
    np.testing.assert_array_equal(yq[0], [0, 0, 1, 1, 2, 2])


def test_fewshot_runs_end_to_end_on_generated_characters(tmp_path):
    result = run_demo("fewshot", "--iterations", "3", "--checkpoint-every", "2", "--classes", "12", "5", "6",
                      "--filters", "4", "--meta-batch", "2", "--eval-episodes", "4", "--val-episodes", "2",
                      "--eval-steps", "2", "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "the paper: 64, 32 and 40,000" in result.stdout and "test accuracy" in result.stdout
    record = json.loads((tmp_path / "results" / "maml_5way1shot.json").read_text())
    assert 0.0 <= record["test_accuracy"] <= 1.0 and record["iterations"] == 3 and len(record["curves"]) == 2
    assert record["cost"]["device"] == "cpu" and record["cost"]["peak_mb"] > 0  # timed during training
    assert record["inner_solve"] is None  # MAML has no inner problem to solve, only steps to take


def test_fewshot_imaml_reports_how_well_its_test_time_inner_problems_were_solved(tmp_path):
    result = run_demo("fewshot", "--algo", "imaml", "--iterations", "2", "--checkpoint-every", "2", "--classes", "12",
                      "5", "6", "--filters", "4", "--meta-batch", "2", "--eval-episodes", "4", "--val-episodes", "2",
                      "--eval-steps", "3", "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "results" / "imaml_5way1shot.json").read_text())
    solved = record["inner_solve"]
    assert solved["tasks"] == 4 and solved["max_steps"] <= 3 and solved["median_relative_residual"] is not None
    assert f"after the 3 test-time steps: {solved['solved']} of 4 inner problems solved" in result.stdout


def test_fewshot_asks_for_more_examples_than_exist():
    result = run_demo("fewshot", "--shots", "18", "--queries", "5", "--classes", "8", "5", "6", "--iterations", "1")
    assert result.returncode == 2 and "only 20 examples per class" in result.stderr


def write_omniglot(root: Path, alphabets: int = 2, characters: int = 4, drawers: int = 6) -> float:
    """A tiny folder in Omniglot's layout: 105x105 PNGs, black strokes on white. Returns the
    fraction of stroke pixels over all the drawings."""
    from PIL import Image

    rng = np.random.default_rng(0)
    ink = []
    for part in ("images_background", "images_evaluation"):
        for a in range(alphabets):
            for c in range(characters):
                folder = root / part / f"Alphabet_{a}" / f"character{c + 1:02d}"
                folder.mkdir(parents=True)
                base = rng.random((105, 105)) > 0.9
                for d in range(drawers):
                    strokes = np.roll(base, d, axis=1)
                    ink.append(strokes.mean())
                    Image.fromarray(np.where(strokes, 0, 255).astype(np.uint8)).save(
                        folder / f"{c:04d}_{d + 1:02d}.png"
                    )
    return float(np.mean(ink))


def test_omniglot_loader_and_demo_on_a_generated_folder(tmp_path):
    pytest.importorskip("PIL", reason="reading Omniglot PNGs needs Pillow (pip install -e '.[demos]')")
    from demos import characters

    root = tmp_path / "omniglot"
    ink = write_omniglot(root)
    splits = characters.omniglot_splits(root, seed=0)
    # 16 characters: 12 for training, the last 2 of them held out for validation, 4 for testing, each with its
    # three rotations as extra classes
    assert characters.omniglot_split_sizes(root) == (10, 2, 4)
    assert splits["train"].images.shape == (40, 6, 1, 28, 28)
    assert splits["validation"].classes == 8 and splits["test"].classes == 16
    # inverted (strokes bright, in [0, 1]) and resized: the mean intensity is the fraction of ink
    everything = np.concatenate([splits[name].images for name in ("train", "validation", "test")])
    assert 0.0 <= everything.min() and everything.max() <= 1.0
    assert everything.mean() == pytest.approx(ink, abs=0.01)
    # the three splits are disjoint (validation is not the test classes) and cover every character
    drawings = {name: {image.tobytes() for image in splits[name].images[:, 0]} for name in splits}
    assert not drawings["train"] & drawings["validation"] and not drawings["train"] & drawings["test"]
    assert not drawings["validation"] & drawings["test"] and sum(map(len, drawings.values())) == 64
    again = characters.omniglot_splits(root, seed=0)  # deterministic in the seed
    assert all(np.array_equal(again[name].images, splits[name].images) for name in splits)
    run = ["--omniglot", str(root), "--iterations", "2", "--filters", "4", "--meta-batch", "2", "--queries", "2",
           "--eval-queries", "2", "--eval-episodes", "3", "--val-episodes", "2", "--eval-steps", "1"]  # fmt: skip
    result = run_demo("fewshot", *run, "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "Omniglot" in result.stdout
    from demos import common

    path = tmp_path / "run" / "checkpoints" / "maml_5way1shot.npz"
    arrays, info = common.load_checkpoint(path)
    assert info["omniglot_split"] == [10, 2, 4]
    # a run from before the validation characters were held out (it validated on the test ones) is not resumed
    del info["omniglot_split"]
    common.save_checkpoint(path, arrays, info)
    old = run_demo("fewshot", *run, "--iterations", "4", "--resume", "--out", str(tmp_path / "run"))
    assert old.returncode == 2 and old.stderr.count("\n") == 1 and old.stdout == ""
    assert (
        "trained before the demo held Omniglot validation characters out" in old.stderr and "--overwrite" in old.stderr
    )
    # the splits' sizes, not --classes (which Omniglot does not use), are checked against --ways
    wide = run_demo("fewshot", "--omniglot", str(root), "--ways", "9", "--out", str(tmp_path / "wide"))
    assert wide.returncode == 2 and wide.stdout == ""
    assert "the validation split has 8 classes (2 characters and their rotations), fewer than --ways 9" in wide.stderr


def test_omniglot_with_the_wrong_layout_says_what_to_do(tmp_path):
    (tmp_path / "images_background").mkdir()
    result = run_demo("fewshot", "--omniglot", str(tmp_path), "--iterations", "1")
    assert result.returncode == 2 and "images_evaluation" in result.stderr and "expected" in result.stderr


# ---- nothing lost, one-line errors ------------------------------------------------------------------

A_FILE = Path(__file__)  # an --out that is a file
BAD_FLAGS = [
    ("sinusoid", ["--inner-lr", "0"], "--inner-lr must be a finite number > 0"),
    ("sinusoid", ["--inner-lr", "nan"], "--inner-lr must be a finite number > 0, got nan"),
    ("sinusoid", ["--meta-lr=-1e-3"], "--meta-lr must be a finite number > 0"),
    ("sinusoid", ["--meta-lr", "inf"], "--meta-lr must be a finite number > 0"),
    ("sinusoid", ["--clip-grad-norm", "-1"], "--clip-grad-norm must be a finite number > 0"),
    ("sinusoid", ["--clip-grad-norm", "nan"], "--clip-grad-norm must be a finite number > 0"),
    ("sinusoid", ["--iterations", "-5"], "--iterations must be at least 1"),
    ("sinusoid", ["--eval-tasks", "2"], "--eval-tasks must be at least 3"),
    ("sinusoid", ["--seed", "-1"], "--seed must be at least 0"),
    ("sinusoid", ["--eval-seed", "-2"], "--eval-seed must be at least 0"),
    ("sinusoid", ["--k", "0"], "--k must be at least 1"),
    ("sinusoid", ["--algo", ","], "unknown algorithm"),
    ("sinusoid", ["--out", str(A_FILE)], "is a file"),
    ("sinusoid", ["--out", str(A_FILE / "sub")], "which is a file"),
    ("sinusoid", ["--iterations", "ten"], "argument --iterations: invalid int value: 'ten'"),
    ("sinusoid", ["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ("sinusoid", ["--eval-only", "no/such/checkpoint.npz"], "does not exist"),
    ("sinusoid", ["--eval-only", str(A_FILE)], "not a tinymeta demo checkpoint"),
    ("fewshot", ["--val-episodes", "0"], "--val-episodes must be at least 1"),
    ("fewshot", ["--inner-lr", "nan"], "--inner-lr must be a finite number > 0"),
    ("fewshot", ["--meta-lr", "0"], "--meta-lr must be a finite number > 0"),
    ("fewshot", ["--clip-grad-norm", "0"], "--clip-grad-norm must be a finite number > 0"),
    ("fewshot", ["--ways", "1"], "--ways must be at least 2"),
    ("fewshot", ["--eval-steps", "-1"], "--eval-steps must be at least 0"),
    ("fewshot", ["--iterations", "0"], "--iterations must be at least 1"),
    ("fewshot", ["--classes", "10", "3", "10"], "the validation split has 3 classes, fewer than --ways 5"),
    ("fewshot", ["--shots", "18"], "only 20 examples per class"),
    ("fewshot", ["--omniglot", "no/such/folder"], "is not a folder"),
    ("fewshot", ["--out", str(A_FILE)], "is a file"),
    ("fewshot", ["--eval-only", "no/such/checkpoint.npz"], "does not exist"),
    ("fewshot", ["--dtype", "float16"], "invalid choice: 'float16'"),
    (
        "fewshot",
        ["--inner-steps", "2", "--multi-step-loss", "--anneal-multi-step-loss", "3000"],
        "--anneal-multi-step-loss 3000 is not below --iterations 3000: the weights would still be moving",
    ),
    ("fewshot", ["--filters", "100000000"], "--filters 100,000,000 (with --meta-batch 4: a meta-batch's graph) would"),
    ("fewshot", ["--meta-batch", "100000000"], "--meta-batch 100,000,000 (with --filters 16: a meta-batch's graph)"),
    (
        "fewshot",
        ["--inner-steps", "10000000"],
        "--inner-steps must be from 1 to 1,000 (each step is a pass over every support set, and exact MAML keeps",
    ),
    ("fewshot", ["--eval-steps", "5000"], "--eval-steps must be from 0 to 1,000"),
    (
        "fewshot",
        ["--inner-steps", "1000", "--filters", "4000"],
        "--inner-steps 1,000 (with --filters 4,000, --meta-batch 4: a meta-batch's graph, which keeps every inner",
    ),
    (
        "fewshot",
        ["--eval-only", str(A_FILE)],
        "not a tinymeta demo checkpoint (an .npz file a demo wrote): it is a text",
    ),
    (
        "fewshot",
        ["--algo", "r2d2", "--inner-steps", "3", "--inner-lr", "0.1", "--multi-step-loss"],
        "--algo r2d2 solves its head in closed form (no inner step to take, size or weigh, in training or at test "
        "time): drop --inner-lr, --inner-steps, --multi-step-loss",
    ),
    ("fewshot", ["--algo", "r2d2", "--eval-steps", "5"], "solves its head in closed form"),
    ("fewshot", ["--omniglot", "no/such/folder", "--classes", "10", "10", "10"], "not Omniglot's"),
    ("newton", ["--dim", "1"], "--dim must be at least 2"),
    ("newton", ["--tol", "0"], "--tol must be a finite number > 0"),
    ("newton", ["--tol", "nan"], "--tol must be a finite number > 0"),
    ("newton", ["--max-iter", "0"], "--max-iter must be at least 1"),
    ("newton", ["--out", str(A_FILE)], "is a file"),
    ("sinusoid", ["--out", ""], "argument --out: an empty path"),
    ("fewshot", ["--omniglot", ""], "argument --omniglot: an empty path"),
    ("sinusoid", ["--eval-tasks", "100000000000"], "--eval-tasks 100000000000 would need"),
    ("sinusoid", ["--meta-batch", "1000000", "--k", "1000000"], "would need"),
    ("fewshot", ["--classes", "100000000", "5", "10"], "(generated images) would need"),
    ("newton", ["--dim", "100000000000"], "--dim 100000000000 would need"),
    ("sinusoid", ["--resume", "--overwrite"], "--resume and --overwrite contradict each other"),
    ("sinusoid", ["--algo", "maml,nope"], "--algo: unknown algorithm 'nope'"),
    (
        "sinusoid",
        ["--inner-steps", "0"],
        "--inner-steps must be from 1 to 1,000 (exact MAML keeps every step's graph), got '0'",
    ),
    ("sinusoid", ["--inner-steps", "maml=1001"], "--inner-steps must be from 1 to 1,000"),
    ("sinusoid", ["--inner-steps", "five"], "--inner-steps: 'five' is not a number of steps"),
    ("sinusoid", ["--inner-steps", "maml=2.5"], "--inner-steps: 'maml=2.5' is not a number of steps"),
    (
        "sinusoid",
        ["--inner-steps", "maml=-1"],
        "--inner-steps must be from 1 to 1,000 (exact MAML keeps every step's graph), got 'maml=-1'",
    ),
    ("sinusoid", ["--inner-steps", "nope=3"], "--inner-steps: unknown algorithm 'nope'"),
    ("sinusoid", ["--inner-steps", "cnp=2"], "--inner-steps cnp=2: cnp has no inner loop"),
    ("sinusoid", ["--inner-steps", "pretrained=2"], "the pretrained baseline has no inner loop in training"),
    ("sinusoid", ["--inner-steps", "reptile=3"], "--inner-steps reptile=3: --algo does not train reptile"),
    ("sinusoid", ["--inner-steps", "maml=2,maml=3"], "--inner-steps names maml twice"),
    ("sinusoid", ["--algo", "cnp", "--inner-steps", "3"], "--inner-steps: none of cnp, pretrained has an inner loop"),
    ("sinusoid", ["--measure-cost", "0"], "--measure-cost must be at least 1, got 0"),
    ("sinusoid", ["--measure-cost", "many"], "argument --measure-cost: invalid int value: 'many'"),
    ("sinusoid", ["--measure-cost", "5", "--iterations", "3", "--paper"], "drop --iterations, --paper"),
    ("sinusoid", ["--measure-cost", "5", "--resume"], "keeps no checkpoint nor evaluation: drop --resume"),
    ("sinusoid", ["--eval-only", str(A_FILE), "--measure-cost", "5"], "drop --measure-cost"),
    ("sinusoid", ["--eval-only", str(A_FILE), "--inner-steps", "5"], "drop --inner-steps"),
]


@pytest.mark.parametrize("demo, args, message", BAD_FLAGS, ids=[" ".join([d, *a]) for d, a, _ in BAD_FLAGS])
def test_every_bad_flag_is_refused_in_one_line_before_any_work(demo, args, message, capsys):
    import importlib

    from demos import common

    module = importlib.import_module(f"demos.{demo}")
    assert common.run(module.main, args) == 2
    captured = capsys.readouterr()
    assert captured.out == "", f"work started before the error: {captured.out!r}"
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: ") and message in captured.err, (
        captured.err
    )


def test_argparse_errors_are_one_line_from_the_command_line():
    result = run_demo("fewshot", "--ways", "five")
    assert result.returncode == 2 and result.stderr == "error: argument --ways: invalid int value: 'five'\n"


FEWSHOT_SMALL = ["--classes", "12", "5", "6", "--filters", "4", "--meta-batch", "2", "--eval-episodes", "4",
                 "--val-episodes", "2", "--eval-steps", "2"]  # fmt: skip


def test_fewshot_eval_only_keeps_the_training_record_and_uses_the_checkpoints_settings(tmp_path):
    # Trained with first-order MAML, α = 0.3 and 2 inner steps; evaluated with no flags but --eval-only.
    trained = run_demo("fewshot", *FEWSHOT_SMALL, "--algo", "fomaml", "--inner-lr", "0.3", "--inner-steps", "2",
                       "--iterations", "4", "--checkpoint-every", "2", "--out", str(tmp_path))  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    record_path = tmp_path / "results" / "fomaml_5way1shot.json"
    before = json.loads(record_path.read_text())
    assert len(before["curves"]) == 2 and before["untrained_test_accuracy"] is not None
    checkpoint = tmp_path / "checkpoints" / "fomaml_5way1shot_best.npz"  # the parameters the run was tested with
    again = run_demo("fewshot", "--eval-only", str(checkpoint), "--out", str(tmp_path))  # nothing else needed
    assert again.returncode == 0, again.stderr
    assert "algo=fomaml" in again.stdout and "inner_lr=0.3" in again.stdout and "inner_steps=2" in again.stdout
    assert json.loads(record_path.read_text()) == before  # the training run's record is kept
    after = json.loads((tmp_path / "results" / "fomaml_5way1shot_best_eval.json").read_text())
    assert after.pop("checkpoint") == str(checkpoint)
    assert after.pop("cost")["ms_per_iteration"] is None  # the best checkpoint is parameters, not a timed run
    selected = after.pop("iterations")  # the iteration the best checkpoint holds
    assert selected == before.pop("selected_iteration") == after.pop("selected_iteration")
    assert after.pop("curves") == [c for c in before.pop("curves") if c["iteration"] <= selected]
    before.pop("cost"), before.pop("iterations")
    assert after == before  # the same settings and parameters: the same test accuracy, nothing lost


def test_fewshot_r2d2_trains_its_body_and_solves_its_head(tmp_path):
    no_steps = FEWSHOT_SMALL[:-2]  # without --eval-steps, which R2-D2 refuses: it takes no step
    trained = run_demo("fewshot", *no_steps, "--algo", "r2d2", "--iterations", "4", "--checkpoint-every", "2",
                       "--out", str(tmp_path))  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "(the head solved in closed form; chance 20%)" in trained.stdout
    record = json.loads((tmp_path / "results" / "r2d2_5way1shot.json").read_text())
    params, _ = load_demo_checkpoint(tmp_path / "checkpoints" / "r2d2_5way1shot.npz")
    assert {"param/r2d2.log_lambda", "param/r2d2.scale", "param/r2d2.bias"} <= set(params)
    again = run_demo("fewshot", "--eval-only", str(tmp_path / "checkpoints" / "r2d2_5way1shot_best.npz"),
                     "--out", str(tmp_path))  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "inner_lr" not in again.stdout and "eval_steps" not in again.stdout  # settings R2-D2 does not use
    assert (
        json.loads((tmp_path / "results" / "r2d2_5way1shot_best_eval.json").read_text())["test_accuracy"]
        == (record["test_accuracy"])
    )
    assert record["eval_steps"] is None  # no fine-tuning steps: the head is solved
    refused = run_demo("fewshot", "--eval-only", str(tmp_path / "checkpoints" / "r2d2_5way1shot_best.npz"),
                       "--eval-steps", "3", "--out", str(tmp_path))  # fmt: skip
    assert (
        refused.returncode == 2
        and refused.stdout == ""
        and "holds R2-D2, which solves its head in closed form" in (refused.stderr)
    )
    assert "drop --eval-steps" in refused.stderr


def test_fewshot_tests_the_best_validation_checkpoint_and_keeps_the_last(tmp_path):
    trained = run_demo("fewshot", *FEWSHOT_SMALL, "--val-episodes", "6", "--iterations", "8", "--checkpoint-every",
                       "2", "--meta-lr", "0.01", "--out", str(tmp_path))  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    record = json.loads((tmp_path / "results" / "maml_5way1shot.json").read_text())
    accuracies = [c["val_accuracy"] for c in record["curves"]]
    first_best = int(np.argmax(accuracies))  # a later tie does not replace the best
    assert record["selected_iteration"] == record["curves"][first_best]["iteration"]
    assert record["selected_val_accuracy"] == max(accuracies)
    assert f"the parameters of iteration {record['selected_iteration']}, the best validation" in trained.stdout
    best, _ = load_demo_checkpoint(tmp_path / "checkpoints" / "maml_5way1shot_best.npz")
    last, _ = load_demo_checkpoint(tmp_path / "checkpoints" / "maml_5way1shot.npz")
    assert sorted(k for k in last if k.startswith("param/")) == sorted(best)
    moved = any(not np.array_equal(best[k], last[k]) for k in best)
    assert moved == (record["selected_iteration"] != 8)  # the best is a copy of that iteration's parameters
    final = run_demo("fewshot", "--eval-only", str(tmp_path / "checkpoints" / "maml_5way1shot.npz"), "--out",
                     str(tmp_path / "final"))  # fmt: skip
    assert final.returncode == 0, final.stderr
    evaluated = json.loads((tmp_path / "final" / "results" / "maml_5way1shot_eval.json").read_text())
    assert evaluated["selected_iteration"] == 8
    assert evaluated["selected_val_accuracy"] == record["curves"][-1]["val_accuracy"]  # its own validation point
    assert "the parameters of iteration 8" in final.stdout


def test_fewshot_never_mixes_a_best_checkpoint_from_another_run(tmp_path):
    args = [*FEWSHOT_SMALL, "--iterations", "2", "--out", str(tmp_path)]
    assert run_demo("fewshot", *args).returncode == 0
    best = tmp_path / "checkpoints" / "maml_5way1shot_best.npz"
    (tmp_path / "checkpoints" / "maml_5way1shot.npz").unlink()  # the run's checkpoint gone, its best left
    refused = run_demo("fewshot", *args)
    assert refused.returncode == 2 and f"{best} holds the best checkpoint of an earlier run" in refused.stderr
    assert run_demo("fewshot", *args, "--overwrite").returncode == 0 and best.is_file()
    best.unlink()  # a finished run whose best is lost: its test would use other parameters, so it stops
    missing = run_demo("fewshot", *args, "--resume")
    assert missing.returncode == 2 and "the best-validation checkpoint of this run (iteration 2), is missing" in (
        missing.stderr
    )


@pytest.fixture(scope="module")
def trained_fewshot(tmp_path_factory):
    """A tiny few-shot run, validated every 2 of its 6 iterations on 3 episodes (not the default 50), and
    the bytes of its results record and figure as training left them."""
    out = tmp_path_factory.mktemp("fewshot")
    trained = run_demo("fewshot", *FEWSHOT_SMALL, "--val-episodes", "3", "--iterations", "6", "--checkpoint-every",
                       "2", "--meta-lr", "0.01", "--out", str(out))  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    files = [out / "results" / "maml_5way1shot.json"]
    if importlib.util.find_spec("matplotlib"):
        files.append(out / "maml_5way1shot_curves.png")
    return out, {path: path.read_bytes() for path in files}


def test_fewshot_eval_only_writes_its_own_record_and_keeps_the_training_runs(trained_fewshot):
    out, training_files = trained_fewshot
    for checkpoint, record in (("maml_5way1shot.npz", "maml_5way1shot_eval.json"),
                               ("maml_5way1shot_best.npz", "maml_5way1shot_best_eval.json")):  # fmt: skip
        path = out / "checkpoints" / checkpoint
        again = run_demo("fewshot", "--eval-only", str(path), "--out", str(out))
        assert again.returncode == 0, again.stderr
        assert f"results: {out / 'results' / record}\n" in again.stdout and "figure:" not in again.stdout
        evaluated = json.loads((out / "results" / record).read_text())
        assert evaluated["checkpoint"] == str(path) and 0 <= evaluated["test_accuracy"] <= 1
    for path, content in training_files.items():  # nothing of the training run is replaced
        assert path.read_bytes() == content, path
    assert sorted(p.name for p in (out / "results").iterdir()) == [
        "maml_5way1shot.json", "maml_5way1shot_best_eval.json", "maml_5way1shot_eval.json"
    ]  # fmt: skip


def test_fewshot_eval_only_takes_the_validation_episodes_from_the_checkpoint(trained_fewshot, tmp_path):
    out, _ = trained_fewshot
    again = run_demo("fewshot", "--eval-only", str(out / "checkpoints" / "maml_5way1shot_best.npz"), "--out",
                     str(tmp_path))  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "val_episodes=3" in again.stdout and "the best validation accuracy (" in again.stdout
    assert "% on 3 episodes)" in again.stdout and "on 50 episodes" not in again.stdout
    refused = run_demo("fewshot", "--eval-only", str(out / "checkpoints" / "maml_5way1shot.npz"), "--val-episodes",
                       "7")  # fmt: skip
    assert refused.returncode == 2 and "drop --val-episodes" in refused.stderr  # a recorded setting, not changed


def test_fewshot_eval_only_of_the_final_checkpoint_records_its_own_validation_accuracy(trained_fewshot, tmp_path):
    out, _ = trained_fewshot
    training = json.loads((out / "results" / "maml_5way1shot.json").read_text())
    final = run_demo("fewshot", "--eval-only", str(out / "checkpoints" / "maml_5way1shot.npz"), "--out", str(tmp_path))
    assert final.returncode == 0, final.stderr
    record = json.loads((tmp_path / "results" / "maml_5way1shot_eval.json").read_text())
    last = training["curves"][-1]
    assert last["iteration"] == record["selected_iteration"] == record["iterations"] == 6
    assert record["selected_val_accuracy"] == last["val_accuracy"] is not None  # the curve's point at iteration 6
    own = f"the parameters of iteration 6{{}}{100 * last['val_accuracy']:.1f}% on 3 episodes"
    if training["selected_iteration"] == 6:  # the final parameters are the best
        assert own.format(", the best validation accuracy (") in final.stdout
    else:
        best = f"; the best, {100 * training['selected_val_accuracy']:.1f}%, was at iteration "
        assert own.format(" (validation accuracy ") + best + f"{training['selected_iteration']})" in final.stdout


def test_an_inner_loop_divergence_asks_for_a_lower_inner_lr_not_for_clipping(tmp_path):
    """--clip-grad-norm clips the meta-gradient: it cannot stop inner steps from overshooting, so it is
    advised for an unstable outer loop only."""
    from demos import common
    from demos.common import DemoError

    def step(theta, rng, iteration):
        return float("nan"), {"w": tm.tensor(np.ones(2))}

    theta = {"w": tm.tensor(np.ones(2), requires_grad=True)}
    with pytest.raises(DemoError) as inner:  # θ sound (its loss before adaptation is 1): the inner loop overshot
        common.meta_train("fake", step, theta, tmp_path / "a.npz", {}, _Args(), base_loss=lambda theta: 1.0,
                          inner="--inner-lr (now 0.4)")  # fmt: skip
    assert "the inner loop overshot on some task: lower --inner-lr (now 0.4)." in str(inner.value)
    assert "clip" not in str(inner.value)
    with pytest.raises(DemoError) as outer:  # no inner loop to blame: the outer loop's remedies
        common.meta_train("fake", step, theta, tmp_path / "b.npz", {}, _Args())
    assert "lower --meta-lr (now 0.001) or set --clip-grad-norm" in str(outer.value)


def test_a_file_that_is_not_a_checkpoint_is_named_for_what_it_is_and_closed(tmp_path):
    from demos import common
    from demos.common import DemoError

    checkpoint = tmp_path / "run.npz"
    common.save_checkpoint(checkpoint, {"param/w": np.zeros(1000)}, {"algo": "maml"})
    content = checkpoint.read_bytes()
    files = {"notes.txt": b"a text file\n", "empty.npz": b"", "array.npy": None, "foreign.npz": None,
             "truncated.npz": content[: len(content) // 2]}  # fmt: skip
    for name, data in files.items():
        if data is not None:
            (tmp_path / name).write_bytes(data)
    np.save(tmp_path / "array.npy", np.zeros(3))
    np.savez(tmp_path / "foreign.npz", w=np.zeros(3))
    expected = {"notes.txt": "it is a text file, not an .npz archive", "empty.npz": "it is empty",
                "array.npy": "it is not an .npz archive",
                "foreign.npz": "it is an .npz archive without a demo's settings",
                "truncated.npz": "it is truncated or damaged"}  # fmt: skip
    for name, why in expected.items():
        with pytest.raises(DemoError) as error:
            common.load_checkpoint(tmp_path / name)
        message = str(error.value)
        assert "is not a tinymeta demo checkpoint (an .npz file a demo wrote): " + why in message, message
        assert "allow_pickle" not in message and "\n" not in message
    # from the command line: one line, and no ResourceWarning for the file left open
    command = [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-m", "demos.fewshot", "--eval-only"]
    for name in ("truncated.npz", "notes.txt"):
        result = subprocess.run([*command, str(tmp_path / name)], cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "ResourceWarning" not in result.stderr and "not a tinymeta demo checkpoint" in result.stderr


def test_a_truncated_checkpoint_on_resume_says_to_start_over_with_overwrite(tmp_path):
    assert run_demo("fewshot", *FEWSHOT_SMALL, "--iterations", "2", "--out", str(tmp_path)).returncode == 0
    path = tmp_path / "checkpoints" / "maml_5way1shot.npz"
    path.write_bytes(path.read_bytes()[:300])  # a copy cut short
    result = run_demo("fewshot", *FEWSHOT_SMALL, "--iterations", "4", "--resume", "--out", str(tmp_path))
    assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    assert "is truncated or damaged" in result.stderr
    assert "--resume cannot continue from it: pass --overwrite to start over, or give another --out" in result.stderr


def test_fewshot_cosine_schedule_is_fixed_at_the_start_and_resume_says_how_to_go_on(tmp_path):
    settings = [*FEWSHOT_SMALL, "--cosine-lr", "0", "--out", str(tmp_path)]
    assert run_demo("fewshot", *settings, "--iterations", "2").returncode == 0
    longer = run_demo("fewshot", *settings, "--iterations", "4", "--resume")
    assert longer.returncode == 2 and longer.stdout == "" and "cosine_lr_steps" not in longer.stderr
    assert (
        "anneals the meta learning rate with --cosine-lr 0 over --iterations 2, a schedule fixed when the run "
        "started, so it cannot go on to --iterations 4: resume with --cosine-lr 0 --iterations 2 to finish the run, "
        "or start a new one (--overwrite, or another --out)"
    ) in longer.stderr
    dropped = run_demo("fewshot", *FEWSHOT_SMALL, "--iterations", "4", "--resume", "--out", str(tmp_path))
    assert dropped.returncode == 2 and "so it cannot go on without --cosine-lr" in dropped.stderr
    other = tmp_path / "other"
    assert run_demo("fewshot", *FEWSHOT_SMALL, "--iterations", "2", "--out", str(other)).returncode == 0
    added = run_demo("fewshot", *FEWSHOT_SMALL, "--cosine-lr", "0", "--iterations", "4", "--resume",
                     "--out", str(other))  # fmt: skip
    assert added.returncode == 2 and "was trained without --cosine-lr" in added.stderr


def test_fewshot_reptile_says_it_steps_with_a_quarter_of_the_inner_lr_and_takes_the_cosine_schedule(tmp_path):
    from demos import fewshot

    helped = " ".join(run_demo("fewshot", "--help").stdout.split())  # as one line, whatever the terminal's width
    assert "reptile and imaml step with α/4" in helped and "(reptile and imaml take at least 5)" in helped
    # Reptile's meta-gradient is θ - φ̃, on which Adam steps with the meta learning rate: the schedule applies
    args = fewshot.parse(["--algo", "reptile", "--cosine-lr", "0", "--iterations", "5", "--out", str(tmp_path)])
    assert args.cosine_lr == 0 and args.cosine_lr_steps == 5
    assert fewshot.inner_loop("reptile", 0.4, 1) == (0.1, 5) and fewshot.inner_loop("maml", 0.4, 1) == (0.4, 1)
    result = run_demo("fewshot", *FEWSHOT_SMALL, "--algo", "reptile", "--iterations", "2", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "reptile differentiates no inner step, so it takes more, smaller ones: 5 steps of α/4 = 0.1" in result.stdout


def test_fewshot_resume_keeps_the_whole_validation_curve(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    common = [*FEWSHOT_SMALL, "--checkpoint-every", "2"]
    assert run_demo("fewshot", *common, "--iterations", "6", "--out", str(straight)).returncode == 0
    assert run_demo("fewshot", *common, "--iterations", "4", "--out", str(resumed)).returncode == 0
    finished = run_demo("fewshot", *common, "--iterations", "6", "--resume", "--out", str(resumed))
    assert finished.returncode == 0, finished.stderr
    a = json.loads((straight / "results" / "maml_5way1shot.json").read_text())
    b = json.loads((resumed / "results" / "maml_5way1shot.json").read_text())
    assert [c["iteration"] for c in b["curves"]] == [2, 4, 6]
    assert a["cost"]["device"] == b["cost"]["device"] == "cpu" and b["cost"]["peak_mb"] > 0
    a.pop("cost"), b.pop("cost")  # wall-clock timings differ between runs
    assert a == b  # the curve, the running loss in it, the accuracies: exactly as if it never stopped


def test_resume_with_other_settings_names_every_difference(tmp_path):
    assert run_demo("sinusoid", "--algo", "maml", "--no-baseline", "--iterations", "2", "--eval-tasks", "3",
                    "--out", str(tmp_path)).returncode == 0  # fmt: skip
    clash = run_demo("sinusoid", "--algo", "maml", "--no-baseline", "--iterations", "4", "--resume", "--meta-lr",
                     "0.01", "--k", "5", "--meta-batch", "3", "--out", str(tmp_path))  # fmt: skip
    assert clash.returncode == 2 and clash.stderr.count("\n") == 1
    for difference in ("meta_lr=0.001 (this run: 0.01)", "k=10 (this run: 5)", "meta_batch=25 (this run: 3)"):
        assert difference in clash.stderr


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda arrays, info: arrays.pop("adam_m/layers.0.weight"), "no adam_m/layers.0.weight"),
        (lambda arrays, info: info.pop("rng"), "no rng"),
        (lambda arrays, info: info.update(rng={"bit_generator": "nonsense"}), "random state is malformed"),
        (lambda arrays, info: info.update(iteration="many"), "malformed"),
        (lambda arrays, info: arrays.update({"adam_v/layers.1.bias": np.zeros(3)}), "adam_v/layers.1.bias is float64"),
        (lambda arrays, info: arrays.update({"param/layers.0.bias": np.full(40, np.nan, np.float32)}), "NaN or inf"),
        (lambda arrays, info: arrays.update({"param/layers.0.bias": np.zeros(40)}), "float64, this run's model"),
        (lambda arrays, info: info.pop("meta_lr"), "does not record the settings ['meta_lr']"),
        (lambda arrays, info: info.update(iteration=3.7), "malformed"),
        (lambda arrays, info: info.update(iteration=10**30, adam_step=10**30), "malformed"),
        (lambda arrays, info: info.update(adam_step=0), "malformed"),
        (lambda arrays, info: info["history"].update(running_loss="abc"), "malformed"),
        (lambda arrays, info: info["history"].update(running_loss=float("nan")), "malformed"),
        (lambda arrays, info: info.update(history=[1]), "malformed"),
        (lambda arrays, info: arrays.update({"adam_m/extra": np.zeros(1)}), "arrays this run does not know"),
        (lambda arrays, info: arrays["adam_v/layers.0.weight"].__setitem__((0, 0), -1.0), "never negative"),
        (lambda arrays, info: arrays.pop("param/layers.2.bias"), "no parameter 'layers.2.bias'"),
        (lambda arrays, info: info.update(inner_steps=3), "inner_steps=3 (this run: 1)"),
        (lambda arrays, info: info["cost"].update(timed_seconds=-1.0), "its recorded cost is malformed"),
        (lambda arrays, info: info.update(cost=[1, 2]), "its recorded cost is malformed"),
        (lambda arrays, info: info["cost"].update(device="tpu"), "names an unknown device 'tpu'"),
    ],
)
def test_a_damaged_checkpoint_is_a_one_line_error(tmp_path, damage, message):
    from demos import common

    assert run_demo("sinusoid", "--algo", "maml", "--no-baseline", "--iterations", "2", "--eval-tasks", "3",
                    "--out", str(tmp_path)).returncode == 0  # fmt: skip
    path = tmp_path / "checkpoints" / "maml.npz"
    arrays, info = common.load_checkpoint(path)
    damage(arrays, info)
    common.save_checkpoint(path, arrays, info)
    result = run_demo("sinusoid", "--algo", "maml", "--no-baseline", "--iterations", "4", "--resume",
                      "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


class _Args:
    def __init__(self, **settings):
        defaults = dict(meta_lr=1e-3, inner_lr=0.01, seed=0, resume=False, iterations=50, checkpoint_every=4,
                        no_progress=True, clip_grad_norm=None)  # fmt: skip
        self.__dict__.update(defaults, **settings)


def _fake_training(tmp_path, step, **settings):
    from demos import common

    theta = {"w": tm.tensor(np.ones(2), requires_grad=True)}
    return common.meta_train("fake", step, theta, tmp_path / "fake.npz", {}, _Args(**settings))


def test_a_divergence_names_its_likely_cause_and_only_a_checkpoint_that_exists(tmp_path):
    from demos import common
    from demos.common import DemoError

    def training(tmp, diverge_at, blow_up=False, inner="--inner-lr (now 0.01)"):
        calls = []

        def step(theta, rng, iteration):
            calls.append(1)
            return (float("nan") if len(calls) > diverge_at else 1.0), {"w": tm.tensor(np.ones(2))}

        def base_loss(theta):  # the loss of θ before adaptation: sound, or blown up late in training
            return 1e9 if blow_up and len(calls) > diverge_at else 1.0

        theta = {"w": tm.tensor(np.ones(2), requires_grad=True)}
        return common.meta_train("fake", step, theta, tmp / "fake.npz", {}, _Args(), base_loss=base_loss, inner=inner)

    with pytest.raises(DemoError) as early:  # θ sound: the inner loop overshot
        training(tmp_path / "a", diverge_at=2)
    message = str(early.value)
    assert "at iteration 2" in message and "the inner loop overshot" in message and "--inner-lr (now 0.01)" in message
    assert "this run wrote no checkpoint yet (the first would have come at iteration 4)" in message
    assert not (tmp_path / "a" / "fake.npz").exists()
    with pytest.raises(DemoError) as later:  # θ itself blown up: the outer loop
        training(tmp_path / "b", diverge_at=30, blow_up=True)
    message = str(later.value)
    assert "iteration 30" in message and "the outer loop is unstable" in message and "--meta-lr (now 0.001)" in message
    assert f"{tmp_path / 'b' / 'fake.npz'} (iteration 28), is intact" in message
    with pytest.raises(DemoError, match="the training is unstable; lower --meta-lr"):  # no inner loop to blame
        training(tmp_path / "c", diverge_at=1, inner=None)


@pytest.mark.parametrize(
    "flag, cause",
    [(["--meta-lr", "30"], "the outer loop is unstable; lower --meta-lr (now 30)"),
     (["--inner-lr", "1e6"], "the inner loop overshot on some task: lower --inner-lr (now 1e+06)")],
)  # fmt: skip
def test_a_diverging_demo_stops_in_one_line_with_its_cause(tmp_path, flag, cause):
    result = run_demo("sinusoid", "--algo", "maml", "--no-baseline", "--iterations", "300", "--eval-tasks", "3",
                      "--out", str(tmp_path), *flag)  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert cause in result.stderr and "this run wrote no checkpoint yet" in result.stderr


def test_ctrl_c_in_training_says_which_checkpoint_to_resume_from(tmp_path):
    from demos.common import Interrupted

    def interrupted_at(k):
        def step(theta, rng, iteration):
            step.calls += 1
            if step.calls > k:
                raise KeyboardInterrupt
            return 1.0, {"w": tm.tensor(np.ones(2))}

        step.calls = 0
        return step

    with pytest.raises(
        Interrupted, match=r"stopped at iteration 2, before its first checkpoint: nothing of this run to resume"
    ):
        _fake_training(tmp_path / "a", interrupted_at(2))
    with pytest.raises(Interrupted, match=r"stopped at iteration 9; .*fake.npz holds iteration 8: .*--resume"):
        _fake_training(tmp_path / "b", interrupted_at(9))


def test_ctrl_c_on_a_running_demo_exits_130_without_a_traceback_and_resume_goes_on(tmp_path):
    import signal
    import time

    command = [sys.executable, "-m", "demos.sinusoid", "--algo", "fomaml", "--no-baseline", "--iterations", "100000",
               "--checkpoint-every", "20", "--eval-tasks", "3", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / "checkpoints" / "fomaml.npz"
    deadline = time.monotonic() + 60
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.count("\n") == 1
    assert stderr.startswith("interrupted: fomaml stopped at iteration") and "--resume" in stderr
    resumed = run_demo("sinusoid", "--algo", "fomaml", "--no-baseline", "--iterations", "40", "--checkpoint-every",
                       "20", "--eval-tasks", "3", "--resume", "--out", str(tmp_path))  # fmt: skip
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout, resumed.stderr


def test_an_out_folder_that_holds_a_file_where_the_demo_writes_a_folder_is_refused_before_work(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    result = run_demo("sinusoid", "--iterations", "2", "--eval-tasks", "3", "--out", str(tmp_path))
    assert result.returncode == 2 and result.stdout == "" and "results is a file" in result.stderr
    (tmp_path / "results").unlink()
    (tmp_path / "results.md").mkdir()
    result = run_demo("sinusoid", "--iterations", "2", "--eval-tasks", "3", "--out", str(tmp_path))
    assert result.returncode == 2 and result.stdout == "" and "results.md is a folder" in result.stderr


def test_a_second_run_never_silently_replaces_an_earlier_one(tmp_path):
    first = ["--algo", "maml", "--iterations", "4", "--checkpoint-every", "2", "--eval-tasks", "3"]
    assert run_demo("sinusoid", *first, "--out", str(tmp_path)).returncode == 0
    before = (tmp_path / "checkpoints" / "pretrained.npz").read_bytes()
    again = run_demo("sinusoid", "--algo", "fomaml", "--iterations", "2", "--eval-tasks", "3", "--out", str(tmp_path))
    assert (
        again.returncode == 2
        and again.stdout == ""
        and "pretrained.npz holds a run already (iteration 4)" in again.stderr
    )
    assert (tmp_path / "checkpoints" / "pretrained.npz").read_bytes() == before
    # every algorithm's checkpoint is checked before any training: maml is not trained and then refused
    clash = run_demo("sinusoid", "--algo", "fomaml,maml", "--no-baseline", "--iterations", "6", "--resume",
                     "--meta-lr", "0.002", "--eval-tasks", "3", "--out", str(tmp_path))  # fmt: skip
    assert clash.returncode == 2 and clash.stdout == "" and "meta_lr=0.001 (this run: 0.002)" in clash.stderr
    assert not (tmp_path / "checkpoints" / "fomaml.npz").exists()
    replaced = run_demo("sinusoid", "--algo", "maml", "--iterations", "2", "--eval-tasks", "3", "--overwrite",
                        "--out", str(tmp_path))  # fmt: skip
    assert replaced.returncode == 0
    assert json.loads((tmp_path / "results" / "pretrained.json").read_text())["iterations"] == 2


def test_sinusoid_resume_keeps_the_running_loss_and_eval_only_uses_each_checkpoints_dtype(tmp_path):
    from demos import common

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    settings = [
        "--algo",
        "fomaml",
        "--no-baseline",
        "--eval-tasks",
        "3",
        "--checkpoint-every",
        "3",
        "--dtype",
        "float64",
    ]
    assert run_demo("sinusoid", *settings, "--iterations", "9", "--out", str(straight)).returncode == 0
    assert run_demo("sinusoid", *settings, "--iterations", "5", "--out", str(resumed)).returncode == 0
    assert run_demo("sinusoid", *settings, "--iterations", "9", "--resume", "--out", str(resumed)).returncode == 0
    a = common.load_checkpoint(straight / "checkpoints" / "fomaml.npz")[1]["history"]
    b = common.load_checkpoint(resumed / "checkpoints" / "fomaml.npz")[1]["history"]
    assert a == b and "running_loss" in a
    checkpoint = str(straight / "checkpoints" / "fomaml.npz")
    again = run_demo("sinusoid", "--eval-only", checkpoint, "--eval-tasks", "3", "--out", str(tmp_path / "eval"))
    assert again.returncode == 0, again.stderr  # no --dtype float64 given: the checkpoint's own is used
    first = json.loads((straight / "results" / "fomaml.json").read_text())
    assert json.loads((tmp_path / "eval" / "results" / "fomaml.json").read_text()) == first
    foreign = tmp_path / "fewshot.npz"
    common.save_checkpoint(foreign, {"param/w": np.zeros(1)}, {"algo": "reptile", "dtype": "float32"})
    mixed = run_demo("sinusoid", "--eval-only", checkpoint, str(foreign), "--eval-tasks", "3",
                     "--out", str(tmp_path / "mixed"))  # fmt: skip
    assert mixed.returncode == 2 and not (tmp_path / "mixed" / "results").exists()  # nothing half-done


def test_fewshot_eval_only_refuses_flags_that_contradict_the_checkpoint_before_any_work(tmp_path):
    trained = run_demo("fewshot", *FEWSHOT_SMALL, "--ways", "3", "--shots", "2", "--seed", "3", "--iterations", "2",
                       "--checkpoint-every", "2", "--out", str(tmp_path))  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    checkpoint = str(tmp_path / "checkpoints" / "maml_3way2shot.npz")
    clash = run_demo("fewshot", "--eval-only", checkpoint, "--shots", "1", "--seed", "0")
    assert clash.returncode == 2 and clash.stdout == ""
    assert "--shots 1 (the checkpoint: 2)" in clash.stderr and "--seed 0 (the checkpoint: 3)" in clash.stderr
    fewer = run_demo("fewshot", "--eval-only", checkpoint, "--eval-steps", "1", "--out", str(tmp_path))
    assert fewer.returncode == 0 and "(1 fine-tuning steps" in fewer.stdout  # an evaluation setting may change
    ignored = run_demo("fewshot", "--eval-only", checkpoint, "--meta-lr", "0.1", "--iterations", "9")
    assert ignored.returncode == 2 and "drop --iterations, --meta-lr" in ignored.stderr
    ignored = run_demo("sinusoid", "--eval-only", checkpoint, "--dtype", "float64", "--inner-lr", "0.5")
    assert ignored.returncode == 2 and "drop --dtype, --inner-lr" in ignored.stderr
    resumed = run_demo("fewshot", *FEWSHOT_SMALL, "--ways", "3", "--shots", "2", "--seed", "3", "--filters", "8",
                       "--iterations", "4", "--resume", "--out", str(tmp_path))  # fmt: skip
    assert resumed.returncode == 2 and resumed.stdout == "" and "filters=4 (this run: 8)" in resumed.stderr


def test_omniglot_errors_are_one_line_before_any_work(tmp_path):
    pytest.importorskip("PIL", reason="reading Omniglot PNGs needs Pillow (pip install -e '.[demos]')")
    root = tmp_path / "omniglot"
    write_omniglot(root)
    broken = next(root.rglob("*.png"))
    broken.write_bytes(b"not a png")
    result = run_demo("fewshot", "--omniglot", str(root), "--iterations", "1", "--filters", "4", "--out",
                      str(tmp_path / "run"))  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "cannot read this drawing" in result.stderr


def test_help_shows_defaults_and_newton_says_when_it_did_not_converge():
    helped = subprocess.run(
        [sys.executable, "-m", "demos.sinusoid", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert helped.returncode == 0 and "(default: 10000)" in helped.stdout
    stopped = subprocess.run([sys.executable, "-m", "demos.newton", "--quiet", "--max-iter", "2"], cwd=ROOT,
                             capture_output=True, text=True)  # fmt: skip
    assert stopped.returncode == 1 and "did not reach |grad| <= 1e-10 in --max-iter 2 iterations" in stopped.stderr


def test_an_interrupted_checkpoint_write_leaves_no_temporary_file(tmp_path, monkeypatch):
    from demos import common

    def interrupted_savez(f, **arrays):  # Ctrl-C halfway through writing the file
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(common.np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        common.save_checkpoint(tmp_path / "c.npz", {"w": np.zeros(2)}, {})
    assert list(tmp_path.iterdir()) == []


def test_an_inner_loop_that_overshoots_without_overflowing_is_reported_without_warning_spam(tmp_path):
    result = run_demo("fewshot", *FEWSHOT_SMALL, "--iterations", "4", "--checkpoint-every", "2", "--inner-lr", "1e6",
                      "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 0 and "Warning" not in result.stderr
    assert "times worse than not adapting" in result.stderr and "lower --inner-lr (now 1e+06)" in result.stderr


def test_a_run_whose_meta_parameters_blow_up_without_overflowing_is_told_so(tmp_path):
    result = run_demo("sinusoid", "--algo", "maml", "--no-baseline", "--iterations", "200", "--eval-tasks", "3",
                      "--meta-lr", "1", "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 0 and result.stderr.count("\n") == 1, result.stderr
    assert "the meta-parameters themselves blew up" in result.stderr and "--meta-lr (now 1)" in result.stderr


# ---- the black-box contrast, inner steps per algorithm, cost ----------------------------------------


def test_sinusoid_cnp_and_inner_steps_are_recorded_with_their_cost_and_evaluated_again_the_same(tmp_path):
    from demos import common

    result = run_demo("sinusoid", "--algo", "cnp,reptile", "--inner-steps", "reptile=2", "--iterations", "13",
                      "--checkpoint-every", "7", "--eval-tasks", "4", "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    info = {name: common.load_checkpoint(tmp_path / "checkpoints" / f"{name}.npz")[1] for name in ("cnp", "reptile")}
    assert info["reptile"]["inner_steps"] == 2
    assert info["cnp"]["inner_steps"] is None and info["cnp"]["inner_lr"] is None  # settings it does not use
    for name in ("cnp", "reptile", "pretrained"):
        record = json.loads((tmp_path / "results" / f"{name}.json").read_text())
        cost = record["cost"]  # 13 iterations, the first 10 left out of the timing
        assert cost["how"] == "training" and cost["timed_iterations"] == 3, cost
        assert cost["ms_per_iteration"] > 0 and cost["peak_mb"] > 0
    cnp = json.loads((tmp_path / "results" / "cnp.json").read_text())
    assert all(len(set(cnp["eval"][k]["mse"])) == 1 for k in ("5", "10", "20"))  # no steps: one number per K
    assert cnp["settings"]["inner_steps"] is None and cnp["settings"]["meta_batch"] == 25
    table = (tmp_path / "results.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| cnp |"))
    assert row.count("—") == 3 and "no gradient steps at test time" in table and "| ms / meta-iteration |" in table
    if importlib.util.find_spec("matplotlib"):
        for name in ("cnp_pretrained", "reptile_pretrained"):
            assert (tmp_path / f"fig2_adaptation_{name}.png").is_file()
        assert not (tmp_path / "fig2_adaptation.png").exists()  # the paper's name is MAML's beside pretrained only
    checkpoints = [str(tmp_path / "checkpoints" / f"{name}.npz") for name in ("cnp", "reptile")]
    again = run_demo("sinusoid", "--eval-only", *checkpoints, "--eval-tasks", "4", "--out", str(tmp_path / "eval"))
    assert again.returncode == 0, again.stderr
    for name in ("cnp", "reptile"):  # reptile's 2 steps come from its checkpoint: the same numbers, the same cost
        first = json.loads((tmp_path / "results" / f"{name}.json").read_text())
        assert json.loads((tmp_path / "eval" / "results" / f"{name}.json").read_text()) == first
    clash = run_demo("sinusoid", "--algo", "reptile", "--no-baseline", "--inner-steps", "3", "--iterations", "20",
                     "--resume", "--out", str(tmp_path))  # fmt: skip
    assert clash.returncode == 2 and "inner_steps=2 (this run: 3)" in clash.stderr
    resumed = run_demo("sinusoid", "--algo", "reptile", "--no-baseline", "--inner-steps", "2", "--iterations", "24",
                       "--resume", "--eval-tasks", "4", "--out", str(tmp_path))  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    cost = json.loads((tmp_path / "results" / "reptile.json").read_text())["cost"]
    assert cost["timed_iterations"] == 3 + 1  # the second session's 11 iterations, its first 10 left out


def test_a_checkpoint_without_inner_steps_is_evaluated_with_the_default_and_a_damaged_one_refused(tmp_path):
    from demos import common

    assert run_demo("sinusoid", "--algo", "maml++", "--no-baseline", "--iterations", "2", "--eval-tasks", "3",
                    "--out", str(tmp_path)).returncode == 0  # fmt: skip
    path = tmp_path / "checkpoints" / "maml++.npz"
    arrays, info = common.load_checkpoint(path)
    assert info["inner_steps"] == 2  # MAML++'s default
    old = dict(info)
    old.pop("inner_steps")  # a checkpoint from before --inner-steps: trained with the default, the only choice
    common.save_checkpoint(path, arrays, old)
    again = run_demo("sinusoid", "--eval-only", str(path), "--eval-tasks", "3", "--out", str(tmp_path / "eval"))
    assert again.returncode == 0, again.stderr
    first = json.loads((tmp_path / "results" / "maml++.json").read_text())
    assert json.loads((tmp_path / "eval" / "results" / "maml++.json").read_text())["eval"] == first["eval"]
    damages = [(dict(info, inner_steps="two"), "records inner_steps='two', not a number of steps"),
               (dict(info, algo="cnp", inner_steps=2), "records inner_steps=2, not None (cnp has no")]  # fmt: skip
    for damaged, message in damages:
        common.save_checkpoint(path, arrays, damaged)
        result = run_demo("sinusoid", "--eval-only", str(path), "--eval-tasks", "3", "--out", str(tmp_path / "x"))
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_measure_cost_times_the_runs_whose_results_have_no_cost_and_keeps_the_others(tmp_path):
    assert run_demo("sinusoid", "--algo", "maml", "--iterations", "12", "--eval-tasks", "3",
                    "--out", str(tmp_path)).returncode == 0  # fmt: skip
    checkpoint = (tmp_path / "checkpoints" / "maml.npz").read_bytes()
    results = tmp_path / "results" / "maml.json"
    record = json.loads(results.read_text())
    old = {key: value for key, value in record.items() if key not in ("cost", "settings")}  # as before this flag
    results.write_text(json.dumps(old))
    measured = run_demo("sinusoid", "--algo", "maml,fomaml", "--measure-cost", "3", "--out", str(tmp_path))
    assert measured.returncode == 0, measured.stderr
    assert "pretrained.json holds the cost measured during its training run: kept" in measured.stdout
    assert "fomaml: " in measured.stdout and "no results/fomaml.json" in measured.stdout
    after = json.loads(results.read_text())
    assert after["eval"] == record["eval"] and after["cost"]["how"] == "measure-cost"
    assert after["cost"]["timed_iterations"] == 3 and after["cost"]["ms_per_iteration"] > 0
    assert after["cost"]["settings"] == record["settings"]  # the settings it was timed with, the run's own
    assert not (tmp_path / "results" / "fomaml.json").exists()
    assert not (tmp_path / "checkpoints" / "fomaml.npz").exists()
    assert (tmp_path / "checkpoints" / "maml.npz").read_bytes() == checkpoint  # no training, nothing replaced
    table = (tmp_path / "results.md").read_text()
    assert "* |" in next(line for line in table.splitlines() if line.startswith("| maml |"))
    assert "timed by a separate run of 3 meta-iterations" in table
    other = run_demo("sinusoid", "--algo", "pretrained", "--k", "5", "--measure-cost", "3", "--out", str(tmp_path))
    assert other.returncode == 0 and "kept" in other.stdout  # timed in training: not timed again, whatever the flags
    (tmp_path / "results" / "pretrained.json").write_text(json.dumps({**record, "algo": "pretrained", "cost": None}))
    other = run_demo("sinusoid", "--algo", "pretrained", "--k", "5", "--measure-cost", "3", "--out", str(tmp_path))
    assert other.returncode == 2 and other.stdout == "" and "was trained with other settings" in other.stderr
    assert "k=10 (this run: 5)" in other.stderr


def test_a_timing_run_that_diverges_says_why_and_promises_no_checkpoint(tmp_path):
    result = run_demo("sinusoid", "--algo", "maml", "--no-baseline", "--measure-cost", "2", "--inner-lr", "1e20",
                      "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--measure-cost: timing stopped, maml: the meta-loss became nan" in result.stderr
    assert "lower --inner-lr (now 1e+20)" in result.stderr and "checkpoint" not in result.stderr
    assert not (tmp_path / "checkpoints").exists()


def test_a_recorded_cost_says_its_device_and_gpu_runs_record_no_host_peak(tmp_path, monkeypatch):
    """The cost names the device it was timed on (a checkpoint from before that ran on the CPU); on the
    GPU the peak is None (tracemalloc sees host memory only), not a host figure passed off as the GPU's."""
    from demos import common
    from tinymeta import backend

    def step(theta, rng, iteration):
        return float(rng.normal() ** 2), {"w": tm.tensor(np.full(2, 0.1))}

    _fake_training(tmp_path, step, iterations=common.COST_WARMUP + 2)  # measures no cost
    path = tmp_path / "fake.npz"
    assert common.saved_cost(path) is None and common.cost_summary(None)["device"] is None
    path.unlink()
    common.meta_train("fake", step, {"w": tm.tensor(np.ones(2), requires_grad=True)}, path, {},
                      _Args(iterations=common.COST_WARMUP + 2), measure_cost=True)  # fmt: skip
    cpu = common.saved_cost(path)
    assert cpu["device"] == "cpu" and cpu["peak_mb"] is not None and cpu["timed_iterations"] == 2
    arrays, info = common.load_checkpoint(path)
    del info["cost"]["device"]  # written before devices were recorded
    common.save_checkpoint(path, arrays, info)
    assert common.saved_cost(path)["device"] == "cpu"

    path.unlink()
    monkeypatch.setattr(backend, "backend_name", lambda a: "cupy")  # every array "on the GPU"
    common.meta_train("fake", step, {"w": tm.tensor(np.ones(2), requires_grad=True)}, path, {},
                      _Args(iterations=common.COST_WARMUP + 2), measure_cost=True)  # fmt: skip
    gpu = common.cost_summary(common.saved_cost(path))
    assert gpu["device"] == "gpu" and gpu["peak_mb"] is None and gpu["ms_per_iteration"] is not None
