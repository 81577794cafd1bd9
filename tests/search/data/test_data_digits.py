"""search/data/digits.py: scikit-learn's 8x8 digits as uint8 tensors, resized at load."""

from __future__ import annotations

import torch

from search.data import DatasetSplits, load_dataset


def test_digits_shapes_dtypes_classes(digits: DatasetSplits) -> None:
    s = digits
    assert s.name == "digits" and s.num_classes == 10 and s.in_channels == 1
    assert s.image_size == 16 and s.hflip is False
    assert s.class_names == tuple(str(i) for i in range(10))
    for x, y in ((s.train_x, s.train_y), (s.val_x, s.val_y), (s.test_x, s.test_y)):
        assert x.dtype == torch.uint8 and x.shape[1:] == (1, 16, 16)
        assert y.dtype == torch.int64 and len(y) == len(x)
        assert set(y.tolist()) == set(range(10))  # stratified: every class in every split
    assert len(s.train_y) + len(s.val_y) + len(s.test_y) == 1797
    assert len(s.test_y) == round(0.2 * 1797)
    assert len(s.val_y) == round(0.1 * (1797 - len(s.test_y)))
    assert int(s.train_x.max()) == 255 and int(s.train_x.min()) == 0  # 0..16 scaled to 0..255
    assert len(s.mean) == len(s.std) == 1


def test_digits_resized_bilinear_from_8x8() -> None:
    small = load_dataset("digits", image_size=8, seed=0)
    big = load_dataset("digits", image_size=24, seed=0)
    assert big.train_x.shape[1:] == (1, 24, 24)
    assert torch.equal(small.train_y, big.train_y)  # same split regardless of size
    expect = torch.nn.functional.interpolate(
        small.train_x[:5].float(), size=(24, 24), mode="bilinear", align_corners=False
    )
    assert torch.equal(big.train_x[:5], expect.round().clamp(0, 255).to(torch.uint8))
