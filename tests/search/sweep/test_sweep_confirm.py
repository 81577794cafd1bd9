"""``paretotune confirm`` (search/confirm.py): only the uncertain configurations are retrained,
most uncertain first, within the budget; every finished seed is kept and merged into the
tables; bad input changes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import search
from search.pareto.membership import front_membership
from search.results import load_confirmations, merge_confirmations, read_trials
from search.sweep.confirm import confirm

OBJECTIVES = {"val_accuracy": "max", "flops": "min"}


def _row(tid: str, acc: float, flops: float) -> dict[str, Any]:
    return {"trial_id": tid, "family": "mixer", "status": "COMPLETE", "val_accuracy": acc,
            "test_accuracy": acc, "flops": flops, "val_images": 200,
            "config": {"family": "mixer", "tid": tid}}  # fmt: skip


def test_only_the_uncertain_are_retrained_most_uncertain_first(tmp_path: Path) -> None:
    rows = [_row("sure", 0.50, 1e3), _row("a", 0.80, 1e6), _row("b", 0.79, 1e6),
            _row("dominated", 0.50, 1e7)]  # fmt: skip
    before = front_membership(rows, OBJECTIVES)
    assert before.uncertain() == ["a", "b"]
    calls: list[tuple[str, int]] = []

    def train(config: dict[str, Any], seed: int) -> dict[str, Any]:
        calls.append((config["tid"], seed))
        return {"val_accuracy": 0.805, "test_accuracy": 0.8, "val_loss": 0.5, "train_time_s": 1.0}

    out = confirm(tmp_path, experiment=None, rows=rows, objectives=OBJECTIVES,  # type: ignore[arg-type]
                  seeds=1, max_trainings=5, train=train, say=lambda _: None)  # fmt: skip
    assert [c[0] for c in calls] == ["a", "b"]  # nothing certain was touched
    assert all(seed == 1 for _, seed in calls)  # seed 0 is the sweep's own
    assert out.stopped_because == "each has its seeds"
    runs = load_confirmations(tmp_path)
    assert [r["confirms"] for r in runs] == ["a", "b"]
    merged = [dict(r) for r in rows]
    merge_confirmations(merged, runs)
    a = next(r for r in merged if r["trial_id"] == "a")
    assert a["val_accuracy_seeds"] == [0.80, 0.805] and a["val_accuracy"] == 0.80
    assert a["confirmed_val_accuracy"] == pytest.approx(0.8025) and a["confirmations"] == 1


def test_the_budget_stops_it_and_a_rerun_continues(tmp_path: Path) -> None:
    rows = [_row("a", 0.80, 1e6), _row("b", 0.79, 1e6)]
    trained: list[str] = []

    def train(config: dict[str, Any], seed: int) -> dict[str, Any]:
        trained.append(f"{config['tid']}@{seed}")
        return {"val_accuracy": 0.795, "test_accuracy": 0.79, "val_loss": 0.5, "train_time_s": 1.0}

    kw: dict[str, Any] = {"experiment": None, "rows": rows, "objectives": OBJECTIVES,
                          "seeds": 2, "train": train, "say": lambda _: None}  # fmt: skip
    first = confirm(tmp_path, max_trainings=1, **kw)
    assert first.stopped_because == "the budget of 1 trainings is spent" and len(trained) == 1
    confirm(tmp_path, max_trainings=10, **kw)  # continues: no finished seed is trained again
    assert len(trained) == len(set(trained))
    assert len(load_confirmations(tmp_path)) == len(trained)


@pytest.fixture(scope="module")
def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "search.cli", *args], capture_output=True,
                          text=True, env=env, timeout=600)  # fmt: skip


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}  # fmt: skip


#: Three Mixers of one architecture (one cost) and nearly one recipe, 51 val images: their
#: accuracies are within the evaluation set's noise (their membership is uncertain).
SAME_COST = ["space.mixer.patch_size=[4]", "space.mixer.hidden_dim=[16]",
             "space.mixer.num_blocks=[1]", "families=[mixer]", "num_trials=3",
             "space.optimizer=[adamw]", "space.adamw.lr=[2.0e-3, 2.2e-3]",
             "space.weight_decay=[0.01, 0.011]"]  # fmt: skip


@pytest.fixture(scope="module")
def same_cost_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("confirm") / "sweep"
    search.run("smoke", overrides=SAME_COST, output_dir=out, report=False)
    return out


def test_confirmation_can_be_the_sweeps_last_phase(tmp_path: Path) -> None:
    result = search.run("smoke", overrides=[*SAME_COST, "confirm.max_trainings=1",
                                            "confirm.seeds=1"], output_dir=tmp_path,
                        report=False)  # fmt: skip
    runs = load_confirmations(tmp_path)
    uncertain = front_membership(
        [{**r, "val_accuracy_seeds": None} for r in result.trials], result.objectives
    ).uncertain()
    assert len(runs) == (1 if uncertain else 0)
    if runs:  # merged into the sweep's own tables
        row = next(r for r in result.trials if r["trial_id"] == runs[0]["confirms"])
        assert row["confirmations"] == 1 and len(row["val_accuracy_seeds"]) == 2


def test_confirm_on_a_real_sweep_retrains_only_uncertain_trials(
    same_cost_sweep: Path, cli_env: dict[str, str]
) -> None:
    doc = read_trials(same_cost_sweep)
    before = front_membership(doc["trials"], doc["objectives"])
    # one cost, one recipe, 51 val images: not separated, and the tables say so
    assert all(0.1 < p < 0.9 for p in before.overall.values()), before.overall
    assert all(0.1 < r["front_probability"] < 0.9 for r in doc["trials"])
    done = _cli("confirm", str(same_cost_sweep), "--seeds", "1", "--max-trainings", "2",
                "--no-report", env=cli_env)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    runs = load_confirmations(same_cost_sweep)
    assert 1 <= len(runs) <= 2
    assert {r["confirms"] for r in runs} <= set(before.uncertain())
    assert runs[0]["confirms"] == before.uncertain()[0]  # the most uncertain first
    rows = {r["trial_id"]: r for r in read_trials(same_cost_sweep)["trials"]}
    for run in runs:  # merged into the exported tables
        row = rows[run["confirms"]]
        assert row["confirmations"] >= 1 and run["val_accuracy"] in row["val_accuracy_seeds"]
    assert "seed(s) trained; stopped:" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-trainings", "0"], "confirm --max-trainings=0: must be at least 1"),
        (["--seeds", "0"], "confirm --seeds=0: must be at least 1"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
    same_cost_sweep: Path, cli_env: dict[str, str], args: list[str], message: str
) -> None:
    before = _digest(same_cost_sweep)
    done = _cli("confirm", str(same_cost_sweep), *args, env=cli_env)
    assert done.returncode == 2 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert _digest(same_cost_sweep) == before


def test_a_folder_without_a_complete_trial_is_refused(
    tmp_path: Path, cli_env: dict[str, str]
) -> None:
    out = tmp_path / "failed"
    search.run("smoke", overrides=["num_trials=1", "space.batch_size=[4096]"], output_dir=out,
               report=False)  # fmt: skip
    before = _digest(out)
    done = _cli("confirm", str(out), env=cli_env)
    assert done.returncode == 2 and "no COMPLETE trial to confirm" in done.stderr
    assert _digest(out) == before
    assert json.loads((out / "trials.json").read_text())["trials"][0]["status"] == "FAILED"
