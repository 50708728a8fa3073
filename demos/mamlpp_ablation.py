"""MAML++ piece by piece (Antoniou, Edwards & Storkey, ICLR 2019, §4) on the few-shot demo.

Each row adds one of MAML++'s changes to the row above and trains the few-shot demo from the same
seed (5-way 1-shot generated characters, 16 filters, meta-batch 4, 3 inner steps of α = 0.4, 3 at
test time, 1,000 meta-iterations), then reports the test accuracy over 600 episodes, the best
validation accuracy, and the cost of a meta-iteration timed during training:

    python -m demos.mamlpp_ablation                 # about 70 minutes on one CPU core
    python -m demos.mamlpp_ablation --iterations 20 --out /tmp/ablation   # a quick look

The table is written to <out>/mamlpp_ablation.md (results/fewshot/mamlpp_ablation.md holds the
one in the README). Each row is one ``python -m demos.fewshot`` run whose command is printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from demos import common, fewshot

COMMON = "--ways 5 --shots 1 --filters 16 --meta-batch 4 --inner-steps 3 --eval-steps 3 --seed 0 --no-progress"
ALL_OF_MAMLPP = "--algo maml++ --multi-step-loss --per-step-bn"
ANNEAL_ORDER = "--first-order-until {third}"  # first order for the first third of the run
# MAML++ uses the multi-step loss for its first 15 of 150 epochs: weights annealed over the first tenth
VARIANTS = {  # folder: (row label, the flags that make it)
    "1_maml": ("MAML", "--algo maml"),
    "2_lslr": ("+ LSLR (learned per-layer per-step step sizes)", "--algo maml++"),
    "3_msl": ("+ multi-step loss", "--algo maml++ --multi-step-loss"),
    "4_psbn": ("+ per-step batch norm", ALL_OF_MAMLPP),
    "5_anneal": ("+ derivative-order and cosine-LR annealing", f"{ALL_OF_MAMLPP} {ANNEAL_ORDER} --cosine-lr 1e-5"),
    "6_doa_only": ("row 4 + derivative-order annealing only", f"{ALL_OF_MAMLPP} {ANNEAL_ORDER}"),
    "7_cosine_only": ("row 4 + cosine-LR annealing only", f"{ALL_OF_MAMLPP} --cosine-lr 1e-5"),
    "8_msl_anneal": ("row 4 + annealed multi-step loss weights", ALL_OF_MAMLPP + " --anneal-multi-step-loss {tenth}"),
}  # fmt: skip


def row(label: str, folder: Path) -> str:
    """One Markdown row from a finished run's results file."""
    (results,) = (p for p in (folder / "results").glob("*.json") if not p.name.endswith("_eval.json"))
    r = json.loads(results.read_text())
    selected = r.get("selected_val_accuracy")  # the best-validation checkpoint, the one tested
    best_cell = f"{100 * selected:.1f}% ({r['selected_iteration']:,})" if selected is not None else "—"
    ms, mb = r["cost"]["ms_per_iteration"], r["cost"]["peak_mb"]
    return (
        f"| {label} | {100 * r['test_accuracy']:.1f} ± {100 * r['test_ci95']:.1f}% | "
        f"{100 * r['untrained_test_accuracy']:.1f}% | {best_cell} | "
        f"{'—' if ms is None else f'{ms:.0f}'} | {'—' if mb is None else f'{mb:.0f}'} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demos.mamlpp_ablation", description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=1000, help="meta-iterations per row")
    parser.add_argument("--out", type=common.path_argument, default=Path("runs/mamlpp_ablation"))
    parser.add_argument("--resume", action="store_true", help="continue (or skip) the rows already run in --out")
    args = parser.parse_args(argv)
    common.check_at_least(args, 10, "iterations")  # the annealings need a first third and a first tenth
    table = [
        f"MAML++ ablation: {COMMON} --iterations {args.iterations}, 600 test episodes",
        "",
        "| variant | test accuracy | before meta-training | best validation accuracy (iteration: the one tested) "
        "| ms / meta-iteration | peak MB |",
        "|---|---|---|---|---|---|",
    ]
    for folder, (label, flags) in VARIANTS.items():
        argv_row = [*COMMON.split(), *flags.format(third=args.iterations // 3, tenth=args.iterations // 10).split()]
        argv_row += ["--iterations", str(args.iterations), "--out", str(args.out / folder)]
        argv_row += ["--resume"] if args.resume else ["--overwrite"]
        print(f"=== {label}: python -m demos.fewshot {' '.join(argv_row)}", flush=True)
        fewshot.main(argv_row)
        table.append(row(label, args.out / folder))
    (args.out / "mamlpp_ablation.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(common.run(main))
