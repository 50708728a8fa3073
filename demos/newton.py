"""Newton's method without the Hessian: Newton-CG on the n-dimensional Rosenbrock function.

Each Newton step solves H p = -g by conjugate gradient, which only ever asks for products H v:
``tinymeta.hvp`` gives them at a few times the cost of a gradient, and the n x n Hessian is never
formed. Plain gradient descent (with the same line search) is run beside it for comparison.

    python -m demos.newton                 # 2-D, prints the Newton iterates
    python -m demos.newton --dim 100       # the same in 100 dimensions (H is never formed)
    python -m demos.newton --out runs/newton   # also writes a PNG of the 2-D paths (matplotlib)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import tinymeta as tm
from demos import common
from tinymeta.solvers import conjugate_gradient


def rosenbrock(x: tm.Tensor) -> tm.Tensor:
    """f(x) = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2, minimum 0 at x = (1, ..., 1)."""
    return tm.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def value_and_grad(f: Callable[[tm.Tensor], tm.Tensor], x: np.ndarray) -> tuple[float, np.ndarray]:
    z = tm.tensor(x, requires_grad=True)
    y = f(z)
    (g,) = tm.grad(y, z)
    return float(y.item()), g.numpy()


def backtracking(f: Callable[[np.ndarray], float], x: np.ndarray, fx: float, g: np.ndarray, p: np.ndarray) -> float:
    """Largest t in 1, 1/2, 1/4, ... with the Armijo condition f(x + t p) <= f(x) + 1e-4 t g.p."""
    t, slope = 1.0, g @ p
    while f(x + t * p) > fx + 1e-4 * t * slope and t > 1e-12:
        t *= 0.5
    return t


def minimize(
    f: Callable[[tm.Tensor], tm.Tensor], x0: np.ndarray, method: str, tol: float, max_iter: int, verbose: bool
) -> dict:
    def value(x: np.ndarray) -> float:
        with tm.no_grad():
            return float(f(tm.tensor(x)).item())

    x, path, start = x0.copy(), [x0.copy()], time.perf_counter()
    for it in range(max_iter + 1):
        fx, g = value_and_grad(f, x)
        gnorm = float(np.linalg.norm(g))
        if verbose:
            print(f"  {method:6s} iter {it:3d}  f = {fx:.6e}  |grad| = {gnorm:.3e}  x[:2] = {x[:2]}")
        if gnorm <= tol:
            break
        if method == "newton":

            def hessian_times(v: list[np.ndarray], x: np.ndarray = x) -> list[np.ndarray]:
                return [tm.hvp(f, tm.tensor(x), tm.tensor(v[0]))[1].numpy()]

            # Solve H p = -g to 1% of |g| (tighter near the solution): superlinear convergence at the end.
            # CG stops at negative curvature; if that happens at once, fall back to steepest descent.
            tol_cg = min(0.01, np.sqrt(gnorm)) * gnorm
            (p,) = conjugate_gradient(hessian_times, [-g], steps=2 * x.size, tol=tol_cg)
            if not p.any():
                p = -g
        else:
            p = -g
        x = x + backtracking(value, x, fx, g, p) * p
        path.append(x.copy())
    return dict(
        x=x,
        value=fx,
        iterations=it,
        grad_norm=gnorm,
        seconds=time.perf_counter() - start,
        path=np.array(path),
        converged=gnorm <= tol,
    )


def save_plot(runs: dict[str, dict], out: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: figure skipped (pip install -e '.[demos]')")
        return None
    out.mkdir(parents=True, exist_ok=True)
    grid_x, grid_y = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
    z = 100 * (grid_y - grid_x**2) ** 2 + (1 - grid_x) ** 2
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.contour(grid_x, grid_y, np.log10(z + 1e-3), levels=25, cmap="Greys", linewidths=0.6)
    for name, run in runs.items():
        ax.plot(run["path"][:, 0], run["path"][:, 1], ".-", label=f"{name} ({run['iterations']} iterations)", ms=3)
    ax.plot([1], [1], "r*", ms=12, label="minimum (1, 1)")
    ax.set_title("Rosenbrock: Newton-CG with Hessian-vector products vs gradient descent")
    ax.legend(loc="lower right", fontsize=8)
    path = out / "newton_rosenbrock.png"
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = common.ArgumentParser(
        prog="python -m demos.newton",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("--dim", type=int, default=2, help="number of variables (>= 2)")
    parser.add_argument("--tol", type=float, default=1e-10, help="stop when |grad| <= tol")
    parser.add_argument("--max-iter", type=int, default=200, help="Newton iterations at most")
    parser.add_argument("--gd-max-iter", type=int, default=2000, help="gradient-descent iterations at most")
    parser.add_argument("--out", type=common.path_argument, default=None, help="folder for the PNG of the 2-D paths")
    parser.add_argument("--quiet", action="store_true", help="do not print every Newton iterate")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    args = parser.parse_args(argv)
    common.check_at_least(args, 2, "dim")
    common.check_at_least(args, 1, "max_iter", "gd_max_iter")
    common.check_positive(args, "tol")
    common.check_memory(64 * 8 * args.dim, f"--dim {args.dim}")  # a few dozen vectors of the dimension
    if args.out is not None:
        common.prepare_out(args.out, files=("newton_rosenbrock.png",))
    common.use_device(args.device)

    x0 = np.tile([-1.2, 1.0], args.dim // 2 + 1)[: args.dim]
    shown = f"{x0[:4]}{'...' if args.dim > 4 else ''}"
    print(f"Rosenbrock in {args.dim} dimensions from x0 = {shown}; tolerance |grad| <= {args.tol:g}")
    newton = minimize(rosenbrock, x0, "newton", args.tol, args.max_iter, verbose=not args.quiet)
    descent = minimize(rosenbrock, x0, "gd", args.tol, args.gd_max_iter, verbose=False)
    print("\nmethod             iterations  f(x)       |grad|     |x - (1,...,1)|  seconds")
    for name, run in [("Newton-CG (hvp)", newton), ("gradient descent", descent)]:
        flag = "" if run["converged"] else f"  (|grad| > {args.tol:g} after {run['iterations']} iterations)"
        distance = np.linalg.norm(run["x"] - 1)
        print(
            f"{name:18s} {run['iterations']:10d}  {run['value']:.2e}   {run['grad_norm']:.2e}   {distance:.2e}"
            f"         {run['seconds']:.3f}{flag}"
        )
    if args.dim >= 4 and np.linalg.norm(newton["x"] - 1) > 1e-6:
        print("(for n >= 4 the chained Rosenbrock function also has a local minimum near (-1, 1, ..., 1))")
    if args.out is not None:
        if args.dim == 2:
            path = save_plot({"Newton-CG": newton, "gradient descent": descent}, args.out)
            if path is not None:
                print(f"figure: {path}")
        else:
            print("the path figure is drawn for --dim 2 only")
    if not newton["converged"]:
        print(
            f"Newton-CG did not reach |grad| <= {args.tol:g} in --max-iter {args.max_iter} iterations "
            f"(|grad| = {newton['grad_norm']:.3g})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
