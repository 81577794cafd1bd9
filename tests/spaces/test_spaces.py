"""Search spaces: define-by-run, valid by construction, overrides respected, picklable."""

from __future__ import annotations

import pickle

import optuna
import pytest

import models
from spaces import SPACES, TRAIN_KEYS, joint, split_proposal
from spaces.common import LR_RANGES

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("image_size", [8, 16, 32])
@pytest.mark.parametrize("family", models.FAMILIES)
def test_every_proposal_is_a_valid_model(family: str, image_size: int) -> None:
    space = joint([family], image_size=image_size)
    study = optuna.create_study(
        directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=1)
    )
    for _ in range(25):
        trial = study.ask()
        proposal = space(trial)
        fam, model_hp, train_hp = split_proposal(proposal)
        assert fam == family
        assert set(train_hp) == TRAIN_KEYS
        # resolve_hparams raises on any invalid combination (divisibility, heads, ...)
        models.resolve_hparams(fam, image_size=image_size, in_channels=3, **model_hp)
        study.tell(trial, [0.5, 1.0])


def test_joint_space_chooses_family_first_and_overrides_narrow() -> None:
    space = joint(
        ["perceiver", "vit"],
        image_size=16,
        overrides={
            "perceiver.num_latents": [8],
            "vit.depth": [3],
            "adamw.lr": [1e-3, 1e-3],
            "lamb.lr": [2e-2, 2e-2],
        },
    )
    study = optuna.create_study(directions=["maximize", "minimize"])
    seen = set()
    for _ in range(20):
        trial = study.ask()
        p = space(trial)
        seen.add(p["family"])
        if p["family"] == "perceiver":
            assert p["num_latents"] == 8
        else:
            assert p["depth"] == 3
        assert p["lr"] == {"adamw": 1e-3, "lamb": 2e-2}[p["optimizer"]]  # its own range
        assert next(iter(trial.params)) == "family"
        study.tell(trial, [0.0, 1.0])
    assert seen == {"perceiver", "vit"}
    assert pickle.loads(pickle.dumps(space)) == space  # Tune checkpoints the searcher


def test_learning_rate_ranges_depend_on_the_optimizer() -> None:
    space = joint(["mixer"], image_size=16)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {"adamw": [], "lamb": []}
    for _ in range(40):
        trial = study.ask()
        p = space(trial)
        seen[p["optimizer"]].append(p["lr"])
        assert f"{p['optimizer']}.lr" in trial.params and "lr" not in trial.params
        study.tell(trial, 0.0)
    for name, lrs in seen.items():
        low, high = LR_RANGES[name]
        assert lrs and all(low <= lr <= high for lr in lrs), name


def test_patch_size_override_that_divides_nothing_is_a_clear_error() -> None:
    space = joint(["vit"], image_size=16, overrides={"vit.patch_size": [3, 5]})
    trial = optuna.create_study().ask()
    with pytest.raises(
        ValueError, match=r"space.vit.patch_size=\[3, 5\]: none divides image_size=16"
    ):
        space(trial)


def test_spaces_cover_all_families() -> None:
    assert tuple(SPACES) == models.FAMILIES
