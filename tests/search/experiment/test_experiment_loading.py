"""search.experiment.loading: presets load, overrides apply, an Experiment is validated once."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray.tune.schedulers import ASHAScheduler as ASHA

from search.errors import UserError
from search.experiment import list_presets, load_experiment, with_output_dir
from search.experiment import validation as checks
from search.sweep import make_scheduler
from search.sweep.schedulers import MultiObjectiveASHA


def test_presets_load_and_roundtrip(tmp_path: Path) -> None:
    assert {"default", "smoke", "cifar100"} <= set(list_presets())
    for name in list_presets():
        exp = load_experiment(name)
        assert exp.name == name
        path = tmp_path / f"{name}.yaml"
        path.write_text(exp.to_yaml())
        assert load_experiment(path) == exp  # the resolved file re-loads to the same experiment


def test_default_preset_is_the_documented_sweep() -> None:
    exp = load_experiment("default")
    assert exp.dataset.name == "digits"
    assert set(exp.families) == {"perceiver", "vit", "mixer", "fnet", "gmlp"}
    assert exp.objectives == {"val_accuracy": "max", "flops": "min"}
    assert exp.objective_metrics == ["val_accuracy", "flops"]
    # multi-objective early stopping, ranked within each family, and equal family shares
    assert exp.scheduler.name == "moasha" and exp.family_allocation == "equal"
    scheduler = make_scheduler(exp)
    assert isinstance(scheduler, MultiObjectiveASHA)
    assert scheduler._metrics == ("val_accuracy", "flops") and scheduler._group_by == "family"
    assert isinstance(make_scheduler(load_experiment("default", ["scheduler.name=asha"])), ASHA)


def test_overrides_are_typed_and_nested() -> None:
    exp = load_experiment(
        "smoke",
        [
            "num_trials=3",
            "resources.gpus_per_trial=0.25",
            "budget.max_flops=1e6",
            "families=[vit]",
            "objectives={val_accuracy: max, params: min, latency: min}",
        ],
    )
    assert exp.num_trials == 3
    assert exp.resources.gpus_per_trial == 0.25
    assert exp.budget.max_flops == 1e6
    assert exp.families == ("vit",)
    assert exp.objective_metrics == ["val_accuracy", "params", "latency_ms"]


def test_missing_file_lists_presets() -> None:
    with pytest.raises(UserError, match="no such file or preset; presets: cifar100, default"):
        load_experiment("does-not-exist.yaml")


def test_an_experiment_without_overrides_comes_back_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exp = load_experiment("smoke")
    calls: list[object] = []
    monkeypatch.setattr(checks, "check_space", lambda e: calls.append(e))
    assert load_experiment(exp) is exp
    assert load_experiment(exp, []) is exp
    assert calls == []  # nothing validated again, no proposal drawn again
    again = load_experiment(exp, ["num_trials=3"])  # a new experiment: validated
    assert again.num_trials == 3 and calls == [again]


def test_with_output_dir_checks_that_field_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = load_experiment("smoke")
    calls: list[object] = []
    monkeypatch.setattr(checks, "check_space", lambda e: calls.append(e))
    moved = with_output_dir(exp, tmp_path / "elsewhere")
    assert moved.output_dir == str(tmp_path / "elsewhere") and calls == []
    assert moved.resolved_output_dir() == tmp_path / "elsewhere"
    with pytest.raises(UserError, match="output_dir='': expected a non-empty string"):
        with_output_dir(exp, "")
    with pytest.raises(UserError, match="an object-store output needs the study in an RDB"):
        with_output_dir(exp, "s3://bucket/prefix")
