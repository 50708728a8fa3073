"""What a change costs, in instructions: the engine's hot paths under valgrind's callgrind, here and at
another git revision, side by side.

Instruction counts do not depend on what else the machine runs, so they show a few per cent of
overhead that wall-clock timings on a shared 2-core machine cannot. Each workload runs in a fresh
Python under ``valgrind --tool=callgrind`` with one BLAS thread; the count of a run that only
imports (numpy, tinymeta) is subtracted, so the figures are the workload's own.

    python bench/instructions.py --against 5d0e0be            # needs valgrind and git; writes results/instructions.md
    python bench/instructions.py --run chain                  # one workload, natively (what is counted)

Workloads: ``chain``, forward and backward of a 100-op elementwise chain (the per-node cost of the
backward sweep); ``hvp``, a Hessian-vector product of a 9,811-parameter MLP's loss; ``maml``, a
float64 MAML meta-gradient (4 tasks, one inner step) of the sinusoid network.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPEATS = {"chain": 200, "hvp": 20, "maml": 20}


def run(workload: str) -> None:
    import numpy as np

    import tinymeta as tm
    from tinymeta import meta, nn

    if workload == "none":
        return
    rng = np.random.default_rng(0)
    if workload == "chain":
        x = tm.tensor(rng.standard_normal(16), requires_grad=True)
        for _ in range(REPEATS[workload]):
            y = x
            for _ in range(25):
                y = tm.tanh(y * 0.9 + 0.1) - y * 0.01
            tm.grad(tm.sum(y), x)
    elif workload == "hvp":
        model = nn.MLP([1, 96, 96, 1])  # 9,811 parameters
        params = model.init(0)
        xs, ys = rng.uniform(-5, 5, (32, 1)), rng.uniform(-1, 1, (32, 1))
        names = list(params)
        vector = [tm.tensor(rng.standard_normal(params[n].shape)) for n in names]

        def loss(*values):
            return nn.mse_loss(model(dict(zip(names, values)), xs), ys)

        for _ in range(REPEATS[workload]):
            tm.hvp(loss, tuple(params[n] for n in names), tuple(vector))
    elif workload == "maml":
        model = nn.MLP([1, 40, 40, 1])
        algorithm = meta.MAML(lambda p, x, y: nn.mse_loss(model(p, x), y), inner_lr=0.01, inner_steps=1)
        theta = algorithm.init(model.init(0))
        xs, xq = rng.uniform(-5, 5, (2, 4, 10, 1))
        for _ in range(REPEATS[workload]):
            algorithm.meta_grad(theta, xs, np.sin(xs), xq, np.sin(xq))
    else:
        raise SystemExit(f"unknown workload {workload!r}; choose from none, {', '.join(REPEATS)}")


def instructions(tree: Path, workload: str) -> int:
    """Instructions of ``python bench/instructions.py --run workload`` with ``tree``'s tinymeta."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        env = dict(os.environ, PYTHONPATH=str(tree), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable]
        subprocess.run([*command, str(Path(__file__)), "--run", workload], env=env, check=True, capture_output=True)
        totals = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
        if totals is None:
            raise SystemExit(f"no instruction count in callgrind's output for {workload}")
        return int(totals.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="run one workload natively (what callgrind counts)")
    parser.add_argument("--against", help="git revision to compare this working tree with")
    args = parser.parse_args()
    if args.run:
        run(args.run)
        return
    if not args.against:
        parser.error("give --against REVISION (or --run WORKLOAD)")
    with tempfile.TemporaryDirectory() as folder:
        before = Path(folder) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.against],
                       check=True, capture_output=True)  # fmt: skip
        try:
            base = {tree: instructions(tree, "none") for tree in (before, ROOT)}
            revision = ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]
            head = subprocess.run(revision, capture_output=True, text=True).stdout.strip()
            lines = [f"| workload | {args.against} (instructions) | {head} | change |", "|---|---|---|---|"]
            for workload in REPEATS:
                old, new = (instructions(tree, workload) - base[tree] for tree in (before, ROOT))
                lines.append(f"| {workload} | {old:,} | {new:,} | {100 * (new - old) / old:+.1f}% |")
                print(lines[-1])
            text = (
                f"# Instructions of the engine's hot paths, {datetime.date.today()}\n\n"
                f"`python bench/instructions.py --against {args.against}` (valgrind's callgrind; the count of a run "
                "that only imports subtracted; see the script for the workloads)\n\n" + "\n".join(lines) + "\n"
            )
            (Path(__file__).parent / "results" / "instructions.md").write_text(text)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=True)


if __name__ == "__main__":
    main()
