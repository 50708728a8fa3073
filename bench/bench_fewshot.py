"""The cost of one meta-iteration of each few-shot algorithm, timed side by side.

    python bench/bench_fewshot.py            # writes bench/results/fewshot.md and fewshot.json

The few-shot demo measures its own ms per iteration while it trains, but its runs shared this
2-core CPU with other jobs, so those figures are inflated by whatever ran beside them. Here every
algorithm computes one meta-gradient on the same fixed meta-batch, at the demo's CPU defaults
(Conv4 with 16 filters, 5-way, meta-batch 4, 5 query images per class, α = 0.4, one inner step;
Reptile and iMAML α/4 and 5 steps; R2-D2 no inner step: `demos/fewshot.py` builds each learner),
in interleaved rounds (every algorithm once per round, the best round kept), one BLAS thread. The
optimiser update, the same for all and small, is left out; the ratio to MAML is the comparable figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
from pathlib import Path

from timing import interleaved_best_times  # first: one thread per framework, before NumPy loads

# isort: split
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from demos import characters, fewshot  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def meta_gradient(algo: str, shots: int, data: characters.CharacterSet, out: Path):  # noqa: ANN201
    """One meta-gradient of ``algo`` at the demo's defaults on a fixed meta-batch, as a callable."""
    args = fewshot.parse(["--algo", algo, "--shots", str(shots), "--out", str(out / f"{algo}_{shots}")])
    model = fewshot.make_model(args)
    algorithm = fewshot.make_algorithm(algo, model, args)
    theta = algorithm.init(model.init(args.seed))
    xs, ys, xq, yq = data.episodes(np.random.default_rng(0), args.meta_batch, args.ways, shots, args.queries)
    xs, xq = xs.astype(args.dtype), xq.astype(args.dtype)
    return lambda: algorithm.meta_grad(theta, xs, ys, xq, yq)


def main() -> None:
    parser = argparse.ArgumentParser(description="ms per meta-iteration of each few-shot algorithm")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds (the best is kept)")
    parser.add_argument("--out-dir", type=Path, default=RESULTS, help="where the results go")
    args = parser.parse_args()
    data = characters.generated_splits(0, train=20, validation=5, test=5)["train"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for shots in (1, 5):
            fns = {a: meta_gradient(a, shots, data, Path(scratch)) for a in fewshot.ALGORITHMS}
            seconds = interleaved_best_times(fns, repeats=args.repeats, number=3)
            for algo, s in seconds.items():
                rows.append(dict(algo=algo, shots=shots, ms=1e3 * s, ratio_to_maml=s / seconds["maml"]))
                print(f"{algo:8s} {shots}-shot: {1e3 * s:7.1f} ms  ({s / seconds['maml']:.2f} x MAML)", flush=True)
    machine = f"{platform.machine()}, {platform.processor() or platform.system()}, NumPy {np.__version__}"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "fewshot.json").write_text(json.dumps(dict(machine=machine, rows=rows), indent=1) + "\n")
    table = [
        "# One meta-iteration of each few-shot algorithm",
        "",
        f"`python bench/bench_fewshot.py` ({machine}; one BLAS thread; best of {args.repeats} interleaved rounds of "
        "3 meta-gradients). Conv4, 16 filters, 5-way, meta-batch 4, 5 queries per class: the demo's CPU defaults.",
        "",
        "| algorithm | 1-shot ms | × MAML | 5-shot ms | × MAML |",
        "|---|---|---|---|---|",
    ]
    for algo in fewshot.ALGORITHMS:
        one, five = (next(r for r in rows if r["algo"] == algo and r["shots"] == k) for k in (1, 5))
        cells = [f"{one['ms']:.0f}", f"{one['ratio_to_maml']:.2f}", f"{five['ms']:.0f}", f"{five['ratio_to_maml']:.2f}"]
        table.append(f"| {algo} | " + " | ".join(cells) + " |")
    (args.out_dir / "fewshot.md").write_text("\n".join(table) + "\n")
    print(f"written: {args.out_dir / 'fewshot.md'} and fewshot.json")


if __name__ == "__main__":
    main()
