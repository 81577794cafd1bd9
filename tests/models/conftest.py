"""Small configurations shared by the model tests (fast on 2 CPU cores)."""

from __future__ import annotations

from typing import Any

import pytest

#: one tiny configuration per family, image 8x8, 3 channels
TINY: dict[str, dict[str, Any]] = {
    "perceiver": {
        "patch_size": 2,
        "projection_dim": 16,
        "num_freq_bands": 2,
        "num_latents": 8,
        "latent_dim": 16,
        "num_iterations": 2,
        "self_per_cross": 1,
        "latent_heads": 2,
    },
    "vit": {"patch_size": 2, "embed_dim": 16, "depth": 2, "num_heads": 2},
    "mixer": {
        "patch_size": 2,
        "hidden_dim": 16,
        "num_blocks": 2,
        "tokens_mlp_dim": 8,
        "channels_mlp_dim": 32,
    },
    "fnet": {"patch_size": 2, "hidden_dim": 16, "num_blocks": 2, "mlp_dim": 32},
    "gmlp": {"patch_size": 2, "hidden_dim": 16, "num_blocks": 2, "ffn_dim": 32},
}
IMAGE_SIZE = 8
NUM_CLASSES = 5


@pytest.fixture
def tiny() -> dict[str, dict[str, Any]]:
    """Tiny hyperparameters per family (copy before mutating)."""
    return {family: dict(hp) for family, hp in TINY.items()}


@pytest.fixture
def build(tiny: dict[str, dict[str, Any]]) -> Any:
    """``build(family, **overrides)``: a tiny model for ``IMAGE_SIZE`` images."""
    import models

    def _build(family: str, **overrides: Any) -> Any:
        hp = {**tiny[family], **overrides}
        return models.build_model(family, num_classes=NUM_CLASSES, image_size=IMAGE_SIZE, **hp)

    return _build


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)  # the machine's cores are shared
