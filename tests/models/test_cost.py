"""``models.cost``: the analytic estimate agrees with counting on the built model."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

import models
from models import cost
from models._estimate import fft_flops

IMAGE_SIZE = 8  # as in conftest.py
NUM_CLASSES = 5

_P = {"projection_dim": 16, "num_latents": 8, "latent_dim": 16, "latent_heads": 2}
GRID: list[tuple[str, dict[str, Any]]] = [
    ("perceiver", {**_P, "patch_size": 1, "num_freq_bands": 3, "num_iterations": 3}),
    ("perceiver", {**_P, "patch_size": 2, "pos_encoding": "learned", "share_weights": False}),
    ("perceiver", {**_P, "patch_size": 4, "num_iterations": 1, "cross_heads": 2}),
    (
        "perceiver",
        {
            **_P,
            "patch_size": 2,
            "share_weights": False,
            "num_iterations": 3,
            "self_per_cross": 2,
            "mlp_ratio": 1.5,
            "max_freq": 3.0,
        },
    ),
    ("vit", {"patch_size": 2, "embed_dim": 16, "depth": 2, "num_heads": 4, "pool": "cls"}),
    (
        "vit",
        {
            "patch_size": 4,
            "embed_dim": 24,
            "depth": 1,
            "num_heads": 3,
            "pool": "mean",
            "mlp_ratio": 3.0,
        },
    ),
    (
        "vit",
        {
            "patch_size": 2,
            "embed_dim": 16,
            "depth": 2,
            "num_heads": 2,
            "pool": "flatten",
            "head_units": (32, 8),
        },
    ),
    (
        "mixer",
        {
            "patch_size": 2,
            "hidden_dim": 16,
            "num_blocks": 2,
            "tokens_mlp_dim": 8,
            "channels_mlp_dim": 32,
            "pool": "mean",
        },
    ),
    (
        "mixer",
        {
            "patch_size": 1,
            "hidden_dim": 8,
            "num_blocks": 1,
            "tokens_mlp_dim": 16,
            "channels_mlp_dim": 8,
            "pool": "flatten",
        },
    ),
    ("fnet", {"patch_size": 2, "hidden_dim": 12, "num_blocks": 2, "mlp_dim": 32}),
    (
        "fnet",
        {
            "patch_size": 4,
            "hidden_dim": 16,
            "num_blocks": 2,
            "mlp_dim": 16,
            "pos_embedding": False,
            "pool": "flatten",
        },
    ),
    ("gmlp", {"patch_size": 2, "hidden_dim": 16, "num_blocks": 2, "ffn_dim": 32}),
    ("gmlp", {"patch_size": 1, "hidden_dim": 8, "num_blocks": 1, "ffn_dim": 6, "pool": "flatten"}),
]


def _close(a: float, b: float, rel: float = 0.05) -> bool:
    return math.isclose(a, b, rel_tol=rel)


@pytest.mark.parametrize(
    ("family", "hparams"), GRID, ids=[f"{f}-{i}" for i, (f, _) in enumerate(GRID)]
)
def test_estimate_matches_measure(family: str, hparams: dict[str, Any]) -> None:
    model = models.build_model(family, num_classes=NUM_CLASSES, image_size=IMAGE_SIZE, **hparams)
    est = cost.estimate(family, num_classes=NUM_CLASSES, image_size=IMAGE_SIZE, **hparams)
    got = cost.measure(model, (2, 3, IMAGE_SIZE, IMAGE_SIZE), latency=False, memory=False)
    assert _close(est.params, got.params), (est, got)
    assert _close(est.flops, got.flops), (est, got)
    assert est.latency_ms_b1 is None and est.peak_train_memory_bytes is None


def test_grid_covers_every_family() -> None:
    assert {family for family, _ in GRID} == set(models.FAMILIES)


def test_fft_flops_counted() -> None:
    assert fft_flops((8, 4), (0, 1)) == 5 * 32 * (3 + 2)
    fnet = models.build_model(
        "fnet",
        num_classes=2,
        image_size=4,
        patch_size=2,
        hidden_dim=4,
        num_blocks=1,
        mlp_dim=4,
        pos_embedding=False,
    )
    flops = cost.count_flops(fnet, torch.randn(1, 3, 4, 4))
    m, e = 4, 4
    matmuls = 2 * m * 12 * e + 2 * 2 * m * e * 4 + 2 * e * 2
    assert flops == matmuls + 5 * m * e * math.log2(m * e)


def test_measure_latency_memory_and_restores_state() -> None:
    model = models.build_model(
        "mixer",
        num_classes=NUM_CLASSES,
        image_size=IMAGE_SIZE,
        patch_size=4,
        hidden_dim=8,
        num_blocks=1,
        tokens_mlp_dim=4,
        channels_mlp_dim=8,
    )
    model.train()
    got = cost.measure(model, (4, 3, IMAGE_SIZE, IMAGE_SIZE), repeats=2)
    assert got.latency_ms_b1 is not None and got.latency_ms_b1 > 0
    assert got.latency_ms_b64 is not None and got.latency_ms_b64 > 0
    assert got.peak_train_memory_bytes is None  # CPU: no peak statistic (documented)
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_estimate_validates_like_build_model() -> None:
    with pytest.raises(ValueError, match=r"vit\.patch_size=5"):
        cost.estimate("vit", num_classes=10, image_size=32, patch_size=5)
    with pytest.raises(ValueError, match="family="):
        cost.estimate("resnet", num_classes=10, image_size=32)
    with pytest.raises(ValueError, match=r"vit\.num_classes=0"):
        cost.estimate("vit", num_classes=0, image_size=32)


@pytest.mark.parametrize("name", sorted(models.PRESETS))
def test_preset_estimates_are_sane(name: str) -> None:
    p = models.PRESETS[name]
    est = cost.estimate(
        p.family,
        num_classes=p.num_classes,
        image_size=p.image_size,
        in_channels=p.in_channels,
        **p.hparams,
    )
    model = models.build_model(
        p.family,
        num_classes=p.num_classes,
        image_size=p.image_size,
        in_channels=p.in_channels,
        **p.hparams,
    )
    got = cost.measure(
        model, (1, p.in_channels, p.image_size, p.image_size), latency=False, memory=False
    )
    assert 1e5 < est.params < 1e8 and 1e6 < est.flops < 1e11
    assert est.flops > 2 * est.params // 10  # every weight is used at least on some tokens
    assert _close(est.params, got.params) and _close(est.flops, got.flops), (est, got)


def test_cost_is_frozen() -> None:
    c = cost.Cost(params=1, flops=2)
    with pytest.raises(AttributeError):
        c.params = 3  # type: ignore[misc]
