"""Sinusoid regression, the benchmark of Finn, Abbeel & Levine (ICML 2017), section 5.1.

Each task is y = A sin(x + φ) with A ~ U[0.1, 5], φ ~ U[0, π], x ~ U[-5, 5]; a 1-40-40-1 ReLU
network is meta-trained on batches of 25 tasks with K = 10 support and 10 query points, inner SGD
step α = 0.01, Adam with learning rate 1e-3 in the outer loop. The pretrained baseline is one
network trained on all tasks jointly, then fine-tuned like the others (the paper's Figure 2).

Evaluation: 600 new tasks (a fixed evaluation seed), fine-tuned on K = 5, 10, 20 points for 0 to
10 steps by each algorithm's own rule; MSE on 100 points of each task's curve; mean ± 1.96·std/√600.

    python -m demos.sinusoid                           # MAML and the pretrained baseline (~2 min)
    python -m demos.sinusoid --algo all --paper        # every algorithm, 70,000 iterations each
    python -m demos.sinusoid --algo metasgd --resume   # continue a run from its checkpoint
    python -m demos.sinusoid --overwrite               # train again, replacing the checkpoints in --out
    python -m demos.sinusoid --eval-only runs/sinusoid/checkpoints/*.npz   # evaluate, tabulate, plot

Outputs in --out (default runs/sinusoid): checkpoints/<algo>.npz (meta-parameters, optimiser and
random state: --resume continues exactly), results/<algo>.json, results.csv and results.md (every
algorithm evaluated so far), and the figures fig2_adaptation.png and fig3_steps.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

import tinymeta as tm
from demos import common
from tinymeta import meta, nn

ALGORITHMS = ["maml", "fomaml", "reptile", "metasgd", "maml++", "anil", "cavia", "imaml", "pretrained"]
SHOTS = (5, 10, 20)
EVAL_STEPS = 10
CONTEXT_DIM = 5  # CAVIA's context parameters on the sinusoid (Zintgraf et al. 2019)
PAPER_ITERATIONS = 70_000
EVALUATION_FLAGS = {"eval_only", "eval_tasks", "eval_seed", "out", "device", "no_progress"}  # what --eval-only takes


# ---- tasks -----------------------------------------------------------------------------------


def sample_tasks(rng: np.random.Generator, tasks: int) -> tuple[np.ndarray, np.ndarray]:
    """Amplitudes and phases, each [tasks, 1, 1]."""
    return rng.uniform(0.1, 5.0, (tasks, 1, 1)), rng.uniform(0, np.pi, (tasks, 1, 1))


def sample_batch(rng: np.random.Generator, tasks: int, k: int, dtype: str) -> tuple[np.ndarray, ...]:
    """A meta-batch: support and query sets [tasks, k, 1] each."""
    amplitude, phase = sample_tasks(rng, tasks)
    x = rng.uniform(-5.0, 5.0, (tasks, 2 * k, 1))
    y = amplitude * np.sin(x + phase)
    return tuple(a.astype(dtype) for a in (x[:, :k], y[:, :k], x[:, k:], y[:, k:]))


# ---- algorithms --------------------------------------------------------------------------------


def make_model(algo: str, dtype: str) -> nn.MLP:
    return nn.MLP([1, 40, 40, 1], activation="relu", context_dim=CONTEXT_DIM if algo == "cavia" else 0, dtype=dtype)


def make_algorithm(algo: str, model: nn.MLP, inner_lr: float) -> Any:
    """The meta-learner for ``algo``; the pretrained baseline is fine-tuned like MAML (plain SGD)."""

    def loss(params: nn.Params, x: Any, y: Any) -> tm.Tensor:
        return nn.mse_loss(model(params, x), y)

    settings = {  # what differs from one inner step of size α (the paper's MAML setting)
        "reptile": dict(inner_steps=5),
        "maml++": dict(inner_steps=2, step_loss_weights=[0.3, 0.7]),
        "anil": dict(head=model.head_names),
        "cavia": dict(context_dim=CONTEXT_DIM, inner_lr=1.0),
        "imaml": dict(inner_lr=inner_lr / 2, inner_steps=5, lam=2.0, cg_steps=5, cg_damping=0.1),
    }
    base = dict(inner_lr=inner_lr, inner_steps=1)
    return meta.make("maml" if algo == "pretrained" else algo, loss, **{**base, **settings.get(algo, {})})


def pretrained_grad(model: nn.MLP, theta: nn.Params, batch: tuple[np.ndarray, ...]) -> tuple[float, nn.Params]:
    """The baseline's step: the MSE of one network on all the batch's points of all tasks."""
    xs, ys, xq, yq = batch
    x, y = np.concatenate([xs, xq], axis=1), np.concatenate([ys, yq], axis=1)
    loss = tm.mean(nn.mse_loss(model(theta, x), y))
    names = list(theta)
    grads = tm.grad(loss, [theta[n] for n in names])
    return float(loss.item()), dict(zip(names, grads))


# ---- training with checkpoints -------------------------------------------------------------------


def training_setup(algo: str, args: argparse.Namespace) -> tuple[nn.MLP, Any, nn.Params, dict, Path]:
    """The model, the algorithm, θ at initialisation, the settings a checkpoint records, its path."""
    model = make_model(algo, args.dtype)
    algorithm = make_algorithm(algo, model, args.inner_lr)
    info = dict(
        algo=algo, dtype=args.dtype, seed=args.seed, inner_lr=args.inner_lr, meta_lr=args.meta_lr, k=args.k,
        meta_batch=args.meta_batch, clip_grad_norm=args.clip_grad_norm,
    )  # fmt: skip
    return model, algorithm, algorithm.init(model.init(args.seed)), info, args.out / "checkpoints" / f"{algo}.npz"


def train(algo: str, args: argparse.Namespace) -> tuple[nn.Params, Any, nn.MLP, int]:
    """Meta-train ``algo`` up to ``args.iterations``; returns θ, the algorithm, the model, iterations done."""
    model, algorithm, theta, info, path = training_setup(algo, args)

    def step(theta: nn.Params, rng: np.random.Generator) -> tuple[float, nn.Params]:
        batch = sample_batch(rng, args.meta_batch, args.k, args.dtype)
        if algo == "pretrained":
            return pretrained_grad(model, theta, batch)
        return algorithm.meta_grad(theta, *batch)

    probe = sample_batch(np.random.default_rng(args.seed + 1), args.meta_batch, args.k, args.dtype)

    def base_loss(theta: nn.Params) -> float:
        """The query loss of θ before any adaptation (CAVIA's context at zero), on a fixed batch."""
        start = next(algorithm.fine_tune(theta, probe[0], probe[1], 0))
        with tm.no_grad():
            return float(nn.mse_loss(model(start, probe[2]), probe[3]).numpy().mean())

    inner = {"pretrained": None, "cavia": "CAVIA's context step size (1.0, fixed)"}.get(
        algo, f"--inner-lr (now {args.inner_lr:g})"
    )
    theta, done = common.meta_train(algo, step, theta, path, info, args, base_loss=base_loss, inner=inner)
    return theta, algorithm, model, done


def checkpoint_algorithm(path: Path) -> tuple[str, dict[str, Any]]:
    """The algorithm a sinusoid checkpoint was trained with, and its recorded settings."""
    info = common.load_checkpoint(path)[1]
    algo = info.get("algo")
    if algo not in ALGORITHMS:
        raise common.DemoError(f"{path} is not a sinusoid checkpoint (algorithm {algo!r})")
    return algo, info


def load_for_eval(path: Path, args: argparse.Namespace) -> tuple[str, nn.Params, Any, nn.MLP, int]:
    """A checkpoint's algorithm, meta-parameters, model and iteration count, with its own settings
    (a setting it records that is not valid, or none, is a one-line error: the file is damaged)."""
    algo, info = checkpoint_algorithm(path)
    dtype, inner_lr, iteration = info.get("dtype"), info.get("inner_lr"), info.get("iteration")
    if dtype not in ("float32", "float64"):
        raise common.DemoError(f"{path} records dtype={dtype!r}, not float32 or float64: the checkpoint is damaged")
    if isinstance(inner_lr, bool) or not isinstance(inner_lr, (int, float)) or not 0 < inner_lr < float("inf"):
        raise common.DemoError(f"{path} records inner_lr={inner_lr!r}, not a step size: the checkpoint is damaged")
    if type(iteration) is not int or iteration < 0:
        raise common.DemoError(f"{path} records iteration={iteration!r}, not a count: the checkpoint is damaged")
    model = make_model(algo, dtype)
    algorithm = make_algorithm(algo, model, float(inner_lr))
    theta, _ = common.load_params(path, algorithm.init(model.init(0)))
    return algo, theta, algorithm, model, iteration


# ---- evaluation ----------------------------------------------------------------------------------


def evaluation_tasks(seed: int, tasks: int, dtype: str) -> dict[str, Any]:
    """Fixed held-out tasks: for each K, the support points; and a 100-point grid of each curve."""
    rng = np.random.default_rng(seed)
    amplitude, phase = sample_tasks(rng, tasks)
    grid = np.broadcast_to(np.linspace(-5, 5, 100)[None, :, None], (tasks, 100, 1))
    data: dict[str, Any] = {"grid": grid.astype(dtype), "truth": (amplitude * np.sin(grid + phase)).astype(dtype)}
    for k in SHOTS:
        x = rng.uniform(-5, 5, (tasks, k, 1))
        data[k] = (x.astype(dtype), (amplitude * np.sin(x + phase)).astype(dtype))
    data["amplitude"], data["phase"] = amplitude, phase
    return data


def evaluate(theta: nn.Params, algorithm: Any, model: nn.MLP, data: dict[str, Any]) -> dict[str, Any]:
    """MSE after 0..EVAL_STEPS test-time steps, for each K: mean and 95% CI over the tasks.

    Fine-tuning for more steps than an algorithm was trained for can diverge on some tasks (Meta-SGD's
    learned step sizes are tuned for one step); a step where any task's MSE is not finite is
    reported as diverged (None), without overflow warnings.
    """
    results: dict[str, Any] = {}
    for k in SHOTS:
        xs, ys = data[k]
        per_task = []
        with np.errstate(over="ignore", invalid="ignore"):
            for phi in algorithm.fine_tune(theta, xs, ys, EVAL_STEPS):
                with tm.no_grad():
                    per_task.append(nn.mse_loss(model(phi, data["grid"]), data["truth"]).numpy().astype(np.float64))
            per_task = np.stack(per_task)
            mean, ci = common.mean_ci(per_task, axis=1)
        finite = np.isfinite(per_task).all(axis=1) & (mean < 1e6)
        results[str(k)] = {
            "mse": [float(m) if ok else None for m, ok in zip(mean, finite)],
            "ci95": [float(c) if ok else None for c, ok in zip(ci, finite)],
        }
    return results


def _tasks(record: dict[str, Any]) -> int:
    return record.get("tasks", 600)


def _cell(result: dict[str, Any], step: int) -> str:
    mse, ci = result["mse"][step], result["ci95"][step]
    return "diverged" if mse is None else f"{mse:.3f} ± {ci:.3f}"


def predictions(theta: nn.Params, algorithm: Any, model: nn.MLP, data: dict[str, Any], k: int, tasks: int) -> dict:
    """For Figure 2: the first ``tasks`` evaluation tasks, predictions after 0, 1 and 10 steps."""
    xs, ys = (a[:tasks] for a in data[k])
    grid = data["grid"][:tasks]
    out = {}
    with np.errstate(over="ignore", invalid="ignore"):  # see evaluate: fine-tuning may diverge
        for step, phi in enumerate(algorithm.fine_tune(theta, xs, ys, EVAL_STEPS)):
            if step in (0, 1, EVAL_STEPS):
                with tm.no_grad():
                    out[step] = model(phi, grid).numpy()[..., 0]
    return out


# ---- reports -------------------------------------------------------------------------------------


def saved_results(out: Path) -> dict[str, dict[str, Any]]:
    """Every algorithm's results/<algo>.json in ``out``, in the order of ALGORITHMS."""
    found = {}
    for algo in ALGORITHMS:
        path = out / "results" / f"{algo}.json"
        if path.is_file():
            found[algo] = common.json.loads(path.read_text())
    return found


def report(out: Path) -> None:
    """results.csv / results.md over every algorithm evaluated so far in ``out``."""
    found = saved_results(out)
    if not found:
        return
    rows = [
        [algo, r["iterations"], k, step, r["eval"][str(k)]["mse"][step], r["eval"][str(k)]["ci95"][step]]
        for algo, r in found.items()
        for k in SHOTS
        for step in range(EVAL_STEPS + 1)
    ]
    common.write_csv(out / "results.csv", ["algorithm", "iterations", "K", "steps", "mse", "ci95"], rows)
    counts = {_tasks(r) for r in found.values()}
    mixed = len(counts) > 1  # rows evaluated on different numbers of tasks say so in a column of their own
    lines = [
        "| algorithm | iterations | "
        + ("tasks | " if mixed else "")
        + " | ".join(f"{k}-shot, {s} step{'s' if s > 1 else ''}" for k in SHOTS for s in (1, 10))
        + " |",
        "|---|---|" + ("---|" if mixed else "") + "---|" * (2 * len(SHOTS)),
    ]
    for algo, r in found.items():
        cells = [_cell(r["eval"][str(k)], s) for k in SHOTS for s in (1, 10)]
        lead = f"| {algo} | {r['iterations']:,} | " + (f"{_tasks(r)} | " if mixed else "")
        lines.append(lead + " | ".join(cells) + " |")
    table = "\n".join(lines)
    if mixed:
        title = "MSE on each row's held-out tasks after fine-tuning on K points (mean ± 1.96·std/√tasks)"
    else:
        tasks = counts.pop()
        title = f"MSE on {tasks} held-out tasks after fine-tuning on K points (mean ± 1.96·std/√{tasks})"
    (out / "results.md").write_text(f"# Sinusoid regression: {title}\n\n{table}\n")
    print(f"\n{title}:\n")
    print(table)


def figure2(algos: list[str]) -> tuple[str, list[str]]:
    """Figure 2's file name and the algorithms it shows. The paper's Figure 2 is MAML beside the
    pretrained network: under its own name only then, so that a run of other algorithms in the same
    --out never replaces it."""
    shown = [a for a in ("maml", "pretrained") if a in algos] or algos[:2]
    name = "fig2_adaptation.png" if shown == ["maml", "pretrained"] else f"fig2_adaptation_{'_'.join(shown)}.png"
    return name, shown


def figures(out: Path, data: dict[str, Any], trained: dict[str, tuple]) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    found = saved_results(out)
    if found:  # Figure 3: MSE against the number of test-time steps (K = 10)
        fig, ax = plt.subplots(figsize=(6, 4))
        for algo, r in found.items():
            mse = np.array([np.nan if m is None else m for m in r["eval"]["10"]["mse"]])
            ci = np.array([np.nan if c is None else c for c in r["eval"]["10"]["ci95"]])
            ax.errorbar(range(EVAL_STEPS + 1), mse, yerr=ci, marker="o", ms=3, capsize=2, label=algo)
        ax.set_xlabel("number of gradient steps at test time")
        counts = sorted({_tasks(r) for r in found.values()})
        ax.set_ylabel(f"mean squared error ({' / '.join(map(str, counts))} tasks)")
        ax.set_title("Sinusoid, K = 10 (cf. Finn et al. 2017, Figure 3)")
        ax.set_yscale("log")
        ax.set_ylim(top=10)  # a curve that diverges leaves through the top (its numbers are in results.md)
        ax.legend(fontsize=8, ncol=2)
        fig.savefig(out / "fig3_steps.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        print(f"figure: {out / 'fig3_steps.png'}")
    if not trained:
        return
    name, shown = figure2(list(trained))
    tasks, k = 3, 10
    fig, axes = plt.subplots(len(shown), tasks, figsize=(4 * tasks, 3 * len(shown)), squeeze=False)
    grid = data["grid"][0, :, 0]
    for row, algo in enumerate(shown):
        theta, algorithm, model = trained[algo]
        preds = predictions(theta, algorithm, model, data, k, tasks)
        for t in range(tasks):
            ax = axes[row][t]
            ax.plot(grid, data["truth"][t, :, 0], "r", label="ground truth")
            ax.plot(data[k][0][t, :, 0], data[k][1][t, :, 0], "k^", label=f"{k} points used for the gradient")
            for step, style in ((0, ":"), (1, "--"), (EVAL_STEPS, "-")):
                ax.plot(grid, preds[step][t], style, color="C0", label=f"after {step} step{'s' if step != 1 else ''}")
            ax.set_title(f"{algo}, task {t + 1}")
            ax.set_ylim(-6, 6)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    print(f"figure: {out / name}")


# ---- command line ----------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = common.ArgumentParser(
        prog="python -m demos.sinusoid",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("--algo", default="maml", help=f"comma-separated, from {', '.join(ALGORITHMS)}, or 'all'")
    parser.add_argument("--no-baseline", action="store_true", help="do not also train the pretrained baseline")
    parser.add_argument("--iterations", type=int, default=10_000, help="meta-iterations per algorithm")
    parser.add_argument(
        "--paper", action="store_true", help=f"the paper's {PAPER_ITERATIONS:,} meta-iterations (unless --iterations)"
    )
    parser.add_argument("--meta-batch", type=int, default=25, help="tasks per meta-iteration")
    parser.add_argument("--k", type=int, default=10, help="support (and query) points per task in training")
    parser.add_argument("--inner-lr", type=float, default=0.01, help="inner SGD step size α")
    parser.add_argument("--meta-lr", type=float, default=1e-3, help="Adam learning rate of the outer loop")
    parser.add_argument("--eval-tasks", type=int, default=600, help="held-out tasks (at least 3: Figure 2 shows three)")
    parser.add_argument("--eval-seed", type=int, default=2017, help="seed of the held-out tasks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--out", type=common.path_argument, default=Path("runs/sinusoid"))
    parser.add_argument("--clip-grad-norm", type=float, default=None, help="clip meta-gradients to this norm")
    parser.add_argument("--checkpoint-every", type=int, default=1000)
    parser.add_argument("--resume", action="store_true", help="continue each algorithm from its checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="start over, replacing checkpoints already in --out")
    parser.add_argument(
        "--eval-only",
        type=common.path_argument,
        nargs="+",
        metavar="CHECKPOINT",
        help="evaluate checkpoints, no training",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    if parser.parse_args(argv).paper:  # the paper's length becomes the default: --iterations given still wins
        parser.set_defaults(iterations=PAPER_ITERATIONS)
    args = parser.parse_args(argv)
    if args.eval_only:  # checkpoints are evaluated with their own settings: a training flag would be ignored
        ignored = sorted(common.explicit_flags(parser, argv) - EVALUATION_FLAGS)
        if ignored:
            shown = ", ".join(f"--{flag.replace('_', '-')}" for flag in ignored)
            raise common.DemoError(f"--eval-only evaluates checkpoints with their own settings: drop {shown}")
    algos = ALGORITHMS if args.algo == "all" else [a.strip() for a in args.algo.split(",") if a.strip()]
    unknown = [a for a in algos if a not in ALGORITHMS]
    if unknown or not algos:
        shown = repr(unknown[0]) if unknown else "(none)"
        raise common.DemoError(f"--algo: unknown algorithm {shown}; choose from {', '.join(ALGORITHMS)} or 'all'")
    if not args.no_baseline and "pretrained" not in algos:
        algos.append("pretrained")
    args.algos = list(dict.fromkeys(algos))  # each once, in the order given
    common.check_at_least(args, 1, "iterations", "meta_batch", "k", "checkpoint_every")
    common.check_at_least(args, 3, "eval_tasks")
    common.check_at_least(args, 0, "seed", "eval_seed")
    common.check_positive(args, "inner_lr", "meta_lr", "clip_grad_norm")
    if args.resume and args.overwrite:
        raise common.DemoError("--resume and --overwrite contradict each other: choose one")
    itemsize = 8 if args.dtype == "float64" else 4  # the largest arrays: the evaluation grid's activations
    common.check_memory(20 * args.eval_tasks * 100 * 40 * itemsize, f"--eval-tasks {args.eval_tasks}")
    common.check_memory(
        20 * args.meta_batch * 2 * args.k * 40 * itemsize, f"--meta-batch {args.meta_batch} x --k {args.k}"
    )
    names = [checkpoint_algorithm(path)[0] for path in args.eval_only or ()]  # readable before any work starts
    twice = sorted({a for a in names if names.count(a) > 1})
    if twice:
        raise common.DemoError(f"--eval-only: two checkpoints of {twice}, whose results would overwrite each other")
    written = args.algos if not args.eval_only else names
    common.prepare_out(
        args.out,
        folders=("results", "checkpoints"),
        files=[f"results/{a}.json" for a in written] + [f"checkpoints/{a}.npz" for a in written]
        + ["results.md", "results.csv", "fig3_steps.png", figure2(written)[0]],
    )  # fmt: skip
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    common.use_device(args.device)
    out = args.out
    datasets: dict[str, dict[str, Any]] = {}

    def data_for(dtype: str) -> dict[str, Any]:
        """The held-out tasks in ``dtype``: each model is evaluated in its own dtype."""
        if dtype not in datasets:
            datasets[dtype] = evaluation_tasks(args.eval_seed, args.eval_tasks, dtype)
        return datasets[dtype]

    trained: dict[str, tuple] = {}

    def record(algo: str, theta: nn.Params, algorithm: Any, model: nn.MLP, iterations: int) -> None:
        trained[algo] = (theta, algorithm, model)
        evaluation = evaluate(theta, algorithm, model, data_for(model.dtype))
        result = dict(algo=algo, iterations=iterations, tasks=args.eval_tasks, eval=evaluation)
        common.write_json(out / "results" / f"{algo}.json", result)

    if args.eval_only:
        loaded = [load_for_eval(path, args) for path in args.eval_only]  # every one checked before any work
        for checkpoint in loaded:
            record(*checkpoint)
    else:
        for algo in args.algos:  # before any training: resumable (settings, entries), or not in the way
            _, _, theta, info, path = training_setup(algo, args)
            common.check_start(path, theta, info, args)
        print(f"training {', '.join(args.algos)} for {args.iterations:,} iterations each ({args.device}, {args.dtype})")
        for algo in args.algos:
            record(algo, *train(algo, args))
    report(out)
    figures(out, data_for(next(iter(trained.values()))[2].dtype) if trained else data_for(args.dtype), trained)
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
