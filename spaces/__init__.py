"""Search spaces: define-by-run functions ``fn(trial) -> dict``, one per model family.

Spaces only describe: no training, no I/O. Parameter names are namespaced by family
(``perceiver.num_latents``) except the shared training ones (``lr``, ``batch_size``...), so a
joint study over several families keeps one distribution per name. A proposal is a flat dict
``{"family": ..., <model hparams>..., <TRAIN_KEYS>...}``. A family's space names its
parameters through ``ctx.family("<family>")``; Mixer, FNet and gMLP, one classifier in
``models``, share one space definition (``spaces/_patch_mlp.py``) with their own MLP widths.
``spaces/families.py`` holds one record per family (``FamilyRecord``: the ``models`` record
with its space and named dimensions); ``SPACES``, ``DIMENSIONS`` and ``ANYTIME_PARAM`` are
derived from those records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna

from spaces._context import SpaceContext
from spaces.common import TRAIN_KEYS, training
from spaces.families import FAMILY_RECORDS, FamilyRecord, FamilySpace

__all__ = [
    "ANYTIME_PARAM",
    "DIMENSIONS",
    "FAMILY_RECORDS",
    "SPACES",
    "TRAIN_KEYS",
    "FamilyRecord",
    "JointSpace",
    "SpaceContext",
    "joint",
    "parameter_names",
    "split_proposal",
]

#: family -> its model-hyperparameter space.
SPACES: dict[str, FamilySpace] = {name: r.space for name, r in FAMILY_RECORDS.items()}

#: family -> its named dimensions: the model hyperparameters (``hp.<name>`` in the results)
#: the report's "Which <family>" section compares trials by, one value against another.
DIMENSIONS: dict[str, tuple[str, ...]] = {name: r.dimensions for name, r in FAMILY_RECORDS.items()}

#: family -> the parameter an anytime trial evaluates at every value, per family that has one
#: (the Perceiver's iterations: ``training.anytime``).
ANYTIME_PARAM: dict[str, str] = {
    name: r.anytime_param for name, r in FAMILY_RECORDS.items() if r.anytime_param is not None
}


@dataclass(frozen=True)
class JointSpace:
    """One define-by-run space over several families: the family is the first, categorical
    choice. A picklable callable (Ray Tune checkpoints the searcher that holds it)."""

    families: tuple[str, ...]
    context: SpaceContext

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        family = trial.suggest_categorical("family", list(self.families))
        return {
            "family": family,
            **SPACES[family](trial, self.context),
            **training(trial, self.context),
        }


def joint(
    families: Sequence[str],
    *,
    image_size: int,
    in_channels: int = 3,
    overrides: Mapping[str, Any] | None = None,
) -> JointSpace:
    """The joint space over ``families`` (a single family is a joint space of one)."""
    unknown = [f for f in families if f not in SPACES]
    if unknown:
        raise ValueError(f"families: {unknown[0]!r} has no space; allowed: {', '.join(SPACES)}")
    ctx = SpaceContext(
        image_size=image_size, in_channels=in_channels, overrides=dict(overrides or {})
    )
    return JointSpace(families=tuple(families), context=ctx)


def split_proposal(proposal: Mapping[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Split a proposal into ``(family, model_hparams, training_hparams)``."""
    family = str(proposal["family"])
    model = {k: v for k, v in proposal.items() if k != "family" and k not in TRAIN_KEYS}
    train = {k: v for k, v in proposal.items() if k in TRAIN_KEYS}
    return family, model, train


class _NameRecorder:
    """A stand-in trial that takes choice ``k`` (modulo) of every parameter and records names."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.names: list[str] = []

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        self.names.append(name)
        return choices[self.k % len(choices)]

    def suggest_float(self, name: str, low: float, high: float, **_: Any) -> float:
        self.names.append(name)
        return low


def parameter_names(families: Sequence[str], *, image_size: int) -> list[str]:
    """Every parameter name the joint space over ``families`` can suggest (for validation).

    The space runs once per choice index, so the parameters of every branch of a conditional
    (``lamb.lr`` after ``optimizer=lamb``, ``num_freq_bands`` after a Fourier encoding) appear.
    """
    names: dict[str, None] = {}
    ctx = SpaceContext(image_size=image_size)
    for k in range(8):
        recorder = _NameRecorder(k)
        for family in families:
            SPACES[family](recorder, ctx)  # type: ignore[arg-type]
        training(recorder, ctx)  # type: ignore[arg-type]
        names.update(dict.fromkeys(recorder.names))
    return ["family", *names]
