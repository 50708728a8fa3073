"""tinymeta's NumPy-coverage ops against PyTorch: value, gradient and Hessian-vector product.

For each op, on random float64 inputs (exact zeros, ties and boundary points where the op defines a
convention), the largest absolute difference between tinymeta and PyTorch 2.13 in the value, the
gradient of a random projection of the output, and the gradient of a random projection of that
gradient (an HVP), written to ``bench/results/crosscheck_torch.md``. Not a timing:

    .venv-bench/bin/python bench/crosscheck_torch.py        # a few seconds; PyTorch is a peer, never a dependency
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import tinymeta as tm  # noqa: E402

try:
    import torch
except ImportError:
    raise SystemExit("PyTorch is not installed: see bench/README.md for the peers' environment") from None

torch.set_default_dtype(torch.float64)
RNG = np.random.default_rng(0)


def difference(torch_fn, tinymeta_fn, *arrays: np.ndarray) -> float:
    """max |tinymeta - PyTorch| over the value, the gradient of <w, f> and the gradient of <v, that gradient>."""
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    ms = [tm.tensor(a, requires_grad=True) for a in arrays]
    yt, ym = torch_fn(*ts), tinymeta_fn(*ms)
    w = RNG.standard_normal(tuple(yt.shape))
    gt = torch.autograd.grad((yt * torch.tensor(w)).sum(), ts, create_graph=True, allow_unused=True)
    gm = tm.grad(tm.sum(ym * w), ms, create_graph=True, allow_unused=True)
    gt = [torch.zeros_like(t) if g is None else g for g, t in zip(gt, ts)]
    gm = [tm.tensor(np.zeros(m.shape)) if g is None else g for g, m in zip(gm, ms)]
    v = [RNG.standard_normal(a.shape) for a in arrays]
    total_t = sum((g * torch.tensor(vv)).sum() for g, vv in zip(gt, v))
    ht = torch.autograd.grad(total_t, ts, allow_unused=True) if total_t.requires_grad else [None] * len(ts)
    hm = tm.grad(tm.sum(tm.stack([tm.sum(g * vv) for g, vv in zip(gm, v)])), ms, allow_unused=True)
    pairs = [(yt, ym)] + list(zip(gt, gm)) + list(zip(ht, hm))
    worst = 0.0
    for a, b in pairs:
        a = np.zeros(1) if a is None else a.detach().numpy()
        b = np.zeros(1) if b is None else b.numpy()
        worst = max(worst, float(np.max(np.abs(a - b), initial=0.0)))
    return worst


def cases() -> dict[str, tuple]:
    x, y = RNG.standard_normal((3, 4)), RNG.standard_normal((3, 4))
    zeros = np.where(x > 0.5, 0.0, x)
    small = x * 0.3
    sym = x[:3, :3] @ x[:3, :3].T + 3 * np.eye(3)
    f = torch.nn.functional
    out = {
        "softplus(beta=2, threshold=1)": (lambda a: f.softplus(a, 2.0, 1.0), lambda a: tm.softplus(a, 2.0, 1.0), 3 * x),
        "maximum, with ties": (torch.maximum, tm.maximum, np.round(x), np.round(y)),
        "minimum, with ties": (torch.minimum, tm.minimum, np.round(x), np.round(y)),
        "clip, tensor bounds": (torch.clamp, tm.clip, x, -np.abs(y) * 0.5, np.abs(y) * 0.5),
        "arctan2": (torch.atan2, tm.arctan2, x, y),
        "hypot": (torch.hypot, tm.hypot, x, y),
        "logaddexp": (torch.logaddexp, tm.logaddexp, x, y),
        "mod (remainder)": (torch.remainder, tm.mod, 3 * x, y),
        "prod, axis 1, with zeros": (lambda a: torch.prod(a, 1), lambda a: tm.prod(a, 1), zeros),
        "prod, all": (torch.prod, tm.prod, x),
        "cumsum": (lambda a: torch.cumsum(a, 1), lambda a: tm.cumsum(a, 1), x),
        "cumprod, with zeros": (lambda a: torch.cumprod(a, 1), lambda a: tm.cumprod(a, 1), zeros),
        "var(ddof=1)": (lambda a: torch.var(a, 1, correction=1), lambda a: tm.var(a, 1, ddof=1), x),
        "std": (torch.std, lambda a: tm.std(a, ddof=1), x),
        "sort": (lambda a: torch.sort(a, 1).values, lambda a: tm.sort(a, 1), x),
        "logsumexp(b=)": (
            lambda a, b: torch.log((b * a.exp()).sum(1)),
            lambda a, b: tm.logsumexp(a, 1, b=b),
            x,
            np.abs(y),
        ),
        "flip": (lambda a: torch.flip(a, (1,)), lambda a: tm.flip(a, 1), x),
        "roll": (lambda a: torch.roll(a, 2, 1), lambda a: tm.roll(a, 2, 1), x),
        "repeat": (lambda a: torch.repeat_interleave(a, 2, 0), lambda a: tm.repeat(a, 2, 0), x),
        "tile": (lambda a: a.repeat(2, 3), lambda a: tm.tile(a, (2, 3)), x),
        "pad, reflect": (
            lambda a: f.pad(a[None], (2, 1), mode="reflect")[0],
            lambda a: tm.pad(a, ((0, 0), (2, 1)), "reflect"),
            x,
        ),
        "pad, edge": (
            lambda a: f.pad(a[None], (2, 1), mode="replicate")[0],
            lambda a: tm.pad(a, ((0, 0), (2, 1)), "edge"),
            x,
        ),
        "diff": (lambda a: torch.diff(a, 2, 1), lambda a: tm.diff(a, 2, 1), x),
        "tril / triu": (lambda a: torch.tril(a, -1) + torch.triu(a, 2), lambda a: tm.tril(a, -1) + tm.triu(a, 2), x),
        "einsum ij,kj->ik (tanh)": (
            lambda a, b: torch.tanh(torch.einsum("ij,kj->ik", a, b)),
            lambda a, b: tm.tanh(tm.einsum("ij,kj->ik", a, b)),
            x,
            y,
        ),
        "einsum ii->i of a square (tanh)": (
            lambda a: torch.tanh(torch.einsum("ii->i", a)),
            lambda a: tm.tanh(tm.einsum("ii->i", a)),
            sym,
        ),
        "tensordot (tanh)": (
            lambda a, b: torch.tanh(torch.tensordot(a, b, ([1], [1]))),
            lambda a, b: tm.tanh(tm.tensordot(a, b, ([1], [1]))),
            x,
            y,
        ),
        "kron (tanh)": (
            lambda a, b: torch.tanh(torch.kron(a, b)),
            lambda a, b: tm.tanh(tm.kron(a, b)),
            x[:2, :2],
            y[:2, :3],
        ),
        "outer (tanh)": (lambda a, b: torch.tanh(torch.outer(a, b)), lambda a, b: tm.tanh(tm.outer(a, b)), x[0], y[1]),
        "trace (squared)": (lambda a: torch.trace(a) ** 2, lambda a: tm.trace(a) ** 2, sym),
    }
    for name, torch_name in [("tan", "tan"), ("arcsin", "asin"), ("arccos", "acos"), ("arctan", "atan"),
                             ("arctanh", "atanh"), ("log1p", "log1p"), ("expm1", "expm1"), ("exp2", "exp2"),
                             ("sinh", "sinh"), ("cosh", "cosh"), ("arcsinh", "asinh"), ("reciprocal", "reciprocal"),
                             ("square", "square")]:  # fmt: skip
        out[name] = (getattr(torch, torch_name), getattr(tm, name), small)
    out["log2"], out["log10"] = (torch.log2, tm.log2, np.abs(x) + 0.5), (torch.log10, tm.log10, np.abs(x) + 0.5)
    out["arccosh"] = (torch.acosh, tm.arccosh, np.abs(x) + 1.1)
    for name, (torch_fn, tinymeta_fn) in LINALG.items():
        out[name] = (torch_fn, tinymeta_fn, sym)
    return out


LINALG: dict = {}  # filled below with tinymeta.linalg's ops, when it has them
if "solve" in tm.linalg.__all__:
    LINALG["linalg.solve"] = (lambda a: torch.linalg.solve(a, a[:, :2] + 1), lambda a: tm.linalg.solve(a, a[:, :2] + 1))
if "inv" in tm.linalg.__all__:
    LINALG["linalg.inv"] = (torch.linalg.inv, tm.linalg.inv)
if "det" in tm.linalg.__all__:
    LINALG["linalg.det"] = (torch.linalg.det, tm.linalg.det)
if "slogdet" in tm.linalg.__all__:
    LINALG["linalg.slogdet (log of abs det)"] = (
        lambda a: torch.linalg.slogdet(a)[1],
        lambda a: tm.linalg.slogdet(a)[1],
    )
if "cholesky" in tm.linalg.__all__:
    LINALG["linalg.cholesky (of (A + A^T) / 2)"] = (
        lambda a: torch.linalg.cholesky((a + a.T) / 2),
        lambda a: tm.linalg.cholesky((a + a.T) / 2),
    )
if "eigh" in tm.linalg.__all__:
    LINALG["linalg.eigh (w, and v v^T)"] = (
        lambda a: torch.cat(
            [torch.linalg.eigh((a + a.T) / 2)[0], (lambda v: (v * v).ravel())(torch.linalg.eigh((a + a.T) / 2)[1])]
        ),
        lambda a: tm.concatenate(
            [tm.linalg.eigh((a + a.T) / 2)[0], (lambda v: tm.reshape(v * v, -1))(tm.linalg.eigh((a + a.T) / 2)[1])]
        ),
    )
if "svd" in tm.linalg.__all__:
    LINALG["linalg.svd (singular values)"] = (
        lambda a: torch.linalg.svdvals(a),
        lambda a: tm.linalg.svd(a, compute_uv=False),
    )
if "norm" in tm.linalg.__all__:
    LINALG["linalg.norm (Frobenius)"] = (torch.linalg.norm, tm.linalg.norm)


def main() -> None:
    rows = []
    for name, (torch_fn, tinymeta_fn, *arrays) in cases().items():
        rows.append(f"| {name} | {difference(torch_fn, tinymeta_fn, *arrays):.1e} |")
        print(rows[-1], flush=True)
    out = Path(__file__).parent / "results" / "crosscheck_torch.md"
    out.write_text(
        "# tinymeta against PyTorch: the NumPy-coverage ops\n\n"
        f"`python bench/crosscheck_torch.py` with PyTorch {torch.__version__} (CPU), float64, random inputs\n"
        "(with exact zeros for prod/cumprod and ties for maximum/minimum). Largest absolute difference over\n"
        "the value, the gradient of a random projection and the HVP (the gradient of a random projection of\n"
        "that gradient).\n"
        "Bilinear ops are wrapped in tanh so that their HVP is not zero.\n\n"
        "| op | max abs difference |\n|---|---|\n" + "\n".join(rows) + "\n"
    )
    print(f"written: {out}")


if __name__ == "__main__":
    main()
