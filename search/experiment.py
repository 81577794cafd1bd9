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
import functools
import math
import random
import re
import types
import typing
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import yaml

from search.dataset_rules import (
    MAX_DATASET_BYTES,
    MAX_IMAGE_SIZE,
    MAX_SEED,
    SYNTHETIC_DEFAULTS,
    check_dataset_fields,
    check_seed,
    synthetic_bytes,
)
from search.errors import UserError
from search.vocabulary import (
    FAMILIES,
    FOLDER_DATASETS,
    OBJECTIVES,
    DatasetName,
    SamplerName,
)

if TYPE_CHECKING:
    from spaces import SpaceContext

__all__ = [
    "MAX_DATASET_BYTES",
    "MAX_IMAGE_SIZE",
    "MAX_SEED",
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


# ---- limits: larger values are refused on load (they could only exhaust memory or time) ------
_MAX_COUNT = 100_000  # num_trials, epochs, grace period, warmup epochs
_MAX_FILE_BYTES = 1 << 20  # an experiment file
_MAX_NODES = 100_000  # values in one experiment (YAML aliases can multiply them)
_MAX_DEPTH = 64
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Images per dataset (train + test) and channels, for the load-time memory estimate.
_DATASET_IMAGES = {"digits": (1797, 1), "cifar10": (60_000, 3), "cifar100": (60_000, 3)}
#: (in_channels, num_classes) a dataset gives the models; an image folder is RGB with at
#: least two classes (the cheapest head, so a budget check never refuses a fitting proposal).
_DATASET_SHAPE = {
    "digits": (1, 10),
    "cifar10": (3, 10),
    "cifar100": (3, 100),
    "imagefolder": (3, 2),
}


@dataclass(frozen=True)
class DatasetConfig:
    """Which data, at which resolution. ``synthetic`` holds the synthetic generator's options."""

    name: DatasetName = "digits"
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


@dataclass(frozen=True)
class Experiment:
    """A whole sweep, frozen and validated. Build it with :func:`load_experiment`."""

    name: str = "default"
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    families: tuple[str, ...] = FAMILIES
    num_trials: int = 20
    epochs: int = 5
    objectives: dict[str, str] = field(
        default_factory=lambda: {"val_accuracy": "max", "flops": "min"}
    )
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
        data = _deep_copy(source)
    elif isinstance(source, (str, Path)):
        data = _read_source(str(source))
    else:
        raise UserError(
            f"experiment={source!r}: expected a preset name, a YAML path, a dict or an Experiment"
        )
    data = apply_overrides(data, overrides)
    _drop_stale_synthetic(data, overrides)
    return experiment_from_dict(data)


def _drop_stale_synthetic(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> None:
    """``--set dataset.name=digits`` on a synthetic preset: the preset's ``dataset.synthetic``
    options go with the dataset they were for (as space keys of families not searched are
    allowed). Synthetic options given together with another dataset are refused on load."""
    keys = [str(o).partition("=")[0].strip() for o in overrides]
    renamed = any(k in ("dataset", "dataset.name") for k in keys)
    if not renamed or any(k.startswith("dataset.synthetic") for k in keys):
        return
    dataset = data.get("dataset")
    # `--set dataset={...}` replaced the whole section: its synthetic options are the user's
    if isinstance(dataset, dict) and dataset.get("name") != "synthetic" and "dataset" not in keys:
        dataset.pop("synthetic", None)


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (PyYAML keeps the last
    silently, so a second ``epochs:`` would win unnoticed)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may repeat base's keys
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be a name, not {type(key).__name__}", key_node.start_mark
            ) from None
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no arbitrary objects


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    where = f"line {mark.line + 1}" if mark is not None else ""
    return ": ".join(p for p in (where, problem) if p)


def _read_source(source: str) -> dict[str, Any]:
    presets = ", ".join(list_presets())
    if "\0" in source:
        raise UserError(f"experiment {source!r}: not a file path (it holds a NUL byte)")
    try:
        path = Path(source).expanduser()
        if not path.is_file() and (PRESETS_DIR / f"{source}.yaml").is_file():
            path = PRESETS_DIR / f"{source}.yaml"
        if path.is_dir():
            raise UserError(
                f"experiment {source!r}: is a folder; give an experiment YAML file or a preset: "
                f"{presets}"
            )
        if not path.is_file():
            raise UserError(f"experiment {source!r}: no such file or preset; presets: {presets}")
        size = path.stat().st_size
        if size > _MAX_FILE_BYTES:
            raise UserError(
                f"experiment file {path}: {size} bytes; an experiment file is at most "
                f"{_MAX_FILE_BYTES} bytes of YAML"
            )
        raw = path.read_bytes()
    except (OSError, RuntimeError) as exc:  # RuntimeError: ~user that does not exist
        reason = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"experiment {source!r}: cannot read it ({reason})") from None
    return _parse_source(raw, str(path), path.stem)


