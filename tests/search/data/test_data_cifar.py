"""search/data/cifar.py: the CIFAR python-version pickles, read as torchvision reads them; a
download only when asked (faked here: no network)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from _data_helpers import py2_pickle, stats, write_cifar10, write_cifar100

from search.data import cifar, load_dataset
from search.errors import UserError


def _torchvision_view(cls, root: Path, monkeypatch, train: bool) -> np.ndarray:
    """torchvision's own reading of the files, md5 checks disabled (our files aren't official)."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    return cls(root=str(root), train=train).data  # [N, 32, 32, 3] HWC


def test_cifar10_reads_python_pickles(tmp_path: Path, monkeypatch) -> None:
    import torchvision.datasets as tvd

    rows, labels = write_cifar10(tmp_path)
    s = load_dataset("cifar10", image_size=32, data_dir=tmp_path, val_fraction=0.0)
    assert s.num_classes == 10 and s.in_channels == 3 and s.hflip is True
    assert s.class_names[0] == "airplane" and s.class_names[9] == "truck"
    assert s.train_x.shape == (30, 3, 32, 32) and s.test_x.shape == (6, 3, 32, 32)
    assert s.train_y.tolist() == labels.tolist()
    # pixel layout: each row is the R, G, B planes of a 32x32 image, row-major
    assert torch.equal(s.train_x[0, 1, 0, :5], torch.from_numpy(rows[0, 1024:1029]))
    tv = _torchvision_view(tvd.CIFAR10, tmp_path, monkeypatch, train=True)
    assert torch.equal(s.train_x, torch.from_numpy(tv).permute(0, 3, 1, 2))
    # data_dir may also be the cifar-10-batches-py folder itself; resized at load
    small = load_dataset("cifar10", image_size=16, data_dir=tmp_path / "cifar-10-batches-py")
    assert small.train_x.shape[1:] == (3, 16, 16) and small.train_x.dtype == torch.uint8
    assert len(small.train_y) + len(small.val_y) == 30 and len(small.val_y) == 3


def test_cifar100_reads_python_pickles(tmp_path: Path, monkeypatch) -> None:
    import torchvision.datasets as tvd

    rows = write_cifar100(tmp_path)
    s = load_dataset("cifar100", image_size=32, data_dir=tmp_path, val_fraction=0.0)
    assert s.num_classes == 100 and s.class_names[:2] == ("fine0", "fine1")
    assert s.train_x.shape == (40, 3, 32, 32) and s.test_x.shape == (10, 3, 32, 32)
    assert torch.equal(s.train_x.reshape(40, -1), torch.from_numpy(rows))
    tv = _torchvision_view(tvd.CIFAR100, tmp_path, monkeypatch, train=False)
    assert torch.equal(s.test_x, torch.from_numpy(tv).permute(0, 3, 1, 2))
    mean, std = stats(s.train_x)
    assert s.mean == pytest.approx(mean.tolist()) and s.std == pytest.approx(std.tolist())


@pytest.mark.parametrize(
    "name, folder", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python")]
)
def test_cifar_missing_gives_one_line_user_error(tmp_path: Path, name: str, folder: str) -> None:
    with pytest.raises(UserError) as info:
        load_dataset(name, image_size=32, data_dir=tmp_path / "nowhere")
    message = str(info.value)
    assert "\n" not in message
    assert str((tmp_path / "nowhere" / folder).resolve()) in message
    assert "dataset.download=true" in message and f"{folder}/" in message


def test_cifar_downloads_only_when_asked(tmp_path: Path, monkeypatch) -> None:
    calls: list[Path] = []

    def fake_download(name: str, root: Path) -> None:
        calls.append(root)
        write_cifar100(root)

    monkeypatch.setattr(cifar, "_download_cifar", fake_download)
    with pytest.raises(UserError):
        load_dataset("cifar100", image_size=32, data_dir=tmp_path)
    assert calls == []
    s = load_dataset("cifar100", image_size=32, data_dir=tmp_path, download=True)
    assert calls == [tmp_path] and s.num_classes == 100
    load_dataset("cifar100", image_size=32, data_dir=tmp_path, download=True)
    assert len(calls) == 1  # files present: no second download


def test_cifar_pickles_with_bytes_keys_also_load(tmp_path: Path) -> None:
    """A copy re-pickled by Python 3 after ``pickle.load(f, encoding="bytes")``."""

    def bytes_keys(obj: dict) -> bytes:
        def convert(v: object) -> object:
            return (
                [x.encode() for x in v]
                if isinstance(v, list) and v and isinstance(v[0], str)
                else v
            )

        return pickle.dumps({k.encode(): convert(v) for k, v in obj.items()})

    rows = write_cifar100(tmp_path, dump=bytes_keys)
    s = load_dataset("cifar100", image_size=32, data_dir=tmp_path, val_fraction=0.0)
    assert s.class_names[5] == "fine5"
    assert torch.equal(s.train_x.reshape(40, -1), torch.from_numpy(rows))


def test_cifar_bad_file_is_user_error(tmp_path: Path) -> None:
    write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").write_bytes(py2_pickle({"data": [1, 2, 3]}))
    with pytest.raises(UserError, match="fine_labels"):
        load_dataset("cifar100", image_size=32, data_dir=tmp_path)
