"""demos/fewshot_table.py: the algorithms table from the demo's JSON records."""

import json

import pytest

from demos import common, fewshot_table


def record(accuracy: float, ci: float, curve: list[tuple[int, float]], selected: int) -> dict:
    val = dict(curve)
    return dict(
        test_accuracy=accuracy, test_ci95=ci, iterations=curve[-1][0], selected_iteration=selected,
        selected_val_accuracy=val[selected], curves=[dict(iteration=i, val_accuracy=v) for i, v in curve],
        cost=dict(ms_per_iteration=98.6, peak_mb=144.2),
    )  # fmt: skip


def test_rows_carry_the_records_figures(tmp_path) -> None:
    curve = [(1000, 0.5), (2000, 0.83), (3000, 0.846)]
    (tmp_path / "maml_5way1shot.json").write_text(json.dumps(record(0.8502, 0.0061, curve, 3000)))
    (tmp_path / "anil_5way5shot.json").write_text(json.dumps(record(0.889, 0.006, curve, 2000)))
    rows = {line.split(" | ")[0]: line for line in fewshot_table.table(tmp_path).splitlines()[2:]}
    assert set(rows) == {"| MAML", "| ANIL"}  # algorithms with no record at all are left out
    assert rows["| MAML"] == (
        "| MAML | 85.0 ± 0.6% (best val 84.6% at 3,000; val 2,000 → 3,000: 83.0 → 84.6%) | 99 | 144 | not run |  |  |"
    )
    assert rows["| ANIL"].startswith("| ANIL | not run |  |  | 88.9 ± 0.6% (best val 83.0% at 2,000;")


def test_a_damaged_record_is_named(tmp_path) -> None:
    (tmp_path / "maml_5way1shot.json").write_text("{not json")
    with pytest.raises(common.DemoError, match="maml_5way1shot.json is not a results record"):
        fewshot_table.table(tmp_path)


def test_a_folder_without_records_is_an_error_not_an_empty_table(tmp_path) -> None:
    (tmp_path / "results").mkdir()  # the --out folder given instead of its results/
    with pytest.raises(common.DemoError, match="no demos.fewshot results .* give the results/ folder"):
        fewshot_table.table(tmp_path)
