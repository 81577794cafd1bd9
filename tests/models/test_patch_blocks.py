"""Mixer, FNet and gMLP: one ``PatchClassifier``, built with a block class that takes one
constructor signature and carries its own ``init_weights()``."""

from __future__ import annotations

import functools
import inspect

import pytest
import torch
from torch import nn

import models
from models._config import ModelConfig
from models.fnet import FNetBlock, FNetConfig
from models.gmlp import GMlpBlock, GMlpConfig
from models.mixer import MixerBlock, MixerConfig, PatchBlock, PatchClassifier

BLOCKS: dict[str, tuple[type[ModelConfig], type[PatchBlock]]] = {
    "mixer": (MixerConfig, MixerBlock),
    "fnet": (FNetConfig, FNetBlock),
    "gmlp": (GMlpConfig, GMlpBlock),
}


@pytest.mark.parametrize("family", sorted(BLOCKS))
def test_blocks_share_one_signature_and_keep_the_shape(family: str) -> None:
    config_cls, block_cls = BLOCKS[family]
    params = inspect.signature(block_cls.__init__).parameters
    assert list(params) == ["self", "num_tokens", "config"]
    assert all(p.kind is p.KEYWORD_ONLY for name, p in params.items() if name != "self")
    cfg = config_cls.resolve(image_size=8, hidden_dim=16, patch_size=2)
    block = block_cls(num_tokens=16, config=cfg)
    x = torch.randn(3, 16, 16)  # [B, M, E]
    assert block(x).shape == x.shape


@pytest.mark.parametrize("family", sorted(BLOCKS))
def test_build_model_is_the_patch_classifier_with_the_family_block(build, family: str) -> None:
    config_cls, block_cls = BLOCKS[family]
    model = build(family)
    assert type(model) is PatchClassifier
    assert type(model.config) is config_cls
    assert [type(b) for b in model.blocks] == [block_cls] * model.config.num_blocks
    # post-LN FNet blocks end normalised: no final LayerNorm; the pre-LN blocks get one
    assert isinstance(model.norm, nn.Identity) == (family == "fnet")
    torch.manual_seed(0)
    built = build(family)
    torch.manual_seed(0)
    direct = PatchClassifier(
        num_classes=5, image_size=8, config=model.config, block_layer=block_cls
    )
    assert list(direct.state_dict()) == list(built.state_dict())
    for name, tensor in built.state_dict().items():
        assert torch.equal(tensor, direct.state_dict()[name]), name


def test_gmlp_block_init_weights_sets_the_gate_near_identity() -> None:
    cfg = GMlpConfig.resolve(image_size=8, hidden_dim=16, ffn_dim=32, patch_size=2)
    block = GMlpBlock(num_tokens=16, config=cfg)
    nn.init.ones_(block.sgu.proj.weight)
    nn.init.zeros_(block.sgu.proj.bias)
    proj_in = block.proj_in.weight.detach().clone()
    block.init_weights()
    assert block.sgu.proj.weight.abs().max() <= 1e-3
    assert torch.all(block.sgu.proj.bias == 1)
    assert torch.equal(block.proj_in.weight, proj_in)  # the model's init of the rest is kept


@pytest.mark.parametrize("family", ["mixer", "fnet"])
def test_other_blocks_keep_the_model_wide_init(build, family: str) -> None:
    block = build(family).blocks[0]
    before = {k: v.clone() for k, v in block.state_dict().items()}
    block.init_weights()
    assert all(torch.equal(v, before[k]) for k, v in block.state_dict().items())


def test_classifier_init_weights_reruns_the_generic_then_the_block_init(build) -> None:
    model = build("gmlp")
    for p in model.parameters():
        nn.init.constant_(p, 0.5)
    model.init_weights()
    sgu = model.blocks[0].sgu
    assert sgu.proj.weight.abs().max() <= 1e-3 and torch.all(sgu.proj.bias == 1)
    assert torch.all(model.blocks[0].norm.weight == 1)  # layers.init_weights: unit LayerNorm
    assert 0 < model.head.layers[-1].weight.std() < 0.05  # truncated normal, std 0.02


def test_registry_builds_the_patch_families_with_their_block() -> None:
    for family, (_, block_cls) in BLOCKS.items():
        factory = models.MODEL_FAMILIES[family].factory
        assert isinstance(factory, functools.partial)
        assert factory.func is PatchClassifier and factory.keywords == {"block_layer": block_cls}
    assert models.FAMILIES == ("perceiver", "vit", "mixer", "fnet", "gmlp")
