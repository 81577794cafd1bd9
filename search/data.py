"""Datasets as in-memory uint8 tensors, seeded splits, and batched augmentation on the device.

Every dataset is loaded whole, resized once to ``image_size`` and kept as uint8 ``[N, C, H, W]``
tensors (CIFAR-100 at 32x32 is ~180 MB), so a training step never decodes images and the data
pipeline is a handful of batched tensor ops on the training device (:class:`Augmenter`).

Datasets (:data:`DATASETS`):

- ``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, bundled, no download).
- ``cifar10`` / ``cifar100``: the CIFAR "python version" pickles (Krizhevsky 2009) in
  ``data_dir``; downloaded through torchvision only when ``download=True``.
- ``imagefolder``: ``data_dir/<class>/*.png|jpg`` (or ``data_dir/{train,val,test}/<class>/``).
- ``synthetic``: seeded class-dependent patterns plus noise, for tests and smoke runs.

Splits: the validation set is always carved from the training set (stratified, seeded by
``seed``). Datasets without an official test split (``digits``, a flat ``imagefolder``) get a
stratified test split that does *not* depend on ``seed``, so test numbers stay comparable across
seeds. Normalisation statistics come from the final training images only.

Augmentation policies (:data:`AUGMENT_POLICIES`, ``Augmenter(..., policy=...)``):

- ``none``: no augmentation, ``augment(x) == normalize(x)``.
- ``translate``: a random whole-pixel shift of up to ``max_shift`` px in x and y (default
  ``max(1, image_size // 16)``), zeros (black) entering, no flip.
- ``crop_flip``: the CIFAR recipe: zero-pad by ``image_size // 8`` px and crop back (a shift of up
  to that many px), then a horizontal flip with probability 1/2 if the dataset allows it.
- ``resized_crop``: a random resized crop (area 0.5-1, aspect 3/4-4/3) plus the flip.

:func:`default_augment` picks the policy for a dataset (``training.augment: auto``).
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from search.dataset_rules import (
    MAX_DATASET_BYTES,
    SYNTHETIC_DEFAULTS,
    check_dataset_fields,
    check_seed,
    synthetic_bytes,
)
from search.errors import UserError
from search.vocabulary import DATASETS

__all__ = [
    "AUGMENT_POLICIES",
    "DATASETS",
    "DEFAULT_DATA_DIR",
    "SYNTHETIC_DEFAULTS",
    "Augmenter",
    "DatasetSplits",
    "batches",
    "default_augment",
    "load_dataset",
]


#: What :meth:`Augmenter.augment` does (see the module docstring): ``Augmenter(policy=...)``.
AUGMENT_POLICIES: tuple[str, ...] = ("none", "translate", "crop_flip", "resized_crop")

#: The policy :func:`default_augment` picks per dataset (``training.augment: auto``).
_DEFAULT_AUGMENT: Mapping[str, str] = {
    # val acc none vs translate: mixer 97.0 vs 97.2 (2 seeds), perceiver 85.6 vs 76.0 (4 seeds)
    "digits": "none",
    # random class patterns plus noise: nothing for an augmentation to be invariant to
    "synthetic": "none",
    # pad-4-crop + flip at 32x32: the standard CIFAR recipe (He et al. 2016)
    "cifar10": "crop_flip",
    "cifar100": "crop_flip",
    # arbitrary photos at arbitrary scale: the ImageNet-style random resized crop + flip
    "imagefolder": "resized_crop",
}

#: Where ``cifar10``/``cifar100`` look when ``data_dir`` is None (relative to the working dir).
DEFAULT_DATA_DIR = Path("data")

#: Options (``**synthetic`` of :func:`load_dataset`) of the ``synthetic`` dataset.

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
_TEST_FRACTION = 0.2  # held-out test share for datasets without an official test split
_TEST_SPLIT_SEED = 0  # fixed: the test split must not move with `seed`


@dataclass(frozen=True, repr=False)
class DatasetSplits:
    """A dataset split into train/val/test, images uint8 ``[N, C, H, W]`` at ``image_size``.

    ``mean``/``std`` are per-channel statistics of ``train_x`` in [0, 1] units; ``hflip`` says
    whether a horizontal flip preserves the label.
    """

    train_x: Tensor
    train_y: Tensor
    val_x: Tensor
    val_y: Tensor
    test_x: Tensor
    test_y: Tensor
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    hflip: bool
    class_names: tuple[str, ...]
    name: str = ""

    def __repr__(self) -> str:
        return (
            f"DatasetSplits(name={self.name!r}, train={len(self.train_y)}, val={len(self.val_y)}, "
            f"test={len(self.test_y)}, num_classes={self.num_classes}, "
            f"shape={tuple(self.train_x.shape[1:])}, hflip={self.hflip})"
        )


class Augmenter:
    """Batched normalisation and augmentation of uint8 batches on ``device``.

    ``augment`` applies ``policy`` (one of :data:`AUGMENT_POLICIES`), drawing every random number
    from the given ``torch.Generator`` (on the generator's device, then moved: the same seed gives
    the same batch on any device). No per-image Python work in any policy:

    - ``"none"``: ``normalize(x)``; the generator is not touched.
    - ``"translate"``: each image shifted by whole pixels ``(dx, dy)``, each uniform over
      ``-max_shift..max_shift`` (default ``max(1, image_size // 16)``), zeros (black, before
      normalisation) entering at the edges; never flipped.
    - ``"crop_flip"``: the same shift with ``max_shift`` defaulting to ``image_size // 8`` (pad by
      that much, random crop back), then, if ``hflip``, a horizontal flip with probability 1/2.
    - ``"resized_crop"``: a random resized crop (area fraction in ``scale``, aspect ratio
      log-uniform in ``ratio``, always inside the image) and, if ``hflip``, a horizontal flip
      with probability 1/2, as one affine map per image applied with one ``affine_grid`` +
      ``grid_sample`` call (bilinear).

    The shifts are exact: an index gather on the zero-padded uint8 batch, so every output pixel
    is an input pixel or 0. ``hflip`` defaults to ``splits.hflip``; ``scale``/``ratio`` matter
    only to ``resized_crop`` and ``max_shift`` only to ``translate``/``crop_flip`` (passing it to
    another policy is a ``ValueError``).
    """

    def __init__(
        self,
        splits: DatasetSplits,
        device: torch.device | str = "cpu",
        *,
        policy: str = "resized_crop",
        max_shift: int | None = None,
        scale: tuple[float, float] = (0.5, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        hflip: bool | None = None,
    ) -> None:
        if not isinstance(policy, str) or policy not in AUGMENT_POLICIES:
            raise ValueError(
                f"Augmenter policy={policy!r}: expected one of {', '.join(AUGMENT_POLICIES)}"
            )
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"Augmenter scale={scale}: need 0 < low <= high <= 1")
        if not 0 < ratio[0] <= ratio[1]:
            raise ValueError(f"Augmenter ratio={ratio}: need 0 < low <= high")
        if max_shift is not None:
            if policy not in ("translate", "crop_flip"):
                raise ValueError(
                    f"Augmenter max_shift={max_shift!r}: only the translate and crop_flip "
                    f"policies shift, not policy={policy!r}"
                )
            if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
                raise ValueError(f"Augmenter max_shift={max_shift!r}: need an integer >= 0")
        self.device = torch.device(device)
        self.policy = policy
        self.scale = scale
        self.ratio = ratio
        self.hflip = splits.hflip if hflip is None else hflip
        self.image_size = splits.image_size
        if max_shift is None:
            size = splits.image_size
            max_shift = {"translate": max(1, size // 16), "crop_flip": size // 8}.get(policy, 0)
        self.max_shift: int = max_shift
        # [1, C, 1, 1] so they broadcast over a batch
        self._mean = torch.tensor(splits.mean, dtype=torch.float32, device=self.device)
        self._mean = self._mean.view(1, -1, 1, 1)
        self._std = torch.tensor(splits.std, dtype=torch.float32, device=self.device)
        self._std = self._std.view(1, -1, 1, 1)

    def _to_device(self, x: Tensor) -> Tensor:
        if x.dtype != torch.uint8:
            raise TypeError(f"expected a uint8 batch, got {x.dtype}")
        return x.to(self.device, non_blocking=True)

    def _to_unit(self, x: Tensor) -> Tensor:
        return self._to_device(x).float().div_(255.0)

    def normalize(self, x: Tensor) -> Tensor:
        """uint8 ``[B, C, H, W]`` -> float32 ``(x / 255 - mean) / std`` on ``device``."""
        return self._to_unit(x).sub_(self._mean).div_(self._std)

    def augment(self, x: Tensor, generator: torch.Generator) -> Tensor:
        """uint8 ``[B, C, H, W]`` -> augmented (per ``policy``) normalized float32."""
        if self.policy == "none":
            return self.normalize(x)
        if self.policy == "resized_crop":
            return self._resized_crop(x, generator)
        b, m = x.shape[0], self.max_shift
        # All random numbers on the generator's device, then moved: same result on any device.
        shift = torch.randint(-m, m + 1, (b, 2), generator=generator, device=generator.device)
        flip = None
        if self.policy == "crop_flip":
            coin = torch.randint(0, 2, (b,), generator=generator, device=generator.device)
            flip = coin.to(self.device).bool() if self.hflip else None
        shift = shift.to(self.device)
        out = _shift_images(self._to_device(x), shift[:, 0], shift[:, 1], m, flip)
        return self.normalize(out)

    def _resized_crop(self, x: Tensor, generator: torch.Generator) -> Tensor:
        b = x.shape[0]
        # All random numbers on the generator's device, then moved: same result on any device.
        u = torch.rand(b, 5, generator=generator, device=generator.device)
        u = u.to(self.device, torch.float32)
        lo, hi = self.scale
        area = lo + (hi - lo) * u[:, 0]
        log_r0, log_r1 = math.log(self.ratio[0]), math.log(self.ratio[1])
        aspect = torch.exp(log_r0 + (log_r1 - log_r0) * u[:, 1])
        # crop width/height as fractions of the image (1 = whole side)
        w = torch.sqrt(area * aspect).clamp_(max=1.0)
        h = torch.sqrt(area / aspect).clamp_(max=1.0)
        # crop centre in [-1, 1] coordinates, constrained so the crop stays inside the image
        cx = (1.0 - w) * (2.0 * u[:, 2] - 1.0)
        cy = (1.0 - h) * (2.0 * u[:, 3] - 1.0)
        sign = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if self.hflip else torch.ones_like(w)
        # theta maps output coords to input coords: x_in = sign * w * x_out + cx
        theta = torch.zeros(b, 2, 3, device=self.device)
        theta[:, 0, 0] = sign * w
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = h
        theta[:, 1, 2] = cy
        size = (b, x.shape[1], self.image_size, self.image_size)
        grid = F.affine_grid(theta, list(size), align_corners=False)
        out = F.grid_sample(
            self._to_unit(x), grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        return out.sub_(self._mean).div_(self._std)


def _shift_images(x: Tensor, dx: Tensor, dy: Tensor, max_shift: int, flip: Tensor | None) -> Tensor:
    """``out[b, :, i, j] = x[b, :, i - dy[b], j - dx[b]]`` (0 outside the image), then mirrored
    left-right where ``flip[b]``; ``|dx|, |dy| <= max_shift``. Two gathers on the padded batch."""
    b, c, h, w = x.shape
    p = max_shift
    padded = F.pad(x, (p, p, p, p)) if p else x
    rows = torch.arange(h, device=x.device) - dy[:, None] + p  # [B, H] rows of `padded`
    cols = torch.arange(w, device=x.device).expand(b, w)
    if flip is not None:
        cols = torch.where(flip[:, None], w - 1 - cols, cols)
    cols = cols - dx[:, None] + p  # [B, W] columns of `padded`
    out = padded.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * p))
    return out.gather(3, cols[:, None, None, :].expand(b, c, h, w))


def default_augment(dataset_name: str) -> str:
    """The augmentation policy (one of :data:`AUGMENT_POLICIES`) for ``training.augment: auto``
    on dataset ``dataset_name`` (one of :data:`DATASETS`); ``ValueError`` for other names."""
    if not isinstance(dataset_name, str) or dataset_name not in _DEFAULT_AUGMENT:
        raise ValueError(
            f"default_augment: unknown dataset {dataset_name!r}; expected one of "
            f"{', '.join(DATASETS)}"
        )
    return _DEFAULT_AUGMENT[dataset_name]


def batches(
    x: Tensor | int,
    y: Tensor | None = None,
    batch_size: int = 128,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[Tensor]:
    """Yield int64 index tensors over ``range(len(x))`` (``x`` a tensor or a length).

    ``y``, if given, must have the same length (checked once). With ``shuffle`` the order is a
    ``torch.randperm`` drawn from ``generator`` (the global RNG if None; indices then live on
    the generator's device), otherwise ``0..N-1`` in order. ``drop_last`` drops a final short
    batch. Use as ``for idx in batches(s.train_x, s.train_y, 256, shuffle=True, generator=g):
    xb, yb = s.train_x[idx], s.train_y[idx]``.
    """
    n = x if isinstance(x, int) else len(x)
    if y is not None and len(y) != n:
        raise ValueError(f"batches: x has {n} items but y has {len(y)}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batches: batch_size={batch_size!r}: need an integer >= 1")
    if shuffle:
        device = generator.device if generator is not None else torch.device("cpu")
        order = torch.randperm(n, generator=generator, device=device)
    else:
        order = torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def load_dataset(
    name: str,
    *,
    image_size: int,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    val_fraction: float = 0.1,
    seed: int = 0,
    **synthetic: Any,
) -> DatasetSplits:
    """Load ``name`` (one of :data:`DATASETS`) resized to ``image_size``, split and described.

    ``data_dir``: folder for ``cifar10``/``cifar100`` (default :data:`DEFAULT_DATA_DIR`) and
    ``imagefolder`` (required). ``download``: fetch CIFAR through torchvision if the files are
    missing (never otherwise). ``val_fraction`` of the training set becomes the validation set,
    stratified and seeded by ``seed`` (an imagefolder with its own ``val/`` and ``test/`` keeps
    them as given). ``**synthetic``: options of the ``synthetic`` dataset
    (:data:`SYNTHETIC_DEFAULTS`), rejected for the others. Bad values raise
    :class:`~search.errors.UserError` naming the field.
    """
    synthetic = check_dataset_fields(
        name,
        image_size=image_size,
        val_fraction=val_fraction,
        download=download,
        synthetic=synthetic,
        validation_required=False,
        options_field="dataset",
    )
    check_seed(seed, "dataset.seed")
    if data_dir is not None and not isinstance(data_dir, (str, os.PathLike)):
        raise UserError(f"dataset.data_dir={data_dir!r}: expected a folder path")
    if data_dir is not None and "\0" in os.fspath(data_dir):
        raise UserError(f"dataset.data_dir={data_dir!r}: not a folder path (a NUL byte)")
    try:
        path = None if data_dir is None else Path(data_dir).expanduser()
    except RuntimeError as exc:  # ~someone without a home here
        raise UserError(f"dataset.data_dir={data_dir!r}: cannot expand it ({exc})") from None

    hflip = True
    if name == "digits":
        x, y, class_names = _load_digits()
        x = _resize(x, image_size)
        train_idx, test_idx = _stratified_split(y, _TEST_FRACTION, _TEST_SPLIT_SEED)
        train_x, train_y, test_x, test_y = x[train_idx], y[train_idx], x[test_idx], y[test_idx]
        hflip = False  # a mirrored digit is a different (or no) digit
    elif name in ("cifar10", "cifar100"):
        (train_x, train_y), (test_x, test_y), class_names = _load_cifar(
            name, path if path is not None else DEFAULT_DATA_DIR, download
        )
        train_x, test_x = _resize(train_x, image_size), _resize(test_x, image_size)
    elif name == "imagefolder":
        if path is None:
            raise UserError(
                "dataset.data_dir: required for imagefolder (a folder of <class>/ subfolders)"
            )
        train_x, train_y, val_xy, test_x, test_y, class_names = _load_imagefolder(path, image_size)
        if val_xy is not None:  # train/ val/ test/ layout: the given val/ is the val split
            return _finish(
                name, train_x, train_y, val_xy, (test_x, test_y), class_names, image_size, True
            )
    else:
        options = synthetic  # checked and merged with the defaults above
        _check_memory(synthetic_bytes(options, image_size), image_size, MAX_DATASET_BYTES)
        train_x, train_y, test_x, test_y = _make_synthetic(image_size, seed, **options)
        class_names = tuple(f"class_{i}" for i in range(options["num_classes"]))

    keep, held = _stratified_split(train_y, val_fraction, seed)
    if len(keep) == 0:
        raise UserError(
            f"dataset.val_fraction={val_fraction!r}: leaves no training images "
            f"(only {len(train_y)} before the validation split)"
        )
    if val_fraction > 0 and len(held) == 0:
        raise UserError(
            f"dataset.val_fraction={val_fraction!r}: holds out no validation image of the "
            f"{len(train_y)} training images (every trial would have no val accuracy); raise "
            "it or add images"
        )
    val_xy = (train_x[held], train_y[held])
    return _finish(
        name,
        train_x[keep],
        train_y[keep],
        val_xy,
        (test_x, test_y),
        class_names,
        image_size,
        hflip,
    )


# ----------------------------------------------------------------------------------- helpers


def _finish(
    name: str,
    train_x: Tensor,
    train_y: Tensor,
    val: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    class_names: Sequence[str],
    image_size: int,
    hflip: bool,
) -> DatasetSplits:
    mean, std = _channel_stats(train_x)
    return DatasetSplits(
        train_x=train_x.contiguous(),
        train_y=train_y.long(),
        val_x=val[0].contiguous(),
        val_y=val[1].long(),
        test_x=test[0].contiguous(),
        test_y=test[1].long(),
        num_classes=len(class_names),
        in_channels=train_x.shape[1],
        image_size=image_size,
        mean=mean,
        std=std,
        hflip=hflip,
        class_names=tuple(class_names),
        name=name,
    )


def _stratified_split(y: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Indices ``(kept, held)`` (each sorted) with ``round(fraction * N)`` held out.

    Each class contributes in proportion to its size (largest-remainder rounding, ties to the
    lower class id); which members are held out is a seeded random choice.
    """
    n = len(y)
    n_held = math.floor(fraction * n + 0.5)
    if n_held == 0:
        return torch.arange(n), torch.zeros(0, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    _, counts = torch.unique(y, sorted=True, return_counts=True)
    quota = counts.double() * n_held / n
    take = quota.floor().long()
    short = n_held - int(take.sum())
    if short > 0:
        take[torch.argsort(quota - take, descending=True, stable=True)[:short]] += 1
    perm = torch.randperm(n, generator=generator)
    grouped = perm[torch.argsort(y[perm], stable=True)]  # grouped by class, random within class
    starts = torch.cumsum(counts, 0) - counts
    held = torch.cat([grouped[s : s + k] for s, k in zip(starts.tolist(), take.tolist())])
    mask = torch.ones(n, dtype=torch.bool)
    mask[held] = False
    return mask.nonzero().squeeze(1), held.sort().values


def _channel_stats(x: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images in [0, 1] units (exact integer sums, chunked)."""
    c = x.shape[1]
    if len(x) == 0:
        return (0.5,) * c, (0.25,) * c
    total = torch.zeros(c, dtype=torch.int64)
    squares = torch.zeros(c, dtype=torch.int64)
    rows = max(1, (1 << 22) // max(1, x[0].numel()))
    for chunk in x.split(rows):
        wide = chunk.to(torch.int32)
        total += wide.sum(dim=(0, 2, 3), dtype=torch.int64)
        squares += (wide * wide).sum(dim=(0, 2, 3), dtype=torch.int64)
    count = x.numel() // c
    mean = total.double() / (count * 255.0)
    var = (squares.double() / (count * 255.0**2) - mean * mean).clamp_(min=0.0)
    std = [s if s > 1e-6 else 1.0 for s in var.sqrt().tolist()]  # constant channel: leave as is
    return tuple(mean.tolist()), tuple(std)


def _resize(x: Tensor, size: int) -> Tensor:
    """Bilinear resize of uint8 ``[N, C, H, W]`` to ``size`` x ``size`` (antialiased when
    shrinking), in chunks so the float copy stays small."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = size < max(x.shape[-2:])
    out = torch.empty(*x.shape[:2], size, size, dtype=torch.uint8)
    rows = max(1, (1 << 22) // max(1, x.shape[1] * max(size, x.shape[-1]) ** 2))
    for start in range(0, len(x), rows):
        chunk = x[start : start + rows].float()
        resized = F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink
        )
        out[start : start + rows] = resized.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _load_digits() -> tuple[Tensor, Tensor, tuple[str, ...]]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # values 0..16 -> 0..255
    images = torch.from_numpy(bunch.images).mul(255.0 / 16.0).round_().clamp_(0, 255)
    x = images.to(torch.uint8).unsqueeze(1)  # [1797, 1, 8, 8]
    y = torch.from_numpy(bunch.target).long()
    return x, y, tuple(str(i) for i in range(10))


# CIFAR "python version" layout, as torchvision.datasets.CIFAR10/CIFAR100 expect it:
# folder, train files, test files, meta file, label key, class-name key.
_CIFAR = {
    "cifar10": (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "batches.meta",
        "labels",
        "label_names",
    ),
    "cifar100": (
        "cifar-100-python",
        ("train",),
        ("test",),
        "meta",
        "fine_labels",
        "fine_label_names",
    ),
}
_CIFAR_URLS = {
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "cifar100": "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}


def _load_cifar(
    name: str, data_dir: Path, download: bool
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor], tuple[str, ...]]:
    """Read the CIFAR pickles from ``data_dir/<folder>/`` (or ``data_dir`` itself if it is
    that folder).

    The pickles are read here rather than through ``torchvision.datasets.CIFAR10``, whose
    constructor insists on the md5 sums of the official files: reading them ourselves accepts any
    file in the same format (the tests write small ones) and validates the structure instead.
    torchvision is used for the download (which checks the archive's md5).
    """
    folder_name, train_files, test_files, meta_file, label_key, names_key = _CIFAR[name]
    folder = data_dir if data_dir.name == folder_name else data_dir / folder_name
    needed = [*train_files, *test_files, meta_file]
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing and download:
        _download_cifar(name, folder.parent)
        missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        title = name.upper().replace("CIFAR", "CIFAR-")
        raise UserError(
            f"dataset {name}: no {title} files in {folder.resolve()} "
            f"(missing {', '.join(missing)}); run with `--set dataset.download=true` to "
            f"download them, or place the extracted {folder_name}/ folder (from "
            f"{_CIFAR_URLS[name]}) in dataset.data_dir={str(data_dir)!r}"
        )
    meta = _read_pickle(folder / meta_file)
    if names_key not in meta:
        raise UserError(f"dataset {name}: {folder / meta_file} has no {names_key!r} entry")
    class_names = tuple(_text(v) for v in meta[names_key])
    splits = []
    for files in (train_files, test_files):
        xs, ys = [], []
        for file in files:
            entry = _read_pickle(folder / file)
            if "data" not in entry or label_key not in entry:
                raise UserError(
                    f"dataset {name}: {folder / file} lacks 'data' or {label_key!r}: "
                    "not a CIFAR python-version batch"
                )
            data = torch.as_tensor(entry["data"])
            if data.dtype != torch.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                raise UserError(
                    f"dataset {name}: {folder / file}: 'data' is {data.dtype} "
                    f"{tuple(data.shape)}, expected uint8 rows of 3072 values"
                )
            labels = torch.as_tensor(list(entry[label_key]), dtype=torch.long)
            if len(labels) != len(data):
                raise UserError(
                    f"dataset {name}: {folder / file}: {len(labels)} labels for {len(data)} images"
                )
            xs.append(data.reshape(-1, 3, 32, 32))  # rows are R (1024), G, B planes, row-major
            ys.append(labels)
        y = torch.cat(ys)
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(class_names)):
            raise UserError(f"dataset {name}: labels outside 0..{len(class_names) - 1} in {folder}")
        splits.append((torch.cat(xs), y))
    return splits[0], splits[1], class_names


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
            f"fetch {_CIFAR_URLS[name]} by hand and extract it there"
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


def _load_imagefolder(
    root: Path, image_size: int
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None, Tensor, Tensor, tuple[str, ...]]:
    """``root/<class>/*`` (split here) or ``root/train/`` with ``root/test/`` and/or ``root/val/``.

    With ``train/`` + ``val/`` + ``test/`` all three are used as given. With ``train/`` and one of
    ``test/``/``val/``, that folder is the test split and validation is carved from ``train/``.
    Images are converted to RGB and resized (squashed) to ``image_size`` square.
    """
    if not root.is_dir():
        what = "a file, not a folder" if root.exists() else "no such folder"
        raise UserError(f"dataset.data_dir={str(root)!r}: {what} ({root.resolve()})")
    try:
        sub = {p.name for p in root.iterdir() if p.is_dir()}
    except OSError as exc:
        raise UserError(
            f"dataset.data_dir={str(root)!r}: cannot list it ({exc.strerror})"
        ) from None
    if "train" in sub and ({"test", "val"} & sub):
        class_names = _class_folders(root / "train")
        _need_two_classes(root / "train", class_names)
        train_x, train_y = _read_images(root / "train", class_names, image_size)
        held_name = "test" if "test" in sub else "val"
        test_x, test_y = _read_images(root / held_name, class_names, image_size)
        val = None
        if {"test", "val"} <= sub:
            val = _read_images(root / "val", class_names, image_size)
        return train_x, train_y, val, test_x, test_y, class_names
    class_names = _class_folders(root)
    _need_two_classes(root, class_names)
    x, y = _read_images(root, class_names, image_size)
    train_idx, test_idx = _stratified_split(y, _TEST_FRACTION, _TEST_SPLIT_SEED)
    if len(test_idx) == 0:
        raise UserError(
            f"dataset.data_dir={str(root)!r}: {len(y)} images are too few to hold out a test "
            "split (and a validation split); add images"
        )
    return x[train_idx], y[train_idx], None, x[test_idx], y[test_idx], class_names


def _need_two_classes(root: Path, class_names: tuple[str, ...]) -> None:
    if len(class_names) < 2:
        raise UserError(
            f"dataset.data_dir={str(root)!r}: one class folder with images "
            f"({', '.join(class_names)}); a classifier needs at least 2 (<class>/<image> files)"
        )


def _check_memory(need: int, image_size: int, limit: int) -> None:
    if need > limit:
        raise UserError(
            f"dataset.image_size={image_size}: loading the images at {image_size}x{image_size} "
            f"needs ~{need / 2**30:.1f} GiB of memory (limit {limit / 2**30:g} GiB); lower "
            "dataset.image_size or use fewer images"
        )


def _class_folders(root: Path) -> tuple[str, ...]:
    names = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and _images_in(p)))
    if not names:
        raise UserError(
            f"dataset.data_dir={str(root)!r}: no class subfolders with images "
            f"({', '.join(_IMAGE_SUFFIXES)}) in {root.resolve()}; expected <class>/<image> files"
        )
    return names


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES
    )


