"""Loading an experiment: a preset name, a YAML file (strictly parsed), YAML text, a dict or an
Experiment, with ``--set`` overrides applied last; then it is built and validated, once.

Presets live in ``search/presets/*.yaml`` (``default``, ``smoke``, ``cifar100``...), in the style
of big_vision's configs: plain, readable files with a small variant beside the full one.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import yaml

from search.errors import UserError
from search.experiment.coercion import build, build_field
from search.experiment.limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, NAME_RE
from search.experiment.schema import Experiment
from search.experiment.validation import check_experiment, check_output_dir

__all__ = [
    "PRESETS_DIR",
    "apply_overrides",
    "experiment_from_dict",
    "experiment_from_text",
    "list_presets",
    "load_experiment",
    "with_output_dir",
]

PRESETS_DIR = Path(__file__).resolve().parents[1] / "presets"


def list_presets() -> list[str]:
    """Names of the shipped experiment presets."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def load_experiment(
    source: str | Path | dict[str, Any] | Experiment = "default",
    overrides: list[str] | tuple[str, ...] = (),
) -> Experiment:
    """Load an experiment from a preset name, a YAML path, a dict or an Experiment, and
    validate it. ``overrides`` are ``dotted.key=value`` strings (values parsed as YAML), applied
    last. An Experiment without overrides is returned as it is (it was validated when built).
    """
    if isinstance(source, Experiment):
        if not overrides and not isinstance(overrides, str):
            return source  # validated when it was built: once is enough
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


def with_output_dir(experiment: Experiment, output_dir: str | Path) -> Experiment:
    """``experiment`` writing to ``output_dir`` (``--output``): that field is checked as on
    load; the rest was validated when ``experiment`` was built and is not checked again."""
    value = build_field(Experiment, "output_dir", str(output_dir))
    changed = dataclasses.replace(experiment, output_dir=value)
    check_output_dir(changed)
    return changed


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
        if size > MAX_FILE_BYTES:
            raise UserError(
                f"experiment file {path}: {size} bytes; an experiment file is at most "
                f"{MAX_FILE_BYTES} bytes of YAML"
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
        if not NAME_RE.fullmatch(stem):
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
    ``MAX_DEPTH`` or that YAML aliases blow up to more than ``MAX_NODES`` values is refused,
    naming where."""
    count = 0
    ancestors: list[int] = []

    def copy(value: Any, path: str) -> Any:
        nonlocal count
        count += 1
        where = path or "experiment"
        if count > MAX_NODES:
            raise UserError(
                f"{where}: more than {MAX_NODES} values in the experiment (YAML aliases "
                "multiplying?); an experiment is a small mapping"
            )
        if not isinstance(value, (dict, list, tuple)):
            return value
        if id(value) in ancestors:
            raise UserError(f"{where}: refers to itself (a recursive YAML alias)")
        if len(ancestors) >= MAX_DEPTH:
            raise UserError(f"{where}: nested more than {MAX_DEPTH} levels deep")
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
    experiment = build(Experiment, data, "")
    check_experiment(experiment)
    return experiment


_YAML11_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _numbers(value: Any) -> Any:
    """Space choices written ``1e-3`` (YAML 1.1 reads a float without a dot as text) as the
    numbers they are, as for every float field."""
    if isinstance(value, list):
        return [float(v) if isinstance(v, str) and _YAML11_FLOAT.fullmatch(v) else v for v in value]
    return value
