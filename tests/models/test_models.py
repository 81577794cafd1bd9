"""Contract tests shared by every model family."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
import torch
import torch.nn.functional as F

import models
from models.layers import fourier_features

IMAGE_SIZE = 8  # as in conftest.py
NUM_CLASSES = 5


def test_families_are_registered(tiny: dict[str, dict[str, object]]) -> None:
    assert models.FAMILIES == ("perceiver", "vit", "mixer", "fnet", "gmlp")
    assert set(tiny) == set(models.FAMILIES)


@pytest.mark.parametrize("family", models.FAMILIES)
def test_family_contract(build: Any, family: str) -> None:
    """Shape, gradients everywhere, and the loss falls when overfitting one batch."""
    model = build(family)
    x = torch.randn(4, 3, IMAGE_SIZE, IMAGE_SIZE)
    y = torch.arange(4) % NUM_CLASSES
    out = model(x)
    assert out.shape == (4, NUM_CLASSES)
    F.cross_entropy(out, y).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("family", models.FAMILIES)
def test_in_channels_and_eval_determinism(build: Any, tiny: dict[str, Any], family: str) -> None:
    model = build(family, dropout=0.1).eval()
    model1 = models.build_model(
        family, num_classes=NUM_CLASSES, image_size=IMAGE_SIZE, in_channels=1, **tiny[family]
    )
    assert model1(torch.randn(2, 1, IMAGE_SIZE, IMAGE_SIZE)).shape == (2, NUM_CLASSES)
    x = torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))


@pytest.mark.parametrize(
    ("family", "pool"),
    [
        ("vit", "cls"),
        ("vit", "mean"),
        ("vit", "flatten"),
        ("mixer", "flatten"),
        ("fnet", "flatten"),
        ("gmlp", "flatten"),
    ],
)
def test_pools(build: Any, family: str, pool: str) -> None:
    model = build(family, pool=pool)
    assert model(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)).shape == (2, NUM_CLASSES)


def test_vit_mlp_head_and_perceiver_variants(build: Any) -> None:
    vit = build("vit", pool="flatten", head_units=(32, 24))
    assert vit(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)).shape == (2, NUM_CLASSES)
    for overrides in ({"patch_size": 1}, {"pos_encoding": "learned"}, {"share_weights": False}):
        model = build("perceiver", **overrides)
        assert model(torch.randn(2, 3, IMAGE_SIZE, IMAGE_SIZE)).shape == (2, NUM_CLASSES)


def _num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_perceiver_weight_sharing(build: Any) -> None:
    shared = [_num_params(build("perceiver", num_iterations=n)) for n in (2, 3, 4)]
    assert shared[0] == shared[1] == shared[2]
    one = _num_params(build("perceiver", num_iterations=1))
    assert one < shared[0]  # the first cross-attend has its own weights
    unshared = [
        _num_params(build("perceiver", num_iterations=n, share_weights=False)) for n in (2, 3, 4)
    ]
    assert unshared[0] == shared[0] + (
        unshared[1] - unshared[0] - (shared[0] - one)
    )  # iteration 2 adds one latent transformer over the shared model
    assert unshared[0] < unshared[1] < unshared[2]
    assert unshared[2] - unshared[1] == unshared[1] - unshared[0]


def test_perceiver_shared_modules_are_reused(build: Any) -> None:
    model = build("perceiver", num_iterations=4)
    assert len(model.cross_blocks) == 2 and len(model.latent_blocks) == 1
    assert model.schedule == [(0, 0), (1, 0), (1, 0), (1, 0)]


def test_fourier_features_match_the_paper() -> None:
    # grid 3x2 -> x in {-1, 0, 1}, y in {-1, 1}; bands linspace(1, max_freq/2=2, 2) = {1, 2}
    feats = fourier_features((3, 2), num_bands=2, max_freq=4.0)
    assert feats.shape == (6, 2 * (2 * 2 + 1))
    import math

    rows = []
    for x in (-1.0, 0.0, 1.0):
        for y in (-1.0, 1.0):
            scaled = [x * 1, x * 2, y * 1, y * 2]
            rows.append(
                [x, y]
                + [math.sin(math.pi * s) for s in scaled]
                + [math.cos(math.pi * s) for s in scaled]
            )
    torch.testing.assert_close(feats, torch.tensor(rows), atol=1e-6, rtol=0)
    # 1/3-spaced case: positions linspace(-1, 1, 4) along one axis, one band at f=1
    f1 = fourier_features((4,), num_bands=1, max_freq=2.0)
    xs = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0])
    expected = torch.stack([xs, torch.sin(math.pi * xs), torch.cos(math.pi * xs)], dim=1)
    torch.testing.assert_close(f1, expected, atol=1e-6, rtol=0)


def test_perceiver_data_channels(build: Any) -> None:
    model = build("perceiver", num_freq_bands=3)
    cross = model.cross_blocks[0]
    assert cross.norm_context.normalized_shape == (16 + 2 * (2 * 3 + 1),)
    learned = build("perceiver", pos_encoding="learned")
    assert learned.cross_blocks[0].norm_context.normalized_shape == (16,)


def test_gmlp_gate_starts_near_identity(build: Any) -> None:
    model = build("gmlp")
    sgu = model.blocks[0].sgu
    assert sgu.proj.weight.abs().max() <= 1e-3
    assert torch.all(sgu.proj.bias == 1)


def test_mixer_block_has_two_layernorms(build: Any) -> None:
    block = build("mixer").blocks[0]
    assert block.norm1 is not block.norm2


def test_default_and_resolved_hparams() -> None:
    for family in models.FAMILIES:
        defaults = models.default_hparams(family)
        assert "dropout" in defaults and "patch_size" in defaults
        resolved = models.resolve_hparams(family, image_size=32)
        assert set(resolved) == set(defaults)
        models.build_model(family, num_classes=10, image_size=32, **resolved)
    assert models.resolve_hparams("perceiver", image_size=32)["max_freq"] == 16.0
    assert models.resolve_hparams("vit", image_size=32, head_units=[8, 4])["head_units"] == (8, 4)
    assert models.resolve_hparams("vit", image_size=32, head_units="8,4")["head_units"] == (8, 4)


@pytest.mark.parametrize(
    ("family", "hparams", "fragments"),
    [
        ("vit", {"patch_size": 5}, ["vit.patch_size=5", "image_size=32", "1, 2, 4, 8, 16, 32"]),
        ("vit", {"num_heads": 5}, ["vit.num_heads=5", "embed_dim=128", "allowed: 1, 2, 4, 8"]),
        ("vit", {"pool": "max"}, ["vit.pool='max'", "'cls', 'mean', 'flatten'"]),
        ("vit", {"depth": 0}, ["vit.depth=0", "integers >= 1"]),
        ("vit", {"depth": 2.5}, ["vit.depth=2.5", "integers >= 1"]),
        ("vit", {"depth": True}, ["vit.depth=True", "integers >= 1"]),
        ("vit", {"head_units": (8, 0)}, ["vit.head_units=(8, 0)", "tuple of integers"]),
        ("vit", {"dropout": 1.5}, ["vit.dropout=1.5", "[0, 1)"]),
        ("vit", {"mlp_ratio": -1.0}, ["vit.mlp_ratio=-1.0", "> 0"]),
        ("vit", {"bogus": 1}, ["vit.bogus=1", "unknown", "embed_dim", "head_units"]),
        ("perceiver", {"latent_heads": 3}, ["perceiver.latent_heads=3", "latent_dim=128"]),
        ("perceiver", {"pos_encoding": "sine"}, ["perceiver.pos_encoding='sine'", "'fourier'"]),
        ("perceiver", {"share_weights": 1}, ["perceiver.share_weights=1", "True, False"]),
        ("perceiver", {"max_freq": 0}, ["perceiver.max_freq=0", "> 0 or None"]),
        ("mixer", {"pool": "cls"}, ["mixer.pool='cls'", "'mean', 'flatten'"]),
        ("fnet", {"pos_embedding": "yes"}, ["fnet.pos_embedding='yes'", "True, False"]),
        ("gmlp", {"ffn_dim": 33}, ["gmlp.ffn_dim=33", "even"]),
    ],
)
def test_bad_hparams_raise_clear_errors(
    family: str, hparams: dict[str, object], fragments: list[str]
) -> None:
    with pytest.raises(ValueError) as info:
        models.build_model(family, num_classes=10, image_size=32, **hparams)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    with pytest.raises(ValueError):
        models.resolve_hparams(family, image_size=32, **hparams)


def test_bad_family_and_sizes() -> None:
    with pytest.raises(ValueError, match=r"family='resnet'.*perceiver, vit, mixer, fnet, gmlp"):
        models.build_model("resnet", num_classes=10, image_size=32)
    with pytest.raises(ValueError, match=r"vit\.image_size=0: allowed: integers >= 1"):
        models.build_model("vit", num_classes=10, image_size=0)
    with pytest.raises(ValueError, match=r"mixer\.num_classes=0"):
        models.build_model("mixer", num_classes=0, image_size=32)
    with pytest.raises(ValueError, match="family="):
        models.default_hparams("nope")


@pytest.mark.parametrize("name", sorted(models.PRESETS))
def test_presets_build(name: str) -> None:
    preset = models.PRESETS[name]
    assert preset.name == name and preset.family in models.FAMILIES
    assert preset.num_classes == 100 and preset.in_channels == 3
    assert set(preset.train) == {"lr", "weight_decay", "batch_size", "epochs", "optimizer"}
    model = models.build_model(
        preset.family,
        num_classes=preset.num_classes,
        image_size=preset.image_size,
        in_channels=preset.in_channels,
        **preset.hparams,
    )
    with torch.no_grad():
        out = model(torch.randn(1, 3, preset.image_size, preset.image_size))
    assert out.shape == (1, 100)


def test_models_imports_no_orchestration_packages() -> None:
    code = (
        "import sys, models, models.cost; "
        "bad = [m for m in ('ray', 'optuna', 'deepspeed', 'plotly') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
