"""Shared by the tests of search/data/: small synthetic options, image-set checks, and writers of
CIFAR pickles and image folders in the official layouts (no downloads)."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import torch

SYN = {"num_classes": 4, "num_train": 80, "num_test": 20, "in_channels": 3}


def rows(x: torch.Tensor) -> set[bytes]:
    return {bytes(r.numpy().tobytes()) for r in x.reshape(len(x), -1)}


def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = x.double() / 255
    return f.mean(dim=(0, 2, 3)), f.std(dim=(0, 2, 3), unbiased=False)


class _Py2Pickler(pickle._Pickler):
    """Writes ``str`` as Python 2 byte strings (SHORT_BINSTRING), as in the official CIFAR
    pickles (made with Python 2's cPickle): ``pickle.load(f, encoding="latin1")`` gives ``str``
    keys (what torchvision reads), ``encoding="bytes"`` would give ``b"data"``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_py2_str(self, obj: str) -> None:
        raw = obj.encode("latin1")
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = _save_py2_str


def py2_pickle(obj: object) -> bytes:
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def write_cifar10(root: Path, per_batch: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """cifar-10-batches-py/ as in the official archive: data_batch_1..5, test_batch, meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    all_train: list[np.ndarray] = []
    labels: list[int] = []
    for i in range(1, 7):
        rows = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        ys = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        name = f"data_batch_{i}" if i <= 5 else "test_batch"
        entry = {
            "batch_label": f"batch {i}",
            "labels": ys,
            "data": rows,
            "filenames": [f"img_{i}_{j}.png" for j in range(per_batch)],
        }
        (folder / name).write_bytes(py2_pickle(entry))
        if i <= 5:
            all_train.append(rows)
            labels.extend(ys)
    meta = {
        "num_cases_per_batch": per_batch,
        "label_names": "airplane automobile bird cat deer dog frog horse ship truck".split(),
        "num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(py2_pickle(meta))
    return np.concatenate(all_train), np.array(labels)


def write_cifar100(root: Path, n_train: int = 40, n_test: int = 10, dump=py2_pickle) -> np.ndarray:
    """cifar-100-python/{train,test,meta} as in the official archive."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    train_rows = None
    for name, n in (("train", n_train), ("test", n_test)):
        rows = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, size=n)]
        entry = {
            "filenames": ["x.png"] * n,
            "batch_label": f"{name} batch",
            "fine_labels": fine,
            "coarse_labels": [f // 5 for f in fine],
            "data": rows,
        }
        (folder / name).write_bytes(dump(entry))
        if name == "train":
            train_rows = rows
    meta = {
        "fine_label_names": [f"fine{i}" for i in range(100)],
        "coarse_label_names": [f"coarse{i}" for i in range(20)],
    }
    (folder / "meta").write_bytes(dump(meta))
    assert train_rows is not None
    return train_rows


def write_pngs(folder: Path, classes: dict[str, int], seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k, (name, count) in enumerate(classes.items()):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            side = 10 + 3 * ((i + k) % 3)  # mixed sizes
            pixels = rng.integers(0, 256, size=(side, side + 2, 3), dtype=np.uint8)
            img = Image.fromarray(pixels)
            if i == 0:
                img = img.convert("L")  # a grayscale file becomes RGB
            img.save(folder / name / f"{i}.png")
        (folder / name / "notes.txt").write_text("not an image")


FASHION_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) as an IDX file: magic 0x08 0x<ndim>, big-endian dims, the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fashion(
    folder: Path, n_train: int = 40, n_test: int = 20, *, gz: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    """Fashion-MNIST's four IDX files (28x28, labels cycling through the 10 classes) in
    ``folder``, gzipped as Debian ships them unless ``gz`` is false; returns the arrays."""
    import gzip

    rng = np.random.default_rng(seed)
    arrays = {
        FASHION_NAMES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        FASHION_NAMES[1]: (np.arange(n_train) % 10).astype(np.uint8),
        FASHION_NAMES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        FASHION_NAMES[3]: (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        raw = idx_bytes(array)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays
