"""Meta-learning benchmarks: speed of an exact MAML meta-gradient, and its memory.

    python bench/bench_maml.py            # writes bench/results/maml.md, maml.json, maml_memory.png

Speed: the sinusoid benchmark of Finn et al. (2017): a 1-40-40-1 ReLU network, 25 tasks per
meta-batch, K = 10 support + 10 query points, inner SGD with α = 0.01, S = 1 and 5 inner steps, in
float32 and float64. Timed: one exact second-order meta-gradient (forward, inner loop with
create_graph, backward; the optimiser update, identical everywhere and ~0.1 ms, is left out).
- tinymeta, all tasks in one batched pass, and tinymeta looping over the tasks;
- PyTorch eager, looping over the tasks with ``torch.autograd.grad(create_graph=True)``, and
  ``torch.func`` (grad inside vmap over tasks);
- JAX, ``jit`` of grad over ``vmap``.
Before timing, every peer's meta-gradient is compared with tinymeta's on the same parameters and
data (float64): the largest difference is reported.

Memory: peak memory allocated while computing one meta-gradient (tracemalloc, which sees NumPy's
array allocations), for S = 1, 5, 10, 20 inner steps: MAML keeps the whole inner trajectory for
the backward pass (grows linearly), first-order MAML and iMAML keep none (flat).
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from timing import interleaved_best_times  # first: one thread per framework, before NumPy loads

# isort: split
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinymeta as tm  # noqa: E402
from tinymeta import nn  # noqa: E402
from tinymeta.meta import MAML, iMAML  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TASKS, K, ALPHA = 25, 10, 0.01


def sinusoid_batch(rng: np.random.Generator, dtype: str, tasks: int = TASKS) -> tuple[np.ndarray, ...]:
    amplitude = rng.uniform(0.1, 5.0, (tasks, 1, 1))
    phase = rng.uniform(0, np.pi, (tasks, 1, 1))
    x = rng.uniform(-5, 5, (tasks, 2 * K, 1))
    y = amplitude * np.sin(x + phase)
    return tuple(a.astype(dtype) for a in (x[:, :K], y[:, :K], x[:, K:], y[:, K:]))


# ---- the contenders ------------------------------------------------------------------------------


def tinymeta_fns(params: dict, data: tuple, steps: int, dtype: str) -> tuple[dict, dict]:
    model = nn.MLP([1, 40, 40, 1], dtype=dtype)

    def loss(p, x, y):
        return nn.mse_loss(model(p, x), y)

    fns, grads = {}, None
    for batched in (True, False):
        maml = MAML(loss, inner_lr=ALPHA, inner_steps=steps, batched=batched)
        theta = maml.init({n: tm.tensor(v) for n, v in params.items()})
        fns["tinymeta, batched" if batched else "tinymeta, loop over tasks"] = lambda m=maml, t=theta: m.meta_grad(
            t, *data
        )
        if batched:
            grads = {n: g.numpy() for n, g in maml.meta_grad(theta, *data)[1].items()}
    return fns, grads


TORCH_NAMES = {"layers.0.weight": "w0", "layers.0.bias": "b0", "layers.1.weight": "w1", "layers.1.bias": "b1"}


def torch_fns(
    params: dict, data: tuple, steps: int, device: str = "cpu", per_task_loop: bool = True
) -> tuple[dict, list[dict]]:
    """PyTorch's meta-gradient functions on ``device`` (the loop over tasks unless ``per_task_loop`` is
    False, and torch.func vmap), and their meta-gradients as NumPy arrays."""
    try:
        import torch
        from torch.func import grad as func_grad
        from torch.func import vmap
    except ImportError:
        print("PyTorch is not importable: skipped")
        return {}, []
    names = list(params)
    p = {n: torch.tensor(v, requires_grad=True, device=device) for n, v in params.items()}
    xs, ys, xq, yq = (torch.tensor(a, device=device) for a in data)
    tasks = len(xs)

    def model(q, x):
        h = torch.relu(x @ q["layers.0.weight"] + q["layers.0.bias"])
        h = torch.relu(h @ q["layers.1.weight"] + q["layers.1.bias"])
        return h @ q["layers.2.weight"] + q["layers.2.bias"]

    def mse(q, x, y):
        return ((model(q, x) - y) ** 2).mean()

    def loop() -> tuple:
        total = 0.0
        for t in range(tasks):
            phi = p
            for _ in range(steps):
                g = torch.autograd.grad(mse(phi, xs[t], ys[t]), [phi[n] for n in names], create_graph=True)
                phi = {n: phi[n] - ALPHA * gn for n, gn in zip(names, g)}
            total = total + mse(phi, xq[t], yq[t])
        return torch.autograd.grad(total / tasks, [p[n] for n in names])

    def task_loss(q, x_s, y_s, x_q, y_q):
        phi = q
        for _ in range(steps):
            g = func_grad(mse)(phi, x_s, y_s)
            phi = {n: phi[n] - ALPHA * g[n] for n in names}
        return mse(phi, x_q, y_q)

    detached = {n: v.detach() for n, v in p.items()}
    meta_grad_vmap = func_grad(lambda q: vmap(task_loss, in_dims=(None, 0, 0, 0, 0))(q, xs, ys, xq, yq).mean())
    version = torch.__version__
    fns = {f"PyTorch {version}, loop over tasks": loop} if per_task_loop else {}
    fns[f"PyTorch {version}, torch.func vmap"] = lambda: meta_grad_vmap(detached)
    results = [{n: g.detach().cpu().numpy() for n, g in zip(names, loop())}] if per_task_loop else []
    results.append({n: g.cpu().numpy() for n, g in meta_grad_vmap(detached).items()})
    return fns, results


def jax_fns(params: dict, data: tuple, steps: int, dtype: str) -> tuple[dict, list[dict]]:
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        print("JAX is not importable: skipped")
        return {}, []
    jax.config.update("jax_enable_x64", dtype == "float64")
    p = {n: jnp.asarray(v) for n, v in params.items()}
    xs, ys, xq, yq = (jnp.asarray(a) for a in data)

    def model(q, x):
        h = jax.nn.relu(x @ q["layers.0.weight"] + q["layers.0.bias"])
        h = jax.nn.relu(h @ q["layers.1.weight"] + q["layers.1.bias"])
        return h @ q["layers.2.weight"] + q["layers.2.bias"]

    def mse(q, x, y):
        return ((model(q, x) - y) ** 2).mean()

    def task_loss(q, x_s, y_s, x_q, y_q):
        phi = q
        for _ in range(steps):
            g = jax.grad(mse)(phi, x_s, y_s)
            phi = jax.tree_util.tree_map(lambda a, b: a - ALPHA * b, phi, g)
        return mse(phi, x_q, y_q)

    meta_grad = jax.jit(jax.grad(lambda q: jax.vmap(task_loss, in_axes=(None, 0, 0, 0, 0))(q, xs, ys, xq, yq).mean()))
    result = {n: np.asarray(g) for n, g in meta_grad(p).items()}
    fns = {f"JAX {jax.__version__}, jit + vmap": lambda: jax.block_until_ready(meta_grad(p))}
    return fns, [result]


def speed(repeats: int, number: int) -> list[dict]:
    rows = []
    for dtype in ("float32", "float64"):
        for steps in (1, 5):
            params = {n: p.numpy() for n, p in nn.MLP([1, 40, 40, 1], dtype=dtype).init(0).items()}
            data = sinusoid_batch(np.random.default_rng(0), dtype)
            fns, reference = tinymeta_fns(params, data, steps, dtype)
            peers: list[dict] = []
            for extra, results in (torch_fns(params, data, steps), jax_fns(params, data, steps, dtype)):
                fns.update(extra)
                peers += results
            difference = max(
                (float(np.max(np.abs(r[n] - reference[n]))) for r in peers for n in reference), default=float("nan")
            )
            times = {name: s * 1e3 for name, s in interleaved_best_times(fns, repeats, number).items()}
            print(f"  {dtype}, S = {steps}:  " + "  ".join(f"{k}: {v:.2f} ms" for k, v in times.items()))
            print(f"    largest |peer - tinymeta| in the meta-gradient: {difference:.2e}")
            rows.append(dict(dtype=dtype, steps=steps, ms=times, max_abs_difference=difference))
    return rows


# ---- memory --------------------------------------------------------------------------------------


def peak_memory_mb(fn: Callable[[], object]) -> float:
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - base) / 2**20


def memory() -> list[dict]:
    model = nn.MLP([1, 40, 40, 1])

    def loss(p, x, y):
        return nn.mse_loss(model(p, x), y)

    data = sinusoid_batch(np.random.default_rng(0), "float64")
    rows = []
    for steps in (1, 5, 10, 20):
        algorithms = {
            "MAML": MAML(loss, inner_lr=ALPHA, inner_steps=steps),
            "first-order MAML": MAML(loss, inner_lr=ALPHA, inner_steps=steps, first_order=True),
            "iMAML": iMAML(loss, inner_lr=ALPHA, inner_steps=steps, lam=2.0, cg_steps=5),
        }
        row = {"steps": steps}
        for name, algorithm in algorithms.items():
            theta = algorithm.init(model.init(0))
            row[name] = peak_memory_mb(lambda a=algorithm, t=theta: a.meta_grad(t, *data))
        cells = "  ".join(f"{k}: {v:.2f} MB" for k, v in row.items() if k != "steps")
        print(f"  S = {steps:2d}: {cells}")
        rows.append(row)
    return rows


def plot_memory(rows: list[dict], out: Path = RESULTS) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: memory plot skipped")
        return False
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    steps = [r["steps"] for r in rows]
    for name in ("MAML", "first-order MAML", "iMAML"):
        ax.plot(steps, [r[name] for r in rows], "o-", label=name)
    ax.set_xlabel("inner steps S")
    ax.set_ylabel("peak memory of one meta-gradient (MB)")
    ax.set_title("Sinusoid MLP, 25 tasks, float64")
    ax.set_xticks(steps)
    ax.legend()
    fig.savefig(out / "maml_memory.png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    return True


def write(speed_rows: list[dict], memory_rows: list[dict], command: str, out: Path = RESULTS) -> None:
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(
        date=time.strftime("%Y-%m-%d"),
        python=platform.python_version(),
        numpy=np.__version__,
        machine=platform.machine(),
        command=command,
    )
    results = dict(meta=meta, speed=speed_rows, memory=memory_rows)
    (out / "maml.json").write_text(json.dumps(results, indent=2) + "\n")
    names = list(speed_rows[0]["ms"])
    lines = [
        "# MAML benchmark",
        "",
        f"`{command}` on {meta['date']} (Python {meta['python']}, NumPy {meta['numpy']}, {meta['machine']} CPU).",
        "",
        "## Speed: ms per exact second-order meta-gradient, sinusoid (1-40-40-1 ReLU, 25 tasks, K = 10 + 10)",
        "",
        "| dtype | S | " + " | ".join(names) + " | batched tinymeta: speed-up over PyTorch loop | "
        "largest difference from tinymeta's meta-gradient |",
        "|---|---|" + "---|" * (len(names) + 2),
    ]
    for r in speed_rows:
        torch_loop = next((v for k, v in r["ms"].items() if k.startswith("PyTorch") and "loop" in k), None)
        ratio = f"{torch_loop / r['ms']['tinymeta, batched']:.1f}×" if torch_loop else "n/a"
        cells = " | ".join(f"{r['ms'][n]:.2f}" for n in names)
        lines.append(f"| {r['dtype']} | {r['steps']} | {cells} | {ratio} | {r['max_abs_difference']:.1e} |")
    lines += [
        "",
        "## Memory: peak MB allocated by one meta-gradient (float64, same network and batch)",
        "",
        "| inner steps S | MAML | first-order MAML | iMAML |",
        "|---|---|---|---|",
    ]
    for r in memory_rows:
        lines.append(f"| {r['steps']} | {r['MAML']:.2f} | {r['first-order MAML']:.2f} | {r['iMAML']:.2f} |")
    lines += ["", "![peak memory against inner steps](maml_memory.png)"]
    (out / "maml.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description="tinymeta MAML benchmarks")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the results go")
    args = parser.parse_args()
    print("speed (ms per meta-gradient):")
    speed_rows = speed(repeats=2 if args.quick else 7, number=2 if args.quick else 5)
    print("memory (peak MB per meta-gradient):")
    memory_rows = memory()
    command = "python bench/bench_maml.py" + (" --quick" if args.quick else "")
    write(speed_rows, memory_rows, command, args.out_dir)
    plot_memory(memory_rows, args.out_dir)
    print(f"written: {args.out_dir / 'maml.md'}")


if __name__ == "__main__":
    main()
