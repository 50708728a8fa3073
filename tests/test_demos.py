"""The demos run end to end, as a user runs them."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from demos import newton

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


def test_a_checkpoint_from_another_architecture_is_refused(tmp_path):
    assert run_demo("sinusoid", "--algo", "maml", "--no-baseline", "--iterations", "2", "--eval-tasks", "3",
                    "--out", str(tmp_path)).returncode == 0  # fmt: skip
    result = run_demo("fewshot", "--eval-only", str(tmp_path / "checkpoints" / "maml.npz"), "--classes", "8", "5", "6",
                      "--filters", "4", "--eval-episodes", "2")  # fmt: skip
    assert result.returncode == 2 and "another architecture" in result.stderr


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
    assert "CPU defaults" in result.stdout and "test accuracy" in result.stdout
    record = json.loads((tmp_path / "results" / "maml_5way1shot.json").read_text())
    assert 0.0 <= record["test_accuracy"] <= 1.0 and record["iterations"] == 3 and len(record["curves"]) == 2


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
    # 16 characters: 12 train, 4 test, each with its three rotations as extra classes
    assert splits["train"].images.shape == (48, 6, 1, 28, 28) and splits["test"].classes == 16
    # inverted (strokes bright, in [0, 1]) and resized: the mean intensity is the fraction of ink
    everything = np.concatenate([splits["train"].images, splits["test"].images])
    assert 0.0 <= everything.min() and everything.max() <= 1.0
    assert everything.mean() == pytest.approx(ink, abs=0.01)
    result = run_demo("fewshot", "--omniglot", str(root), "--iterations", "2", "--filters", "4", "--meta-batch", "2",
                      "--queries", "2", "--eval-queries", "2", "--eval-episodes", "3", "--val-episodes", "2",
                      "--eval-steps", "1", "--out", str(tmp_path / "run"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Omniglot" in result.stdout


def test_omniglot_with_the_wrong_layout_says_what_to_do(tmp_path):
    (tmp_path / "images_background").mkdir()
    result = run_demo("fewshot", "--omniglot", str(tmp_path), "--iterations", "1")
    assert result.returncode == 2 and "images_evaluation" in result.stderr and "expected" in result.stderr
