"""What the report reads: a results directory's trials, the seed presets, and row helpers.

``load_results`` reads ``trials.json``; ``preset_points`` places ``models.PRESETS`` at their
estimated cost. The helpers read one row's configuration and hyperparameter columns; nothing
here draws.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models import FAMILIES
from search import pareto
from search.errors import UserError
from search.pareto import Objective
from search.results import read_trials
from search.vocabulary import DEFAULT_OBJECTIVES

__all__ = [
    "PresetPoint",
    "Results",
    "config",
    "family_sort",
    "hp_columns",
    "hp_value",
    "load_results",
    "log_scaled",
    "preset_points",
]


def family_sort(families: Iterable[str]) -> tuple[str, ...]:
    """``families`` in report order: ``models.FAMILIES`` first, then others by name."""
    order = {f: i for i, f in enumerate(FAMILIES)}
    return tuple(sorted(families, key=lambda f: (order.get(f, len(order)), f)))


@dataclass(frozen=True)
class Results:
    """A results directory's ``trials.json``: experiment, objectives and trial rows."""

    #: A local folder, or an object-store URI (text; see search.storage).
    directory: Path | str
    experiment: dict[str, Any]
    objectives: tuple[Objective, ...]
    rows: tuple[dict[str, Any], ...] = field(repr=False)
    #: How the rows' ``front_probability`` was computed (``trials.json``'s ``membership``).
    membership: dict[str, Any] = field(default_factory=dict)

    @property
    def unseeded_families(self) -> tuple[str, ...]:
        """Families whose membership probabilities lack seed data (and so are too sure)."""
        seed_sd = self.membership.get("seed_sd") or {}
        return family_sort({f for f, sd in seed_sd.items() if sd is None})

    @property
    def name(self) -> str:
        return str(self.experiment.get("name") or str(self.directory).rstrip("/").rsplit("/")[-1])

    @property
    def families(self) -> tuple[str, ...]:
        return family_sort({str(r.get("family")) for r in self.rows})

    @property
    def dataset(self) -> str:
        """The experiment's dataset name (its ``dataset`` section's ``name``; "" if none)."""
        section = self.experiment.get("dataset")
        name = section.get("name") if isinstance(section, Mapping) else section
        return "" if name is None else str(name)

    @property
    def accuracy_key(self) -> str:
        """The first "max" objective (the accuracy the front is drawn against)."""
        return next((o.name for o in self.objectives if o.direction == "max"), "val_accuracy")

    @property
    def cost_key(self) -> str:
        """The first "min" objective (the cost the matched-accuracy table uses)."""
        return next((o.name for o in self.objectives if o.direction == "min"), "flops")


@dataclass(frozen=True)
class PresetPoint:
    """A seed example's configuration placed at its estimated cost (``models.PRESETS``)."""

    name: str
    family: str
    flops: float
    params: float
    latency_ms: float | None
    reported_top1: float | None
    source: str
    dataset: str  # the seed's data, described: "100 classes, 64x64x3"
    dataset_name: str  # the dataset its reported accuracy was measured on ("cifar100")

    def cost(self, key: str) -> float | None:
        return {"flops": self.flops, "params": self.params, "latency_ms": self.latency_ms}.get(key)


def load_results(
    results_dir: str | os.PathLike[str], *, trials: dict[str, Any] | None = None
) -> Results:
    """Read ``<results_dir>/trials.json`` (see docs/architecture.md, "Results directory");
    ``trials``: that file when the caller has read it already (:func:`read_trials`)."""
    from search import storage

    directory: Path | str = (
        storage.normalize(results_dir)
        if isinstance(results_dir, str) and storage.is_uri(results_dir)
        else Path(results_dir)
    )
    if trials is None:
        path = storage.join(directory, "trials.json")
        if not storage.is_file(path):
            raise UserError(f"{path}: not found; is {directory} a paretotune results directory?")
        trials = read_trials(directory)
    objectives = trials["objectives"] or dict(DEFAULT_OBJECTIVES)
    rows = tuple(dict(r) for r in trials["trials"])
    return Results(
        directory,
        dict(trials["experiment"]),
        pareto.as_objectives(objectives),
        rows,
        dict(trials.get("membership") or {}),
    )


