"""What is known of each dataset before it is read: one :class:`DatasetFacts` per dataset in
:data:`DATASET_FACTS`, the names derived from that table, and what the experiment validator
computes from it (:func:`load_bytes`, :func:`model_shape`, :func:`default_augment`).

No torch here, so loading an experiment stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "AUGMENT_POLICIES",
    "DATASETS",
    "DATASET_FACTS",
    "DATA_DIR_REQUIRED",
    "DEFAULT_DATA_DIR",
    "DOWNLOADABLE_DATASETS",
    "FOLDER_DATASETS",
    "MIN_CLASSES",
    "SYNTHETIC_DEFAULTS",
    "DatasetFacts",
    "DatasetName",
    "default_augment",
    "describe_dataset",
    "held_out_count",
    "load_bytes",
    "model_shape",
    "synthetic_bytes",
]

#: What :meth:`search.data.augment.Augmenter.augment` does (described there):
#: ``Augmenter(policy=...)`` and ``training.augment``.
AUGMENT_POLICIES: tuple[str, ...] = ("none", "translate", "crop_flip", "resized_crop")

#: Where ``cifar10``/``cifar100`` look when ``data_dir`` is None (relative to the working dir).
DEFAULT_DATA_DIR = Path("data")

#: Options of the ``synthetic`` dataset and their defaults.
SYNTHETIC_DEFAULTS: Mapping[str, Any] = {
    "num_classes": 10,
    "num_train": 1000,
    "num_test": 200,
    "in_channels": 3,
    "noise": 0.25,  # per-pixel Gaussian noise std, in [0, 1] pixel units
}

#: The fewest classes a dataset has: an image folder's count before it is read (the cheapest
#: head, so a budget check never refuses a proposal that fits).
MIN_CLASSES = 2

#: Datasets ``search.data.load_dataset`` reads: the keys of :data:`DATASET_FACTS`, in order.
DatasetName = Literal["digits", "fashion_mnist", "cifar10", "cifar100", "imagefolder", "synthetic"]


@dataclass(frozen=True)
class DatasetFacts:
    """One dataset, as known before it is read.

    ``in_channels``/``num_classes``: what the models see; None where the data decide (an image
    folder's classes) or the options do (``synthetic``). ``images``: train + test images, None
    where unknown. ``reads_folder``: read from ``dataset.data_dir``. ``hflip``: a horizontal flip
    keeps the label. ``augment``: the policy of ``training.augment: auto`` (one of
    :data:`AUGMENT_POLICIES`). ``download_url``: the archive ``dataset.download: true`` fetches
    (None: it never downloads). ``title``: the name a reader knows it by. ``train_images``: the
    training split's size before the validation carve (None where unknown). ``native_size``:
    the stored images' side, past which ``dataset.image_size`` is refused (None: any size).
    ``system_dir``: where a system package puts the files, read when ``dataset.data_dir`` is
    not given (None: a folder dataset then needs ``dataset.data_dir``).
    """

    name: DatasetName
    in_channels: int | None
    num_classes: int | None
    images: int | None
    reads_folder: bool
    hflip: bool
    augment: str
    download_url: str | None = None
    title: str = ""
    train_images: int | None = None
    native_size: int | None = None
    system_dir: str | None = None

    @property
    def downloadable(self) -> bool:
        """Whether ``dataset.download: true`` may fetch it."""
        return self.download_url is not None


_TABLE = (
    # scikit-learn's 8x8 handwritten digits (bundled): a mirrored digit is another (or no) digit.
    # augment: val acc none vs translate: mixer 97.0 vs 97.2 (2 seeds), perceiver 85.6 vs 76.0
    # (4 seeds)
    DatasetFacts(
        "digits",
        in_channels=1,
        num_classes=10,
        images=1797,
        reads_folder=False,
        hflip=False,
        augment="none",
        title="digits",
        train_images=1438,  # after the fixed 20 % test split
    ),
    # Zalando's Fashion-MNIST (IDX files; Debian's dataset-fashion-mnist): 28x28 grayscale
    # clothing, the official 60,000/10,000 split. A mirrored garment is the same garment, but
    # augment: at the CPU presets' budget (15 epochs, 10,000 images, 14x14) crop_flip costs
    # 3.7 points (Mixer) and 2.4 (gMLP) of test accuracy against none (docs/benchmarks.md,
    # "Fashion-MNIST: the pilot"); longer runs set it themselves (fashion-gpu).
    # Upsampling past 28 adds compute, not information: refused.
    DatasetFacts(
        "fashion_mnist",
        in_channels=1,
        num_classes=10,
        images=70_000,
        reads_folder=True,
        hflip=True,
        augment="none",
        download_url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        title="Fashion-MNIST",
        train_images=60_000,
        native_size=28,
        system_dir="/usr/share/datasets/fashion-mnist",
    ),
    # the CIFAR python-version pickles; pad-4-crop + flip at 32x32: the standard CIFAR recipe
    # (He et al. 2016)
    DatasetFacts(
        "cifar10",
        in_channels=3,
        num_classes=10,
        images=60_000,
        reads_folder=True,
        hflip=True,
        augment="crop_flip",
        download_url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        title="CIFAR-10",
        train_images=50_000,
    ),
    DatasetFacts(
        "cifar100",
        in_channels=3,
        num_classes=100,
        images=60_000,
        reads_folder=True,
        hflip=True,
        augment="crop_flip",
        download_url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        title="CIFAR-100",
        train_images=50_000,
    ),
    # <class>/ subfolders of images, read as RGB; arbitrary photos at arbitrary scale: the
    # ImageNet-style random resized crop + flip
    DatasetFacts(
        "imagefolder",
        in_channels=3,
        num_classes=None,
        images=None,
        reads_folder=True,
        hflip=True,
        augment="resized_crop",
        title="image folder",
    ),
    # random class patterns plus noise (shape from the options): nothing for an augmentation to
    # be invariant to
    DatasetFacts(
        "synthetic",
        in_channels=None,
        num_classes=None,
        images=None,
        reads_folder=False,
        hflip=True,
        augment="none",
        title="synthetic",
    ),
)

#: Dataset name -> its facts: the one table every other dataset name list is derived from.
DATASET_FACTS: Mapping[str, DatasetFacts] = MappingProxyType({f.name: f for f in _TABLE})

#: Datasets ``search.data.load_dataset`` reads (the arguments of :data:`DatasetName`).
DATASETS: tuple[str, ...] = tuple(DATASET_FACTS)
#: Datasets read from ``dataset.data_dir``.
FOLDER_DATASETS: tuple[str, ...] = tuple(n for n, f in DATASET_FACTS.items() if f.reads_folder)
#: Datasets whose experiments must name ``dataset.data_dir`` (no system folder to fall back on).
DATA_DIR_REQUIRED: tuple[str, ...] = tuple(
    n for n, f in DATASET_FACTS.items() if f.reads_folder and f.system_dir is None
)
#: Datasets ``dataset.download: true`` may fetch.
DOWNLOADABLE_DATASETS: tuple[str, ...] = tuple(
    n for n, f in DATASET_FACTS.items() if f.downloadable
)


def default_augment(dataset_name: str) -> str:
    """The augmentation policy (one of :data:`AUGMENT_POLICIES`) for ``training.augment: auto``
    on dataset ``dataset_name`` (one of :data:`DATASETS`); ``ValueError`` for other names."""
    if not isinstance(dataset_name, str) or dataset_name not in DATASET_FACTS:
        raise ValueError(
            f"default_augment: unknown dataset {dataset_name!r}; expected one of "
            f"{', '.join(DATASETS)}"
        )
    return DATASET_FACTS[dataset_name].augment


def synthetic_bytes(options: Mapping[str, Any], image_size: int) -> int:
    """Peak memory of generating the synthetic dataset: the uint8 images kept, plus the
    float32 class means and noise of the larger draw."""
    n_train, n_test, c = options["num_train"], options["num_test"], options["in_channels"]
    return (n_train + n_test + 8 * max(n_train, n_test)) * c * image_size * image_size


def load_bytes(name: str, image_size: int, synthetic: Mapping[str, Any]) -> int | None:
    """Peak memory (bytes) of loading dataset ``name`` at ``image_size``; None when unknown (an
    image folder, checked when it is read). ``synthetic``: the synthetic options as given (the
    defaults fill the rest)."""
    facts = DATASET_FACTS.get(name)
    if facts is not None and facts.images is not None and facts.in_channels is not None:
        return facts.images * facts.in_channels * image_size * image_size
    if name == "synthetic":
        return synthetic_bytes({**SYNTHETIC_DEFAULTS, **synthetic}, image_size)
    return None


def model_shape(name: str, synthetic: Mapping[str, Any]) -> tuple[int, int]:
    """(in_channels, num_classes) the models will see on dataset ``name``: the synthetic
    options' (the defaults fill the rest), else the table's, :data:`MIN_CLASSES` classes where
    the data decide."""
    if name == "synthetic":
        options = {**SYNTHETIC_DEFAULTS, **synthetic}
        return int(options["in_channels"]), int(options["num_classes"])
    facts = DATASET_FACTS[name]
    if facts.in_channels is None:  # pragma: no cover - only synthetic's channels are optional
        raise KeyError(name)
    return facts.in_channels, MIN_CLASSES if facts.num_classes is None else facts.num_classes


def held_out_count(total: int, fraction: float) -> int:
    """How many of ``total`` images a split holding out ``fraction`` of them takes: the one
    rounding rule (half up) of the validation carve, its size checks and its description."""
    return math.floor(fraction * total + 0.5)


def describe_dataset(dataset: Mapping[str, Any]) -> str:
    """The data budget behind a front, for a reader: ``dataset`` is an experiment's ``dataset``
    section as a mapping, e.g. ``Fashion-MNIST at 14x14, 10,000 training images (a stratified
    subset), 6,000 val``."""
    name = str(dataset.get("name", "n/a"))
    facts = DATASET_FACTS.get(name)
    size = dataset.get("image_size")
    text = (facts.title if facts else name) + (f" at {size}x{size}" if size else "")
    subset, fraction = dataset.get("train_subset"), dataset.get("val_fraction")
    total = facts.train_images if facts else None
    held = None
    if total is not None and isinstance(fraction, (int, float)):
        held = held_out_count(total, fraction)
    if subset:
        text += f", {subset:,} training images (a stratified subset)"
    elif total is not None and held is not None:
        text += f", {total - held:,} training images"
    if held is not None:
        text += f", {held:,} val"
    return text
