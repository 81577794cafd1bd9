"""search/data/folder.py: image folders, flat (split here) or with train/ val/ test/."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _data_helpers import write_pngs

from search.data import load_dataset
from search.errors import UserError


def test_imagefolder_flat_is_split(tmp_path: Path) -> None:
    write_pngs(tmp_path, {"cat": 10, "dog": 10, "eel": 5})
    s = load_dataset("imagefolder", image_size=12, data_dir=tmp_path, val_fraction=0.2)
    assert s.class_names == ("cat", "dog", "eel") and s.num_classes == 3
    assert s.in_channels == 3 and s.train_x.shape[1:] == (3, 12, 12)
    assert len(s.train_y) + len(s.val_y) + len(s.test_y) == 25
    assert len(s.test_y) == 5 and len(s.val_y) == 4
    assert s.train_x.dtype == torch.uint8 and s.train_y.dtype == torch.int64


def test_imagefolder_train_test_layout(tmp_path: Path) -> None:
    write_pngs(tmp_path / "train", {"a": 6, "b": 6})
    write_pngs(tmp_path / "test", {"a": 2, "b": 3}, seed=1)
    s = load_dataset("imagefolder", image_size=8, data_dir=tmp_path, val_fraction=0.25)
    assert s.class_names == ("a", "b") and len(s.test_y) == 5 and len(s.val_y) == 3
    assert s.test_y.tolist() == [0, 0, 1, 1, 1]
    write_pngs(tmp_path / "val", {"a": 1, "b": 1}, seed=2)  # all three given: used as given
    s3 = load_dataset("imagefolder", image_size=8, data_dir=tmp_path)
    assert len(s3.train_y) == 12 and len(s3.val_y) == 2 and len(s3.test_y) == 5


def test_imagefolder_missing_or_empty_is_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such folder"):
        load_dataset("imagefolder", image_size=8, data_dir=tmp_path / "absent")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(UserError, match="no class subfolders"):
        load_dataset("imagefolder", image_size=8, data_dir=tmp_path / "empty")
    with pytest.raises(UserError, match="data_dir"):
        load_dataset("imagefolder", image_size=8)
