"""What a sweep will cost before it runs: the training FLOPs of its trials, from proposals drawn
from each family's space (no Optuna; the analytic ``models.cost.estimate``). The plan prints it,
``--dry-run`` included, so a GPU sweep's size is known before a machine is booked.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass

from search.data.facts import model_shape
from search.data.rules import training_split_size
from search.experiment.feasibility import DrawTrial
from search.experiment.schema import Experiment

__all__ = ["TRAINING_FLOPS_PER_FORWARD", "SweepEstimate", "estimate_sweep"]

#: A training step's FLOPs per image as a multiple of the forward pass's (forward + backward).
TRAINING_FLOPS_PER_FORWARD = 3
_DRAWS = 64  # proposals drawn per family for its median cost


@dataclass(frozen=True)
class SweepEstimate:
    """A sweep's size: ``trials`` trials of up to ``epochs`` epochs over ``train_images`` images
    (None where unknown before the data are read), each family's median forward FLOPs per image
    and its share of the trials."""

    trials: int
    epochs: int
    train_images: int | None
    median_flops: dict[str, float]
    shares: dict[str, float]
    replicates: int = 1  # seeds trained per configuration

    @property
    def training_flops(self) -> float | None:
        """FLOPs of training every trial for every epoch (an upper bound: early stopping and
        failed proposals only lower it); None when the image count is unknown."""
        if self.train_images is None or not self.median_flops:
            return None
        per_trial = sum(self.shares[f] * self.median_flops[f] for f in self.median_flops)
        images = self.trials * self.replicates * self.epochs * self.train_images
        return TRAINING_FLOPS_PER_FORWARD * per_trial * images

    def describe(self) -> str:
        """One line for the plan."""
        medians = ", ".join(f"{f} {v / 1e6:.3g}M" for f, v in self.median_flops.items())
        total = self.training_flops
        if total is None:
            return f"median forward FLOPs per image: {medians} (image count known once read)"
        return (
            f"up to {total:.2g} training FLOPs ({self.trials} trials x "
            + (f"{self.replicates} seeds x " if self.replicates > 1 else "")
            + f"{self.epochs} epochs x "
            f"{self.train_images:,} images x {TRAINING_FLOPS_PER_FORWARD} x median forward FLOPs "
            f"per image: {medians})"
        )


def estimate_sweep(exp: Experiment) -> SweepEstimate:
    """The :class:`SweepEstimate` of a validated experiment."""
    from models.cost import estimate
    from spaces import SPACES, SpaceContext

    size = exp.dataset.image_size
    in_channels, num_classes = model_shape(exp.dataset.name, exp.dataset.synthetic)
    ctx = SpaceContext(image_size=size, in_channels=in_channels, overrides=exp.space)
    medians: dict[str, float] = {}
    for family in exp.families:
        rng = random.Random(f"estimate:{family}")
        flops = []
        for _ in range(_DRAWS):
            hp = SPACES[family](DrawTrial(rng), ctx)  # type: ignore[arg-type]
            try:
                cost = estimate(
                    family, image_size=size, in_channels=in_channels, num_classes=num_classes, **hp
                )
            except (ValueError, ArithmeticError):  # an invalid draw: never trained
                continue
            flops.append(float(cost.flops))
        if flops:
            medians[family] = statistics.median(flops)
    weights = exp.family_shares() or dict.fromkeys(exp.families, 1)
    total = sum(weights[f] for f in medians) or 1
    ds = exp.dataset
    images = ds.train_subset or training_split_size(ds.name, ds.val_fraction)
    return SweepEstimate(
        trials=exp.num_trials,
        epochs=exp.epochs,
        train_images=images,
        median_flops=medians,
        shares={f: weights[f] / total for f in medians},
        replicates=exp.replicates,
    )
