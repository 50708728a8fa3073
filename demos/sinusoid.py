"""Sinusoid regression, the benchmark of Finn, Abbeel & Levine (ICML 2017), section 5.1.

Each task is y = A sin(x + φ) with A ~ U[0.1, 5], φ ~ U[0, π], x ~ U[-5, 5]; a 1-40-40-1 ReLU
network is meta-trained on batches of 25 tasks with K = 10 support and 10 query points, inner SGD
step α = 0.01, Adam with learning rate 1e-3 in the outer loop. The pretrained baseline is one
network trained on all tasks jointly, then fine-tuned like the others (the paper's Figure 2). The
black-box contrast, a conditional neural process (--algo cnp; Garnelo et al. 2018), reads the K
points with an encoder and predicts with a decoder (128 units wide, the authors' 1-D regression
network), trained with the same meta-batches and Adam, and takes no gradient steps at test time.

Evaluation: 600 new tasks (a fixed evaluation seed), fine-tuned on K = 5, 10, 20 points for 0 to
10 steps by each algorithm's own rule; MSE on 100 points of each task's curve; mean ± 1.96·std/√600.

    python -m demos.sinusoid                           # MAML and the pretrained baseline (~2 min)
    python -m demos.sinusoid --algo all --paper        # every algorithm, 70,000 iterations each
    python -m demos.sinusoid --algo metasgd --resume   # continue a run from its checkpoint
    python -m demos.sinusoid --algo maml,reptile --inner-steps 5          # or --inner-steps reptile=1,maml=5
    python -m demos.sinusoid --algo maml,cnp --no-baseline --measure-cost 200   # cost only, into --out's results
    python -m demos.sinusoid --overwrite               # train again, replacing the checkpoints in --out
    python -m demos.sinusoid --eval-only runs/sinusoid/checkpoints/*.npz   # evaluate, tabulate, plot

Outputs in --out (default runs/sinusoid): checkpoints/<algo>.npz (meta-parameters, optimiser and
random state: --resume continues exactly), results/<algo>.json, results.csv and results.md (every
algorithm evaluated so far, with its cost: ms per meta-iteration and the peak memory of one, measured
during training), and the figures fig2_adaptation*.png (each algorithm adapting to three test tasks,
beside the pretrained baseline: fig2_adaptation.png is MAML's, the paper's) and fig3_steps.png.
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

ALGORITHMS = ["maml", "fomaml", "reptile", "metasgd", "maml++", "anil", "cavia", "imaml", "cnp", "pretrained"]
INNER_STEPS = {"maml": 1, "fomaml": 1, "reptile": 5, "metasgd": 1, "maml++": 2, "anil": 1, "cavia": 1, "imaml": 20}
MAX_INNER_STEPS = (
    1000  # exact MAML's memory grows with the steps: 1,000 of them need about 2 GB (bench/results/maml.md)
)
NO_INNER_LOOP = {  # why --inner-steps does not apply
    "cnp": "cnp has no inner loop: it reads the support set in one forward pass",
    "pretrained": "the pretrained baseline has no inner loop in training (it is fine-tuned only at test time)",
}
SHOTS = (5, 10, 20)
EVAL_STEPS = 10
CONTEXT_DIM = 5  # CAVIA's context parameters on the sinusoid (Zintgraf et al. 2019)
CNP = dict(encoder=(128, 128, 128), representation=128, decoder=(128, 128), likelihood="gaussian")  # Garnelo et al.
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


def make_model(algo: str, dtype: str) -> Any:
    """The network: 1-40-40-1 ReLU (with CAVIA's context inputs for cavia), or the CNP's encoder and decoder."""
    if algo == "cnp":
        return meta.CNPModel(**CNP, dtype=dtype)
    return nn.MLP([1, 40, 40, 1], activation="relu", context_dim=CONTEXT_DIM if algo == "cavia" else 0, dtype=dtype)


def step_loss_weights(steps: int) -> list[float]:
    """MAML++'s multi-step loss weights: 0.7 on the last step's query loss, 0.3 shared by the others
    ([0.3, 0.7] for its default 2 steps, as MAML++'s annealed weights lean towards the last step)."""
    return [1.0] if steps == 1 else [0.3 / (steps - 1)] * (steps - 1) + [0.7]


def make_algorithm(algo: str, model: Any, inner_lr: float | None, inner_steps: int | None = None) -> Any:
    """The meta-learner for ``algo`` with ``inner_steps`` (default: INNER_STEPS[algo]); the pretrained
    baseline is fine-tuned like MAML (plain SGD), the CNP is built from its own network (and uses
    neither ``inner_lr``, None for it, nor ``inner_steps``)."""
    if algo == "cnp":
        return meta.CNP(model)

    def loss(params: nn.Params, x: Any, y: Any) -> tm.Tensor:
        return nn.mse_loss(model(params, x), y)

    steps = INNER_STEPS.get(algo, 1) if inner_steps is None else inner_steps
    settings = {  # what differs from inner steps of size α (the paper's MAML setting: one step)
        "maml++": dict(step_loss_weights=step_loss_weights(steps)),
        "anil": dict(head=model.head_names),
        "cavia": dict(context_dim=CONTEXT_DIM, inner_lr=1.0),
        "imaml": dict(lam=2.0, cg_steps=5, cg_damping=0.1),
    }
    base = dict(inner_lr=inner_lr, inner_steps=steps)
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


def training_setup(algo: str, args: argparse.Namespace) -> tuple[Any, Any, nn.Params, dict, Path]:
    """The model, the algorithm, θ at initialisation, the settings a checkpoint records, its path.
    A setting the algorithm does not use is recorded as None (the CNP's step size and steps)."""
    model = make_model(algo, args.dtype)
    inner_steps = args.inner_steps.get(algo)
    algorithm = make_algorithm(algo, model, args.inner_lr, inner_steps)
    info = dict(
        algo=algo, dtype=args.dtype, seed=args.seed, inner_lr=None if algo == "cnp" else args.inner_lr,
        inner_steps=inner_steps, meta_lr=args.meta_lr, k=args.k, meta_batch=args.meta_batch,
        clip_grad_norm=args.clip_grad_norm,
    )  # fmt: skip
    return model, algorithm, algorithm.init(model.init(args.seed)), info, args.out / "checkpoints" / f"{algo}.npz"


def train(algo: str, args: argparse.Namespace) -> tuple[nn.Params, Any, Any, int]:
    """Meta-train ``algo`` up to ``args.iterations``, timing its meta-iterations and measuring the peak
    memory of one (kept in the checkpoint); returns θ, the algorithm, the model, iterations done."""
    model, algorithm, theta, info, path = training_setup(algo, args)

    def step(theta: nn.Params, rng: np.random.Generator, iteration: int) -> tuple[float, nn.Params]:
        batch = sample_batch(rng, args.meta_batch, args.k, args.dtype)
        if algo == "pretrained":
            return pretrained_grad(model, theta, batch)
        return algorithm.meta_grad(theta, *batch)

    probe = sample_batch(np.random.default_rng(args.seed + 1), args.meta_batch, args.k, args.dtype)

    def base_loss(theta: nn.Params) -> float:
        """The query loss of θ before any adaptation (CAVIA's context at zero; for the CNP, which has no
        adaptation but reading, after reading the support set), on a fixed batch."""
        start = next(algorithm.fine_tune(theta, probe[0], probe[1], 0))
        with tm.no_grad():
            return float(nn.mse_loss(model(start, probe[2]), probe[3]).numpy().mean())

    inner = {"pretrained": None, "cnp": None, "cavia": "CAVIA's context step size (1.0, fixed)"}.get(
        algo, f"--inner-lr (now {args.inner_lr:g})"
    )
    theta, done = common.meta_train(
        algo, step, theta, path, info, args, base_loss=base_loss, inner=inner, measure_cost=True
    )
    return theta, algorithm, model, done


def checkpoint_algorithm(path: Path) -> tuple[str, dict[str, Any]]:
    """The algorithm a sinusoid checkpoint was trained with, and its recorded settings."""
    info = common.load_checkpoint(path)[1]
    algo = info.get("algo")
    if algo not in ALGORITHMS:
        raise common.DemoError(f"{path} is not a sinusoid checkpoint (algorithm {algo!r})")
    return algo, info


def load_for_eval(path: Path, args: argparse.Namespace) -> tuple[str, nn.Params, Any, Any, int, Path]:
    """A checkpoint's algorithm, meta-parameters, model and iteration count, with its own settings
    (a setting it records that is not valid, or none, is a one-line error: the file is damaged), and
    its path.

    A checkpoint written before --inner-steps existed records no inner_steps: it was trained with the
    algorithm's default (INNER_STEPS), the only choice there was."""
    algo, info = checkpoint_algorithm(path)
    dtype, inner_lr, iteration = info.get("dtype"), info.get("inner_lr"), info.get("iteration")
    inner_steps = info.get("inner_steps", INNER_STEPS.get(algo))
    if dtype not in ("float32", "float64"):
        raise common.DemoError(f"{path} records dtype={dtype!r}, not float32 or float64: the checkpoint is damaged")
    step_size = not isinstance(inner_lr, bool) and isinstance(inner_lr, (int, float)) and 0 < inner_lr < float("inf")
    if not (step_size or (algo == "cnp" and inner_lr is None)):
        raise common.DemoError(f"{path} records inner_lr={inner_lr!r}, not a step size: the checkpoint is damaged")
    steps = type(inner_steps) is int and inner_steps >= 1
    if (algo in INNER_STEPS and not steps) or (algo not in INNER_STEPS and inner_steps is not None):
        expected = "a number of steps" if algo in INNER_STEPS else f"None ({NO_INNER_LOOP[algo]})"
        raise common.DemoError(f"{path} records inner_steps={inner_steps!r}, not {expected}: the checkpoint is damaged")
    if type(iteration) is not int or iteration < 0:
        raise common.DemoError(f"{path} records iteration={iteration!r}, not a count: the checkpoint is damaged")
    model = make_model(algo, dtype)
    algorithm = make_algorithm(algo, model, None if inner_lr is None else float(inner_lr), inner_steps)
    theta, _ = common.load_params(path, algorithm.init(model.init(0)))
    return algo, theta, algorithm, model, iteration, path


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


def evaluate(theta: nn.Params, algorithm: Any, model: Any, data: dict[str, Any]) -> dict[str, Any]:
    """MSE after 0..EVAL_STEPS test-time steps, for each K: mean and 95% CI over the tasks, the median,
    and how many tasks diverged; for iMAML also how well its inner problems were solved by the last
    step (``inner_solve``, see ``common.inner_solve_summary``).

    Fine-tuning for more steps than an algorithm was trained for can blow up on some tasks (a step
    size tuned for one step, applied ten times to five points); those tasks are counted (without
    overflow warnings) and the mean, CI and median are over the others (None if none is left). The
    CNP takes no steps: its fine_tune yields the same φ at every step, so its numbers are the same at
    every step (computed once).
    """
    results: dict[str, Any] = {}
    for k in SHOTS:
        xs, ys = data[k]
        per_task, previous = [], None
        with np.errstate(over="ignore", invalid="ignore"):
            for phi in algorithm.fine_tune(theta, xs, ys, EVAL_STEPS):
                if phi is previous:  # the same parameters as the step before (the CNP's): the same errors
                    per_task.append(per_task[-1])
                    continue
                with tm.no_grad():
                    per_task.append(nn.mse_loss(model(phi, data["grid"]), data["truth"]).numpy().astype(np.float64))
                previous = phi
        results[str(k)] = summarize(np.stack(per_task))
        solved = common.inner_solve_summary([getattr(algorithm, "last_inner", None)])  # iMAML's, after its steps
        if solved is not None:
            results[str(k)]["inner_solve"] = solved
    return results


DIVERGED_MSE = 1e6  # predicting zero costs at most A²/2 = 12.5 here: an MSE above 1e6 has blown up (or overflowed)


def summarize(per_task: np.ndarray) -> dict[str, list]:
    """Per step (rows of ``per_task`` [steps, tasks]): the mean, 95% CI and median of the MSE over the
    tasks that stayed sane (None where none did), and the number that diverged: an MSE that overflowed
    or passed ``DIVERGED_MSE``."""
    summary: dict[str, list] = {"mse": [], "ci95": [], "median": [], "diverged": []}
    for errors in per_task:
        with np.errstate(invalid="ignore"):
            sane = errors[np.isfinite(errors) & (errors <= DIVERGED_MSE)]
        mean, ci = common.mean_ci(sane) if sane.size else (None, None)
        summary["mse"].append(None if mean is None else float(mean))
        summary["ci95"].append(None if ci is None else float(ci))
        summary["median"].append(float(np.median(sane)) if sane.size else None)
        summary["diverged"].append(int(errors.size - sane.size))
    return summary


def _tasks(record: dict[str, Any]) -> int:
    return record.get("tasks", 600)


def _cell(algo: str, result: dict[str, Any], step: int, tasks: int) -> str:
    if algo in NO_STEPS and step > 1:  # no steps: its one number stands under "1 step"
        return "—"
    mse, ci = result["mse"][step], result["ci95"][step]
    if "diverged" not in result:  # a record written before tasks were counted
        return "diverged (--eval-only again for the count)" if mse is None else f"{mse:.3f} ± {ci:.3f}"
    diverged = result["diverged"][step]
    if mse is None:
        return f"all {tasks} tasks diverged"
    if diverged == 0:
        return f"{mse:.3f} ± {ci:.3f}"
    return f"{mse:.3f} (median {result['median'][step]:.3f}; {diverged} of {tasks} diverged)"


def predictions(
    theta: nn.Params, algorithm: Any, model: Any, data: dict[str, Any], k: int, tasks: int
) -> dict[Any, np.ndarray]:
    """For Figure 2: the first ``tasks`` evaluation tasks, predictions after 0, 1 and 10 steps; for the
    CNP (no steps), its mean and σ after reading the K points, under "mean" and "std"."""
    xs, ys = (a[:tasks] for a in data[k])
    grid = data["grid"][:tasks]
    out: dict[Any, np.ndarray] = {}
    if isinstance(algorithm, meta.CNP):
        with tm.no_grad():
            mean, std = model.distribution(algorithm.adapt(theta, xs, ys), grid)
        out["mean"] = mean.numpy()[..., 0]
        if std is not None:
            out["std"] = std.numpy()[..., 0]
        return out
    with np.errstate(over="ignore", invalid="ignore"):  # see evaluate: fine-tuning may diverge
        for step, phi in enumerate(algorithm.fine_tune(theta, xs, ys, EVAL_STEPS)):
            if step in (0, 1, EVAL_STEPS):
                with tm.no_grad():
                    out[step] = model(phi, grid).numpy()[..., 0]
    return out


# ---- cost: ms per meta-iteration and peak memory -------------------------------------------------


def cost_record(path: Path, how: str, settings: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A results file's "cost": what the checkpoint at ``path`` measured (see common.meta_train), and
    how: "training" (timed during the run itself) or "measure-cost" (a separate timing run, whose
    ``settings`` are kept with it). None if the checkpoint measured nothing."""
    cost = common.saved_cost(path)
    if cost is None:
        return None
    record = dict(common.cost_summary(cost), how=how)
    if settings is not None:
        record["settings"] = settings
    return record


def measure_cost(algos: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Time ``args.measure_cost`` meta-iterations of each algorithm (after COST_WARMUP more), with this
    run's settings, from its initial θ: the same training loop, timing and memory measurement as a real
    run (common.meta_train), in a temporary folder that is then deleted. Nothing in --out changes."""
    import copy
    import tempfile

    costs = {}
    for algo in algos:
        with tempfile.TemporaryDirectory() as folder:
            timing = copy.copy(args)
            timing.out, timing.resume, timing.overwrite = Path(folder), False, False
            timing.iterations = timing.checkpoint_every = common.COST_WARMUP + args.measure_cost
            _, _, _, info, path = training_setup(algo, timing)
            settings = {key: value for key, value in info.items() if key != "algo"}
            try:
                train(algo, timing)
            except common.DemoError as error:  # its checkpoint is in a folder about to be deleted: nothing to resume
                cause = str(error).rsplit(". ", 1)[0]  # without what it says of checkpoints
                raise common.DemoError(f"--measure-cost: timing stopped, {cause}: time settings that train") from None
            costs[algo] = cost_record(path, "measure-cost", settings)
    return costs


def _cost_cells(record: dict[str, Any]) -> list[str]:
    cost = record.get("cost") or {}
    mark = "*" if cost.get("how") == "measure-cost" else ""
    ms, mb = cost.get("ms_per_iteration"), cost.get("peak_mb")
    return [f"{ms:.3g}{mark}" if ms is not None else "—", f"{mb:.3g}{mark}" if mb is not None else "—"]


# ---- reports -------------------------------------------------------------------------------------


NO_STEPS = {"cnp"}  # algorithms that take no gradient steps at test time


def saved_results(out: Path) -> dict[str, dict[str, Any]]:
    """Every algorithm's results/<algo>.json in ``out``, in the order of ALGORITHMS."""
    found = {}
    for algo in ALGORITHMS:
        path = out / "results" / f"{algo}.json"
        if path.is_file():
            found[algo] = common.json.loads(path.read_text())
    return found


def report(out: Path) -> None:
    """results.csv / results.md over every algorithm evaluated so far in ``out``, with their cost."""
    found = saved_results(out)
    if not found:
        return
    summaries = {algo: r.get("cost") or {} for algo, r in found.items()}
    rows = [
        [algo, r["iterations"], summaries[algo].get("ms_per_iteration"), summaries[algo].get("peak_mb"), k, step,
         *(r["eval"][str(k)].get(key, [None] * (EVAL_STEPS + 1))[step]
           for key in ("mse", "ci95", "median", "diverged"))]
        for algo, r in found.items()
        for k in SHOTS
        for step in range(EVAL_STEPS + 1)
    ]  # fmt: skip
    header = [
        "algorithm",
        "iterations",
        "ms_per_iteration",
        "peak_mb",
        "K",
        "steps",
        "mse",
        "ci95",
        "median",
        "diverged",
    ]
    common.write_csv(out / "results.csv", header, rows)
    counts = {_tasks(r) for r in found.values()}
    mixed = len(counts) > 1  # rows evaluated on different numbers of tasks say so in a column of their own
    lines = [
        "| algorithm | iterations | ms / meta-iteration | peak memory (MB) | "
        + ("tasks | " if mixed else "")
        + " | ".join(f"{k}-shot, {s} step{'s' if s > 1 else ''}" for k in SHOTS for s in (1, 10))
        + " |",
        "|---|---|---|---|" + ("---|" if mixed else "") + "---|" * (2 * len(SHOTS)),
    ]
    for algo, r in found.items():
        cells = [_cell(algo, r["eval"][str(k)], s, _tasks(r)) for k in SHOTS for s in (1, 10)]
        lead = f"| {algo} | {r['iterations']:,} | " + " | ".join(_cost_cells(r)) + " | "
        lines.append(lead + (f"{_tasks(r)} | " if mixed else "") + " | ".join(cells) + " |")
    table = "\n".join(lines)
    if mixed:
        title = "MSE on each row's held-out tasks after fine-tuning on K points (mean ± 1.96·std/√tasks)"
    else:
        tasks = counts.pop()
        title = f"MSE on {tasks} held-out tasks after fine-tuning on K points (mean ± 1.96·std/√{tasks})"
    notes = [
        "Cost: the wall time of one meta-iteration (sampling the batch, the meta-gradient, Adam's update) on "
        f"the machine that ran it, averaged over the training run but the first {common.COST_WARMUP} iterations "
        "of each session, and the peak memory NumPy and Python allocate during one meta-iteration (tracemalloc)."
    ]
    separately = sorted(
        {(r["cost"]["timed_iterations"]) for r in found.values() if (r.get("cost") or {}).get("how") == "measure-cost"}
    )
    if separately:
        notes.append(
            f"\\* timed by a separate run of {' or '.join(f'{n:,}' for n in separately)} meta-iterations with the "
            "same settings (`--measure-cost`), not during the training run."
        )
    if any(any(r["eval"][str(k)].get("diverged", [0])) for r in found.values() for k in SHOTS):
        notes.append(
            f"“n of N diverged”: fine-tuning made those tasks' MSE overflow or pass {DIVERGED_MSE:.0e} (predicting "
            "zero costs at most 12.5); the mean, its interval and the median are over the other tasks."
        )
    for algo, r in found.items():
        solved = {k: r["eval"][str(k)].get("inner_solve") for k in SHOTS}
        if all(solved.values()):
            notes.append(
                f"{algo}'s inner problems after the {EVAL_STEPS} test-time steps: "
                + "; ".join(f"{k}-shot: {common.describe_inner_solve(v)}" for k, v in solved.items())
                + "."
            )
    if NO_STEPS & set(found):
        notes.append(
            f"{', '.join(sorted(NO_STEPS & set(found)))}: no gradient steps at test time; its prediction after "
            "reading the K points (one forward pass) stands under “1 step”, and “—” under “10 steps”."
        )
    (out / "results.md").write_text(f"# Sinusoid regression: {title}\n\n{table}\n\n" + "\n\n".join(notes) + "\n")
    print(f"\n{title}:\n")
    print(table)


def figure2(algos: list[str]) -> dict[str, list[str]]:
    """Figure 2's files and the algorithms each shows: one per algorithm, beside the pretrained
    baseline when it was trained too (the paper's Figure 2 is MAML beside it). fig2_adaptation.png is
    that pair only, so that a run of other algorithms in the same --out never replaces it; the others
    are fig2_adaptation_<algorithms>.png."""
    baseline = ["pretrained"] if "pretrained" in algos else []
    files = {}
    for algo in algos:
        if algo == "pretrained" and len(algos) > 1:
            continue
        shown = [algo] + [a for a in baseline if a != algo]
        name = "fig2_adaptation.png" if shown == ["maml", "pretrained"] else f"fig2_adaptation_{'_'.join(shown)}.png"
        files[name] = shown
    return files


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
            if algo in NO_STEPS:  # no steps: one number, a level line across the plot
                ax.axhline(mse[0], color="k", ls="--", lw=1, label=f"{algo} (no steps: reads the K points)")
                continue
            ax.errorbar(range(EVAL_STEPS + 1), mse, yerr=ci, marker="o", ms=3, capsize=2, label=algo)
        ax.set_xlabel("number of gradient steps at test time")
        counts = sorted({_tasks(r) for r in found.values()})
        ax.set_ylabel(f"mean squared error ({' / '.join(map(str, counts))} tasks)")
        ax.set_title("Sinusoid, K = 10 (cf. Finn et al. 2017, Figure 3)")
        ax.set_yscale("log")
        ax.set_ylim(top=10)  # a curve that diverges leaves through the top (its numbers are in results.md)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the curves, not over them
        fig.savefig(out / "fig3_steps.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        print(f"figure: {out / 'fig3_steps.png'}")
    for name, shown in figure2(list(trained)).items():
        _figure2(plt, out / name, shown, data, trained)


def _figure2(plt: Any, path: Path, shown: list[str], data: dict[str, Any], trained: dict[str, tuple]) -> None:
    """Each algorithm of ``shown`` (a row) adapting to three test tasks from K = 10 points."""
    tasks, k = 3, 10
    fig, axes = plt.subplots(len(shown), tasks, figsize=(4 * tasks, 3 * len(shown)), squeeze=False)
    grid = data["grid"][0, :, 0]
    for row, algo in enumerate(shown):
        theta, algorithm, model = trained[algo]
        preds = predictions(theta, algorithm, model, data, k, tasks)
        for t in range(tasks):
            ax = axes[row][t]
            ax.plot(grid, data["truth"][t, :, 0], "r", label="ground truth")
            ax.plot(data[k][0][t, :, 0], data[k][1][t, :, 0], "k^", label=f"the {k} points it adapts to")
            if "mean" in preds:  # the CNP: its prediction after reading the points, ± 2σ
                ax.plot(grid, preds["mean"][t], "-", color="C0", label="after reading the points (no steps)")
                if "std" in preds:
                    low, high = preds["mean"][t] - 2 * preds["std"][t], preds["mean"][t] + 2 * preds["std"][t]
                    ax.fill_between(grid, low, high, color="C0", alpha=0.2, label="± 2σ")
            else:
                for step, style in ((0, ":"), (1, "--"), (EVAL_STEPS, "-")):
                    label = f"after {step} step{'s' if step != 1 else ''}"
                    ax.plot(grid, preds[step][t], style, color="C0", label=label)
            ax.set_title(f"{algo}, task {t + 1}")
            ax.set_ylim(-6, 6)
            if t == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"figure: {path}")


# ---- command line ----------------------------------------------------------------------------------


def parse_inner_steps(text: str | None, algos: list[str]) -> dict[str, int]:
    """--inner-steps: one number for every algorithm of ``algos`` with an inner loop, or NAME=STEPS
    pairs (``reptile=1,maml=5``) for some of them; the others keep INNER_STEPS. Every mistake is a
    one-line error: a value that is not an integer >= 1, an unknown algorithm, one without an inner
    loop, one --algo does not train, or one named twice."""
    looped = [a for a in algos if a in INNER_STEPS]
    steps = {a: INNER_STEPS[a] for a in looped}
    if text is None:
        return steps

    def count(value: str, what: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise common.DemoError(
                f"--inner-steps: {what} is not a number of steps; give one integer (--inner-steps 5) or "
                "NAME=STEPS pairs (--inner-steps reptile=1,maml=5)"
            ) from None
        if not 1 <= number <= MAX_INNER_STEPS:
            raise common.DemoError(
                f"--inner-steps must be from 1 to {MAX_INNER_STEPS:,} (exact MAML keeps every step's graph), got {what}"
            )
        return number

    if "=" not in text:
        if not looped:
            raise common.DemoError(f"--inner-steps: none of {', '.join(algos)} has an inner loop")
        number = count(text.strip(), repr(text))
        return {a: number for a in looped}
    named: list[str] = []
    for pair in text.split(","):
        name, _, value = pair.partition("=")
        name = name.strip()
        if name not in ALGORITHMS:
            raise common.DemoError(f"--inner-steps: unknown algorithm {name!r}; choose from {', '.join(INNER_STEPS)}")
        if name in NO_INNER_LOOP:
            raise common.DemoError(f"--inner-steps {pair.strip()}: {NO_INNER_LOOP[name]}")
        if name not in algos:
            raise common.DemoError(f"--inner-steps {pair.strip()}: --algo does not train {name}")
        if name in named:
            raise common.DemoError(f"--inner-steps names {name} twice")
        named.append(name)
        steps[name] = count(value.strip(), repr(pair.strip()))
    return steps


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
    parser.add_argument(
        "--inner-steps",
        default=None,
        metavar="STEPS or NAME=STEPS,...",
        help="inner steps in training, for every algorithm with an inner loop (5) or by name (reptile=1,maml=5); "
        f"default: {', '.join(f'{a}={n}' for a, n in INNER_STEPS.items())}",
    )
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
    parser.add_argument(
        "--measure-cost",
        type=int,
        default=None,
        metavar="ITERATIONS",
        help="no training: time this many meta-iterations of each --algo with these settings and add the cost "
        "to its results/<algo>.json in --out where that has none measured in training; then the tables",
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
    if args.measure_cost is not None:  # a timing run trains nothing to keep: flags about that would be ignored
        ignored = sorted(common.explicit_flags(parser, argv) & {"iterations", "paper", "checkpoint_every", "resume",
                                                                "overwrite", "eval_tasks", "eval_seed"})  # fmt: skip
        if ignored:
            shown = ", ".join(f"--{flag.replace('_', '-')}" for flag in ignored)
            raise common.DemoError(
                f"--measure-cost times meta-iterations and keeps no checkpoint nor evaluation: drop {shown}"
            )
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
    if args.measure_cost is not None:
        common.check_at_least(args, 1, "measure_cost")
    common.check_positive(args, "inner_lr", "meta_lr", "clip_grad_norm")
    args.inner_steps = parse_inner_steps(args.inner_steps, args.algos)
    if args.resume and args.overwrite:
        raise common.DemoError("--resume and --overwrite contradict each other: choose one")
    itemsize = 8 if args.dtype == "float64" else 4  # the largest arrays: the evaluation grid's activations
    width = CNP["representation"] if "cnp" in args.algos else 40
    common.check_memory(20 * args.eval_tasks * 100 * width * itemsize, f"--eval-tasks {args.eval_tasks}")
    common.check_memory(
        20 * args.meta_batch * 2 * args.k * width * itemsize, f"--meta-batch {args.meta_batch} x --k {args.k}"
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
        + ["results.md", "results.csv", "fig3_steps.png", *figure2(written)],
    )  # fmt: skip
    return args


def timing_targets(args: argparse.Namespace) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """For --measure-cost, before any work: the algorithms to time (those whose results/<algo>.json in
    --out has no cost measured during training, a run too short to time included, or that have no
    results yet) and their results. A results file that records other settings than this run's is an
    error: the cost would not be its own."""
    targets, records = [], {}
    for algo in args.algos:
        path = args.out / "results" / f"{algo}.json"
        record = None
        if path.is_file():
            try:
                record = common.json.loads(path.read_text())
            except ValueError as exc:
                raise common.DemoError(f"{path} is not a results file ({exc})") from None
        cost = (record or {}).get("cost") or {}
        if cost.get("how") == "training" and cost.get("ms_per_iteration") is not None:
            print(f"{algo}: {path} holds the cost measured during its training run: kept, not timed again")
            continue
        recorded = (record or {}).get("settings")
        if recorded:
            ours = {key: value for key, value in training_setup(algo, args)[3].items() if key != "algo"}
            differ = [f"{k}={recorded.get(k)!r} (this run: {v!r})" for k, v in ours.items() if recorded.get(k) != v]
            if differ:
                raise common.DemoError(
                    f"--measure-cost: {path} was trained with other settings: {'; '.join(differ)}. Time it with "
                    "its settings"
                )
        targets.append(algo)
        if record is not None:
            records[algo] = record
    return targets, records


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    common.use_device(args.device)
    out = args.out
    if args.measure_cost is not None:
        targets, records = timing_targets(args)
        print(f"timing {args.measure_cost:,} meta-iterations of {', '.join(targets) or 'nothing'} ({args.dtype})")
        for algo, cost in measure_cost(targets, args).items():
            peak = "not measured on the GPU" if cost["peak_mb"] is None else f"{cost['peak_mb']:.3g} MB"
            summary = f"{cost['ms_per_iteration']:.3g} ms per meta-iteration, peak {peak}"
            if algo in records:
                records[algo]["cost"] = cost
                common.write_json(out / "results" / f"{algo}.json", records[algo])
                print(f"{algo}: {summary} (added to {out / 'results' / f'{algo}.json'})")
            else:
                print(f"{algo}: {summary} (no results/{algo}.json in {out} to add it to)")
        report(out)
        return 0
    datasets: dict[str, dict[str, Any]] = {}

    def data_for(dtype: str) -> dict[str, Any]:
        """The held-out tasks in ``dtype``: each model is evaluated in its own dtype."""
        if dtype not in datasets:
            datasets[dtype] = evaluation_tasks(args.eval_seed, args.eval_tasks, dtype)
        return datasets[dtype]

    trained: dict[str, tuple] = {}

    def record(algo: str, theta: nn.Params, algorithm: Any, model: Any, iterations: int, path: Path) -> None:
        """Evaluate, and write results/<algo>.json: the numbers, the settings and the cost of its
        checkpoint (the training run's own, or none if it measured none)."""
        trained[algo] = (theta, algorithm, model)
        evaluation = evaluate(theta, algorithm, model, data_for(model.dtype))
        info = common.load_checkpoint(path)[1]
        settings = {key: info[key] for key in ("dtype", *SETTINGS) if key in info}
        if algo in INNER_STEPS:  # a checkpoint from before --inner-steps: the steps load_for_eval assumed
            settings.setdefault("inner_steps", algorithm.inner_steps)
        result = dict(
            algo=algo, iterations=iterations, tasks=args.eval_tasks, settings=settings,
            cost=cost_record(path, "training"), eval=evaluation,
        )  # fmt: skip
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
            record(algo, *train(algo, args), training_setup(algo, args)[4])
    report(out)
    figures(out, data_for(next(iter(trained.values()))[2].dtype) if trained else data_for(args.dtype), trained)
    return 0


SETTINGS = ("seed", "inner_lr", "inner_steps", "meta_lr", "k", "meta_batch", "clip_grad_norm")  # a run's, in results


if __name__ == "__main__":
    sys.exit(common.run(main))
