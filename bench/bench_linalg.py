"""Linear algebra benchmark: forward + backward of tinymeta.linalg next to PyTorch, in one run.

    python bench/bench_linalg.py            # writes bench/results/linalg.json and linalg.md
    /work/venv-bench/bin/python bench/bench_linalg.py   # with PyTorch importable: the ratios too

For solve, inv, det, slogdet, cholesky, eigh and svd (full_matrices=False), at n = 16, 64, 256 (one
matrix) and a batch of 32 matrices at n = 16, in float64: the time of the forward plus the gradient of
a scalar loss sum(W * f(A)) with fixed random weights W (sign-invariant functions of the eigen- and
singular vectors: their squares). PyTorch runs the same loss on CPU with one thread
(torch.set_num_threads(1)); the table gives tinymeta / PyTorch. Both call LAPACK for the forward;
tinymeta's backwards are written in its own ops (a solve, a few matmuls), PyTorch's in C++.

Timings are the best of several interleaved repeats (timing.py), every BLAS on one thread.
PyTorch is never a dependency of tinymeta.
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

RESULTS = Path(__file__).resolve().parent / "results"
OPS = ["solve", "inv", "det", "slogdet", "cholesky", "eigh", "svd"]
CONFIGS = [(1, 16), (32, 16), (1, 64), (1, 256)]  # (batch, n); batch 1 is one matrix, no batch axis


def inputs(op: str, batch: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    shape = (n, n) if batch == 1 else (batch, n, n)
    x = rng.uniform(-1, 1, shape)
    if op == "cholesky":
        return [x @ np.swapaxes(x, -1, -2) / n + np.eye(n)]
    if op == "eigh":
        return [(x + np.swapaxes(x, -1, -2)) / 2]
    if op == "svd":
        return [x]
    a = np.eye(n) + 0.5 * x / n**0.5  # singular values in about [0.4, 1.6]: det neither over- nor underflows
    if op == "solve":
        return [a, rng.standard_normal(shape[:-1] + (4,))]
    return [a]


def tinymeta_loss(op: str, weights: list[np.ndarray]) -> Callable:
    la = tm.linalg

    def loss(*xs):
        if op == "eigh":
            w, v = la.eigh(xs[0])
            return tm.sum(w * weights[0]) + tm.sum(v * v * weights[1])
        if op == "svd":
            u, s, vh = la.svd(xs[0], full_matrices=False)
            return tm.sum(s * weights[0]) + tm.sum(u * u * weights[1]) + tm.sum(vh * vh * weights[2])
        out = {"slogdet": lambda a: la.slogdet(a)[1]}.get(op, getattr(la, op))(*xs)
        return tm.sum(out * weights[0])

    return loss


def torch_loss(op: str, weights: list, torch) -> Callable:  # noqa: ANN001
    la = torch.linalg

    def loss(*xs):
        if op == "eigh":
            w, v = la.eigh(xs[0])
            return (w * weights[0]).sum() + (v * v * weights[1]).sum()
        if op == "svd":
            u, s, vh = la.svd(xs[0], full_matrices=False)
            return (s * weights[0]).sum() + (u * u * weights[1]).sum() + (vh * vh * weights[2]).sum()
        out = {"slogdet": lambda a: la.slogdet(a)[1]}.get(op, getattr(la, op))(*xs)
        return (out * weights[0]).sum()

    return loss


def weights_for(op: str, batch: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    lead = () if batch == 1 else (batch,)
    if op in ("eigh", "svd"):
        matrices = 2 if op == "svd" else 1
        return [rng.standard_normal(lead + (n,))] + [rng.standard_normal(lead + (n, n)) for _ in range(matrices)]
    out = {"solve": lead + (n, 4), "det": lead, "slogdet": lead}.get(op, lead + (n, n))
    return [rng.standard_normal(out)]


def measure(repeats: int, quick: bool) -> tuple[list[dict], str | None]:
    try:
        import torch

        torch.set_num_threads(1)
        torch_name = f"pytorch {torch.__version__}"
    except ImportError:
        torch, torch_name = None, None
    rows = []
    rng = np.random.default_rng(0)
    for batch, n in CONFIGS:
        number = max(1, int((4e4 if quick else 2e5) / (batch * n**3 + 2e3)))
        for op in OPS:
            arrays = inputs(op, batch, n, rng)
            weights = weights_for(op, batch, n, rng)
            leaves = [tm.tensor(a, requires_grad=True) for a in arrays]
            ours = tinymeta_loss(op, weights)
            fns: dict[str, Callable[[], object]] = {"tinymeta": lambda: tm.grad(ours(*leaves), leaves)}
            if torch is not None:
                t_leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
                theirs = torch_loss(op, [torch.tensor(w) for w in weights], torch)
                fns["pytorch"] = lambda: torch.autograd.grad(theirs(*t_leaves), t_leaves)
            seconds = interleaved_best_times(fns, repeats, number)
            row = dict(op=op, batch=batch, n=n, tinymeta_ms=seconds["tinymeta"] * 1e3)
            if torch is not None:
                row["pytorch_ms"] = seconds["pytorch"] * 1e3
                row["ratio"] = seconds["tinymeta"] / seconds["pytorch"]
            rows.append(row)
            ratio = f"  ratio {row['ratio']:.2f}" if "ratio" in row else ""
            torch_ms = f"  pytorch {row['pytorch_ms']:8.3f} ms" if "pytorch_ms" in row else ""
            print(f"  {op:9s} batch {batch:2d} n {n:3d}: tinymeta {row['tinymeta_ms']:8.3f} ms{torch_ms}{ratio}")
    return rows, torch_name


def write_results(rows: list[dict], torch_name: str | None, args: argparse.Namespace) -> None:
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(
        date=time.strftime("%Y-%m-%d"),
        python=platform.python_version(),
        numpy=np.__version__,
        torch=torch_name,
        machine=f"{platform.machine()}, {platform.processor() or 'cpu'}",
        threads="OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS=1, torch.set_num_threads(1)",
        command=f"python bench/bench_linalg.py{' --quick' if args.quick else ''}",
    )
    (out / "linalg.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=2) + "\n")
    configs = [f"batch {b}, n={n}" if b > 1 else f"n={n}" for b, n in CONFIGS]
    lines = [
        "# Linear algebra benchmark: forward + backward",
        "",
        f"`{meta['command']}` on {meta['date']} (Python {meta['python']}, NumPy {meta['numpy']}, "
        f"{torch_name or 'PyTorch not importable'}, {meta['machine']}; one thread everywhere).",
        "",
        "Loss sum(W * f(A)) (squares of the eigen/singular vectors), float64; milliseconds per forward + gradient.",
        "",
    ]
    if torch_name:
        lines += [
            "## tinymeta / PyTorch (below 1: tinymeta faster)",
            "",
            "| op | " + " | ".join(configs) + " |",
            "|---|" + "---|" * len(configs),
        ]
        for op in OPS:
            cells = [r for r in rows if r["op"] == op]
            lines.append(f"| {op} | " + " | ".join(f"{r['ratio']:.2f}×" for r in cells) + " |")
        lines.append("")
    lines += ["## Milliseconds (tinymeta" + (" / PyTorch)" if torch_name else ")"), ""]
    lines += ["| op | " + " | ".join(configs) + " |", "|---|" + "---|" * len(configs)]
    for op in OPS:
        cells = [r for r in rows if r["op"] == op]
        fmt = (
            (lambda r: f"{r['tinymeta_ms']:.3f} / {r['pytorch_ms']:.3f}")
            if torch_name
            else (lambda r: f"{r['tinymeta_ms']:.3f}")
        )
        lines.append(f"| {op} | " + " | ".join(fmt(r) for r in cells) + " |")
    (out / "linalg.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="tinymeta.linalg forward + backward vs PyTorch")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the results go")
    args = parser.parse_args()
    rows, torch_name = measure(repeats=3 if args.quick else 7, quick=args.quick)
    write_results(rows, torch_name, args)
    print(f"written: {args.out_dir / 'linalg.md'} and linalg.json")


if __name__ == "__main__":
    main()
