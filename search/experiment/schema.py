"""The experiment's schema: one frozen dataclass per section, and :class:`Experiment`.

An experiment says what to search (dataset, families), how long (trials, epochs), what to
optimise (two or three objectives), how (sampler, scheduler, budget) and where (resources,
storage, output directory). Build one with :func:`search.experiment.load_experiment`, which
validates every field once.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from models import FAMILIES
from search.data.facts import DatasetName
from search.vocabulary import (
    DEFAULT_OBJECTIVES,
    OBJECTIVES,
    SamplerName,
)

__all__ = [
    "Budget",
    "ConfirmConfig",
    "DatasetConfig",
    "Experiment",
    "Resources",
    "SchedulerConfig",
    "TrainingConfig",
    "redact",
]


@dataclass(frozen=True)
class DatasetConfig:
    """Which data, at which resolution, on how many training images. ``train_subset``: a
    stratified, seeded subset of the training images left after the validation carve (None: all
    of them). ``synthetic`` holds the synthetic generator's options."""

    name: DatasetName = "digits"
    image_size: int = 16
    data_dir: str | None = None
    download: bool = False
    val_fraction: float = 0.15
    train_subset: int | None = None
    synthetic: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SchedulerConfig:
    """Early stopping. ``moasha`` (default): multi-objective ASHA, each rung ranked by
    non-dominated sorting of (val accuracy, cost objectives); ``asha``: Tune's ASHA on val
    accuracy alone; ``none``: every trial runs all epochs. Stopped trials never reach a front."""

    name: Literal["moasha", "asha", "none"] = "moasha"
    grace_period: int = 2
    reduction_factor: int = 3


@dataclass(frozen=True)
class Budget:
    """Cost ceilings judged analytically before a trial is built; ``None`` means no ceiling."""

    max_flops: float | None = None
    max_params: float | None = None


@dataclass(frozen=True)
class TrainingConfig:
    """How every trial trains (the searched hyperparameters come from the space)."""

    max_micro_batch_size: int | None = None
    zero_stage: Literal[0, 1, 2, 3] = 0
    grad_clip: float = 1.0
    # auto: bf16 (or fp16) on a GPU, fp32 on CPU; bf16 is bf16 on the CPU too (docs/gpu.md)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # auto: the GPU Ray gives a trial (one given a GPU that sees no CUDA fails), else the CPU;
    # cpu: always the CPU, GPUs given or not (logical GPUs in tests: docs/gpu.md)
    device: Literal["auto", "cpu"] = "auto"
    # auto: the dataset's recipe (search.data.default_augment); else one of AUGMENT_POLICIES
    augment: str = "auto"
    eval_test: bool = True
    num_threads: int | None = None
    # The anytime Perceiver (needs perceiver.share_weights=true): one trial trains with a loss
    # over the iteration counts and records a front point for each k = 1..num_iterations.
    anytime: bool = False
    # all: the mean loss of the shared head after every iteration; sampled: one k per step
    anytime_loss: Literal["all", "sampled"] = "all"
    # A trial reports to Tune at the epochs its scheduler judges, at its last epoch, with a
    # checkpoint, and otherwise once this many seconds have passed since its last report (0:
    # every epoch). Each report waits for the driver; the history records every epoch anyway.
    report_interval_s: float = 1.0


