"""Every file of the walkthrough in docs/ runs and asserts its own claims."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WALKTHROUGH = sorted((ROOT / "docs").glob("[0-9][0-9]_*.py"))


def test_the_walkthrough_is_there_in_lecture_order():
    numbers = [int(path.name[:2]) for path in WALKTHROUGH]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 9, [p.name for p in WALKTHROUGH]
    listed = (ROOT / "docs" / "README.md").read_text()
    missing = [path.name for path in WALKTHROUGH if path.name not in listed]
    assert not missing, f"docs/README.md does not list {missing}"


@pytest.mark.parametrize("path", WALKTHROUGH, ids=[p.name for p in WALKTHROUGH])
def test_each_file_runs_and_its_assertions_hold(path, tmp_path):
    lines = path.read_text().count("\n")
    assert lines <= 200, f"{path.name} has {lines} lines: a walkthrough step should be read in one sitting"
    env = {**os.environ, "TINYMETA_DOCS_FIGURES": str(tmp_path), "MPLBACKEND": "Agg", "TINYMETA_BACKEND": "numpy"}
    result = subprocess.run(
        [sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{path.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert result.stdout.strip(), f"{path.name} printed nothing: it must print the numbers behind its claim"
