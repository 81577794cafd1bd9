"""The ``imagefolder`` dataset: ``data_dir/<class>/*.png|jpg`` (or
``data_dir/{train,val,test}/<class>/``), read as RGB and resized (squashed) to a square."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from search.data.rules import check_load_memory
from search.data.splits import split_off_test
from search.errors import UserError

__all__ = ["IMAGE_SUFFIXES", "load_imagefolder"]

#: The files read as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def load_imagefolder(
    root: Path, image_size: int
) -> tuple[Tensor, Tensor, tuple[Tensor, Tensor] | None, Tensor, Tensor, tuple[str, ...]]:
    """``root/<class>/*`` (split here) or ``root/train/`` with ``root/test/`` and/or ``root/val/``:
    ``(train_x, train_y, val or None, test_x, test_y, class_names)``.

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
    train_idx, test_idx = split_off_test(y)
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


def _class_folders(root: Path) -> tuple[str, ...]:
    names = tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and _images_in(p)))
    if not names:
        raise UserError(
            f"dataset.data_dir={str(root)!r}: no class subfolders with images "
            f"({', '.join(IMAGE_SUFFIXES)}) in {root.resolve()}; expected <class>/<image> files"
        )
    return names


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


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
    check_load_memory(sum(map(len, files.values())) * 3 * size * size, size)
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
