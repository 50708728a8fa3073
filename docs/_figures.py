"""Where the walkthrough's figures go: ``docs/figures/``, or the folder named by the environment
variable ``TINYMETA_DOCS_FIGURES`` (the test suite points it at a temporary folder).

Figures need matplotlib (``pip install -e ".[demos]"``). Without it a file says so and goes on:
every claim it makes is also a printed, asserted number.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

FOLDER = Path(os.environ.get("TINYMETA_DOCS_FIGURES") or Path(__file__).resolve().parent / "figures")


def pyplot() -> Any:
    """matplotlib.pyplot drawing off-screen, or None (with a note) when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no figure; the numbers above are the claim)")
        return None
    return plt


def save(fig: Any, name: str) -> Path:
    """Save ``fig`` as ``name`` (e.g. "05_where_theta_goes.png") in the figures folder, and close it."""
    FOLDER.mkdir(parents=True, exist_ok=True)
    path = FOLDER / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    fig.clf()
    print(f"figure: {path}")
    return path
