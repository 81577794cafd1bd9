"""The one patch-MLP space (Mixer, FNet, gMLP) and family-scoped names: the parameter names,
choices and order of suggestion are those studies, presets and benchmark tables were made with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from spaces import SPACES, SpaceContext, parameter_names

_PATCH_MLP = [
    ("patch_size", [2, 4, 8]),
    ("hidden_dim", [32, 64, 128, 256]),
    ("num_blocks", [2, 4, 8]),
]
#: (name, choices) in the order suggested, as before the three spaces became one
BEFORE: dict[str, list[tuple[str, list[Any]]]] = {
    "mixer": [
        *_PATCH_MLP,
        ("tokens_mlp_dim", [16, 32, 64, 128]),
        ("channels_mlp_dim", [64, 128, 256, 512]),
        ("dropout", [0.0, 0.1]),
    ],
    "fnet": [*_PATCH_MLP, ("mlp_dim", [64, 128, 256, 512]), ("dropout", [0.0, 0.1])],
    "gmlp": [*_PATCH_MLP, ("ffn_dim", [64, 128, 256, 512]), ("dropout", [0.0, 0.1])],
}


class _Recorder:
    """A stand-in trial: takes the first choice, records (name, choices)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[Any]]] = []

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.calls.append((name, list(choices)))
        return choices[0]


@pytest.mark.parametrize("family", sorted(BEFORE))
def test_patch_mlp_spaces_suggest_the_same_names_choices_and_order(family: str) -> None:
    trial = _Recorder()
    proposal = SPACES[family](trial, SpaceContext(image_size=64))  # type: ignore[arg-type]
    assert trial.calls == [(f"{family}.{name}", choices) for name, choices in BEFORE[family]]
    assert list(proposal) == [name for name, _ in BEFORE[family]]
    assert proposal == {name: choices[0] for name, choices in BEFORE[family]}


def test_patch_mlp_parameter_names_are_unchanged() -> None:
    names = parameter_names(["mixer", "fnet", "gmlp"], image_size=8)
    model = [f"{fam}.{name}" for fam in ("mixer", "fnet", "gmlp") for name, _ in BEFORE[fam]]
    train = ["optimizer", "adamw.lr", "weight_decay", "batch_size", "warmup_epochs"]
    assert names == ["family", *model, *train, "label_smoothing", "lamb.lr"]


def test_family_scope_prefixes_names_and_reads_overrides_by_full_name() -> None:
    ctx = SpaceContext(
        image_size=16, overrides={"fnet.hidden_dim": [48], "fnet.patch_size": [3, 4]}
    )
    f = ctx.family("fnet")
    assert f.name("hidden_dim") == "fnet.hidden_dim" and f.image_size == 16
    trial = _Recorder()
    assert f.choice(trial, "hidden_dim", (32, 64)) == 48
    assert f.patch_size(trial, "patch_size", (2, 4)) == 4  # 3 does not divide 16
    assert trial.calls == [("fnet.hidden_dim", [48]), ("fnet.patch_size", [4])]
    with pytest.raises(
        ValueError,
        match=r"space\.fnet\.patch_size=\[3\]: none divides image_size=16; "
        r"allowed: 1, 2, 4, 8, 16$",
    ):
        SpaceContext(image_size=16, overrides={"fnet.patch_size": [3]}).family("fnet").patch_size(
            trial, "patch_size", (2,)
        )
