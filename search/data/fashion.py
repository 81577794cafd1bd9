"""The ``fashion_mnist`` dataset: Zalando's Fashion-MNIST (Xiao et al. 2017), the four IDX files
of the official 60,000/10,000 split, 28x28 grayscale, 10 classes.

Where the files are read from (:func:`fashion_folder`): ``dataset.data_dir`` if given, else
Debian's ``dataset-fashion-mnist`` package folder (:data:`DEBIAN_FOLDER`) when it holds all
four files, else :data:`~search.data.facts.DEFAULT_DATA_DIR`. In a folder a file may be gzipped
(``*.gz``, as Debian and the mirrors ship it) or not, and may sit in ``FashionMNIST/raw/`` (where
torchvision's download puts it). ``dataset.download: true`` fetches the missing files through
``torchvision.datasets.FashionMNIST`` (md5-checked) into the folder.

The IDX files are parsed here, in memory: torchvision's readers open neither ``.gz`` files nor
read-only folders (it writes the decompressed copies beside them) and check the magic number
with ``assert``; every fault here is one :class:`~search.errors.UserError` naming the file.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from search.data.facts import DATASET_FACTS, DEFAULT_DATA_DIR
from search.errors import UserError

__all__ = [
    "CLASS_NAMES",
    "DEBIAN_FOLDER",
    "FASHION_FILES",
    "fashion_folder",
    "load_fashion_mnist",
    "read_idx",
]

#: Where ``apt-get install dataset-fashion-mnist`` puts the files.
DEBIAN_FOLDER = Path(str(DATASET_FACTS["fashion_mnist"].system_dir))
#: The four files (without ``.gz``): train images, train labels, test images, test labels.
FASHION_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
#: The labels' names, in label order (the dataset's README).
CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_SUBFOLDER = Path("FashionMNIST", "raw")  # torchvision's download layout under its root
_IMAGE_MAGIC, _LABEL_MAGIC = 0x0803, 0x0801  # unsigned bytes, 3 / 1 dimensions
_HOW_TO_GET = (
    "install it with `apt-get install dataset-fashion-mnist` (files in "
    f"{DEBIAN_FOLDER}), or set dataset.data_dir to a folder holding them, or add "
    "`--set dataset.download=true` to fetch them there"
)


def fashion_folder(data_dir: Path | None) -> Path:
    """The folder the files are read from (and downloaded into): ``data_dir`` if given, else
    :data:`DEBIAN_FOLDER` when it holds all four files, else ``DEFAULT_DATA_DIR``."""
    if data_dir is not None:
        return data_dir
    if not _missing(DEBIAN_FOLDER):
        return DEBIAN_FOLDER
    return DEFAULT_DATA_DIR


def load_fashion_mnist(
    data_dir: Path | None, download: bool
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], tuple[str, ...]]:
    """``(train, test, class_names)``: uint8 images ``[N, 1, 28, 28]`` and int64 labels of the
    official split (60,000 and 10,000 images in the real files)."""
    folder = fashion_folder(data_dir)
    missing = _missing(folder)
    if missing and download:
        _download(folder)
        missing = _missing(folder)
    if missing:
        raise UserError(
            f"dataset fashion_mnist: {', '.join(missing)} not found in {folder.resolve()}; "
            + _HOW_TO_GET
        )
    train = _read_pair(folder, FASHION_FILES[0], FASHION_FILES[1])
    test = _read_pair(folder, FASHION_FILES[2], FASHION_FILES[3])
    return train, test, CLASS_NAMES


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array of IDX file ``path`` (gzipped when its name ends in ``.gz``), its magic
    number, dimensions and length checked."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"dataset fashion_mnist: cannot read {path}: {exc}") from None
    kind = "images" if magic == _IMAGE_MAGIC else "labels"
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if found != magic:
        shown = "nothing" if found is None else f"0x{found:08x}"
        raise UserError(
            f"dataset fashion_mnist: {path} is not an IDX file of {kind} (magic number "
            f"{shown}, expected 0x{magic:08x})"
        )
    if len(raw) < header:
        raise UserError(f"dataset fashion_mnist: {path} is truncated (its header is cut short)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise UserError(
            f"dataset fashion_mnist: {path} holds {len(raw) - header} bytes of data, its header "
            f"says {size} ({' x '.join(map(str, shape))}): truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_pair(folder: Path, images_name: str, labels_name: str) -> tuple[Tensor, Tensor]:
    """One split's images ``[N, 1, H, W]`` and labels, their counts and values checked."""
    images_path, labels_path = _find(folder, images_name), _find(folder, labels_name)
    images = read_idx(images_path, _IMAGE_MAGIC)
    labels = read_idx(labels_path, _LABEL_MAGIC)
    if len(images) != len(labels):
        raise UserError(
            f"dataset fashion_mnist: {labels_path} holds {len(labels)} labels for the "
            f"{len(images)} images of {images_path}"
        )
    if len(labels) and int(labels.max()) >= len(CLASS_NAMES):
        raise UserError(
            f"dataset fashion_mnist: {labels_path} has label {int(labels.max())}, "
            f"expected 0..{len(CLASS_NAMES) - 1}"
        )
    x = torch.from_numpy(images.copy()).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def _locate(folder: Path, name: str) -> Path | None:
    """The file holding ``name`` in ``folder`` or its ``FashionMNIST/raw/`` (raw before gzip),
    or None."""
    for base in (folder, folder / _SUBFOLDER):
        for candidate in (base / name, base / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _find(folder: Path, name: str) -> Path:
    """:func:`_locate`, a missing file refused."""
    path = _locate(folder, name)
    if path is None:
        raise UserError(f"dataset fashion_mnist: {name} not found in {folder}; " + _HOW_TO_GET)
    return path


def _missing(folder: Path) -> list[str]:
    """The names of the four files that ``folder`` lacks."""
    return [name for name in FASHION_FILES if _locate(folder, name) is None]


def _download(folder: Path) -> None:
    """Fetch the four files into ``folder/FashionMNIST/raw`` through torchvision (md5-checked)."""
    from torchvision.datasets import FashionMNIST

    try:
        folder.mkdir(parents=True, exist_ok=True)
        FashionMNIST(root=str(folder), train=True, download=True)
    except Exception as exc:  # network, disk, checksum: all fixable by the user
        first = str(exc).strip().splitlines()
        raise UserError(
            f"dataset fashion_mnist: download into {folder.resolve()} failed "
            f"({' '.join(first[:3])}); fetch the four files from "
            f"{FashionMNIST.mirrors[0]} by hand, or install dataset-fashion-mnist"
        ) from None