def _estimate(preset: Any, estimate: Any) -> Any:
    """The cost ``estimate`` (``models.cost.estimate``) gives a preset for its own input."""
    return estimate(
        preset.family,
        image_size=preset.image_size,
        in_channels=preset.in_channels,
        num_classes=preset.num_classes,
        **preset.hparams,
    )


def _preset_point(name: str, preset: Any, c: Any) -> PresetPoint:
    """A preset placed at its estimated cost ``c``."""
    size = preset.image_size
    return PresetPoint(
        name=name,
        family=preset.family,
        flops=float(c.flops),
        params=float(c.params),
        latency_ms=None if c.latency_ms_b1 is None else float(c.latency_ms_b1),
        reported_top1=preset.reported_top1,
        source=str(preset.source),
        dataset=f"{preset.num_classes} classes, {size}x{size}x{preset.in_channels}",
        dataset_name=preset.dataset,
    )


def preset_points() -> tuple[list[PresetPoint], list[str]]:
    """The seed presets at their estimated cost, and notes on any that could not be placed.

    Uses ``models.PRESETS`` and ``models.cost.estimate`` (imports torch). Never raises: when
    the models package is not importable the list is empty and the note says why.
    """
    try:
        import models
        from models import cost as model_cost

        presets = dict(models.PRESETS)
        estimate = model_cost.estimate
    except Exception as exc:  # the report must not fail on a broken models/
        return [], [
            f"seed presets not drawn: models.PRESETS / models.cost.estimate "
            f"unavailable ({type(exc).__name__}: {exc})"
        ]
    points: list[PresetPoint] = []
    notes: list[str] = []
    for name, p in presets.items():
        try:
            c = _estimate(p, estimate)
        except Exception as exc:
            notes.append(f"preset {name}: cost estimate failed ({type(exc).__name__}: {exc})")
            continue
        points.append(_preset_point(name, p, c))
    return points, notes


# ---------------------------------------------------------------------------------------------
# One row's configuration and hyperparameters


def config(row: Mapping[str, Any]) -> dict[str, Any]:
    """The trial's configuration: ``row["config"]``, else its ``hp.*`` columns."""
    cfg = row.get("config")
    if isinstance(cfg, Mapping) and cfg:
        return dict(cfg)
    return {k[3:]: v for k, v in row.items() if k.startswith("hp.")}


def hp_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``hp.*`` columns (without the prefix) that vary across ``rows``; else config keys."""
    keys = sorted({k for r in rows for k in r if k.startswith("hp.")})
    if keys:
        names = [k[3:] for k in keys]
        values = {n: [r.get(f"hp.{n}") for r in rows] for n in names}
    else:
        names = sorted({k for r in rows for k in config(r)})
        values = {n: [config(r).get(n) for r in rows] for n in names}
    return [
        n for n in names if len({json.dumps(v, sort_keys=True, default=str) for v in values[n]}) > 1
    ]


def hp_value(row: Mapping[str, Any], name: str) -> Any:
    """Hyperparameter ``name`` of ``row``: its ``hp.<name>`` column, else its config entry."""
    return row[f"hp.{name}"] if f"hp.{name}" in row else config(row).get(name)


_LOG_PARAMS = frozenset({"lr", "weight_decay"})


def log_scaled(name: str, lo: float, hi: float) -> bool:
    """Whether a positive numeric hyperparameter reads better in log10: the learning rate and
    weight decay (searched on a log scale), or anything spanning two decades or more."""
    return lo > 0 and ((name in _LOG_PARAMS and hi > lo) or hi / lo >= 100)