def experiment_from_text(raw: bytes, shown: str) -> Experiment:
    """An experiment from YAML bytes read elsewhere (an object store); ``shown`` names them."""
    return experiment_from_dict(_parse_source(raw, shown, Path(shown).stem))


def _parse_source(raw: bytes, path: str, stem: str) -> dict[str, Any]:
    name = path.rsplit("/", 1)[-1]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"experiment file {path}: not a text file (byte {exc.start} is not UTF-8); an "
            "experiment is a YAML file"
        ) from None
    if "\0" in text:
        raise UserError(f"experiment file {path}: not a text file (it holds NUL bytes)")
    try:
        data = _yaml(text)
    except yaml.YAMLError as exc:
        problem = _yaml_problem(exc)
        raise UserError(
            f"experiment file {path}: not valid YAML" + (f" ({problem})" if problem else "")
        ) from None
    except RecursionError:
        raise UserError(f"experiment file {path}: nested too deeply") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(
            f"experiment file {path}: expected a mapping of keys, got {type(data).__name__}"
        )
    data = _deep_copy(data)
    if "name" not in data:
        if not _NAME_RE.fullmatch(stem):
            raise UserError(
                f"name={stem!r} (from the file name {name}): use letters, digits, "
                "'-' and '_' only (at most 64); or give the experiment a name: field"
            )
        data["name"] = stem
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``a.b=value`` overrides to a nested dict (a copy is returned)."""
    result = _deep_copy(data)
    if isinstance(overrides, str):
        overrides = [overrides]
    for item in overrides:
        if not isinstance(item, str):
            raise UserError(f"--set {item!r}: expected KEY=VALUE text, e.g. --set num_trials=8")
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. --set num_trials=8")
        try:
            value = _deep_copy(_yaml(raw)) if raw.strip() else None
        except yaml.constructor.ConstructorError as exc:
            raise UserError(f"--set {item!r}: {_yaml_problem(exc) or 'not valid YAML'}") from None
        except yaml.YAMLError:
            value = raw
        except RecursionError:
            raise UserError(f"--set {item!r}: the value is nested too deeply") from None
        node = result
        parts = key.strip().split(".")
        if any(not p.strip() for p in parts):
            raise UserError(f"--set {item!r}: an empty part in the key {key.strip()!r}")
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
    """A copy of nested dicts and lists; a structure that refers to itself, nests deeper than
    ``_MAX_DEPTH`` or that YAML aliases blow up to more than ``_MAX_NODES`` values is refused,
    naming where."""
    count = 0
    ancestors: list[int] = []

    def copy(value: Any, path: str) -> Any:
        nonlocal count
        count += 1
        where = path or "experiment"
        if count > _MAX_NODES:
            raise UserError(
                f"{where}: more than {_MAX_NODES} values in the experiment (YAML aliases "
                "multiplying?); an experiment is a small mapping"
            )
        if not isinstance(value, (dict, list, tuple)):
            return value
        if id(value) in ancestors:
            raise UserError(f"{where}: refers to itself (a recursive YAML alias)")
        if len(ancestors) >= _MAX_DEPTH:
            raise UserError(f"{where}: nested more than {_MAX_DEPTH} levels deep")
        ancestors.append(id(value))
        try:
            if isinstance(value, dict):
                return {k: copy(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
            return [copy(v, f"{path}[{i}]") for i, v in enumerate(value)]
        finally:
            ancestors.pop()

    return copy(data, "")


def experiment_from_dict(data: dict[str, Any]) -> Experiment:
    """Validate a plain dict and build the Experiment (raises UserError on any problem)."""
    if isinstance(data, dict) and isinstance(data.get("space"), dict):
        data = {**data, "space": {k: _numbers(v) for k, v in data["space"].items()}}
    experiment = _build(Experiment, data, "")
    _check_values(experiment)
    return experiment


_YAML11_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _numbers(value: Any) -> Any:
    """Space choices written ``1e-3`` (YAML 1.1 reads a float without a dot as text) as the
    numbers they are, as for every float field."""
    if isinstance(value, list):
        return [float(v) if isinstance(v, str) and _YAML11_FLOAT.fullmatch(v) else v for v in value]
    return value


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
        # by type too: `true` is not zero_stage 1, nor 1.0
        if not any(type(value) is type(a) and value == a for a in args):
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
        if abs(value) >= 2**63:
            raise UserError(f"{path}={value!r}: too large; expected a whole number below 2**63")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e6 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{path}={value!r}: expected a number")
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise UserError(f"{path}={value!r}: expected a finite number")
        return number
    if tp is str:
        if not isinstance(value, str) or not value:
            raise UserError(f"{path}={value!r}: expected a non-empty string")
        if "\0" in value or len(value) > 4096:
            raise UserError(f"{path}={value[:80]!r}: expected text without NUL bytes (<= 4096)")
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
        for key in value:
            if not isinstance(key, str) or not key:
                raise UserError(f"{path}: key {key!r} is not a name; keys are text")
        return dict(value)
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # pragma: no cover


def _in_range(path: str, value: float | None, low: float, high: float) -> None:
    """``low <= value <= high`` (None passes): else one line naming the field and the range."""
    if value is not None and not low <= value <= high:
        raise UserError(f"{path}={value!r}: must be between {low:g} and {high:g}")


def _check_values(exp: Experiment) -> None:
    def positive(path: str, value: float | None, *, allow_zero: bool = False) -> None:
        if value is not None and (value < 0 or (value == 0 and not allow_zero)):
            bound = ">= 0" if allow_zero else "> 0"
            raise UserError(f"{path}={value!r}: must be {bound}")

    if not _NAME_RE.fullmatch(exp.name):
        raise UserError(
            f"name={exp.name!r}: use letters, digits, '-' and '_' only (at most 64 characters)"
        )
    if not exp.families:
        raise UserError(f"families=[]: give at least one of {', '.join(FAMILIES)}")
    for fam in exp.families:
        if fam not in FAMILIES:
            raise UserError(f"families: {fam!r} is not a family; allowed: {', '.join(FAMILIES)}")
    if len(set(exp.families)) != len(exp.families):
        raise UserError(f"families={list(exp.families)}: a family is listed twice")
    _check_dataset(exp)
    positive("num_trials", exp.num_trials)
    _in_range("num_trials", exp.num_trials, 1, _MAX_COUNT)
    _check_family_trials(exp)
    positive("epochs", exp.epochs)
    _in_range("epochs", exp.epochs, 1, _MAX_COUNT)
    if not 2 <= len(exp.objectives) <= 3:
        raise UserError(
            f"objectives={exp.objectives}: give two or three of {', '.join(OBJECTIVES)}"
        )
    for name, mode in exp.objectives.items():
        if name not in OBJECTIVES:
            raise UserError(
                f"objectives.{name}: unknown objective; allowed: {', '.join(OBJECTIVES)}"
            )
        if mode != OBJECTIVES[name].direction:
            raise UserError(f"objectives.{name}={mode!r}: allowed: {OBJECTIVES[name].direction}")
    if "val_accuracy" not in exp.objectives:
        raise UserError("objectives: val_accuracy must be one of the objectives")
    positive("scheduler.grace_period", exp.scheduler.grace_period)
    _in_range("scheduler.grace_period", exp.scheduler.grace_period, 1, _MAX_COUNT)
    if exp.scheduler.reduction_factor < 2:
        raise UserError(
            f"scheduler.reduction_factor={exp.scheduler.reduction_factor}: must be >= 2"
        )
    _in_range("scheduler.reduction_factor", exp.scheduler.reduction_factor, 2, 100)
    positive("budget.max_flops", exp.budget.max_flops)
    positive("budget.max_params", exp.budget.max_params)
    positive("training.max_micro_batch_size", exp.training.max_micro_batch_size)
    _in_range("training.max_micro_batch_size", exp.training.max_micro_batch_size, 1, 65536)
    positive("training.grad_clip", exp.training.grad_clip, allow_zero=True)
    positive("training.num_threads", exp.training.num_threads)
    _in_range("training.num_threads", exp.training.num_threads, 1, 1024)
    from search.data import AUGMENT_POLICIES

    if exp.training.augment not in ("auto", *AUGMENT_POLICIES):
        raise UserError(
            f"training.augment={exp.training.augment!r}: not allowed; allowed: "
            + ", ".join(("auto", *AUGMENT_POLICIES))
        )
    res = exp.resources
    positive("resources.cpus_per_trial", res.cpus_per_trial)
    _in_range("resources.cpus_per_trial", res.cpus_per_trial, 0, 1024)
    positive("resources.gpus_per_trial", res.gpus_per_trial, allow_zero=True)
    _in_range("resources.gpus_per_trial", res.gpus_per_trial, 0, 64)
    if res.gpus_per_trial > 1 and res.gpus_per_trial != int(res.gpus_per_trial):
        raise UserError(
            f"resources.gpus_per_trial={res.gpus_per_trial}: fractions only below 1 "
            "(e.g. 0.25); above 1 use whole GPUs"
        )
    positive("resources.workers_per_trial", res.workers_per_trial)
    _in_range("resources.workers_per_trial", res.workers_per_trial, 1, 1024)
    positive("resources.max_concurrent_trials", res.max_concurrent_trials)
    _in_range("resources.max_concurrent_trials", res.max_concurrent_trials, 1, 10_000)
    positive("resources.max_failures", res.max_failures, allow_zero=True)
    _in_range("resources.max_failures", res.max_failures, 0, 1000)
    _in_range("resources.checkpoint_interval_s", res.checkpoint_interval_s, 0, 86_400)
    _in_range("training.report_interval_s", exp.training.report_interval_s, 0, 86_400)
    check_seed(exp.seed)
    if exp.storage is not None:
        _check_storage(exp.storage)
    _check_output_dir(exp)
    _check_space(exp)
    _check_anytime(exp)


def _check_family_trials(exp: Experiment) -> None:
    shares = exp.family_trials
    if not shares:
        return
    if exp.family_allocation != "equal":
        raise UserError(
            f"family_trials={shares}: needs family_allocation=equal (with `sampler` the "
            "sampler chooses each trial's family)"
        )
    if set(shares) != set(exp.families):
        raise UserError(
            f"family_trials={shares}: give a number for each family searched and no other; "
            f"families={list(exp.families)}"
        )
    for family, n in shares.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserError(f"family_trials.{family}={n!r}: expected a whole number >= 1")
    if sum(shares.values()) != exp.num_trials:
        raise UserError(
            f"family_trials={shares}: sums to {sum(shares.values())}, but num_trials="
            f"{exp.num_trials}; set num_trials to the sum"
        )


def _check_anytime(exp: Experiment) -> None:
    """``training.anytime`` needs a Perceiver whose iterations share weights."""
    if not exp.training.anytime:
        return
    if "perceiver" not in exp.families:
        raise UserError(
            "training.anytime=true: only the Perceiver has anytime iterations; add perceiver "
            "to families or set training.anytime=false"
        )
    shared = exp.space.get("perceiver.share_weights", [True, False])
    if list(shared) != [True]:
        raise UserError(
            f"training.anytime=true: needs perceiver.share_weights=[true] in the space (got "
            f"{list(shared)}): only with shared weights is iteration k of one model the "
            "k-iteration model"
        )


def _expand(path_field: str, value: str) -> Path:
    try:
        return Path(value).expanduser()
    except RuntimeError as exc:  # ~someone who has no home here
        raise UserError(f"{path_field}={value!r}: cannot expand it ({exc})") from None


def _check_output_dir(exp: Experiment) -> None:
    from search import storage

    if storage.is_uri(exp.output_dir):
        if exp.storage is None:
            raise UserError(
                f"output_dir={exp.output_dir!r}: an object-store output needs the study in an RDB: "
                "set storage (e.g. --set storage=postgresql://USER@DBHOST/optuna, or a local "
                "sqlite:////abs/path/optuna.db); the default <output_dir>/optuna.db cannot live "
                "there"
            )
        if any(c in str(exp.output_dir) for c in "\n\r\0"):
            raise UserError(f"output_dir={exp.output_dir!r}: a URI without line breaks, please")
        return
    if exp.output_dir is not None:
        _expand("output_dir", exp.output_dir)
    if exp.storage is None:
        out = str(exp.resolved_output_dir())
        if "\n" in out or "\r" in out:
            raise UserError(f"output_dir={out!r}: a folder path without line breaks, please")


def _check_dataset(exp: Experiment) -> None:
    ds = exp.dataset
    check_dataset_fields(
        ds.name,
        image_size=ds.image_size,
        val_fraction=ds.val_fraction,
        download=ds.download,
        synthetic=ds.synthetic,
    )
    if ds.name in FOLDER_DATASETS and not ds.data_dir:
        raise UserError(
            f"dataset.data_dir: required for dataset.name={ds.name}; "
            f"e.g. --set dataset.data_dir=~/data"
        )
    if ds.data_dir is not None:
        _expand("dataset.data_dir", ds.data_dir)
    need = _dataset_bytes(exp)
    if need is not None and need > MAX_DATASET_BYTES:
        extra = " or dataset.synthetic.num_train / num_test" if ds.name == "synthetic" else ""
        raise UserError(
            f"dataset.image_size={ds.image_size}: {ds.name} at {ds.image_size}x{ds.image_size} "
            f"needs ~{need / 2**30:.1f} GiB of memory to load (limit "
            f"{MAX_DATASET_BYTES / 2**30:g} GiB); lower dataset.image_size{extra}"
        )


def _dataset_bytes(exp: Experiment) -> int | None:
    """Peak memory (bytes) of loading the dataset at its image size; None when unknown."""
    ds = exp.dataset
    pixels = ds.image_size * ds.image_size
    if ds.name in _DATASET_IMAGES:
        count, channels = _DATASET_IMAGES[ds.name]
        return count * channels * pixels
    if ds.name == "synthetic":
        return synthetic_bytes({**SYNTHETIC_DEFAULTS, **ds.synthetic}, ds.image_size)
    return None


def _data_shape(exp: Experiment) -> tuple[int, int]:
    """(in_channels, num_classes) the models will see."""
    if exp.dataset.name == "synthetic":
        opts = {**SYNTHETIC_DEFAULTS, **exp.dataset.synthetic}
        return int(opts["in_channels"]), int(opts["num_classes"])
    return _DATASET_SHAPE[exp.dataset.name]


def _check_storage(url: str) -> None:
    """An Optuna RDB URL that parses, of SQLite, PostgreSQL or MySQL, whose driver is installed;
    not an in-memory SQLite database (the study would be lost)."""
    shown = redact(url)
    allowed = "expected an RDB URL (sqlite:///path/optuna.db or postgresql://user@host/db)"
    if "://" not in url:
        raise UserError(f"storage={shown!r}: {allowed}")
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        port = parsed.port  # parses it: 'host:abc' fails here
    except (ArgumentError, ValueError, TypeError) as exc:
        raise UserError(f"storage={shown!r}: not a valid URL ({exc}); {allowed}") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql", "mysql"):
        raise UserError(f"storage={shown!r}: {allowed}; {backend!r} is not one")
    if backend == "sqlite":
        db = parsed.database or ""
        if db in ("", ":memory:") or "mode=memory" in db or parsed.query.get("mode") == "memory":
            raise UserError(
                f"storage={shown!r}: an in-memory SQLite study is lost when the sweep ends; give "
                "a file, e.g. sqlite:///results/optuna.db (or leave storage out)"
            )
        _expand("storage", db)
    else:
        if not parsed.host:
            raise UserError(f"storage={shown!r}: no database host; e.g. {backend}://user@dbhost/db")
        if port is not None and not 1 <= port <= 65535:
            raise UserError(f"storage={shown!r}: port {port}: allowed: 1-65535")
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise UserError(
            f"storage={shown!r}: SQLAlchemy has no driver {parsed.drivername!r}; e.g. "
            "postgresql+psycopg://, postgresql+psycopg2://, mysql+pymysql://"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = getattr(exc, "name", None) or str(exc)
        raise UserError(
            f"storage={shown!r}: its database driver ({module}) is not installed; install it "
            "(e.g. pip install 'psycopg[binary]' for postgresql+psycopg://, pymysql for "
            "mysql+pymysql://) or choose a driver you have"
        ) from None


# ---- search-space overrides --------------------------------------------------------------
#: Checks of the training parameters' choices (the model ones are checked by ``models``).
_TRAIN_CHOICE_RULES: dict[str, tuple[str, Any]] = {
    "optimizer": ("one of adamw, lamb", lambda v: v in ("adamw", "lamb")),
    "batch_size": (
        "whole numbers from 1 to 65536",
        lambda v: type(v) is int and 1 <= v <= 65536,
    ),
    "warmup_epochs": (
        f"whole numbers from 0 to {_MAX_COUNT}",
        lambda v: type(v) is int and 0 <= v <= _MAX_COUNT,
    ),
    "label_smoothing": (
        "numbers in [0, 1)",
        lambda v: type(v) in (int, float) and 0 <= v < 1,
    ),
}
#: Upper ends of the training ranges (a learning rate above 1 only diverges).
_RANGE_HIGH = {"adamw.lr": 1.0, "lamb.lr": 1.0, "weight_decay": 10.0}
_DRAWS = 200  # random proposals tried before a family (or one choice) is judged never valid
#: Largest model a proposal may describe (Adam's fp32 state is ~16 bytes per parameter), and
#: the most forward FLOPs per image: beyond, a trial could only exhaust memory or time.
_MAX_PARAMS = 1e9
_MAX_FLOPS = 1e13


@functools.lru_cache(maxsize=1)
def _parameter_kinds() -> dict[str, str]:
    """Every search-space parameter -> how it is searched (``choice``, ``patch``, ``range``)."""
    from spaces import SPACES, SpaceContext
    from spaces.common import training

    kinds: dict[str, str] = {}
    ctx = SpaceContext(image_size=64)  # 64: every default patch size divides it
    for k in range(8):  # the space once per choice index: every conditional branch appears
        probe = _DrawTrial(random.Random(k), index=k)
        for family in FAMILIES:
            SPACES[family](probe, ctx)  # type: ignore[arg-type]
        training(probe, ctx)  # type: ignore[arg-type]
        kinds.update(probe.kinds)
    return kinds


class _DrawTrial:
    """A stand-in Optuna trial: draws every parameter at random (``index``: takes choice
    ``index`` of each, modulo; ``cheapest``: the smallest number, the largest patch), optionally
    forcing one parameter to one value. Records how each parameter is searched."""

    def __init__(
        self,
        rng: random.Random,
        *,
        forced: tuple[str, Any] | None = None,
        index: int | None = None,
        cheapest: bool = False,
    ) -> None:
        self.rng = rng
        self.forced = forced
        self.index = index
        self.cheapest = cheapest
        self.hit = False  # the forced parameter was suggested
        self.reachable = True  # ... and its value was among the choices offered
        self.kinds: dict[str, str] = {}

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        choices = list(choices)
        self.kinds[name] = "patch" if name.endswith("patch_size") else "choice"
        if self.forced is not None and name == self.forced[0]:
            self.hit = True
            value = self.forced[1]
            if any(type(c) is type(value) and c == value for c in choices):
                return value
            self.reachable = False  # filtered out (a patch size that does not divide the image)
        if self.index is not None:
            return choices[self.index % len(choices)]
        if self.cheapest:
            numbers = [c for c in choices if type(c) in (int, float)]
            if numbers:
                return max(numbers) if name.endswith("patch_size") else min(numbers)
            return choices[0]
        return self.rng.choice(choices)

    def suggest_float(self, name: str, low: float, high: float, **kw: Any) -> float:
        self.kinds[name] = "range"
        if self.cheapest or self.index is not None:
            return low
        if kw.get("log"):
            return math.exp(self.rng.uniform(math.log(low), math.log(high)))
        return self.rng.uniform(low, high)


def _check_space(exp: Experiment) -> None:
    """Every ``space`` key must be a parameter of some family's space (catches typos) and its
    value well formed; for the experiment's families, every overridden choice must be part of
    some valid model, and the cost budget must leave every family (with equal shares) or some
    family (sampler's choice) a proposal that fits. Keys of families not in this experiment are
    only checked for form, so ``--set families=[vit]`` works on presets."""
    kinds = _parameter_kinds()
    known = ["family", *kinds]
    for key, value in exp.space.items():
        if key == "family":
            raise UserError(
                f"space.family={value!r}: the families searched come from `families` "
                "(e.g. --set families=[vit,mixer]), not from the space"
            )
        if key not in kinds:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UserError(
                f"space.{key}: not a search-space parameter{hint}; allowed: family-prefixed "
                f"names such as perceiver.num_latents (see spaces/), or "
                f"{', '.join(k for k in known if '.' not in k and k != 'family')}"
            )
        _check_override_value(key, value, kinds[key])
    _check_proposals(exp, kinds)


def _check_override_value(key: str, value: Any, kind: str) -> None:
    from spaces._context import check_override

    try:
        items = check_override(key, value, kind)  # type: ignore[arg-type]
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if key in _TRAIN_CHOICE_RULES:
        allowed, ok = _TRAIN_CHOICE_RULES[key]
        for item in items:
            if not ok(item):
                raise UserError(f"space.{key}={value!r}: choice {item!r}: allowed: {allowed}")
    if kind == "range" and key in _RANGE_HIGH and float(items[1]) > _RANGE_HIGH[key]:
        raise UserError(
            f"space.{key}={value!r}: high must be <= {_RANGE_HIGH[key]:g}; allowed: "
            f"[low, high] with 0 < low <= high <= {_RANGE_HIGH[key]:g}"
        )


class _Draw(Protocol):
    """``_check_proposals``'s ``draw``: one proposal of ``family`` drawn by a :class:`_DrawTrial`
    (``how``: its options), and why it is invalid (None: valid)."""

    def __call__(
        self, family: str, rng: random.Random, context: SpaceContext = ..., **how: Any
    ) -> tuple[_DrawTrial, dict[str, Any], str | None]: ...


def _check_proposals(exp: Experiment, kinds: dict[str, str]) -> None:
    """Draw proposals from each family's space (no Optuna, a few ms): refuse an overridden
    choice that is never part of a valid model (so no family is left without one: with every
    choice possible, some draw is valid), or a budget nothing fits."""
    import models
    from models.cost import estimate
    from spaces import SPACES, SpaceContext

    size = exp.dataset.image_size
    in_channels, num_classes = _data_shape(exp)
    ctx = SpaceContext(image_size=size, in_channels=in_channels, overrides=exp.space)

    def draw(
        family: str, rng: random.Random, context: SpaceContext = ctx, **how: Any
    ) -> tuple[_DrawTrial, dict[str, Any], str | None]:
        trial = _DrawTrial(rng, **how)
        try:
            hp = SPACES[family](trial, context)  # type: ignore[arg-type]
        except ValueError as exc:  # an override no draw can use (a patch that divides nothing)
            raise UserError(str(exc)) from None
        try:
            models.resolve_hparams(family, image_size=size, in_channels=in_channels, **hp)
            cost = estimate(
                family, image_size=size, in_channels=in_channels, num_classes=num_classes, **hp
            )
        except (ValueError, ArithmeticError) as exc:  # ArithmeticError: absurd sizes
            return trial, hp, str(exc)
        if cost.params > _MAX_PARAMS or cost.flops > _MAX_FLOPS:
            return (
                trial,
                hp,
                (
                    f"{family} of {float(cost.params):.3g} parameters and {float(cost.flops):.3g} "
                    f"FLOPs per image; at most {_MAX_PARAMS:g} and {_MAX_FLOPS:g} (memory, time)"
                ),
            )
        return trial, hp, None

    for family in exp.families:
        mine = [k for k in exp.space if k.startswith(family + ".")]
        reason = _first_invalid(family, draw, random.Random(f"{family}:{size}"), _DRAWS)
        if reason is not None:
            # no valid draw at all: the override without which there is one is to blame
            for key in mine:
                rest = {k: v for k, v in exp.space.items() if k != key}
                relaxed = dataclasses.replace(ctx, overrides=rest)
                try:
                    fixed = _first_invalid(family, draw, random.Random(key), 50, relaxed) is None
                except UserError:  # without it, the defaults do not fit either
                    fixed = False
                if fixed:
                    raise UserError(
                        f"space.{key}={exp.space[key]!r}: no valid {family} configuration with "
                        f"it ({_DRAWS} drawn; e.g. {reason})"
                    )
            raise UserError(
                f"space.{family}.*: no valid {family} configuration drawn ({_DRAWS} tried; e.g. "
                f"{reason}); narrow space.{family}.* or change dataset.image_size"
            )
        for key in mine:
            if kinds.get(key) == "range":
                continue
            for choice in _distinct(exp.space[key]):
                _check_choice(family, key, choice, draw, exp.space[key])
    _check_budget(exp, draw)


def _first_invalid(
    family: str, draw: _Draw, rng: random.Random, n: int, *context: SpaceContext
) -> str | None:
    """None once a draw is valid (usually the first), else the reason of the last of ``n``."""
    reason = None
    for _ in range(n):
        _, _, reason = draw(family, rng, *context)
        if reason is None:
            return None
    return reason


def _distinct(choices: list[Any]) -> list[Any]:
    """The choices without repeats, by type too (``1``, ``1.0`` and ``true`` are three)."""
    out: list[Any] = []
    for c in choices:
        if not any(type(c) is type(u) and c == u for u in out):
            out.append(c)
    return out


def _check_choice(family: str, key: str, choice: Any, draw: _Draw, shown: Any) -> None:
    """Refuse ``choice`` of ``space.<key>`` if no drawn configuration with it is valid."""
    rng = random.Random(f"{key}={choice!r}")
    reason = None
    for _ in range(_DRAWS):
        trial, _, error = draw(family, rng, forced=(key, choice))
        if not trial.hit:
            continue  # a conditional parameter this draw did not reach
        if not trial.reachable:
            return  # a patch size that does not divide the image: filtered, as documented
        if error is None:
            return
        reason = error
    if reason is not None:
        raise UserError(
            f"space.{key}={shown!r}: choice {choice!r} never gives a valid {family} "
            f"({reason}); drop it"
        )


def _budget_limits(exp: Experiment) -> dict[str, float]:
    limits = {"flops": exp.budget.max_flops, "params": exp.budget.max_params}
    return {k: v for k, v in limits.items() if v is not None}


def _check_budget(exp: Experiment, draw: _Draw) -> None:
    """With a budget, some drawn proposal must fit it: for every family when families take
    equal turns (a family with none would stop the sweep), else for some family."""
    limits = _budget_limits(exp)
    if not limits:
        return
    from models.cost import estimate

    size = exp.dataset.image_size
    in_channels, num_classes = _data_shape(exp)
    groups = [(f,) for f in exp.families] if exp.family_allocation == "equal" else [exp.families]
    for group in groups:
        rng = random.Random(f"budget:{','.join(group)}")
        cheapest: tuple[float, str, dict[str, float]] | None = None
        for i in range(_DRAWS + len(group)):
            family = group[i % len(group)]
            _, hp, error = draw(family, rng, cheapest=i < len(group))
            if error is not None:
                continue
            cost = estimate(
                family,
                image_size=size,
                in_channels=in_channels,
                num_classes=num_classes,
                **hp,
            )
            values = {"flops": float(cost.flops), "params": float(cost.params)}
            worst = max(values[k] / v for k, v in limits.items())
            if worst <= 1.0:
                break
            if cheapest is None or worst < cheapest[0]:
                cheapest = (worst, family, values)
        else:
            if cheapest is None:  # pragma: no cover - _check_proposals found valid ones
                continue
            _, family, values = cheapest
            over = [k for k, v in limits.items() if values[k] > v]
            fields = ", ".join(f"budget.max_{k}={limits[k]:g}" for k in over)
            found = ", ".join(f"{values[k]:.3g} {k}" for k in over)
            who = f"no {group[0]} proposal" if len(group) == 1 else "no proposal of any family"
            raise UserError(
                f"{fields}: {who} fits ({_DRAWS} drawn; the cheapest needs {found}); raise "
                + " / ".join(f"budget.max_{k}" for k in over)
                + (f", drop {group[0]} from families" if len(group) == 1 else "")
                + " or narrow the space to smaller models"
            )
