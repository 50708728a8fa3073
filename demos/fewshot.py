"""N-way K-shot classification with the Conv4 network (Finn et al. 2017, section 5.2).

Episodes of N classes with K support and Q query images each; the Conv4 network (4 blocks of
3x3 conv, batch norm with the batch's own statistics, ReLU, 2x2 max-pool; a linear head) is
meta-trained with MAML (or --algo) and evaluated on 600 test episodes: accuracy on the query
images after fine-tuning on the support images, mean ± 1.96·std/√600.

Data, never downloaded: by default a generated set of handwritten characters (demos/characters.py:
1000 training, 100 validation and 300 test classes of random strokes, 20 drawings each); with
--omniglot PATH the real Omniglot from its standard folders (1,200 training characters plus
rotations, as in the paper, the last 100 of them held out for validation as in Finn et al.'s code;
423 test characters).

    python -m demos.fewshot                             # CPU defaults, about 8 minutes
    python -m demos.fewshot --omniglot ~/data/omniglot --paper   # the paper's setting (use a GPU)

CPU defaults are smaller than the paper's, and the run says so: 16 filters instead of 64,
4 tasks per meta-batch instead of 32, 3,000 iterations instead of 40,000: 6 minutes at 1 shot, 13 at
5 shots on one core. MAML's 5-shot validation accuracy has levelled off by then (94.1 -> 94.6% over the
last 1,000 iterations); at 1 shot it still climbs slowly (83.0 -> 84.6%; 6,000 iterations test at
87.8% instead of 85.0%), which a longer --iterations buys. Every 250
iterations the run is validated on the same 50 episodes and checkpointed; the parameters of the
best validation accuracy are kept (checkpoints/<run>_best.npz) and are the ones tested. --paper sets the
paper's values (5-way 1-shot: α = 0.4, 1 inner step, 10 at test time, meta-batch 32, 40k iterations).
Reptile and iMAML differentiate no inner step: they take more, smaller ones (α/4, and at least 5 steps).
--eval-only CHECKPOINT tests a checkpoint again, with the settings it was trained with, into
results/<checkpoint>_eval.json: the training run's results/<run>.json and figure are left as they are.

MAML++ (Antoniou et al. 2019, §4) piece by piece: --algo maml++ learns a step size per layer and
inner step (LSLR); --multi-step-loss (weights 0.3 / 0.7, or annealed towards the last step over
N iterations with --anneal-multi-step-loss N), --per-step-bn, --first-order-until N and --cosine-lr
MIN_LR add its other options (with --algo maml, fomaml or maml++; the first two need --inner-steps >= 2):

    python -m demos.fewshot --algo maml++ --inner-steps 3 --eval-steps 3 --multi-step-loss --per-step-bn \\
        --first-order-until 150 --cosine-lr 1e-5
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

import tinymeta as tm
from demos import characters, common
from demos.sinusoid import MAX_INNER_STEPS, step_loss_weights
from tinymeta import meta, nn

ALGORITHMS = ["maml", "fomaml", "metasgd", "maml++", "anil", "reptile", "imaml", "r2d2"]
MAML_CLASS = ("maml", "fomaml", "maml++")  # the algorithms whose options MAML++'s are (tinymeta.meta.MAML)
VALIDATION_SEED = 54321  # every validation point on the same episodes, so that the best is a fair pick
PAPER = dict(filters=64, meta_batch=32, iterations=40_000, eval_steps=10, queries=15)
KEEPS_STEP_GRAPHS = ("maml", "maml++", "metasgd", "anil")  # their meta-gradient keeps every inner step's graph
SMALLER_STEPS = ("reptile", "imaml")  # they differentiate no inner step: they take more, smaller ones
CLOSED_FORM = "r2d2"  # its head is solved in closed form: no inner step to take, size or weigh
INNER_LOOP_FLAGS = ("inner_lr", "inner_steps", "eval_steps", "multi_step_loss", "anneal_multi_step_loss",
                    "per_step_bn", "first_order_until")  # fmt: skip


def inner_loop(algo: str, inner_lr: float, inner_steps: int) -> tuple[float, int]:
    """The step size and number of inner steps ``algo`` trains with: --inner-lr and --inner-steps, except
    for Reptile and iMAML, which differentiate no inner step and so take more, smaller ones: α/4, and
    at least 5 steps."""
    if algo in SMALLER_STEPS:
        return inner_lr / 4, max(inner_steps, 5)
    return inner_lr, inner_steps


def make_model(args: argparse.Namespace) -> nn.Conv4:
    """Conv4, with one set of batch-norm weights and biases per inner step under --per-step-bn."""
    per_step_bn = args.inner_steps if getattr(args, "per_step_bn", False) else None
    return nn.Conv4(n_way=args.ways, filters=args.filters, dtype=args.dtype, per_step_bn=per_step_bn)


def predict(model: nn.Conv4, params: nn.Params, x: Any, steps: int) -> tm.Tensor:
    """The logits of the parameters after ``steps`` inner steps: with per-step batch norm, with the
    weights of the step that produced them (step ``steps`` - 1; θ itself, after none, with step 0's)."""
    return model(params, x) if model.per_step_bn is None else model(params, x, step=max(steps - 1, 0))


def make_algorithm(algo: str, model: nn.Conv4, args: argparse.Namespace) -> Any:
    def loss(params: nn.Params, x: Any, y: Any) -> tm.Tensor:
        return nn.cross_entropy(model(params, x), y)

    def loss_at(params: nn.Params, x: Any, y: Any, step: int) -> tm.Tensor:  # per-step batch norm
        return nn.cross_entropy(model(params, x, step=step), y)

    if algo == CLOSED_FORM:  # no inner steps: the head is solved in closed form (parse refuses the inner-loop flags)
        return meta.make("r2d2", loss, features=model.features, ways=args.ways)
    lr, steps = args.inner_lr, args.inner_steps
    settings = {
        "anil": dict(head=model.head_names),
        "reptile": dict(zip(("inner_lr", "inner_steps"), inner_loop(algo, lr, steps))),
        "imaml": dict(zip(("inner_lr", "inner_steps"), inner_loop(algo, lr, steps)), lam=2.0, cg_steps=5),
    }
    mamlpp: dict[str, Any] = {}  # MAML++'s options, each an option of MAML (parse allows them with MAML_CLASS only)
    if getattr(args, "anneal_multi_step_loss", None) is not None:
        mamlpp["step_loss_weights"] = meta.annealed_step_loss_weights(steps, args.anneal_multi_step_loss)
    elif getattr(args, "multi_step_loss", False):
        mamlpp["step_loss_weights"] = step_loss_weights(steps)
    if getattr(args, "first_order_until", None) is not None:
        mamlpp["first_order_until"] = args.first_order_until
    if model.per_step_bn is not None:
        mamlpp["loss_takes_step"] = True
    return meta.make(
        algo,
        loss_at if model.per_step_bn is not None else loss,
        **{"inner_lr": lr, "inner_steps": steps, **settings.get(algo, {}), **mamlpp},
    )


def load_data(args: argparse.Namespace) -> dict[str, characters.CharacterSet]:
    if args.omniglot is not None:
        print(f"loading Omniglot from {args.omniglot}")
        return characters.omniglot_splits(args.omniglot, args.seed)  # train, validation and test disjoint
    train, validation, test = args.classes
    print(f"generating {train + validation + test} character classes (seed {args.seed})")
    return characters.generated_splits(args.seed, train, validation, test)


def accuracy_after_fine_tuning(
    algorithm: Any,
    model: nn.Conv4,
    theta: nn.Params,
    data: characters.CharacterSet,
    args: argparse.Namespace,
    episodes: int,
    seed: int,
    inner_reports: list | None = None,
) -> tuple[float, float]:
    """Query accuracy after ``args.eval_steps`` test-time steps, over ``episodes`` episodes: mean, 95% CI.
    A fine-tuning that diverges shows in the accuracy, without floating-point warnings. iMAML's report
    of each batch's inner problems (``last_inner``) is appended to ``inner_reports`` if given."""
    with np.errstate(all="ignore"):
        rng = np.random.default_rng(seed)
        scores = []
        chunk = 20  # episodes per batched pass: bounds the memory of the im2col columns
        for start in range(0, episodes, chunk):
            tasks = min(chunk, episodes - start)
            xs, ys, xq, yq = data.episodes(rng, tasks, args.ways, args.shots, args.eval_queries)
            xs, xq = xs.astype(args.dtype), xq.astype(args.dtype)
            phi = None
            for phi in algorithm.fine_tune(theta, xs, ys, args.eval_steps):  # noqa: B007  (keep the last)
                pass
            if inner_reports is not None:
                inner_reports.append(getattr(algorithm, "last_inner", None))
            with tm.no_grad():
                scores.append(nn.accuracy(predict(model, phi, xq, args.eval_steps), yq).numpy())
    mean, ci = common.mean_ci(np.concatenate(scores))
    return float(mean), float(ci)


# The settings a run is trained with: a checkpoint records them and --resume must match them.
TRAINING_SETTINGS = (
    "algo", "dtype", "ways", "shots", "queries", "filters", "meta_batch", "seed", "inner_lr", "inner_steps", "meta_lr",
    "clip_grad_norm", "classes", "eval_queries", "eval_steps", "val_episodes",
    "multi_step_loss", "anneal_multi_step_loss", "per_step_bn", "first_order_until", "cosine_lr", "cosine_lr_steps",
)  # fmt: skip
# MAML++'s options, recorded since they exist: a checkpoint that predates them was trained without them.
MAMLPP_DEFAULTS = {
    "multi_step_loss": False, "anneal_multi_step_loss": None, "per_step_bn": False, "first_order_until": None,
    "cosine_lr": None,
    "cosine_lr_steps": None,
}  # fmt: skip
# What --eval-only takes from the checkpoint: the model and how it adapts (a flag that says otherwise is
# an error), and how it was evaluated (a flag given explicitly may change that).
MODEL_SETTINGS = {
    "algo": lambda v: v in ALGORITHMS,
    "dtype": lambda v: v in ("float32", "float64"),
    "ways": lambda v: type(v) is int and v >= 2,
    "shots": lambda v: type(v) is int and v >= 1,
    "filters": lambda v: type(v) is int and v >= 1,
    "inner_lr": lambda v: type(v) in (int, float) and 0 < v < float("inf"),
    "inner_steps": lambda v: type(v) is int and v >= 1,
    "seed": lambda v: type(v) is int and v >= 0,
    "classes": lambda v: isinstance(v, list) and len(v) == 3 and all(type(c) is int and c >= 1 for c in v),
    "per_step_bn": lambda v: type(v) is bool,  # the parameters' names: the model's architecture
}
EVALUATION_SETTINGS = {
    "eval_steps": lambda v: type(v) is int and v >= 0,
    "eval_queries": lambda v: type(v) is int and v >= 1,
    "eval_episodes": lambda v: type(v) is int and v >= 1,
}
RECORDED_SETTINGS = {  # taken as they were, for the results record and the checks
    "meta_batch": lambda v: type(v) is int and v >= 1,
    "queries": lambda v: type(v) is int and v >= 1,
    "multi_step_loss": lambda v: type(v) is bool,
    "first_order_until": lambda v: v is None or (type(v) is int and v >= 1),
    "anneal_multi_step_loss": lambda v: v is None or (type(v) is int and v >= 1),
    "cosine_lr": lambda v: v is None or (type(v) in (int, float) and 0 <= v < float("inf")),
    "cosine_lr_steps": lambda v: v is None or (type(v) is int and v >= 1),
    "val_episodes": lambda v: type(v) is int and v >= 1,  # the episodes of the recorded validation accuracies
}
EVALUATION_FLAGS = {
    "eval_only",
    "eval_episodes",
    "eval_steps",
    "eval_queries",
    "omniglot",
    "out",
    "device",
    "no_progress",
}


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = common.ArgumentParser(
        prog="python -m demos.fewshot",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("--algo", choices=ALGORITHMS, default="maml")
    parser.add_argument("--omniglot", type=common.path_argument, metavar="PATH", help="read Omniglot from this folder")
    parser.add_argument("--ways", type=int, default=5, help="N classes per episode")
    parser.add_argument("--shots", type=int, default=1, help="K support images per class")
    parser.add_argument("--queries", type=int, default=5, help="query images per class in meta-training")
    parser.add_argument("--eval-queries", type=int, default=15, help="query images per class at test time")
    parser.add_argument("--filters", type=int, default=16, help="conv filters (the paper: 64)")
    parser.add_argument("--meta-batch", type=int, default=4, help="tasks per meta-iteration (the paper: 32)")
    parser.add_argument("--iterations", type=int, default=3000, help="meta-iterations (the paper: 40,000)")
    parser.add_argument(
        "--inner-lr",
        type=float,
        default=0.4,
        help="inner SGD step size α (reptile and imaml step with α/4; r2d2 takes no inner step)",
    )
    parser.add_argument(
        "--inner-steps",
        type=int,
        default=1,
        help=f"inner SGD steps in meta-training, 1 to {MAX_INNER_STEPS:,} (reptile and imaml take at least 5)",
    )
    parser.add_argument(
        "--eval-steps", type=int, default=10, help=f"fine-tuning steps at test time, 0 to {MAX_INNER_STEPS:,} (0: none)"
    )
    parser.add_argument("--meta-lr", type=float, default=1e-3)
    parser.add_argument("--eval-episodes", type=int, default=600)
    parser.add_argument(
        "--val-episodes", type=int, default=50, help="validation episodes (the same ones at every validation point)"
    )
    parser.add_argument(
        "--classes",
        type=int,
        nargs=3,
        default=[1000, 100, 300],
        metavar=("TRAIN", "VAL", "TEST"),
        help="generated character classes per split (not with --omniglot, whose split is its own)",
    )
    paper = ", ".join(f"--{k.replace('_', '-')} {v:,}" for k, v in PAPER.items())
    parser.add_argument("--paper", action="store_true", help=f"the paper's setting: {paper} (flags given win)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--out", type=common.path_argument, default=Path("runs/fewshot"))
    parser.add_argument("--clip-grad-norm", type=float, default=None, help="clip meta-gradients to this norm")
    parser.add_argument(
        "--multi-step-loss",
        action="store_true",
        help="MAML++: the query loss after every inner step, weighted 0.7 on the last and 0.3 shared by the others",
    )
    parser.add_argument(
        "--anneal-multi-step-loss",
        type=int,
        metavar="N",
        help="MAML++: the multi-step loss's weights from equal towards the last step over N iterations, then the "
        "last step's loss only (instead of 0.3 / 0.7 throughout)",
    )
    parser.add_argument(
        "--per-step-bn",
        action="store_true",
        help="MAML++: batch-norm weights and biases of their own for each inner step (--inner-steps sets)",
    )
    parser.add_argument(
        "--first-order-until",
        type=int,
        metavar="N",
        help="MAML++'s derivative-order annealing: first-order meta-gradients for iterations 0..N-1, exact after",
    )
    parser.add_argument(
        "--cosine-lr",
        type=float,
        metavar="MIN_LR",
        help="MAML++: anneal the meta learning rate from --meta-lr to MIN_LR over --iterations (cosine; MAML++: "
        "1e-5), the outer Adam's rate of any --algo (Reptile's outer step size ε too); the schedule's length is "
        "fixed when the run starts",
    )
    parser.add_argument(
        "--checkpoint-every", type=int, default=250, help="validate and checkpoint every this many iterations"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run from its checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="start over, replacing a checkpoint in --out")
    parser.add_argument(
        "--eval-only", type=common.path_argument, metavar="CHECKPOINT", help="evaluate a checkpoint as it was trained"
    )
    parser.add_argument("--no-progress", action="store_true")
    if parser.parse_args(argv).paper:  # the paper's values become the defaults: flags given explicitly still win
        parser.set_defaults(**PAPER)
    args = parser.parse_args(argv)
    explicit = common.explicit_flags(parser, argv)
    args.omniglot_split = None  # Omniglot's character counts per split, set below
    args.adopted = adopt_checkpoint_settings(args, explicit) if args.eval_only else {}
    common.check_at_least(args, 1, "shots", "queries", "eval_queries", "filters", "meta_batch", "iterations",
                          "inner_steps", "eval_episodes", "val_episodes", "checkpoint_every")  # fmt: skip
    common.check_at_least(args, 2, "ways")
    common.check_at_least(args, 0, "eval_steps", "seed")
    common.check_positive(args, "inner_lr", "meta_lr", "clip_grad_norm")
    for key, low, why in (("inner_steps", 1, ", and exact MAML keeps every step's graph"), ("eval_steps", 0, "")):
        if getattr(args, key) > MAX_INNER_STEPS:  # the time (and exact MAML's memory) grows with the steps
            raise common.DemoError(
                f"--{key.replace('_', '-')} must be from {low} to {MAX_INNER_STEPS:,} (each step is a pass over every "
                f"support set{why}), got {getattr(args, key):,}"
            )
    if args.resume and args.overwrite:
        raise common.DemoError("--resume and --overwrite contradict each other: choose one")
    if args.algo == CLOSED_FORM:
        given = [f"--{key.replace('_', '-')}" for key in INNER_LOOP_FLAGS if key in explicit]
        if given:
            who = f"{args.eval_only} holds R2-D2, which" if args.eval_only else "--algo r2d2"
            raise common.DemoError(
                f"{who} solves its head in closed form (no inner step to take, size or weigh, in training or at "
                f"test time): drop {', '.join(given)}"
            )
    if not args.eval_only:  # --eval-only took them from the checkpoint, checked there
        check_mamlpp_flags(args)
    if args.omniglot is None:
        for split, count in zip(("train", "validation", "test"), args.classes):
            if count < args.ways:
                raise common.DemoError(
                    f"--classes: the {split} split has {count} classes, fewer than --ways {args.ways}"
                )
        if args.shots + max(args.queries, args.eval_queries) > characters.EXAMPLES:
            raise common.DemoError(
                f"K = {args.shots} support + {max(args.queries, args.eval_queries)} query examples per class, but "
                f"generated classes have only {characters.EXAMPLES} examples per class; lower --shots or "
                "--(eval-)queries"
            )
        images = sum(args.classes) * characters.EXAMPLES * characters.SIZE**2 * 4
        common.check_memory(2 * images, f"--classes {' '.join(map(str, args.classes))} (generated images)")
    elif "classes" in explicit:
        raise common.DemoError(
            "--classes sets the splits of the generated characters, not Omniglot's (its own: 1,100 training, 100 "
            "validation and 423 test characters, each with its rotations): drop --classes"
        )
    elif not args.omniglot.is_dir():
        raise common.DemoError(f"--omniglot {args.omniglot} is not a folder")
    else:  # the layout, checked before any work (it lists folders, it reads no image)
        args.omniglot_split = list(characters.omniglot_split_sizes(args.omniglot))
        for split, count in zip(("train", "validation", "test"), args.omniglot_split):
            if count * characters.ROTATIONS < args.ways:
                raise common.DemoError(
                    f"--omniglot {args.omniglot}: the {split} split has {count * characters.ROTATIONS} classes "
                    f"({count} characters and their rotations), fewer than --ways {args.ways}"
                )
    if not args.eval_only:  # --eval-only builds no meta-gradient: the run that wrote the checkpoint did
        check_graph_memory(args, parser)
    name = f"{args.algo}_{args.ways}way{args.shots}shot"
    if args.eval_only:  # its own record: the training run's results and figure stay as they are
        files: tuple[str, ...] = (f"results/{eval_record_name(args.eval_only)}.json",)
    else:
        files = (
            f"results/{name}.json",
            f"checkpoints/{name}.npz",
            f"checkpoints/{name}_best.npz",
            f"{name}_curves.png",
        )
    common.prepare_out(args.out, folders=("results", "checkpoints"), files=files)
    return args


def eval_record_name(checkpoint: Path) -> str:
    """The name of --eval-only's results record: the checkpoint's, so that the best and the final
    parameters of a run have one each, and neither is the training run's own results/<run>.json."""
    return f"{checkpoint.stem}_eval"


def check_graph_memory(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Refuse, before any work, a meta-batch whose graph cannot fit: every task's support and query
    images through Conv4 (about 40 activations per pixel and filter), the support images once per inner
    step for the algorithms whose meta-gradient keeps every step's graph (the query images too with the
    multi-step loss). The error names the flag furthest above its default first: the size that is large."""
    graphs = args.inner_steps if args.algo in KEEPS_STEP_GRAPHS else 1
    per_task = args.ways * (args.shots * graphs + args.queries * (graphs if args.multi_step_loss else 1))
    activations = args.filters * characters.SIZE**2 * (8 if args.dtype == "float64" else 4) * 40  # per image
    sizes = ["filters", "meta_batch"] + (["inner_steps"] if graphs > 1 else [])
    sizes.sort(key=lambda key: getattr(args, key) / parser.get_default(key), reverse=True)
    first, *rest = (f"--{key.replace('_', '-')} {getattr(args, key):,}" for key in sizes)
    kept = ", which keeps every inner step's" if graphs > 1 else ""
    common.check_memory(
        args.meta_batch * per_task * activations, f"{first} (with {', '.join(rest)}: a meta-batch's graph{kept})"
    )


def check_mamlpp_flags(args: argparse.Namespace) -> None:
    """MAML++'s flags: options of MAML (--algo maml, fomaml, maml++), the per-step ones with more than
    one inner step, annealing that ends within the run, a final learning rate below --meta-lr. Sets
    ``args.cosine_lr_steps``, the length of the cosine schedule (recorded: --resume must keep it).
    --cosine-lr schedules the outer Adam's learning rate, which every --algo has (Reptile's meta-gradient
    is θ - φ̃, so the rate is its outer step size ε): it is allowed with all of them."""
    given = [
        flag
        for flag, on in (
            ("--multi-step-loss", args.multi_step_loss),
            ("--per-step-bn", args.per_step_bn),
            ("--first-order-until", args.first_order_until is not None),
            ("--anneal-multi-step-loss", args.anneal_multi_step_loss is not None),
        )
        if on
    ]
    if given and args.algo not in MAML_CLASS:
        raise common.DemoError(
            f"{given[0]} is an option of MAML's inner loop: use it with --algo {', '.join(MAML_CLASS)}, not {args.algo}"
        )
    per_step = {"--multi-step-loss": "weighs the query loss after", "--per-step-bn": "gives batch-norm weights to"}
    for flag in given:
        if flag in per_step and args.inner_steps < 2:
            raise common.DemoError(f"{flag} {per_step[flag]} each inner step: it needs --inner-steps 2 or more, got 1")
    if args.anneal_multi_step_loss is not None:
        if not args.multi_step_loss:
            raise common.DemoError(
                "--anneal-multi-step-loss anneals the multi-step loss's weights: add --multi-step-loss"
            )
        common.check_at_least(args, 1, "anneal_multi_step_loss")
        if args.anneal_multi_step_loss >= args.iterations:
            raise common.DemoError(
                f"--anneal-multi-step-loss {args.anneal_multi_step_loss} is not below --iterations {args.iterations}: "
                "the weights would still be moving towards the last step when the run ends, and it would never "
                "train on the last step's loss alone (MAML++ anneals over its first tenth)"
            )
    if args.first_order_until is not None:
        if args.algo == "fomaml":
            raise common.DemoError(
                "--first-order-until: --algo fomaml is first order throughout; anneal --algo maml or maml++"
            )
        common.check_at_least(args, 1, "first_order_until")
        if args.first_order_until >= args.iterations:
            raise common.DemoError(
                f"--first-order-until {args.first_order_until} is not below --iterations {args.iterations}: the "
                "whole run would be first order (that is --algo fomaml)"
            )
    if args.cosine_lr is not None and not (math.isfinite(args.cosine_lr) and 0 <= args.cosine_lr < args.meta_lr):
        raise common.DemoError(
            f"--cosine-lr must be a finite number >= 0 and below --meta-lr ({args.meta_lr:g}), got {args.cosine_lr}"
        )
    args.cosine_lr_steps = args.iterations if args.cosine_lr is not None else None


def adopt_checkpoint_settings(args: argparse.Namespace, explicit: set[str]) -> dict[str, Any]:
    """--eval-only evaluates a checkpoint as it was trained: its algorithm, inner step size and steps,
    N-way K-shot, filters, dtype, seed and classes (the data), its data source, and by default its
    evaluation settings. A flag given explicitly that contradicts the model's settings is an error;
    a recorded value that is not a valid setting means the file is damaged."""
    path = args.eval_only
    info = common.load_checkpoint(path)[1]
    if info.get("algo") not in ALGORITHMS or "ways" not in info:
        raise common.DemoError(f"{path} is not a few-shot checkpoint (it records no N-way few-shot run)")
    history = info.get("history", {})
    if not isinstance(history, dict):
        raise common.DemoError(f"{path}: its training record is malformed")
    info = {**MAMLPP_DEFAULTS, **info, "eval_episodes": history.get("eval_episodes")}
    settings = {**MODEL_SETTINGS, **EVALUATION_SETTINGS, **RECORDED_SETTINGS}
    missing = [key for key in settings if info.get(key) is None and key not in MAMLPP_DEFAULTS]
    if missing:
        raise common.DemoError(
            f"{path} does not record the settings {missing}: it cannot be evaluated as it was trained"
        )
    ignored = sorted(explicit - EVALUATION_FLAGS - set(MODEL_SETTINGS))
    if ignored:
        shown = ", ".join(f"--{flag.replace('_', '-')}" for flag in ignored)
        raise common.DemoError(f"--eval-only evaluates a checkpoint with its own settings: drop {shown}")
    adopted, conflicts = {}, []
    for key, valid in settings.items():
        if not valid(info[key]):
            raise common.DemoError(
                f"{path} records {key}={info[key]!r}, which is not a valid setting: the file is damaged"
            )
        if key in explicit and getattr(args, key) != info[key]:
            if key in MODEL_SETTINGS:
                conflicts.append(f"--{key.replace('_', '-')} {getattr(args, key)} (the checkpoint: {info[key]})")
            continue
        unused = info["algo"] == CLOSED_FORM and key in INNER_LOOP_FLAGS  # R2-D2 takes no inner step
        if not unused and (key not in MAMLPP_DEFAULTS or info[key] != MAMLPP_DEFAULTS[key]):  # MAML++'s if used
            adopted[key] = info[key]
        setattr(args, key, info[key])
    data = info.get("data")
    if not isinstance(data, str) or not data:
        raise common.DemoError(f"{path} records data={data!r}, not a data source: the file is damaged")
    if args.omniglot is None and data != "generated":
        if not Path(data).is_dir():
            raise common.DemoError(
                f"{path} was trained on Omniglot from {data}, which is not a folder here: pass --omniglot PATH"
            )
        args.omniglot = Path(data)
    elif args.omniglot is not None and data == "generated":
        conflicts.append(f"--omniglot {args.omniglot} (the checkpoint: generated characters)")
    if conflicts:
        raise common.DemoError(f"--eval-only {path} was trained otherwise: {'; '.join(conflicts)}; drop those flags")
    return adopted


def check_history(path: Path, history: dict) -> dict:
    """A checkpoint's training record, checked: a validation curve of numbers, an accuracy or None."""
    curves = history.get("curves", [])
    keys = ("iteration", "meta_loss", "val_accuracy", "val_ci95")

    def number(v: Any) -> bool:
        return type(v) in (int, float) and math.isfinite(v)

    well_formed = isinstance(curves, list) and all(
        isinstance(c, dict) and all(number(c.get(k)) for k in keys) for c in curves
    )
    for key in ("untrained_test_accuracy", "untrained_test_ci95"):
        well_formed = well_formed and (history.get(key) is None or number(history.get(key)))
    best = history.get("best")
    if best is not None:
        well_formed = (
            well_formed and isinstance(best, dict) and all(number(best.get(k)) for k in keys if k != "meta_loss")
        )
    if not well_formed:
        raise common.DemoError(f"{path}: its training record (validation curve, accuracy before training) is malformed")
    return history


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    common.use_device(args.device)
    model = make_model(args)
    algorithm = make_algorithm(args.algo, model, args)
    out, name = args.out, f"{args.algo}_{args.ways}way{args.shots}shot"
    path = out / "checkpoints" / f"{name}.npz"
    best_path = out / "checkpoints" / f"{name}_best.npz"  # the best validation accuracy's parameters
    info = {key: getattr(args, key) for key in TRAINING_SETTINGS}
    info["data"] = str(args.omniglot or "generated")
    if args.omniglot_split is not None:  # the characters of each split: --resume must keep them
        info["omniglot_split"] = args.omniglot_split
    if args.resume and args.eval_only is None and path.is_file():
        saved = common.load_checkpoint(path, common.RESUME_ADVICE)[1]
        for key, default in MAMLPP_DEFAULTS.items():  # a checkpoint from before MAML++'s options, resumed without them
            if key not in saved and info[key] == default:
                del info[key]
        check_resumable(path, saved, info, args)
    init = algorithm.init(model.init(args.seed))
    if args.eval_only is not None:  # everything about the checkpoint is checked before the data is made
        theta, recorded = common.load_params(args.eval_only, init)
        done = recorded.get("iteration")
        if type(done) is not int or done < 0:
            raise common.DemoError(f"{args.eval_only} records iteration={done!r}, not a count: the file is damaged")
        history = check_history(
            args.eval_only, recorded.get("history") or earlier_record(out / "results" / f"{name}.json", done)
        )
        shown = ", ".join(f"{k}={v}" for k, v in args.adopted.items())
        print(f"{args.eval_only}: evaluating with its training settings ({shown})")
        record_path = out / "results" / f"{eval_record_name(args.eval_only)}.json"
    else:
        common.check_start(path, init, info, args)
        resuming = args.resume and path.is_file()
        if best_path.exists() and not resuming:  # the best of a run whose checkpoint is gone, or being replaced
            if not args.overwrite:
                raise common.DemoError(
                    f"{best_path} holds the best checkpoint of an earlier run: pass --overwrite to start over, "
                    "or give another --out"
                )
            best_path.unlink()
        history = check_history(path, common.saved_history(path)) if resuming else {}
        history["eval_episodes"] = args.eval_episodes  # --eval-only evaluates as this run does
        print(
            f"{args.filters} filters, meta-batch {args.meta_batch}, {args.iterations:,} iterations "
            "(the paper: 64, 32 and 40,000, which --paper sets)"
        )
        record_path = out / "results" / f"{name}.json"
    inner_lr, inner_steps = inner_loop(args.algo, args.inner_lr, args.inner_steps)
    inner_flag = f"--inner-lr (now {args.inner_lr:g})"  # what a diverging inner loop asks to lower
    if args.algo in SMALLER_STEPS:
        raised = f", --inner-steps {args.inner_steps} raised to 5" if args.inner_steps < 5 else ""
        print(
            f"{args.algo} differentiates no inner step, so it takes more, smaller ones: {inner_steps} steps of "
            f"α/4 = {inner_lr:g} in meta-training (α: --inner-lr {args.inner_lr:g}{raised}), {args.eval_steps} of "
            "them at test time"
        )
        inner_flag = f"--inner-lr (now {args.inner_lr:g}: {args.algo} steps with α/4 = {inner_lr:g})"
    data = load_data(args)
    queries = {"train": (args.queries, "--queries"), "validation": (args.eval_queries, "--eval-queries")}
    queries["test"] = queries["validation"]
    for split, (count, flag) in queries.items():
        # fail now, not after training, if an episode asks for more classes or images than there are
        data[split].episodes(np.random.default_rng(0), 1, args.ways, args.shots, count, flag)

    if args.eval_only is None:
        if history.get("untrained_test_accuracy") is None:
            untrained = accuracy_after_fine_tuning(
                algorithm, model, init, data["test"], args, args.eval_episodes, 12345
            )
            history["untrained_test_accuracy"], history["untrained_test_ci95"] = untrained
        acc = history["untrained_test_accuracy"]
        print(f"before meta-training: test accuracy {100 * acc:.1f} ± {100 * history['untrained_test_ci95']:.1f}%")
        curves = history.setdefault("curves", [])

        def step(theta: nn.Params, rng: np.random.Generator, iteration: int) -> tuple[float, nn.Params]:
            annealed = args.first_order_until is not None or args.anneal_multi_step_loss is not None
            annealing = {"iteration": iteration} if annealed else {}
            xs, ys, xq, yq = data["train"].episodes(rng, args.meta_batch, args.ways, args.shots, args.queries)
            return algorithm.meta_grad(theta, xs.astype(args.dtype), ys, xq.astype(args.dtype), yq, **annealing)

        def validate(iteration: int, theta: nn.Params, running: float) -> str:
            """A point of the validation curve, always on the same episodes so that points compare; the
            best so far is kept (a copy of the checkpoint, parameters and record, at ``best_path``)."""
            acc, ci = accuracy_after_fine_tuning(
                algorithm, model, theta, data["validation"], args, args.val_episodes, seed=VALIDATION_SEED
            )
            curves.append(dict(iteration=iteration, meta_loss=running, val_accuracy=acc, val_ci95=ci))
            best = history.get("best")
            if best is None or acc > best["val_accuracy"]:
                history["best"] = best = dict(iteration=iteration, val_accuracy=acc, val_ci95=ci)
                arrays = {f"param/{n}": p.numpy() for n, p in theta.items()}
                common.save_checkpoint(best_path, arrays, dict(info, iteration=iteration, history=history))
            return f"val acc {acc:.3f} (best {best['val_accuracy']:.3f} at {best['iteration']})"

        probe = data["train"].episodes(
            np.random.default_rng(args.seed + 1), args.meta_batch, args.ways, args.shots, args.queries
        )

        def base_loss(theta: nn.Params) -> float:
            """The query loss of θ before any adaptation, on a fixed meta-batch."""
            start = next(algorithm.fine_tune(theta, probe[0].astype(args.dtype), probe[1], 0))
            with tm.no_grad():
                logits = predict(model, start, probe[2].astype(args.dtype), 0)
                return float(nn.cross_entropy(logits, probe[3]).numpy().mean())

        if args.cosine_lr is not None:  # a float equal to --meta-lr, which Adam calls with its step count
            args.meta_lr = nn.cosine_schedule(args.meta_lr, args.cosine_lr_steps, args.cosine_lr)

        theta, done = common.meta_train(
            name,
            step,
            init,
            path,
            info,
            args,
            validate,
            history,
            base_loss,
            inner=None if args.algo == CLOSED_FORM else inner_flag,  # R2-D2 has no inner loop to blame
            measure_cost=True,
        )
        theta, selected = best_checkpoint(best_path, history, init, theta, done)
    else:  # the checkpoint's own validation point, if the curve has one (the best's, or the last's)
        best = history.get("best") or {}
        point = next((c for c in history.get("curves", []) if c["iteration"] == done), None)
        recorded = best if best.get("iteration") == done else point
        selected = dict(iteration=done, val_accuracy=None if recorded is None else recorded["val_accuracy"])
        selected["best"] = best.get("iteration") == done

    reports: list = []
    acc, ci = accuracy_after_fine_tuning(
        algorithm, model, theta, data["test"], args, args.eval_episodes, seed=12345, inner_reports=reports
    )
    inner_solve = common.inner_solve_summary(reports)
    chance = 1 / args.ways
    print(
        f"\n{args.algo}, {args.ways}-way {args.shots}-shot, {'Omniglot' if args.omniglot else 'generated characters'}: "
        f"test accuracy {100 * acc:.1f} ± {100 * ci:.1f}% over {args.eval_episodes} episodes "
        f"({'the head solved in closed form' if args.algo == 'r2d2' else f'{args.eval_steps} fine-tuning steps'}; "
        f"chance {100 * chance:.0f}%), the parameters of iteration {selected['iteration']:,}"
        + selection(selected, history.get("best"), args.val_episodes)
    )
    if inner_solve is not None:
        print(f"after the {args.eval_steps} test-time steps: {common.describe_inner_solve(inner_solve)}")
    curves = history.get("curves", [])
    result = dict(
        algo=args.algo, ways=args.ways, shots=args.shots, iterations=done, filters=args.filters,
        meta_batch=info["meta_batch"], data=info["data"], test_accuracy=acc, test_ci95=ci,
        selected_iteration=selected["iteration"], selected_val_accuracy=selected["val_accuracy"],
        untrained_test_accuracy=history.get("untrained_test_accuracy"), episodes=args.eval_episodes,
        eval_steps=None if args.algo == CLOSED_FORM else args.eval_steps, curves=curves,
        cost=common.cost_summary(common.saved_cost(args.eval_only if args.eval_only is not None else path)),
        inner_solve=inner_solve,
        **{key: info.get(key, default) for key, default in MAMLPP_DEFAULTS.items()},
    )  # fmt: skip
    if args.eval_only is not None:
        result["checkpoint"] = str(args.eval_only)
    common.write_json(record_path, result)
    print(f"results: {record_path}")
    if args.eval_only is None:  # --eval-only leaves the training run's figure as it is
        plot_curves(out / f"{name}_curves.png", curves, args)
    return 0


def selection(selected: dict, best: dict | None, episodes: int) -> str:
    """What the tested parameters are, after "the parameters of iteration N": the best validation
    accuracy, or their own validation accuracy beside the best, or nothing when no validation point
    was recorded at their iteration."""
    if selected["val_accuracy"] is None:
        return ""
    own = f"{100 * selected['val_accuracy']:.1f}% on {episodes} episodes"
    if selected["best"]:
        return f", the best validation accuracy ({own})"
    if best is None:
        return f" (validation accuracy {own})"
    return (
        f" (validation accuracy {own}; the best, {100 * best['val_accuracy']:.1f}%, was at iteration "
        f"{best['iteration']:,})"
    )


def check_resumable(path: Path, saved: dict, info: dict, args: argparse.Namespace) -> None:
    """What --resume cannot change, said in the flags' terms before the generic comparison of settings:
    the cosine schedule's length (fixed when the run started) and Omniglot's split (a run from before the
    validation characters were held out validated on the test characters)."""
    cosine, steps = saved.get("cosine_lr"), saved.get("cosine_lr_steps")
    if (cosine, steps) != (args.cosine_lr, args.cosine_lr_steps) and (cosine is None or type(steps) is int):
        if cosine is None:
            raise common.DemoError(
                f"--resume: {path} was trained without --cosine-lr, at a constant meta learning rate, and a cosine "
                "schedule is fixed when a run starts (over its --iterations): drop --cosine-lr to resume it, or start "
                "a new run with it (--overwrite, or another --out)"
            )
        this = "without --cosine-lr" if args.cosine_lr is None else f"to --iterations {args.iterations:,}"
        if args.cosine_lr is not None and args.cosine_lr != cosine:
            this = f"with --cosine-lr {args.cosine_lr:g}"
        raise common.DemoError(
            f"--resume: {path} anneals the meta learning rate with --cosine-lr {cosine:g} over --iterations "
            f"{steps:,}, a schedule fixed when the run started, so it cannot go on {this}: resume with --cosine-lr "
            f"{cosine:g} --iterations {steps:,} to finish the run, or start a new one (--overwrite, or another --out)"
        )
    if "omniglot_split" in info and saved.get("data") == info["data"] and "omniglot_split" not in saved:
        raise common.DemoError(
            f"--resume: {path} was trained before the demo held Omniglot validation characters out of the training "
            f"ones (it validated on the test characters), so it cannot go on with the new split: --eval-only {path} "
            "tests it as it is; start a new run with --overwrite, or another --out"
        )


def best_checkpoint(
    path: Path, history: dict, template: nn.Params, last: nn.Params, iterations: int
) -> tuple[nn.Params, dict]:
    """The parameters a trained run is tested with: those of its best validation accuracy (saved at
    ``path`` when it was reached), and which they are. A run that recorded no best (it was trained before
    the demo kept one) is tested with its final parameters."""
    best = history.get("best")
    if best is None:
        print("no best-validation checkpoint was recorded (the run predates them): testing the final parameters")
        return last, dict(iteration=iterations, val_accuracy=None, best=False)
    if not path.is_file():
        raise common.DemoError(
            f"{path}, the best-validation checkpoint of this run (iteration {best['iteration']}), is missing; "
            f"--eval-only {path.with_name(path.name.replace('_best', ''))} tests the final parameters"
        )
    theta, recorded = common.load_params(path, template)
    if recorded.get("iteration") != best["iteration"]:
        raise common.DemoError(
            f"{path} holds iteration {recorded.get('iteration')!r}, but this run's best validation accuracy was at "
            f"iteration {best['iteration']}: the file belongs to another run"
        )
    return theta, dict(iteration=best["iteration"], val_accuracy=best["val_accuracy"], best=True)


def earlier_record(path: Path, iterations: int) -> dict:
    """For a checkpoint written before checkpoints carried their history: the training record of the
    results file already in --out, if it describes a run of the same length (else nothing)."""
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict) or record.get("iterations") != iterations:
        return {}
    return {"curves": record.get("curves") or [], "untrained_test_accuracy": record.get("untrained_test_accuracy")}


def plot_curves(path: Path, curves: list[dict[str, float]], args: argparse.Namespace) -> None:
    if not curves:
        return
    plt = common.pyplot()
    if plt is None:
        return
    its = [c["iteration"] for c in curves]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    left.plot(its, [c["meta_loss"] for c in curves], "o-")
    left.set_xlabel("meta-iteration")
    left.set_ylabel("meta-training query loss (running)")
    acc = np.array([c["val_accuracy"] for c in curves])
    ci = np.array([c["val_ci95"] for c in curves])
    right.plot(its, acc, "o-", color="C1")
    right.fill_between(its, acc - ci, acc + ci, color="C1", alpha=0.2)
    right.axhline(1 / args.ways, color="grey", ls=":", label="chance")
    right.set_xlabel("meta-iteration")
    right.set_ylabel("validation accuracy")
    right.legend()
    fig.suptitle(f"{args.algo}, {args.ways}-way {args.shots}-shot")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"figure: {path}")


if __name__ == "__main__":
    sys.exit(common.run(main))
