"""Why fine-tuning a sinusoid checkpoint for 10 steps blows up on some held-out tasks.

Gradient descent φ ← φ - D ∇L(φ) on a task's support loss is stable near φ only if every eigenvalue
λ of D H (H the support loss's Hessian, D the step sizes: α·I for MAML, Meta-SGD's per-parameter α,
MAML++'s per-layer α) satisfies 0 < λ < 2: an eigenvalue above 2 makes the step overshoot along its
eigenvector, and a negative one (a negative learned step size) climbs the loss, each by a factor
|1 - λ| per step. This script takes the evaluation's K-point tasks, finds those that diverge in
10 steps, and prints each one's amplitude, phase and the extreme eigenvalues of D H at θ, beside
the same for tasks that did not diverge.

    python -m demos.divergence runs/sinusoid/checkpoints/metasgd.npz [--k 5] [--tasks 600] [--sample 8]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

import tinymeta as tm
from demos import common, sinusoid


def step_sizes(algorithm: Any, theta: dict[str, tm.Tensor], step: int) -> np.ndarray:
    """D's diagonal at inner step ``step``, flattened in θ's order (learned step sizes beyond the
    trained steps keep the last one, as fine_tune does)."""
    params, learned = algorithm.split(theta)
    alpha = algorithm.step_size(learned)
    return np.concatenate(
        [
            np.broadcast_to(np.asarray(tm.tensor(alpha(n, step)).numpy(), np.float64), p.shape).ravel()
            for n, p in params.items()
        ]
    )


def eigenvalue_range(
    algorithm: Any, model: Any, theta: dict[str, tm.Tensor], x: np.ndarray, y: np.ndarray
) -> tuple[float, float]:
    """(min, max) of the real parts of the eigenvalues of D H at θ for one task's K points (float64)."""
    params = {n: p for n, p in algorithm.split(theta)[0].items()}
    names, shapes = list(params), [p.shape for p in params.values()]
    sizes = [int(np.prod(s)) for s in shapes]
    flat = np.concatenate([p.numpy().astype(np.float64).ravel() for p in params.values()])

    def loss(v: tm.Tensor) -> tm.Tensor:
        parts, start = {}, 0
        for n, shape, size in zip(names, shapes, sizes):
            parts[n] = tm.reshape(v[start : start + size], shape)
            start += size
        return tm.nn.mse_loss(model(parts, x), y)

    hessian = tm.hessian(loss, tm.tensor(flat)).numpy()
    eigenvalues = np.linalg.eigvals(step_sizes(algorithm, theta, 1)[:, None] * hessian).real
    return float(eigenvalues.min()), float(eigenvalues.max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--k", type=int, default=5, choices=sinusoid.SHOTS, help="support points per task")
    parser.add_argument("--tasks", type=int, default=600, help="held-out tasks (the evaluation's)")
    parser.add_argument("--sample", type=int, default=8, help="tasks of each kind whose spectrum is computed")
    args = parser.parse_args(argv)
    try:
        algo, theta, algorithm, model, _, path = sinusoid.load_for_eval(args.checkpoint, args)
        if algo == "cnp":
            raise common.DemoError("the CNP takes no gradient steps: nothing to diverge")
    except common.DemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model64 = sinusoid.make_model(algo, "float64")
    theta64 = {n: tm.tensor(p.numpy().astype(np.float64)) for n, p in theta.items()}
    data = sinusoid.evaluation_tasks(seed=2017, tasks=args.tasks, dtype=str(next(iter(theta.values())).dtype))
    xs, ys = data[args.k]
    with np.errstate(all="ignore"), tm.no_grad():
        phi = list(algorithm.fine_tune(theta, xs, ys, sinusoid.EVAL_STEPS))[-1]
        mse = tm.nn.mse_loss(model(phi, data["grid"]), data["truth"]).numpy().astype(np.float64)
        diverged = ~(np.isfinite(mse) & (mse <= sinusoid.DIVERGED_MSE))
    print(f"{path}: {algo}, K = {args.k}, {sinusoid.EVAL_STEPS} steps: {diverged.sum()} of {args.tasks} tasks diverged")
    amplitude, phase = data["amplitude"].ravel(), data["phase"].ravel()
    for label, chosen in (("diverged", np.flatnonzero(diverged)), ("stayed finite", np.flatnonzero(~diverged))):
        shown = chosen[: args.sample]
        print(f"\n{label} (first {shown.size} of {chosen.size}):")
        print("  task  amplitude  phase   min λ(DH)  max λ(DH)")
        unstable = 0
        for t in shown:
            low, high = eigenvalue_range(
                algorithm, model64, theta64, xs[t].astype(np.float64), ys[t].astype(np.float64)
            )
            unstable += high > 2
            print(f"  {t:4d}  {amplitude[t]:9.2f}  {phase[t]:5.2f}  {low:10.3f}  {high:9.3f}")
        if chosen.size:
            a = amplitude[chosen]
            print(
                f"  max λ(DH) > 2 at θ: {unstable} of {shown.size}; amplitude of all {chosen.size}: mean {a.mean():.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
