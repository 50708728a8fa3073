"""The few-shot algorithms table (results/fewshot/algorithms.md, the README) from the demo's JSON records.

    python -m demos.fewshot_table runs/table/results     # the folder `demos.fewshot --out runs/table` wrote

One row per algorithm, one column group per K: test accuracy ± 95% CI of the tested checkpoint, which
validation point selected it, how far validation climbed over the last third of the run, and the cost per
meta-iteration and peak memory the demo measured while training. A run that is missing shows as "not run".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from demos import common

NAMES = {
    "maml": "MAML",
    "fomaml": "first-order MAML",
    "reptile": "Reptile",
    "anil": "ANIL",
    "metasgd": "Meta-SGD",
    "maml++": "MAML++ (LSLR)",
    "imaml": "iMAML",
    "r2d2": "R2-D2",
}


def accuracy_cell(record: dict) -> str:
    """``85.0 ± 0.6% (best val 84.6% at 3,000; val 2,000 → 3,000: 83.0 → 84.6%)``."""
    cell = f"{100 * record['test_accuracy']:.1f} ± {100 * record['test_ci95']:.1f}%"
    notes = []
    if record.get("selected_val_accuracy") is not None:
        notes.append(f"best val {100 * record['selected_val_accuracy']:.1f}% at {record['selected_iteration']:,}")
    curve = {point["iteration"]: point["val_accuracy"] for point in record.get("curves", [])}
    end = record["iterations"]
    two_thirds = min(curve, key=lambda it: abs(it - 2 * end / 3), default=None)
    if two_thirds is not None and end in curve and two_thirds != end:
        notes.append(f"val {two_thirds:,} → {end:,}: {100 * curve[two_thirds]:.1f} → {100 * curve[end]:.1f}%")
    return cell + (f" ({'; '.join(notes)})" if notes else "")


def table(folder: Path, ways: int = 5, shots: tuple[int, ...] = (1, 5)) -> str:
    header = "| algorithm | " + " | ".join(f"{ways}-way {k}-shot | ms / it | peak MB" for k in shots) + " |"
    lines = [header, "|---|" + "---|---|---|" * len(shots)]
    for algo, name in NAMES.items():
        cells = []
        for k in shots:
            path = folder / f"{algo}_{ways}way{k}shot.json"
            if not path.is_file():
                cells += ["not run", "", ""]
                continue
            try:
                record = json.loads(path.read_text())
                cell = accuracy_cell(record)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise common.DemoError(f"{path} is not a results record of demos.fewshot ({exc!r})") from None
            cost = record.get("cost") or {}
            ms, mb = cost.get("ms_per_iteration"), cost.get("peak_mb")
            cells += [cell, f"{ms:.0f}" if ms else "", f"{mb:.0f}" if mb else ""]
        if any(cell != "not run" for cell in cells[::3]):
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if len(lines) == 2:
        raise common.DemoError(
            f"no demos.fewshot results ({ways}-way, {', '.join(map(str, shots))} shots) in {folder}: give the results/ "
            "folder of a demos.fewshot --out"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = common.ArgumentParser(prog="python -m demos.fewshot_table", description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=common.path_argument, help="the results/ folder of a demos.fewshot --out")
    parser.add_argument("--ways", type=int, default=5)
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        raise common.DemoError(f"{args.results} is not a folder (give the results/ folder of a demos.fewshot --out)")
    print(table(args.results, args.ways))
    return 0


if __name__ == "__main__":
    sys.exit(common.run(main))
