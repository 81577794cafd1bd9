"""search/data/augment.py: batched normalisation and the augmentation policies of Augmenter."""

from __future__ import annotations

import pytest
import torch
from _data_helpers import SYN

from search.data import AUGMENT_POLICIES, Augmenter, DatasetSplits, load_dataset


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
    assert all(p in message for p in AUGMENT_POLICIES)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="max_shift"):
            Augmenter(digits, policy="translate", max_shift=bad)  # type: ignore[arg-type]
    for policy in ("none", "resized_crop"):
        with pytest.raises(ValueError, match="max_shift"):
            Augmenter(digits, policy=policy, max_shift=2)
