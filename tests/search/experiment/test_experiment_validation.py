"""search.experiment.validation: bad values give one line naming the field, the value and
what is allowed; dataset-dependent choices resolve by the dataset."""

from __future__ import annotations

import pytest

from search.data import default_augment
from search.errors import UserError
from search.experiment import load_experiment


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
            "'space.perceiver.num_latents'?)",
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
        ("dataset.train_subset=3", "dataset.train_subset=3: must be a whole number of at least 4"),
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


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["dataset.image_size=32"], "dataset.image_size=32: fashion_mnist is stored at 28x28"),
        (["dataset.train_subset=60000"], "fashion_mnist has 54000 training images after"),
        (
            ["dataset.train_subset=9"],
            "dataset.train_subset=9: must be a whole number of at least 10",
        ),
        (
            ["dataset.name=digits", "dataset.image_size=8", "dataset.train_subset=1300"],
            "dataset.train_subset=1300: digits has 1294 training images after "
            "dataset.val_fraction=0.1",
        ),
    ],
)
def test_fashion_fidelity_refused_at_load(overrides: list[str], message: str) -> None:
    base = ["dataset.name=fashion_mnist", "dataset.image_size=14", "dataset.val_fraction=0.1"]
    with pytest.raises(UserError) as err:
        load_experiment("smoke", [*base, *overrides])
    assert message in str(err.value) and "\n" not in str(err.value)
    exp = load_experiment("smoke", [*base, "dataset.train_subset=10000"])
    assert exp.dataset.train_subset == 10_000 and exp.dataset.data_dir is None