@dataclass(frozen=True)
class Resources:
    """What one trial holds, and how many run at once."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    workers_per_trial: int = 1
    max_concurrent_trials: int = 2
    max_failures: int = 0
    # With retries, a trial checkpoints once this many seconds have passed since its last
    # checkpoint (0: every epoch): as often as a retry can use one, never more.
    checkpoint_interval_s: float = 60.0
    # On a cluster (an address), how long a run waits for the nodes one trial needs (an
    # autoscaler adding them) before it gives up; a private local Ray is refused at once.
    wait_for_resources_s: float = 600.0

    def trial_bundles(self) -> tuple[dict[str, float], list[dict[str, float]]]:
        """What one trial holds in Ray, in Ray's resource names: the Tune trainable's bundle
        (on one node), and its Ray Train workers' (``cpus_per_trial`` CPUs and one whole GPU or
        none, each). A one-worker trial has no workers: its trainable trains and holds the
        resources; with several, the trainable only drives a TorchTrainer and holds ~0.01 CPU."""
        if self.workers_per_trial > 1:
            worker = {"CPU": self.cpus_per_trial, **({"GPU": 1.0} if self.gpus_per_trial else {})}
            return {"CPU": 0.01}, [worker] * self.workers_per_trial
        return {"CPU": self.cpus_per_trial, "GPU": self.gpus_per_trial}, []


@dataclass(frozen=True)
class ConfirmConfig:
    """The sweep's last phase (``paretotune confirm`` after the trials): fresh seeds for the
    configurations whose front membership is uncertain; ``max_trainings: 0`` skips it."""

    seeds: int = 2  # new seeds per uncertain configuration
    max_trainings: int = 0  # trainings in all


@dataclass(frozen=True)
class Experiment:
    """A whole sweep, frozen and validated. Build it with :func:`load_experiment`."""

    name: str = "default"
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    families: tuple[str, ...] = FAMILIES
    num_trials: int = 20
    epochs: int = 5
    # Seeds per configuration: each trial trains this many models (new init, batch order and
    # dropout; the same split) side by side, epoch by epoch; its objective is their mean.
    replicates: int = 1
    objectives: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_OBJECTIVES))
    sampler: SamplerName = "tpe"
    # equal: families take turns (least-trained first), the sampler searches within the family;
    # sampler: the sampler chooses the family too
    family_allocation: Literal["equal", "sampler"] = "equal"
    # With equal allocation: each family's own number of trials (they sum to num_trials);
    # empty: equal shares.
    family_trials: dict[str, int] = field(default_factory=dict)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    budget: Budget = field(default_factory=Budget)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    resources: Resources = field(default_factory=Resources)
    confirm: ConfirmConfig = field(default_factory=ConfirmConfig)
    space: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    storage: str | None = None
    output_dir: str | None = None

    # ---- derived views -------------------------------------------------------------------
    @property
    def objective_names(self) -> list[str]:
        return list(self.objectives)

    @property
    def objective_metrics(self) -> list[str]:
        """The metric each objective reads from a trial's results, in objective order."""
        return [OBJECTIVES[name].column for name in self.objectives]

    @property
    def objective_modes(self) -> list[str]:
        return list(self.objectives.values())

    def family_shares(self) -> dict[str, int] | None:
        """Each family's share of the trials under equal allocation (None: the sampler picks
        the family); equal shares unless ``family_trials`` sets them."""
        if self.family_allocation != "equal":
            return None
        return dict(self.family_trials) or dict.fromkeys(self.families, 1)

    def augment_policy(self) -> str:
        """The augmentation policy trials train with (``auto`` resolved for the dataset)."""
        from search.data import default_augment

        if self.training.augment == "auto":
            return default_augment(self.dataset.name)
        return self.training.augment

    def resolved_output_dir(self) -> Path:
        return Path(self.output_dir or Path("results") / self.name).expanduser().absolute()

    def output_location(self) -> Path | str:
        """Where results go: :meth:`resolved_output_dir`, or an object-store URI as given
        (``s3://bucket/prefix``, without trailing slashes; see :mod:`search.storage`)."""
        from search import storage

        if storage.is_uri(self.output_dir):
            return storage.normalize(str(self.output_dir))
        return self.resolved_output_dir()

    def storage_url(self) -> str:
        """The Optuna RDB URL: the given one, else ``sqlite:///<output>/optuna.db`` (the path
        percent-quoted where it must be, so ``%``, ``?`` or ``#`` in it name the same file)."""
        if self.storage:
            return self.storage
        path = urllib.parse.quote(str(self.resolved_output_dir() / "optuna.db"), safe="/")
        return f"sqlite:///{path}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["families"] = list(self.families)
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def redact(url: str) -> str:
    """An RDB URL with its password hidden, for printing (a URL without one is unchanged;
    an ``@`` in a path is not a password's end)."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    netloc, slash, path = rest.partition("/")
    if "@" not in netloc:
        return url
    creds, host = netloc.rsplit("@", 1)
    if ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}{slash}{path}"
