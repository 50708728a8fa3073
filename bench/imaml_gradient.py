"""iMAML's implicit meta-gradient against the exact gradient of the solved inner problem.

    python bench/imaml_gradient.py --checkpoint runs/sinusoid/checkpoints/maml.npz   # ~7 min; writes
    bench/results/imaml_gradient.md and .json (θ at initialisation, and the checkpoint's θ if given)

On real sinusoid tasks (the demo's distribution, K = 10 support and 10 query points, the 1-40-40-1
ReLU network, float64), for each λ and each task: φ* is found by iMAML's own solver (gradient descent
with line search, 3,000 steps; on a ReLU network the proximal gradient norm stalls at a kink, and is
reported), the support-loss Hessian H at φ* is formed (``tm.hessian``, 1,761 parameters) and the exact
implicit gradient g = (I + H/λ)^-1 ∇L_query(φ*) solved by ``numpy.linalg.solve``. iMAML's
``meta_grad`` (cg_damping = 0) with 1 to 20 conjugate-gradient steps is compared with g: cosine and
relative error ||g_cg - g|| / ||g||, mean and worst over the tasks, beside the condition number of
I + H/λ, H's numerical rank (CG needs at most one step per distinct eigenvalue of I + H/λ) and H's
smallest eigenvalue (a ReLU network's H can be indefinite; then so can I + H/λ for small λ, and CG
stops at the first direction of non-positive curvature).

The inner problem is solved once per (λ, task) and reused for every number of CG steps (``Solved``);
for the paper's 5 steps (or the last given) a plain iMAML re-solves it, and the largest difference is reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import timing  # noqa: F401  (first: one BLAS thread, before NumPy loads)

# isort: split
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinymeta as tm  # noqa: E402
from demos import common, sinusoid  # noqa: E402
from tinymeta import nn  # noqa: E402
from tinymeta.meta import iMAML  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODEL = nn.MLP([1, 40, 40, 1], activation="relu", dtype="float64")


def loss(params: nn.Params, x: object, y: object) -> tm.Tensor:
    return nn.mse_loss(MODEL(params, x), y)


class Solved(iMAML):
    """iMAML whose inner problem, once solved for a support set, is reused (with its report) by later calls."""

    def _solution(self, meta_params: nn.Params, x_support: np.ndarray, y_support: np.ndarray) -> tuple:
        key = (x_support.tobytes(), y_support.tobytes())
        if getattr(self, "_key", None) != key:
            self._key, self._cached = key, super()._solution(meta_params, x_support, y_support)
            self._report = self.last_inner
        self.last_inner = self._report
        return self._cached


def flat(tensors: object) -> np.ndarray:
    """One float64 vector from the parameters (a dict's values, or a sequence), in θ's order."""
    values = tensors.values() if isinstance(tensors, dict) else tensors
    return np.concatenate([np.asarray(p.numpy(), dtype=np.float64).reshape(-1) for p in values])


def unflat(z: tm.Tensor, like: nn.Params) -> nn.Params:
    out, start = {}, 0
    for name, p in like.items():
        out[name] = tm.reshape(z[start : start + p.size], p.shape)
        start += p.size
    return out


def load_theta(checkpoint: Path | None, seed: int) -> nn.Params:
    if checkpoint is None:
        return MODEL.init(seed)
    algo, info = sinusoid.checkpoint_algorithm(checkpoint)
    if algo in ("cnp", "cavia"):
        raise SystemExit(f"{checkpoint}: a {algo} checkpoint, not the 1-40-40-1 network")
    theta, _ = common.load_params(checkpoint, sinusoid.make_model(algo, info["dtype"]).init(0))
    return {n: tm.tensor(p.numpy().astype(np.float64), requires_grad=True) for n, p in theta.items()}


def measure(theta: nn.Params, lams: list[float], cg_steps: list[int], tasks: int, steps: int, seed: int) -> dict:
    xs, ys, xq, yq = sinusoid.sample_batch(np.random.default_rng(seed), tasks, sinusoid.SHOTS[1], "float64")
    out, recheck = {}, 5 if 5 in cg_steps else cg_steps[-1]
    for lam in lams:
        rows: dict = {"cos": {k: [] for k in cg_steps}, "err": {k: [] for k in cg_steps}}
        for key in ("residual", "relative", "cond", "rank", "min_eig_h", "indefinite", "same_residual", "recheck"):
            rows[key] = []
        for t in range(tasks):
            support, query = (xs[t : t + 1], ys[t : t + 1]), (xq[t : t + 1], yq[t : t + 1])
            imaml = Solved(loss, inner_steps=steps, lam=lam, cg_damping=0.0)
            phi = {n: p[0] for n, p in imaml.adapt(theta, *support).items()}  # φ*, solved once
            report = imaml.last_inner
            rows["residual"].append(float(report.residual[0]))
            rows["relative"].append(float(report.residual[0] / max(1.0, report.initial[0])))
            z = flat(phi)
            hessian = tm.hessian(lambda v: loss(unflat(v, theta), xs[t], ys[t]), tm.tensor(z)).numpy()
            leaves = [tm.tensor(p, requires_grad=True) for p in unflat(tm.tensor(z), theta).values()]
            b = flat(tm.grad(loss(dict(zip(theta, leaves)), xq[t], yq[t]), leaves))  # ∇L_query(φ*)
            system = np.eye(z.size) + hessian / lam
            exact = np.linalg.solve(system, b)
            eig = np.linalg.eigvalsh(hessian)
            modulus = np.abs(1 + eig / lam)
            rows["cond"].append(float(modulus.max() / modulus.min()))
            rows["rank"].append(int((np.abs(eig) > 1e-10 * np.abs(eig).max()).sum()))
            rows["min_eig_h"].append(float(eig.min()))
            rows["indefinite"].append(bool((1 + eig / lam).min() <= 0))
            for k in cg_steps:
                imaml.cg_steps = k
                g = flat(imaml.meta_grad(theta, *support, *query)[1])
                rows["cos"][k].append(float(g @ exact / (np.linalg.norm(g) * np.linalg.norm(exact))))
                rows["err"][k].append(float(np.linalg.norm(g - exact) / np.linalg.norm(exact)))
                if k == recheck:  # a plain iMAML, solving again: the same φ*, the same meta-gradient
                    plain = iMAML(loss, inner_steps=steps, lam=lam, cg_steps=k, cg_damping=0.0)
                    again = flat(plain.meta_grad(theta, *support, *query)[1])
                    rows["same_residual"].append(bool(plain.last_inner.residual[0] == report.residual[0]))
                    rows["recheck"].append(float(np.abs(again - g).max()))
        out[lam] = rows
        print(f"λ = {lam:g} done", flush=True)
    return out


def table(name: str, results: dict, cg_steps: list[int]) -> list[str]:
    columns = [
        "λ",
        "‖∇L_prox(φ*)‖, median (max)",
        "relative to ‖∇L(θ)‖, median",
        "cond(I + H/λ), median (max)",
        "rank of H, median (max)",
        "min eigenvalue of H, over tasks",
        "indefinite I + H/λ",
        "re-solved: same residual, max abs Δg",
    ]
    lines = [f"### θ: {name}", "", "| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for lam, r in results.items():
        lines.append(
            f"| {lam:g} | {np.median(r['residual']):.3g} ({max(r['residual']):.3g}) | {np.median(r['relative']):.2g} | "
            f"{np.median(r['cond']):.3g} ({max(r['cond']):.3g}) | {np.median(r['rank']):.0f} ({max(r['rank'])}) | "
            f"{min(r['min_eig_h']):.3g} | "
            f"{sum(r['indefinite'])} of {len(r['cond'])} | {sum(r['same_residual'])} of {len(r['cond'])}, "
            f"{max(r['recheck']):.2g} |"
        )
    lines += ["", "| λ | CG steps | cosine, mean | cosine, worst | relative error, mean | relative error, worst |"]
    lines.append("|---" * 6 + "|")
    for lam, r in results.items():
        for k in cg_steps:
            c, e = r["cos"][k], r["err"][k]
            lines.append(f"| {lam:g} | {k} | {np.mean(c):.4f} | {min(c):.4f} | {np.mean(e):.3g} | {max(e):.3g} |")
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a sinusoid checkpoint of the 1-40-40-1 network (MAML's)")
    parser.add_argument("--lams", default="0.5,2,10", help="the values of λ (comma-separated)")
    parser.add_argument("--cg-steps", default="1,2,5,10,20", help="the numbers of CG steps (comma-separated)")
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--inner-steps", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0, help="the tasks' seed, and the initial θ's")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args()
    lams, cg_steps = [float(v) for v in args.lams.split(",")], [int(v) for v in args.cg_steps.split(",")]
    thetas = {f"initialisation (seed {args.seed})": None}
    if args.checkpoint is not None:
        thetas[f"checkpoint `{args.checkpoint}`"] = args.checkpoint
    start, sections, record = time.perf_counter(), [], {}
    for name, path in thetas.items():
        theta = load_theta(path, args.seed)
        results = measure(theta, lams, cg_steps, args.tasks, args.inner_steps, args.seed)
        sections += table(name, results, cg_steps)
        record[name] = {str(lam): r for lam, r in results.items()}
    command = "python " + " ".join(["bench/imaml_gradient.py", *sys.argv[1:]])
    head = [
        "# iMAML's implicit meta-gradient against the exact one",
        "",
        f"`{command}`: {args.tasks} sinusoid tasks (K = 10 support, 10 query points, seed {args.seed}), 1-40-40-1 "
        f"ReLU network in float64, φ* by iMAML's gradient descent with line search ({args.inner_steps} steps), exact "
        "g = (I + H/λ)^-1 ∇L_query(φ*) by `numpy.linalg.solve`, iMAML's `meta_grad` with cg_damping = 0. "
        f"{time.perf_counter() - start:.0f} s on this project's 2-core x86-64 CPU (one thread; Python "
        f"{platform.python_version()}, NumPy {np.__version__}).",
        "",
    ]
    text = "\n".join(head + sections)
    print(text)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "imaml_gradient.md").write_text(text)
    (args.out_dir / "imaml_gradient.json").write_text(json.dumps(dict(command=command, **record), indent=1) + "\n")


if __name__ == "__main__":
    main()
