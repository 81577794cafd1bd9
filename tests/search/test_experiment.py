"""Experiment config: presets load, overrides apply, bad input gives one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ray.tune.schedulers import ASHAScheduler as ASHA

from search.data import default_augment
from search.errors import UserError
from search.experiment import Experiment, list_presets, load_experiment
from search.schedulers import MultiObjectiveASHA
from search.tuner import make_scheduler


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


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("num_trial=3", "num_trial: unknown key (did you mean 'num_trials'?)"),
        ("num_trials=-1", "num_trials=-1: must be > 0"),
        ("epochs=two", "epochs='two': expected a whole number"),
        ("sampler=grid", "sampler='grid': not allowed; allowed: tpe, nsga2, gp, random"),
        ("families=[resnet]", "families: 'resnet' is not a family; allowed: perceiver, vit"),
        ("objectives={val_accuracy: max}", "give two or three of"),
        ("objectives={val_accuracy: max, flops: max}", "objectives.flops='max': allowed: min"),
        (
            "scheduler.name=hyperband",
            "scheduler.name='hyperband': not allowed; allowed: moasha, asha, none",
        ),
        ("resources.gpus_per_trial=1.5", "fractions only below 1"),
        ("dataset.name=cifar100", "dataset.data_dir: required for dataset.name=cifar100"),
        ("storage=redis://x", "expected an RDB URL"),
        ("training.zero_stage=4", "training.zero_stage=4: not allowed; allowed: 0, 1, 2, 3"),
        (
            "space.perceiver.num_latent=[8]",
            "space.perceiver.num_latent: not a search-space parameter (did you mean "
            "'perceiver.num_latents'?)",
        ),
        ("space.adamw.lr=0.1", "space.adamw.lr=0.1: expected a non-empty list of choices"),
        (
            "family_trials={perceiver: 4}",
            "family_trials={'perceiver': 4}: give a number for each family searched",
        ),
        (
            "family_trials={perceiver: 4, mixer: 1}",
            "sums to 5, but num_trials=6; set num_trials to the sum",
        ),
        ("family_trials={perceiver: 5, mixer: 0}", "family_trials.mixer=0: expected a whole"),
        (
            "training.anytime=true",
            "training.anytime=true: needs perceiver.share_weights=[true] in the space",
        ),
        ("training.anytime_loss=mean", "training.anytime_loss='mean': not allowed; allowed: all"),
    ],
)
def test_bad_values_name_field_value_and_allowed(override: str, message: str) -> None:
    with pytest.raises(UserError) as err:
        load_experiment("smoke", [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_family_trials_and_anytime_load() -> None:
    exp = load_experiment(
        "smoke",
        [
            "family_trials={perceiver: 4, mixer: 2}",
            "training.anytime=true",
            "space.perceiver.share_weights=[true]",
        ],
    )
    assert exp.family_shares() == {"perceiver": 4, "mixer": 2}
    assert exp.training.anytime and exp.training.anytime_loss == "all"
    assert load_experiment("smoke").family_shares() == {"perceiver": 1, "mixer": 1}
    assert load_experiment("smoke", ["family_allocation=sampler"]).family_shares() is None
    with pytest.raises(UserError, match="only the Perceiver has anytime iterations"):
        load_experiment("smoke", ["families=[mixer]", "training.anytime=true"])


def test_missing_file_lists_presets() -> None:
    with pytest.raises(UserError, match="no such file or preset; presets: cifar100, default"):
        load_experiment("does-not-exist.yaml")


def test_experiment_is_frozen() -> None:
    exp = load_experiment("smoke")
    with pytest.raises(AttributeError):
        exp.num_trials = 3  # type: ignore[misc]
    assert isinstance(exp, Experiment)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "search.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.mark.parametrize(
    "content",
    ["families: [perceiver, vitt]\n", "epochs: [1\n", "- a list\n", "resources:\n  gpu: 1\n"],
)
def test_cli_bad_experiment_file_exit_2_one_line(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    proc = _cli("run", str(bad), "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paretotune: error: ")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing started


def test_cli_dry_run_prints_plan(tmp_path: Path) -> None:
    proc = _cli("run", "smoke", "--dry-run", "--output", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for needle in (
        "dataset     synthetic",
        "families    perceiver, mixer",
        "6 x up to 2 epochs",
        "val_accuracy (max), flops (min)",
        str(tmp_path / "o"),
    ):
        assert needle in proc.stdout


@pytest.mark.parametrize(
    "dataset, policy",
    [
        ("digits", default_augment("digits")),
        ("synthetic", "none"),
        ("cifar10", "crop_flip"),
        ("cifar100", "crop_flip"),
        ("imagefolder", "resized_crop"),
    ],
)
def test_the_augmentation_recipe_is_chosen_by_the_dataset(dataset: str, policy: str) -> None:
    exp = load_experiment("smoke", [f"dataset.name={dataset}", "dataset.data_dir=/data"])
    assert exp.training.augment == "auto"
    assert exp.augment_policy() == policy
    assert default_augment("digits") in ("none", "translate")  # never a crop on 8x8 digits
    chosen = load_experiment(
        "smoke", [f"dataset.name={dataset}", "dataset.data_dir=/d", "training.augment=translate"]
    )
    assert chosen.augment_policy() == "translate"  # the experiment's word wins


def test_bad_augment_and_allocation_name_the_allowed_values() -> None:
    with pytest.raises(
        UserError, match=r"training\.augment=.mixup.: not allowed; allowed: auto, none"
    ):
        load_experiment("smoke", ["training.augment=mixup"])
    with pytest.raises(UserError, match="family_allocation='fair': not allowed; allowed: equal"):
        load_experiment("smoke", ["family_allocation=fair"])
