"""Tests for search/data.py: loaders (digits, CIFAR pickles, image folders, synthetic), splits,
normalisation statistics, batched augmentation and index batches. No downloads, < 30 s."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from search import data
from search.data import DATASETS, Augmenter, DatasetSplits, batches, load_dataset
from search.errors import UserError

SYN = {"num_classes": 4, "num_train": 80, "num_test": 20, "in_channels": 3}


@pytest.fixture(scope="module")
def digits() -> DatasetSplits:
    return load_dataset("digits", image_size=16, seed=0)


def _rows(x: torch.Tensor) -> set[bytes]:
    return {bytes(r.numpy().tobytes()) for r in x.reshape(len(x), -1)}


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = x.double() / 255
    return f.mean(dim=(0, 2, 3)), f.std(dim=(0, 2, 3), unbiased=False)


# ------------------------------------------------------------------------------------ digits


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


# ------------------------------------------------------------------------------------ splits


def test_split_same_seed_same_split_other_seed_differs(digits: DatasetSplits) -> None:
    again = load_dataset("digits", image_size=16, seed=0)
    other = load_dataset("digits", image_size=16, seed=1)
    assert torch.equal(again.train_x, digits.train_x) and torch.equal(again.val_y, digits.val_y)
    assert not torch.equal(other.val_x, digits.val_x)
    assert torch.equal(other.test_x, digits.test_x)  # the test split does not move with seed


def test_val_is_carved_from_train_and_splits_are_disjoint() -> None:
    full = load_dataset("synthetic", image_size=8, val_fraction=0.0, seed=3, **SYN)
    split = load_dataset("synthetic", image_size=8, val_fraction=0.25, seed=3, **SYN)
    assert len(full.val_y) == 0 and len(split.val_y) == 20 and len(split.train_y) == 60
    train, val, test = _rows(split.train_x), _rows(split.val_x), _rows(split.test_x)
    assert len(train) == 60 and len(val) == 20  # noisy images: all distinct
    assert train | val == _rows(full.train_x)  # val comes out of train, nothing lost
    assert not train & val and not (train | val) & test
    assert torch.bincount(split.val_y).tolist() == [5, 5, 5, 5]  # stratified


def test_stratified_split_helper_partitions_indices() -> None:
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 7)
    kept, held = data._stratified_split(y, 0.2, seed=5)
    assert len(held) == round(0.2 * 87)
    assert torch.equal(torch.sort(torch.cat([kept, held])).values, torch.arange(87))
    assert torch.bincount(y[held], minlength=3).tolist() == [10, 6, 1]
    assert torch.equal(held, data._stratified_split(y, 0.2, seed=5)[1])
    assert not torch.equal(held, data._stratified_split(y, 0.2, seed=6)[1])


def test_normalisation_stats_from_training_images_only(digits: DatasetSplits) -> None:
    mean, std = _stats(digits.train_x)
    assert digits.mean == pytest.approx(mean.tolist(), abs=1e-9)
    assert digits.std == pytest.approx(std.tolist(), abs=1e-9)
    everything = torch.cat([digits.train_x, digits.val_x, digits.test_x])
    all_mean, _ = _stats(everything)
    assert abs(digits.mean[0] - float(all_mean[0])) > 1e-6


# ------------------------------------------------------------------------------ augmentation


def test_normalize_matches_stats(digits: DatasetSplits) -> None:
    aug = Augmenter(digits, "cpu")
    out = aug.normalize(digits.train_x)
    assert out.dtype == torch.float32 and out.shape == digits.train_x.shape
    assert float(out.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(out.std()) == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(TypeError):
        aug.normalize(digits.train_x.float())


def test_augment_deterministic_with_seeded_generator(digits: DatasetSplits) -> None:
    aug = Augmenter(digits, "cpu")
    x = digits.train_x[:32]
    a = aug.augment(x, torch.Generator().manual_seed(7))
    b = aug.augment(x, torch.Generator().manual_seed(7))
    c = aug.augment(x, torch.Generator().manual_seed(8))
    assert a.shape == (32, 1, 16, 16) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.allclose(a, aug.normalize(x))  # it does crop/zoom


def test_augment_is_one_batched_call(digits: DatasetSplits, monkeypatch) -> None:
    calls: list[tuple[int, ...]] = []
    real = torch.nn.functional.grid_sample

    def counting(inp, grid, *args, **kwargs):
        calls.append(tuple(inp.shape))
        return real(inp, grid, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "grid_sample", counting)
    Augmenter(digits, "cpu").augment(digits.train_x[:64], torch.Generator().manual_seed(0))
    assert calls == [(64, 1, 16, 16)]


@pytest.mark.parametrize("hflip", [False, True])
def test_flip_only_when_hflip(hflip: bool) -> None:
    s = load_dataset("synthetic", image_size=12, seed=0, **SYN)
    assert s.hflip is True
    # scale/ratio fixed at 1: the crop is the identity, only the flip remains
    aug = Augmenter(s, "cpu", scale=(1.0, 1.0), ratio=(1.0, 1.0), hflip=hflip)
    x = s.train_x[:64]
    out = aug.augment(x, torch.Generator().manual_seed(1))
    plain, mirrored = aug.normalize(x), aug.normalize(x.flip(-1))
    same = (out - plain).abs().amax(dim=(1, 2, 3)) < 1e-4
    flipped = (out - mirrored).abs().amax(dim=(1, 2, 3)) < 1e-4
    assert bool((same | flipped).all())
    if hflip:
        assert 10 < int(flipped.sum()) < 54
    else:
        assert bool(same.all())


def test_digits_augmenter_never_flips(digits: DatasetSplits) -> None:
    aug = Augmenter(digits, "cpu", scale=(1.0, 1.0), ratio=(1.0, 1.0))
    x = digits.train_x[:64]
    out = aug.augment(x, torch.Generator().manual_seed(1))
    assert torch.allclose(out, aug.normalize(x), atol=1e-4)


# ---------------------------------------------------------------------- augmentation policies


@pytest.fixture(scope="module")
def noisy16() -> DatasetSplits:
    """400 noisy RGB 16x16 images (hflip allowed): every shift/flip of one gives a distinct
    image, so the transform that produced an augmented image can be recovered exactly."""
    return load_dataset(
        "synthetic", image_size=16, val_fraction=0.0, seed=0, num_train=400, num_test=4
    )


def _shift_ref(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """Plain-slicing reference: ``out[..., i, j] = x[..., i - dy, j - dx]``, zeros entering."""
    h, w = x.shape[-2:]
    out = torch.zeros_like(x)
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        ..., max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def _recover(
    aug: Augmenter, x: torch.Tensor, out: torch.Tensor, reach: int, flips=(False, True)
) -> list[list[tuple[int, int, bool]]]:
    """Per image, every ``(dx, dy, flip)`` with ``|dx|, |dy| <= reach`` such that ``out`` is
    exactly ``normalize(flip(shift(x)))`` (the shift by plain slicing, zero fill)."""
    hits: list[list[tuple[int, int, bool]]] = [[] for _ in range(len(x))]
    for flip in flips:
        for dy in range(-reach, reach + 1):
            for dx in range(-reach, reach + 1):
                cand = _shift_ref(x, dx, dy)
                cand = cand.flip(-1) if flip else cand
                same = (aug.normalize(cand) == out).flatten(1).all(1)
                for b in same.nonzero().flatten().tolist():
                    hits[b].append((dx, dy, flip))
    return hits


def test_augment_policies_and_default_augment_are_exported() -> None:
    assert data.AUGMENT_POLICIES == ("none", "translate", "crop_flip", "resized_crop")
    assert "AUGMENT_POLICIES" in data.__all__ and "default_augment" in data.__all__


def test_policy_none_is_exactly_normalize(digits: DatasetSplits) -> None:
    aug = Augmenter(digits, "cpu", policy="none")
    x = digits.train_x[:64]
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    assert torch.equal(aug.augment(x, g), aug.normalize(x))
    assert torch.equal(g.get_state(), state)  # the generator is not used


def test_translate_is_a_whole_pixel_shift_with_zero_fill(noisy16: DatasetSplits) -> None:
    aug = Augmenter(noisy16, "cpu", policy="translate")
    assert aug.max_shift == 1  # max(1, 16 // 16)
    x = noisy16.train_x
    out = aug.augment(x, torch.Generator().manual_seed(0))
    hits = _recover(aug, x, out, reach=2)  # searched wider than allowed, flips included
    assert all(len(h) == 1 for h in hits)  # every image is exactly one shift of its input
    found = [h[0] for h in hits]
    assert not any(flip for _, _, flip in found)  # translate never flips (hflip is True here)
    shifts = {(dx, dy) for dx, dy, _ in found}
    assert shifts == {(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)}  # range, fully used


def test_translate_handmade_image_shifted_by_known_amounts() -> None:
    """A 1-channel 5x5 image whose pixels are all distinct and nonzero: the output must be the
    input moved by whole pixels, with exactly the pixels that left replaced by zeros."""
    s = load_dataset("synthetic", image_size=5, val_fraction=0.0, num_train=20, num_test=2)
    aug = Augmenter(s, "cpu", policy="translate", max_shift=2)
    img = torch.arange(1, 26, dtype=torch.uint8).view(1, 1, 5, 5).expand(64, 3, 5, 5)
    out = aug.augment(img.contiguous(), torch.Generator().manual_seed(5))
    unit = out * torch.tensor(s.std).view(1, 3, 1, 1) + torch.tensor(s.mean).view(1, 3, 1, 1)
    pixels = (unit * 255).round().to(torch.int64)[:, 0]  # back to the integer pixel values
    for b in range(64):
        kept = pixels[b][pixels[b] > 0]
        assert len(kept) > 0
        first = int(kept.min()) - 1  # top-left surviving source pixel, as row * 5 + col
        rows, cols = (pixels[b] > 0).nonzero().min(0).values.tolist()
        dy, dx = rows - first // 5, cols - first % 5
        assert max(abs(dx), abs(dy)) <= 2
        assert torch.equal(pixels[b], _shift_ref(img[0, 0].long(), dx, dy))


def test_translate_max_shift_is_respected_and_used(noisy16: DatasetSplits) -> None:
    aug = Augmenter(noisy16, "cpu", policy="translate", max_shift=3)
    x = noisy16.train_x
    out = aug.augment(x, torch.Generator().manual_seed(1))
    hits = _recover(aug, x, out, reach=4, flips=(False,))
    assert all(len(h) == 1 for h in hits)
    dxs = [h[0][0] for h in hits]
    dys = [h[0][1] for h in hits]
    assert set(dxs) == set(dys) == set(range(-3, 4))
    assert abs(sum(dxs) / len(dxs)) < 0.5 and abs(sum(dys) / len(dys)) < 0.5
    still = Augmenter(noisy16, "cpu", policy="translate", max_shift=0)
    assert torch.equal(still.augment(x, torch.Generator()), still.normalize(x))


@pytest.mark.parametrize("size, translate, crop", [(8, 1, 1), (16, 1, 2), (32, 2, 4), (64, 4, 8)])
def test_default_shift_sizes(size: int, translate: int, crop: int) -> None:
    s = load_dataset("synthetic", image_size=size, num_train=10, num_test=2, val_fraction=0.0)
    assert Augmenter(s, policy="translate").max_shift == translate  # max(1, size // 16)
    assert Augmenter(s, policy="crop_flip").max_shift == crop  # size // 8


def test_crop_flip_is_pad_crop_then_flip(noisy16: DatasetSplits) -> None:
    aug = Augmenter(noisy16, "cpu", policy="crop_flip")
    assert aug.hflip is True and aug.max_shift == 2  # pad 16 // 8
    x = noisy16.train_x
    out = aug.augment(x, torch.Generator().manual_seed(2))
    hits = _recover(aug, x, out, reach=3)
    assert all(len(h) == 1 for h in hits)
    found = [h[0] for h in hits]
    assert {(dx, dy) for dx, dy, _ in found} == {
        (dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)
    }
    flipped = sum(flip for _, _, flip in found)
    assert 0.4 * len(found) < flipped < 0.6 * len(found)
    # hflip off: the same shifts (same random numbers), no flips
    plain = Augmenter(noisy16, "cpu", policy="crop_flip", hflip=False)
    unflipped = _recover(plain, x, plain.augment(x, torch.Generator().manual_seed(2)), reach=3)
    assert [h[0] for h in unflipped] == [(dx, dy, False) for dx, dy, _ in found]


def test_crop_flip_on_digits_shifts_but_never_flips(digits: DatasetSplits) -> None:
    aug = Augmenter(digits, "cpu", policy="crop_flip")
    x = digits.train_x[:64]
    out = aug.augment(x, torch.Generator().manual_seed(4))
    # digits have blank borders, so several shifts may explain an image: some unflipped one must
    hits = _recover(aug, x, out, reach=2, flips=(False,))
    assert all(hits)
    assert not torch.equal(out, aug.normalize(x))


@pytest.mark.parametrize("policy", ["translate", "crop_flip", "resized_crop"])
def test_policies_reproducible_from_the_generator(noisy16: DatasetSplits, policy: str) -> None:
    aug = Augmenter(noisy16, "cpu", policy=policy)
    x = noisy16.train_x[:64]
    a = aug.augment(x, torch.Generator().manual_seed(11))
    b = Augmenter(noisy16, "cpu", policy=policy).augment(x, torch.Generator().manual_seed(11))
    c = aug.augment(x, torch.Generator().manual_seed(12))
    assert a.shape == x.shape and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_resized_crop_is_the_default_policy(noisy16: DatasetSplits) -> None:
    x = noisy16.train_x[:32]
    default = Augmenter(noisy16, "cpu").augment(x, torch.Generator().manual_seed(9))
    explicit = Augmenter(noisy16, "cpu", policy="resized_crop")
    assert explicit.policy == "resized_crop"
    assert torch.equal(default, explicit.augment(x, torch.Generator().manual_seed(9)))


def test_shift_policies_do_not_resample(noisy16: DatasetSplits, monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("grid_sample called")

    monkeypatch.setattr(torch.nn.functional, "grid_sample", fail)
    for policy in ("none", "translate", "crop_flip"):
        Augmenter(noisy16, policy=policy).augment(noisy16.train_x, torch.Generator())
    with pytest.raises(TypeError):
        Augmenter(noisy16, policy="translate").augment(noisy16.train_x.float(), torch.Generator())


def test_bad_policy_or_max_shift_is_value_error(digits: DatasetSplits) -> None:
    with pytest.raises(ValueError) as info:
        Augmenter(digits, policy="randaugment")
    message = str(info.value)
    assert "'randaugment'" in message
    assert all(p in message for p in data.AUGMENT_POLICIES)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="max_shift"):
            Augmenter(digits, policy="translate", max_shift=bad)  # type: ignore[arg-type]
    for policy in ("none", "resized_crop"):
        with pytest.raises(ValueError, match="max_shift"):
            Augmenter(digits, policy=policy, max_shift=2)


def test_default_augment_per_dataset() -> None:
    assert data.default_augment("digits") == "none"
    assert data.default_augment("synthetic") == "none"
    assert data.default_augment("cifar10") == "crop_flip"
    assert data.default_augment("cifar100") == "crop_flip"
    assert data.default_augment("imagefolder") == "resized_crop"
    assert all(data.default_augment(name) in data.AUGMENT_POLICIES for name in DATASETS)
    with pytest.raises(ValueError) as info:
        data.default_augment("mnist")
    assert "'mnist'" in str(info.value) and all(name in str(info.value) for name in DATASETS)


# ----------------------------------------------------------------------------------- batches


def test_batches_cover_indices_and_are_seeded() -> None:
    x, y = torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.zeros(10, dtype=torch.long)
    plain = list(batches(x, y, 4, shuffle=False))
    assert [b.tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [len(b) for b in batches(10, None, 4, drop_last=True)] == [4, 4]
    one = list(batches(x, y, 3, shuffle=True, generator=torch.Generator().manual_seed(2)))
    two = list(batches(x, y, 3, shuffle=True, generator=torch.Generator().manual_seed(2)))
    assert all(torch.equal(a, b) for a, b in zip(one, two))
    assert sorted(torch.cat(one).tolist()) == list(range(10))
    assert all(b.dtype == torch.int64 for b in one)
    with pytest.raises(ValueError):
        list(batches(x, y[:5], 4))


# ------------------------------------------------------------------------------------- CIFAR


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


def _py2_pickle(obj: object) -> bytes:
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue()


def _write_cifar10(root: Path, per_batch: int = 6) -> tuple[np.ndarray, np.ndarray]:
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
        (folder / name).write_bytes(_py2_pickle(entry))
        if i <= 5:
            all_train.append(rows)
            labels.extend(ys)
    meta = {
        "num_cases_per_batch": per_batch,
        "label_names": "airplane automobile bird cat deer dog frog horse ship truck".split(),
        "num_vis": 3072,
    }
    (folder / "batches.meta").write_bytes(_py2_pickle(meta))
    return np.concatenate(all_train), np.array(labels)


def _write_cifar100(
    root: Path, n_train: int = 40, n_test: int = 10, dump=_py2_pickle
) -> np.ndarray:
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


def _torchvision_view(cls, root: Path, monkeypatch, train: bool) -> np.ndarray:
    """torchvision's own reading of the files, md5 checks disabled (our files aren't official)."""
    import torchvision.datasets.cifar as tv_cifar

    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)
    return cls(root=str(root), train=train).data  # [N, 32, 32, 3] HWC


def test_cifar10_reads_python_pickles(tmp_path: Path, monkeypatch) -> None:
    import torchvision.datasets as tvd

    rows, labels = _write_cifar10(tmp_path)
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

    rows = _write_cifar100(tmp_path)
    s = load_dataset("cifar100", image_size=32, data_dir=tmp_path, val_fraction=0.0)
    assert s.num_classes == 100 and s.class_names[:2] == ("fine0", "fine1")
    assert s.train_x.shape == (40, 3, 32, 32) and s.test_x.shape == (10, 3, 32, 32)
    assert torch.equal(s.train_x.reshape(40, -1), torch.from_numpy(rows))
    tv = _torchvision_view(tvd.CIFAR100, tmp_path, monkeypatch, train=False)
    assert torch.equal(s.test_x, torch.from_numpy(tv).permute(0, 3, 1, 2))
    mean, std = _stats(s.train_x)
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
        _write_cifar100(root)

    monkeypatch.setattr(data, "_download_cifar", fake_download)
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

    rows = _write_cifar100(tmp_path, dump=bytes_keys)
    s = load_dataset("cifar100", image_size=32, data_dir=tmp_path, val_fraction=0.0)
    assert s.class_names[5] == "fine5"
    assert torch.equal(s.train_x.reshape(40, -1), torch.from_numpy(rows))


def test_cifar_bad_file_is_user_error(tmp_path: Path) -> None:
    _write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").write_bytes(_py2_pickle({"data": [1, 2, 3]}))
    with pytest.raises(UserError, match="fine_labels"):
        load_dataset("cifar100", image_size=32, data_dir=tmp_path)


# ------------------------------------------------------------------------------- imagefolder


def _write_pngs(folder: Path, classes: dict[str, int], seed: int = 0) -> None:
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


def test_imagefolder_flat_is_split(tmp_path: Path) -> None:
    _write_pngs(tmp_path, {"cat": 10, "dog": 10, "eel": 5})
    s = load_dataset("imagefolder", image_size=12, data_dir=tmp_path, val_fraction=0.2)
    assert s.class_names == ("cat", "dog", "eel") and s.num_classes == 3
    assert s.in_channels == 3 and s.train_x.shape[1:] == (3, 12, 12)
    assert len(s.train_y) + len(s.val_y) + len(s.test_y) == 25
    assert len(s.test_y) == 5 and len(s.val_y) == 4
    assert s.train_x.dtype == torch.uint8 and s.train_y.dtype == torch.int64


def test_imagefolder_train_test_layout(tmp_path: Path) -> None:
    _write_pngs(tmp_path / "train", {"a": 6, "b": 6})
    _write_pngs(tmp_path / "test", {"a": 2, "b": 3}, seed=1)
    s = load_dataset("imagefolder", image_size=8, data_dir=tmp_path, val_fraction=0.25)
    assert s.class_names == ("a", "b") and len(s.test_y) == 5 and len(s.val_y) == 3
    assert s.test_y.tolist() == [0, 0, 1, 1, 1]
    _write_pngs(tmp_path / "val", {"a": 1, "b": 1}, seed=2)  # all three given: used as given
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


# --------------------------------------------------------------------------------- synthetic


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


# -------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"name": "mnist"}, "dataset.name='mnist'"),
        ({"image_size": 0}, "dataset.image_size=0"),
        ({"image_size": 8.0}, "dataset.image_size=8.0"),
        ({"val_fraction": 1.0}, "dataset.val_fraction=1.0"),
        ({"val_fraction": -0.1}, "dataset.val_fraction=-0.1"),
        ({"seed": -1}, "dataset.seed=-1"),
        ({"download": "yes"}, "dataset.download='yes'"),
        ({"num_classes": 3}, "dataset.num_classes=3"),  # digits takes no synthetic options
        ({"name": "synthetic", "colour": 1}, "dataset.colour=1"),
        ({"name": "synthetic", "num_classes": 1}, "dataset.num_classes=1"),
        ({"name": "synthetic", "noise": -1.0}, "dataset.noise=-1.0"),
    ],
)
def test_bad_values_name_the_field(kwargs: dict, field: str) -> None:
    args = {"name": "digits", "image_size": 8, **kwargs}
    with pytest.raises(UserError) as info:
        load_dataset(args.pop("name"), **args)
    assert field in str(info.value)
    if field.startswith("dataset.name"):
        assert all(name in str(info.value) for name in DATASETS)
