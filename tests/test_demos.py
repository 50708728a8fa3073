"""The demos run end to end, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

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
