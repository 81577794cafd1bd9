"""The ``cifar10`` / ``cifar100`` datasets: the CIFAR "python version" pickles (Krizhevsky 2009)
in ``data_dir``, downloaded through torchvision only when asked."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from search.data.facts import DATASET_FACTS
from search.errors import UserError

__all__ = ["CIFAR_LAYOUTS", "CifarLayout", "load_cifar"]


class CifarLayout(NamedTuple):
    """A CIFAR "python version" folder, as torchvision.datasets.CIFAR10/CIFAR100 expect it."""

    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str


#: Dataset name -> its files.
CIFAR_LAYOUTS: dict[str, CifarLayout] = {
    "cifar10": CifarLayout(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "labels",
        "label_names",
    ),
    "cifar100": CifarLayout(
        "cifar-100-python", ("train",), ("test",), "meta", "fine_labels", "fine_label_names"
    ),
}


def load_cifar(
    name: str, data_dir: Path, download: bool
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], tuple[str, ...]]:
    """Read the CIFAR pickles from ``data_dir/<folder>/`` (or ``data_dir`` itself if it is
    that folder): ``(train, test, class_names)``, images uint8 ``[N, 3, 32, 32]``.

    The pickles are read here rather than through ``torchvision.datasets.CIFAR10``, whose
    constructor insists on the md5 sums of the official files: reading them ourselves accepts any
    file in the same format (the tests write small ones) and validates the structure instead.
    torchvision is used for the download (which checks the archive's md5).
    """
    layout = CIFAR_LAYOUTS[name]
    folder = data_dir if data_dir.name == layout.folder else data_dir / layout.folder
    needed = [*layout.train_files, *layout.test_files, layout.meta_file]
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing and download:
        _download_cifar(name, folder.parent)
        missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        title = name.upper().replace("CIFAR", "CIFAR-")
        raise UserError(
            f"dataset {name}: no {title} files in {folder.resolve()} "
            f"(missing {', '.join(missing)}); run with `--set dataset.download=true` to "
            f"download them, or place the extracted {layout.folder}/ folder (from "
            f"{DATASET_FACTS[name].download_url}) in dataset.data_dir={str(data_dir)!r}"
        )
    meta = _read_pickle(folder / layout.meta_file)
    if layout.names_key not in meta:
        raise UserError(
            f"dataset {name}: {folder / layout.meta_file} has no {layout.names_key!r} entry"
        )
    class_names = tuple(_text(v) for v in meta[layout.names_key])
    splits = []
    for files in (layout.train_files, layout.test_files):
        xs, ys = [], []
        for file in files:
            x, y = _read_batch(name, folder / file, layout.label_key)
            xs.append(x)
            ys.append(y)
        y = torch.cat(ys)
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(class_names)):
            raise UserError(f"dataset {name}: labels outside 0..{len(class_names) - 1} in {folder}")
        splits.append((torch.cat(xs), y))
    return splits[0], splits[1], class_names


def _read_batch(name: str, path: Path, label_key: str) -> tuple[Tensor, Tensor]:
    """One batch file's images ``[N, 3, 32, 32]`` and labels, its structure checked."""
    entry = _read_pickle(path)
    if "data" not in entry or label_key not in entry:
        raise UserError(
            f"dataset {name}: {path} lacks 'data' or {label_key!r}: "
            "not a CIFAR python-version batch"
        )
    data = torch.as_tensor(entry["data"])
    if data.dtype != torch.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UserError(
            f"dataset {name}: {path}: 'data' is {data.dtype} "
            f"{tuple(data.shape)}, expected uint8 rows of 3072 values"
        )
    labels = torch.as_tensor(list(entry[label_key]), dtype=torch.long)
    if len(labels) != len(data):
        raise UserError(f"dataset {name}: {path}: {len(labels)} labels for {len(data)} images")
    return data.reshape(-1, 3, 32, 32), labels  # rows are R (1024), G, B planes, row-major


def _download_cifar(name: str, root: Path) -> None:
    """Download and extract the official archive into ``root`` via torchvision (md5-checked)."""
    from torchvision import datasets

    cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
    root.mkdir(parents=True, exist_ok=True)
    try:
        cls(root=str(root), train=True, download=True)
    except Exception as exc:  # network, disk, checksum: all fixable by the user
        raise UserError(
            f"dataset {name}: download to {root.resolve()} failed ({exc}); "
            f"fetch {DATASET_FACTS[name].download_url} by hand and extract it there"
        ) from exc


def _read_pickle(path: Path) -> dict[str, Any]:
    """Load a CIFAR pickle; keys normalised to ``str`` (Python 2 pickles, bytes keys, ...)."""
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="latin1")
    except Exception as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return {_text(k): v for k, v in obj.items()}


def _text(value: Any) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)
