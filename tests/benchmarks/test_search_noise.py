"""The noise study picks a family's best rows and tells a better configuration from a lucky draw.

Synthetic tables stand in for trained ones (the study only reads CSVs): in one family the
configuration decides accuracy (the top rows stay ahead under a new seed), in the other a
row's accuracy is its seed's draw (the top rows fall back to the others' level).
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from benchmarks.search_table import build, noise

COLUMNS = ("key", "family", "status", "val_accuracy", "test_accuracy", "flops")


def _key(family: str, width: int, lr: float) -> str:
    return build.config_key({"family": family, f"{family}.width": width, "adamw.lr": lr})


def _table(path: Path, seed: int) -> None:
    """``signal``: accuracy set by width (+ a small lr effect); ``luck``: a seed's draw only."""
    rng = random.Random(seed)
    rows = []
    for width in range(8):
        for lr in (1e-3, 2e-3):
            signal = 0.90 + 0.01 * width + (0.002 if lr == 2e-3 else 0.0)
            for family, acc in (("signal", signal), ("luck", 0.95 + rng.gauss(0, 0.01))):
                rows.append(
                    {"key": _key(family, width, lr), "family": family, "status": "COMPLETE",
                     "val_accuracy": acc, "test_accuracy": acc - 0.01, "flops": 1000 + width}
                )  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def test_the_study_separates_configuration_effects_from_seed_draws(tmp_path: Path) -> None:
    out = tmp_path / "noise"
    _table(tmp_path / "table.csv", seed=0)
    args = ["--out", str(out), "--table", str(tmp_path / "table.csv"), "--top", "3"]
    assert noise.main(["select", *args]) == 0
    chosen = json.loads((out / "selection.json").read_text())
    assert chosen["signal"]["top"] == [_key("signal", 7, 2e-3), _key("signal", 7, 1e-3),
                                       _key("signal", 6, 2e-3)]  # fmt: skip
    assert not set(chosen["luck"]["top"]) & set(chosen["luck"]["others"])
    keys = (out / "keys.txt").read_text().split("\n")
    assert len([k for k in keys if k]) == 12
    for seed in (1, 2):
        _table(out / f"seed{seed}" / "table.csv", seed=seed)
    assert noise.main(["analyse", *args]) == 0
    result = json.loads((out / "summary.json").read_text())
    assert result["seeds"] == ["seed1", "seed2"]
    signal, luck = result["families"]["signal"], result["families"]["luck"]
    # the signal family's top rows stay 5 points ahead under every seed; the fit explains it all
    for seed in ("table", "seed1", "seed2"):
        assert signal["top"][seed] - signal["others"][seed] > 0.02
    assert signal["fit"]["residual_sd"] < 1e-6 < signal["fit"]["sd"]
    assert signal["seed_sd"] < 1e-9
    assert abs(signal["top_test"]["seed1"] - (signal["top"]["seed1"] - 0.01)) < 1e-9
    # the lucky family's top rows are ahead only in the table they were picked from
    assert luck["top"]["table"] - luck["others"]["table"] > 0.01
    for seed in ("seed1", "seed2"):
        assert abs(luck["top"][seed] - luck["others"][seed]) < luck["top"]["table"] - 0.95
    assert luck["seed_sd"] > 0.005


def test_the_builder_trains_only_the_keys_it_is_given() -> None:
    first, second = list(build.grid_points(["mixer"]))[:2]
    keys = {build.config_key(second)}
    assert build._selected(["mixer", "fnet"], 0, keys) == [second]
    assert build._selected(["mixer"], 1, None) == [first]


def test_a_second_selection_never_overwrites_the_first(tmp_path: Path) -> None:
    _table(tmp_path / "table.csv", seed=0)
    args = ["--out", str(tmp_path / "noise"), "--table", str(tmp_path / "table.csv")]
    assert noise.main(["select", *args, "--top", "3"]) == 0
    first = (tmp_path / "noise" / "selection.json").read_text()
    assert noise.main(["select", *args, "--top", "3"]) == 0  # the same selection: fine
    with pytest.raises(SystemExit) as exc:
        noise.main(["select", *args, "--top", "2"])
    assert exc.value.code == 2
    assert (tmp_path / "noise" / "selection.json").read_text() == first


def test_the_builder_refuses_keys_of_no_grid_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text(_key("mixer", 3, 1e-3) + "\n")
    with pytest.raises(SystemExit) as exc:
        build.main(["--keys", str(keys), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert "--keys: 1 keys are no grid point" in capsys.readouterr().err
    assert not (tmp_path / "out" / "table.csv").exists()
