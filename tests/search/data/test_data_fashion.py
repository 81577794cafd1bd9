"""search/data/fashion.py: Fashion-MNIST's IDX files, gzipped or not, from data_dir, Debian's
folder or a download (served here by a local HTTP server: there is no other network); each
broken file refused in one line naming it."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from _data_helpers import FASHION_NAMES, idx_bytes, write_fashion

from search.data import fashion, load_dataset
from search.errors import UserError


def _load(folder: Path | None, **kwargs):
    args = {"image_size": 28, "val_fraction": 0.25, "seed": 0, **kwargs}
    return load_dataset("fashion_mnist", data_dir=folder, **args)


@pytest.mark.parametrize("gz", [True, False])
def test_reads_the_four_idx_files(tmp_path: Path, gz: bool) -> None:
    arrays = write_fashion(tmp_path, gz=gz)
    s = _load(tmp_path)
    assert (s.num_classes, s.in_channels, s.hflip, s.name) == (10, 1, True, "fashion_mnist")
    assert s.class_names[0] == "T-shirt/top" and s.class_names[9] == "Ankle boot"
    assert len(s.train_y) == 30 and len(s.val_y) == 10  # 25 % of the 40 carved for val
    # the official test split is the test split, as stored
    assert torch.equal(s.test_x[:, 0], torch.from_numpy(arrays[FASHION_NAMES[2]]))
    assert s.test_y.tolist() == arrays[FASHION_NAMES[3]].tolist()


def test_matches_torchvisions_reader(tmp_path: Path) -> None:
    from torchvision.datasets.mnist import read_image_file, read_label_file

    write_fashion(tmp_path, gz=False)
    images = fashion.read_idx(tmp_path / FASHION_NAMES[0], 0x0803)
    labels = fashion.read_idx(tmp_path / FASHION_NAMES[1], 0x0801)
    assert torch.equal(
        torch.from_numpy(images.copy()), read_image_file(tmp_path / FASHION_NAMES[0])
    )
    assert torch.equal(
        torch.from_numpy(labels.astype(np.int64)), read_label_file(tmp_path / FASHION_NAMES[1])
    )


def test_downsampled_and_subset_outside_val(tmp_path: Path) -> None:
    write_fashion(tmp_path, n_train=200)
    full = _load(tmp_path, image_size=14)
    sub = _load(tmp_path, image_size=14, train_subset=50)
    assert sub.train_x.shape == (50, 1, 14, 14) and torch.bincount(sub.train_y).tolist() == [5] * 10
    # the val split does not move with the subset, and the subset never overlaps it
    assert torch.equal(full.val_x, sub.val_x)
    val_rows = {r.numpy().tobytes() for r in sub.val_x}
    assert not val_rows & {r.numpy().tobytes() for r in sub.train_x}
    # seeded: the same seed gives the same subset, another seed another
    again = _load(tmp_path, image_size=14, train_subset=50)
    other = _load(tmp_path, image_size=14, train_subset=50, seed=1)
    assert torch.equal(again.train_x, sub.train_x) and not torch.equal(other.train_x, sub.train_x)


def test_default_folder_is_debians_when_complete(tmp_path: Path, monkeypatch) -> None:
    debian = tmp_path / "debian"
    monkeypatch.setattr(fashion, "DEBIAN_FOLDER", debian)
    monkeypatch.chdir(tmp_path)  # DEFAULT_DATA_DIR ("data") is relative to the working dir
    with pytest.raises(UserError) as err:
        _load(None)
    message = str(err.value)
    assert "train-images-idx3-ubyte" in message and "dataset-fashion-mnist" in message
    assert "dataset.download=true" in message and "\n" not in message
    write_fashion(debian)
    assert len(_load(None).test_y) == 20
    assert fashion.fashion_folder(None) == debian


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda raw: raw[:-5], "truncated or corrupt"),
        (lambda raw: raw[:6], "truncated"),
        (lambda raw: b"\x00\x00\x08\x01" + raw[4:], "not an IDX file of images"),
        (lambda raw: b"PK\x03\x04" + raw[4:], "magic number 0x504b0304"),
    ],
)
def test_broken_image_file_refused(tmp_path: Path, damage, expected: str) -> None:
    arrays = write_fashion(tmp_path, gz=False)
    (tmp_path / FASHION_NAMES[0]).write_bytes(damage(idx_bytes(arrays[FASHION_NAMES[0]])))
    with pytest.raises(UserError, match=expected) as err:
        _load(tmp_path)
    assert FASHION_NAMES[0] in str(err.value) and "\n" not in str(err.value)


def test_bad_gzip_and_label_count_refused(tmp_path: Path) -> None:
    write_fashion(tmp_path)
    (tmp_path / f"{FASHION_NAMES[2]}.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(UserError, match=f"cannot read .*{FASHION_NAMES[2]}.gz"):
        _load(tmp_path)
    write_fashion(tmp_path)
    labels = np.zeros(39, dtype=np.uint8)
    (tmp_path / f"{FASHION_NAMES[1]}.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(UserError, match="39 labels for the 40 images"):
        _load(tmp_path)
    labels = np.full(40, 10, dtype=np.uint8)
    (tmp_path / f"{FASHION_NAMES[1]}.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(UserError, match=r"label 10, expected 0\.\.9"):
        _load(tmp_path)


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"image_size": 32}, "dataset.image_size=32: fashion_mnist is stored at 28x28"),
        ({"train_subset": 9}, "dataset.train_subset=9: must be a whole number of at least 10"),
        ({"train_subset": 31}, "only 30 training images are left"),
    ],
)
def test_fidelity_fields_refused(tmp_path: Path, fields, expected: str) -> None:
    write_fashion(tmp_path)
    with pytest.raises(UserError, match=expected):
        _load(tmp_path, **fields)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server on 127.0.0.1 serving tiny Fashion-MNIST files; yields (url, folder)."""
    served = tmp_path / "served"
    write_fashion(served)
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_download_fetches_through_torchvision(mirror, tmp_path: Path, monkeypatch) -> None:
    from torchvision.datasets import FashionMNIST

    url, served = mirror
    resources = [
        (f"{n}.gz", hashlib.md5((served / f"{n}.gz").read_bytes()).hexdigest())
        for n in FASHION_NAMES
    ]
    monkeypatch.setattr(FashionMNIST, "mirrors", [url])
    monkeypatch.setattr(FashionMNIST, "resources", resources)
    target = tmp_path / "downloaded"
    with pytest.raises(UserError, match="not found"):  # never without download: true
        _load(target)
    s = _load(target, download=True)
    assert len(s.test_y) == 20 and (target / "FashionMNIST" / "raw").is_dir()
    # a corrupt download (md5 mismatch) is one line naming the fix
    monkeypatch.setattr(FashionMNIST, "resources", [(n, "0" * 32) for n, _ in resources])
    with pytest.raises(UserError, match=r"download into .* failed") as err:
        _load(tmp_path / "elsewhere", download=True)
    assert "\n" not in str(err.value)


@pytest.mark.skipif(
    not (fashion.DEBIAN_FOLDER / "t10k-labels-idx1-ubyte.gz").is_file(),
    reason="Debian's dataset-fashion-mnist is not installed "
    "(apt-get install dataset-fashion-mnist)",
)
def test_reads_the_real_package_files() -> None:
    s = load_dataset("fashion_mnist", image_size=14, val_fraction=0.1, train_subset=10_000, seed=0)
    assert (len(s.train_y), len(s.val_y), len(s.test_y)) == (10_000, 6_000, 10_000)
    assert torch.bincount(s.test_y).tolist() == [1000] * 10
    assert torch.bincount(s.val_y).tolist() == [600] * 10
    assert s.test_y[0].item() == 9 and s.train_x.shape[1:] == (1, 14, 14)  # an ankle boot
