"""Experiment configuration: one frozen, validated object, loadable from YAML or a preset name.

An experiment says what to search (dataset, families), how long (trials, epochs), what to
optimise (two or three objectives), how (sampler, scheduler, budget) and where (resources,
storage, output directory). ``load_experiment`` validates everything on load: an unknown key, a
wrong type or an impossible value raises :class:`~search.errors.UserError` with one line naming
the field, the value and what is allowed.

Presets live in ``search/presets/*.yaml`` (``default``, ``smoke``, ``cifar100``), in the style of
big_vision's configs: plain, readable files with a small variant beside the full one.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from search.errors import UserError

__all__ = [
    "OBJECTIVES",
    "PRESETS_DIR",
    "Budget",
    "DatasetConfig",
    "Experiment",
    "Resources",
    "SchedulerConfig",
    "TrainingConfig",
    "apply_overrides",
    "experiment_from_dict",
    "list_presets",
    "load_experiment",
    "redact",
]

PRESETS_DIR = Path(__file__).with_name("presets")

#: Objective name -> the direction it must have and the metric a trial reports for it.
OBJECTIVES: dict[str, tuple[str, str]] = {
    "val_accuracy": ("max", "val_accuracy"),  # the last epoch's: the weights that count
    "flops": ("min", "flops"),
    "params": ("min", "params"),
    "latency": ("min", "latency_ms"),
}
_FAMILIES = ("perceiver", "vit", "mixer", "fnet", "gmlp")
_DATASETS = ("digits", "cifar10", "cifar100", "imagefolder", "synthetic")


@dataclass(frozen=True)
class DatasetConfig:
    """Which data, at which resolution. ``synthetic`` holds the synthetic generator's options."""

    name: Literal["digits", "cifar10", "cifar100", "imagefolder", "synthetic"] = "digits"
    image_size: int = 16
    data_dir: str | None = None
    download: bool = False
    val_fraction: float = 0.15
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
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # auto: the dataset's recipe (search.data.default_augment); else one of AUGMENT_POLICIES
    augment: str = "auto"
    eval_test: bool = True
    num_threads: int | None = None


@dataclass(frozen=True)
class Resources:
    """What one trial holds, and how many run at once."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    workers_per_trial: int = 1
    max_concurrent_trials: int = 2
    max_failures: int = 0


@dataclass(frozen=True)
class Experiment:
    """A whole sweep, frozen and validated. Build it with :func:`load_experiment`."""

    name: str = "default"
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    families: tuple[str, ...] = _FAMILIES
    num_trials: int = 20
    epochs: int = 5
    objectives: dict[str, str] = field(
        default_factory=lambda: {"val_accuracy": "max", "flops": "min"}
    )
    sampler: Literal["nsga2", "tpe", "random"] = "tpe"
    # equal: families take turns (least-trained first), the sampler searches within the family;
    # sampler: the sampler chooses the family too
    family_allocation: Literal["equal", "sampler"] = "equal"
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    budget: Budget = field(default_factory=Budget)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    resources: Resources = field(default_factory=Resources)
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
        return [OBJECTIVES[name][1] for name in self.objectives]

    @property
    def objective_modes(self) -> list[str]:
        return list(self.objectives.values())

    def augment_policy(self) -> str:
        """The augmentation policy trials train with (``auto`` resolved for the dataset)."""
        from search.data import default_augment

        if self.training.augment == "auto":
            return default_augment(self.dataset.name)
        return self.training.augment

    def resolved_output_dir(self) -> Path:
        return Path(self.output_dir or Path("results") / self.name).expanduser().absolute()

    def storage_url(self) -> str:
        """The Optuna RDB URL: the given one, else ``sqlite:///<output>/optuna.db``."""
        return self.storage or f"sqlite:///{self.resolved_output_dir() / 'optuna.db'}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["families"] = list(self.families)
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def redact(url: str) -> str:
    """An RDB URL with its password hidden, for printing."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


# ---- loading -------------------------------------------------------------------------------
def list_presets() -> list[str]:
    """Names of the shipped experiment presets."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load_experiment(
    source: str | Path | dict[str, Any] | Experiment = "default",
    overrides: list[str] | tuple[str, ...] = (),
) -> Experiment:
    """Load an experiment from a preset name, a YAML path, a dict or an Experiment.

    ``overrides`` are ``dotted.key=value`` strings (values parsed as YAML), applied last.
    """
    if isinstance(source, Experiment):
        data = source.to_dict()
    elif isinstance(source, dict):
        data = dict(source)
    else:
        data = _read_source(str(source))
    data = apply_overrides(data, overrides)
    return experiment_from_dict(data)


def _read_source(source: str) -> dict[str, Any]:
    path = Path(source).expanduser()
    if not path.is_file() and (PRESETS_DIR / f"{source}.yaml").is_file():
        path = PRESETS_DIR / f"{source}.yaml"
    if not path.is_file():
        raise UserError(
            f"experiment {source!r}: no such file or preset; presets: {', '.join(list_presets())}"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise UserError(f"experiment file {path}: not valid YAML{where}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(
            f"experiment file {path}: expected a mapping of keys, got {type(data).__name__}"
        )
    data.setdefault("name", path.stem)
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides to a nested dict (a copy is returned)."""
    result = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. --set num_trials=8")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = result
        parts = key.strip().split(".")
        if parts[0] == "space" and len(parts) > 2:  # space keys hold dots: perceiver.num_latents
            parts = ["space", ".".join(parts[1:])]
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise UserError(f"--set {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return result


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def experiment_from_dict(data: dict[str, Any]) -> Experiment:
    """Validate a plain dict and build the Experiment (raises UserError on any problem)."""
    experiment = _build(Experiment, data, "")
    _check_values(experiment)
    return experiment


# ---- generic, type-driven validation ---------------------------------------------------------
def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise UserError(f"{prefix.rstrip('.') or 'experiment'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(f"{prefix}{key}: unknown key{hint}; allowed: {', '.join(names)}")
    kwargs = {}
    for name in names:
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], f"{prefix}{name}")
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(typing.cast(type, tp), value if value is not None else {}, f"{path}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, path)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(str(a) for a in args)
            raise UserError(f"{path}={value!r}: not allowed; allowed: {allowed}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"{path}={value!r}: expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{path}={value!r}: expected a whole number")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e6 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{path}={value!r}: expected a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str) or not value:
            raise UserError(f"{path}={value!r}: expected a non-empty string")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{path}={value!r}: expected a list")
        return tuple(_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise UserError(f"{path}={value!r}: expected a mapping")
        return dict(value)
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # pragma: no cover


def _check_values(exp: Experiment) -> None:
    def positive(path: str, value: float | None, *, allow_zero: bool = False) -> None:
        if value is not None and (value < 0 or (value == 0 and not allow_zero)):
            bound = ">= 0" if allow_zero else "> 0"
            raise UserError(f"{path}={value!r}: must be {bound}")

    if not exp.families:
        raise UserError(f"families=[]: give at least one of {', '.join(_FAMILIES)}")
    for fam in exp.families:
        if fam not in _FAMILIES:
            raise UserError(f"families: {fam!r} is not a family; allowed: {', '.join(_FAMILIES)}")
    if len(set(exp.families)) != len(exp.families):
        raise UserError(f"families={list(exp.families)}: a family is listed twice")
    if exp.dataset.name not in _DATASETS:  # pragma: no cover - Literal already checks
        raise UserError(f"dataset.name={exp.dataset.name!r}; allowed: {', '.join(_DATASETS)}")
    positive("dataset.image_size", exp.dataset.image_size)
    if not 0.0 < exp.dataset.val_fraction < 0.9:
        raise UserError(f"dataset.val_fraction={exp.dataset.val_fraction}: must be in (0, 0.9)")
    if exp.dataset.name in ("cifar10", "cifar100", "imagefolder") and not exp.dataset.data_dir:
        raise UserError(
            f"dataset.data_dir: required for dataset.name={exp.dataset.name}; "
            f"e.g. --set dataset.data_dir=~/data"
        )
    positive("num_trials", exp.num_trials)
    positive("epochs", exp.epochs)
    if not 2 <= len(exp.objectives) <= 3:
        raise UserError(
            f"objectives={exp.objectives}: give two or three of {', '.join(OBJECTIVES)}"
        )
    for name, mode in exp.objectives.items():
        if name not in OBJECTIVES:
            raise UserError(
                f"objectives.{name}: unknown objective; allowed: {', '.join(OBJECTIVES)}"
            )
        if mode != OBJECTIVES[name][0]:
            raise UserError(f"objectives.{name}={mode!r}: allowed: {OBJECTIVES[name][0]}")
    if "val_accuracy" not in exp.objectives:
        raise UserError("objectives: val_accuracy must be one of the objectives")
    positive("scheduler.grace_period", exp.scheduler.grace_period)
    if exp.scheduler.reduction_factor < 2:
        raise UserError(
            f"scheduler.reduction_factor={exp.scheduler.reduction_factor}: must be >= 2"
        )
    positive("budget.max_flops", exp.budget.max_flops)
    positive("budget.max_params", exp.budget.max_params)
    positive("training.max_micro_batch_size", exp.training.max_micro_batch_size)
    positive("training.grad_clip", exp.training.grad_clip, allow_zero=True)
    positive("training.num_threads", exp.training.num_threads)
    from search.data import AUGMENT_POLICIES

    if exp.training.augment not in ("auto", *AUGMENT_POLICIES):
        raise UserError(
            f"training.augment={exp.training.augment!r}: not allowed; allowed: "
            + ", ".join(("auto", *AUGMENT_POLICIES))
        )
    res = exp.resources
    positive("resources.cpus_per_trial", res.cpus_per_trial)
    positive("resources.gpus_per_trial", res.gpus_per_trial, allow_zero=True)
    if res.gpus_per_trial > 1 and res.gpus_per_trial != int(res.gpus_per_trial):
        raise UserError(
            f"resources.gpus_per_trial={res.gpus_per_trial}: fractions only below 1 "
            "(e.g. 0.25); above 1 use whole GPUs"
        )
    positive("resources.workers_per_trial", res.workers_per_trial)
    positive("resources.max_concurrent_trials", res.max_concurrent_trials)
    positive("resources.max_failures", res.max_failures, allow_zero=True)
    if exp.storage is not None and not exp.storage.startswith(("sqlite:", "postgresql", "mysql")):
        raise UserError(
            f"storage={exp.storage!r}: expected an RDB URL (sqlite:///path/optuna.db or "
            "postgresql://user@host/db)"
        )
    _check_space(exp)
    if not exp.name.replace("-", "").replace("_", "").isalnum():
        raise UserError(f"name={exp.name!r}: use letters, digits, '-' and '_' only")


def _check_space(exp: Experiment) -> None:
    """Every ``space`` key must be a parameter of some family's space (catches typos); keys of
    families not in this experiment are allowed, so ``--set families=[vit]`` works on presets."""
    from spaces import parameter_names

    known = parameter_names(_FAMILIES, image_size=exp.dataset.image_size)
    for key, value in exp.space.items():
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(
                f"space.{key}: not a search-space parameter{hint}; allowed: family-prefixed "
                f"names such as perceiver.num_latents (see spaces/), or "
                f"{', '.join(k for k in known if '.' not in k and k != 'family')}"
            )
        if not isinstance(value, (list, tuple)) or not value:
            raise UserError(f"space.{key}={value!r}: expected a non-empty list of choices")
