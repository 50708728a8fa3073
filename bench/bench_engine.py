"""Engine benchmarks: per-op overhead and the cost of a Hessian-vector product.

    python bench/bench_engine.py            # writes bench/results/engine.json and engine.md

(a) Per-op overhead: forward + backward of a chain of 100 elementwise ops on a 10-element vector
    (sin, *1.01, tanh, +0.5, repeated), in microseconds per op, next to the raw NumPy forward of the
    same chain and, when importable, PyTorch eager and HIPS autograd, all measured in this run.
(b) Hessian-vector product vs one gradient for an MLP loss with about 1e3 ... 1e6 parameters.
    Targets: hvp <= 4x a gradient at every size, and hvp time growing linearly with the
    parameter count (constant time per parameter once the arrays are large).

Timings are the best of several repeats (the least disturbed by other work on the machine).
PyTorch and autograd are never dependencies of tinymeta: install them in a separate virtual
environment to include them (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

from timing import interleaved_best_times  # first: one thread per framework, before NumPy loads

# isort: split
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinymeta as tm  # noqa: E402

CHAIN_LENGTH = 100
RESULTS = Path(__file__).resolve().parent / "results"


def chain(x, sin, tanh):
    y = x
    for _ in range(CHAIN_LENGTH // 4):
        y = sin(y)
        y = y * 1.01
        y = tanh(y)
        y = y + 0.5
    return y


def per_op_overhead(repeats: int, number: int) -> dict[str, float]:
    """Microseconds per op of forward + backward (raw NumPy: forward only)."""
    x0 = np.random.default_rng(0).standard_normal(10)
    x = tm.tensor(x0, requires_grad=True)
    fns: dict[str, Callable[[], object]] = {
        "numpy forward": lambda: chain(x0, np.sin, np.tanh),
        "tinymeta": lambda: tm.grad(tm.sum(chain(x, tm.sin, tm.tanh)), x),
        "tinymeta forward only": lambda: chain(x, tm.sin, tm.tanh),
    }
    try:
        import torch

        torch.set_num_threads(1)
        xt = torch.tensor(x0, requires_grad=True)
        fns["pytorch " + torch.__version__] = lambda: torch.autograd.grad(chain(xt, torch.sin, torch.tanh).sum(), xt)
    except ImportError:
        print("PyTorch is not importable: skipped")
    try:
        import autograd
        import autograd.numpy as anp

        g = autograd.grad(lambda z: anp.sum(chain(z, anp.sin, anp.tanh)))
        fns["HIPS autograd"] = lambda: g(x0)
    except ImportError:
        print("autograd is not importable: skipped")
    seconds = interleaved_best_times(fns, repeats, number)
    return {name: s / CHAIN_LENGTH * 1e6 for name, s in seconds.items()}


def mlp(width: int, inputs: int = 16) -> tuple[list[tuple[int, int]], int]:
    shapes = [(inputs, width), (width,), (width, width), (width,), (width, 1), (1,)]
    return shapes, sum(int(np.prod(s)) for s in shapes)


def width_for(params: int) -> int:
    width = 1
    while mlp(width + 1)[1] <= params:
        width += 1
    return width


def hvp_vs_grad(
    targets: list[int], repeats: int, backend: str | None = None, sync: Callable[[], object] = lambda: None
) -> list[dict[str, float]]:
    """Milliseconds of one gradient and one hvp per parameter count, on ``backend`` (None: the default);
    ``sync`` is called after each (a GPU waits there for its queued work, so that it is timed)."""
    rng = np.random.default_rng(0)
    batch = 64
    x = tm.tensor(rng.standard_normal((batch, 16)), backend=backend)
    y = tm.tensor(rng.standard_normal((batch, 1)), backend=backend)
    rows = []
    for target in targets:
        width = width_for(target)
        shapes, count = mlp(width)
        params = [tm.tensor(rng.standard_normal(s) / np.sqrt(s[0]), backend=backend) for s in shapes]
        tangents = [tm.tensor(rng.standard_normal(s), backend=backend) for s in shapes]

        def loss(w1, b1, w2, b2, w3, b3):
            h = tm.tanh(x @ w1 + b1)
            h = tm.tanh(h @ w2 + b2)
            return tm.mean((h @ w3 + b3 - y) ** 2)

        leaves = [tm.tensor(p.data, requires_grad=True) for p in params]
        number = max(1, int(2e5 // count))

        def gradient() -> None:
            tm.grad(loss(*leaves), leaves)
            sync()

        def product() -> None:
            tm.hvp(loss, params, tangents)
            sync()

        seconds = interleaved_best_times({"grad": gradient, "hvp": product}, repeats, number)
        t_grad, t_hvp = seconds["grad"], seconds["hvp"]
        rows.append(dict(params=count, width=width, grad_ms=t_grad * 1e3, hvp_ms=t_hvp * 1e3, ratio=t_hvp / t_grad))
        print(
            f"  {count:>9,d} params: grad {t_grad * 1e3:8.3f} ms  hvp {t_hvp * 1e3:8.3f} ms  ratio {t_hvp / t_grad:.2f}"
        )
    return rows


def write_results(per_op: dict[str, float], hvp_rows: list[dict[str, float]], args: argparse.Namespace) -> None:
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(
        date=time.strftime("%Y-%m-%d"),
        python=platform.python_version(),
        numpy=np.__version__,
        machine=f"{platform.machine()}, {platform.processor() or 'cpu'}",
        command="python bench/bench_engine.py" + (" --quick" if args.quick else ""),
    )
    (out / "engine.json").write_text(
        json.dumps(dict(meta=meta, per_op_us=per_op, hvp_vs_grad=hvp_rows), indent=2) + "\n"
    )

    torch_name = next((k for k in per_op if k.startswith("pytorch")), None)
    lines = [
        "# Engine benchmark",
        "",
        f"`{meta['command']}` on {meta['date']} (Python {meta['python']}, NumPy {meta['numpy']}, {meta['machine']}).",
        "",
        f"## Per-op overhead: forward + backward, chain of {CHAIN_LENGTH} elementwise ops on a 10-element vector",
        "",
        "| engine | µs per op | vs raw NumPy forward |" + (f" vs {torch_name} |" if torch_name else ""),
        "|---|---|---|" + ("---|" if torch_name else ""),
    ]
    for name, us in per_op.items():
        row = f"| {name} | {us:.2f} | {us / per_op['numpy forward']:.1f}× |"
        if torch_name:
            row += f" {us / per_op[torch_name]:.2f}× |"
        lines.append(row)
    lines += [
        "",
        "## Hessian-vector product vs one gradient (MLP 16-w-w-1, tanh, batch 64, float64)",
        "",
        "| parameters | width | gradient (ms) | hvp (ms) | hvp / gradient | hvp time × vs previous row "
        "(params × ~10) |",
        "|---|---|---|---|---|---|",
    ]
    previous = None
    for r in hvp_rows:
        growth = (
            ""
            if previous is None
            else f"{r['hvp_ms'] / previous['hvp_ms']:.1f}× for {r['params'] / previous['params']:.1f}× params"
        )
        lines.append(
            f"| {r['params']:,} | {r['width']} | {r['grad_ms']:.3f} | {r['hvp_ms']:.3f} | {r['ratio']:.2f} | {growth} |"
        )
        previous = r
    (out / "engine.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="tinymeta engine benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the results go")
    args = parser.parse_args()
    repeats = 3 if args.quick else 15
    print("per-op overhead (µs per op, forward + backward):")
    per_op = per_op_overhead(repeats, number=20 if args.quick else 100)
    for name, us in per_op.items():
        print(f"  {name:28s} {us:7.2f}")
    print("hvp vs gradient:")
    hvp_rows = hvp_vs_grad([1_000, 10_000, 100_000, 1_000_000], repeats=3 if args.quick else 7)
    write_results(per_op, hvp_rows, args)
    print(f"written: {args.out_dir / 'engine.md'} and engine.json")


if __name__ == "__main__":
    main()