def _read_images(root: Path, class_names: tuple[str, ...], size: int) -> tuple[Tensor, Tensor]:
    import numpy as np
    from PIL import Image

    index = {c: i for i, c in enumerate(class_names)}
    try:
        extra = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name not in index)
        extra = [c for c in extra if _images_in(root / c)]
        files = {c: _images_in(root / c) for c in class_names if (root / c).is_dir()}
    except OSError as exc:
        raise UserError(
            f"dataset.data_dir: cannot list {root.resolve()} ({exc.strerror})"
        ) from None
    if extra:
        raise UserError(
            f"dataset.data_dir: {root.resolve()} has classes not in the training set: "
            f"{', '.join(extra)}"
        )
    _check_memory(sum(map(len, files.values())) * 3 * size * size, size, MAX_DATASET_BYTES)
    images: list[Tensor] = []
    labels: list[int] = []
    for name in class_names:
        for file in files.get(name, []):
            try:
                with Image.open(file) as img:
                    rgb = img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                    array = np.asarray(rgb, dtype=np.uint8)
            except Exception as exc:
                raise UserError(f"dataset.data_dir: cannot read image {file}: {exc}") from exc
            images.append(torch.from_numpy(array.copy()).permute(2, 0, 1))
            labels.append(index[name])
    if not images:
        raise UserError(f"dataset.data_dir: no images in {root.resolve()}")
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


def _make_synthetic(
    image_size: int,
    seed: int,
    *,
    num_classes: int,
    num_train: int,
    num_test: int,
    in_channels: int,
    noise: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Each class: a smooth random mean image (a 4x4 pattern upsampled); a sample is its class
    mean plus Gaussian pixel noise. Balanced labels in random order. All drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, in_channels, 4, 4, generator=g)
    means = F.interpolate(coarse, size=(image_size, image_size), mode="bilinear")

    def draw(n: int) -> tuple[Tensor, Tensor]:
        y = (torch.arange(n) % num_classes)[torch.randperm(n, generator=g)]
        x = means[y] + noise * torch.randn(n, in_channels, image_size, image_size, generator=g)
        return x.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8), y

    train_x, train_y = draw(num_train)
    test_x, test_y = draw(num_test)
    return train_x, train_y, test_x, test_y
