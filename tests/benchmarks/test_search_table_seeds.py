"""The table builder with seeds: every row keeps each seed's curve and its provenance, and a
stopped build resumes without losing or re-training a finished row.

The builds are real (``benchmarks/search_table/build.py`` in processes of its own, the sweep's
loop, DeepSpeed engines) on digits at one epoch, two seeds side by side. The Fashion-MNIST grid
is checked for its size and its Perceiver factorial without training it.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.search_table import build

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEEDED = ["--set", "epochs=1", "--set", "replicates=2", "--families", "mixer", "--processes", "1"]


def _build(out: Path, *extra: str) -> list[dict[str, str]]:
    cmd = [sys.executable, str(ROOT / "benchmarks/search_table/build.py"), "--out", str(out)]
    subprocess.run([*cmd, *SEEDED, *extra], check=True, cwd=ROOT, timeout=300, capture_output=True)
    with (out / "table.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_stopped_build_resumes_and_each_row_keeps_its_seeds(tmp_path: Path) -> None:
    out = tmp_path / "table"
    first = _build(out, "--limit", "1")  # stopped after one row
    assert len(first) == 1
    both = _build(out, "--limit", "1")  # continues with the next point
    assert len(both) == 2
    assert both[0] == first[0]  # the finished row is kept as it was, not trained again
    assert both[0]["key"] != both[1]["key"]
    for row in both:
        seeds = json.loads(row["val_accuracy_seeds"])
        curves = json.loads(row["val_curves"])
        assert row["replicates"] == "2" and len(seeds) == 2 and len(curves) == 2
        assert [curve[-1] for curve in curves] == pytest.approx(seeds, abs=1e-6)
        assert float(row["val_accuracy"]) == pytest.approx(sum(seeds) / 2)
        assert len(json.loads(row["test_accuracy_seeds"])) == 2
        assert len(json.loads(row["time_curve"])) == 1
        assert len(row["revision"]) >= 40 and row["machine"]
    assert seeds[0] != seeds[1] or curves[0] != curves[1]  # two seeds, not one twice
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["overrides"] == ["epochs=1", "replicates=2"]


def test_a_table_written_before_the_seed_columns_keeps_its_header(tmp_path: Path) -> None:
    out = tmp_path / "old"
    out.mkdir()
    old = [c for c in build.COLUMNS if c not in ("replicates", "val_curves", "revision")]
    (out / "table.csv").write_text(",".join(old) + "\n")
    rows = _build(out, "--limit", "1")
    assert len(rows) == 1 and list(rows[0]) == old
    assert len(json.loads(rows[0]["val_accuracy_seeds"])) == 2


def test_the_fashion_grid_has_200_configurations_and_the_perceiver_factorial() -> None:
    grid = build.GRIDS["fashion"]
    points = list(build.grid_points(grid.families, grid.model, grid.training))
    perceiver = [p for p in points if p["family"] == "perceiver"]
    iterations = grid.model["perceiver"]["num_iterations"]
    assert iterations == [4] and grid.model["perceiver"]["share_weights"] == [True]
    # each Perceiver run is read at every iteration count 1..4 (anytime)
    assert len(points) - len(perceiver) + 4 * len(perceiver) >= 200
    factorial = {
        (p["perceiver.num_latents"], p["perceiver.projection_dim"], p["perceiver.patch_size"])
        for p in perceiver
    }
    assert len(factorial) == 3 * 3 * 2


def test_a_partial_build_has_rows_of_every_family_across_its_grid() -> None:
    grid = build.GRIDS["fashion"]
    points = list(build.grid_points(grid.families, grid.model, grid.training))
    order = build.build_order(points)
    assert sorted(map(build.config_key, order)) == sorted(map(build.config_key, points))
    assert {p["family"] for p in order[:5]} == set(grid.families)  # the families take turns
    first_mixers = [p for p in order[:40] if p["family"] == "mixer"]
    assert {p["mixer.patch_size"] for p in first_mixers} == {4, 7}  # not the grid's first rows
    assert build.build_order(points) == order  # seeded: a resumed build keeps its order


def test_an_experiment_the_grid_cannot_train_is_one_line_before_any_worker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build.main(["--out", str(tmp_path / "t"), "--set", "replicates=0"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error: --experiment default: replicates=0: must be between 1 and 32" in err
    assert not (tmp_path / "t").exists()


def test_every_fashion_grid_point_is_a_valid_proposal_of_the_sweeps_space() -> None:
    import optuna

    import models
    from spaces import joint, split_proposal

    grid = build.GRIDS["fashion"]
    overrides = build.space_overrides(grid.model, grid.training)
    space = joint(grid.families, image_size=28, in_channels=1, overrides=overrides)
    for point in build.grid_points(grid.families, grid.model, grid.training):
        family, hparams, _ = split_proposal(space(optuna.trial.FixedTrial(point)))
        models.resolve_hparams(family, image_size=28, in_channels=1, **hparams)
