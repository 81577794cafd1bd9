"""search/data/synthetic.py: seeded class patterns plus noise."""

from __future__ import annotations

import torch
from _data_helpers import SYN

from search.data import load_dataset


def test_synthetic_deterministic_and_learnable_structure() -> None:
    a = load_dataset("synthetic", image_size=8, seed=4, **SYN)
    b = load_dataset("synthetic", image_size=8, seed=4, **SYN)
    c = load_dataset("synthetic", image_size=8, seed=5, **SYN)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)
    assert a.num_classes == 4 and a.class_names == ("class_0", "class_1", "class_2", "class_3")
    assert len(a.test_y) == 20 and len(a.train_y) + len(a.val_y) == 80
    # nearest class mean (from train) classifies the test set: the classes are separable
    x = a.train_x.float().flatten(1)
    means = torch.stack([x[a.train_y == k].mean(0) for k in range(4)])
    pred = torch.cdist(a.test_x.float().flatten(1), means).argmin(1)
    assert float((pred == a.test_y).float().mean()) > 0.9
    gray = load_dataset("synthetic", image_size=8, in_channels=1, num_train=20, num_test=5)
    assert gray.in_channels == 1 and gray.train_x.shape[1] == 1 and gray.num_classes == 10
