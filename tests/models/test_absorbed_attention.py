"""The absorbed cross-attention is the plain one, computed in the context's channel space."""

from __future__ import annotations

import pytest
import torch

import models
from models.cost import count_flops
from models.layers import Attention, plain_attention


def _pair(attn: Attention, x: torch.Tensor, ctx: torch.Tensor) -> tuple[list[torch.Tensor], ...]:
    """Output and gradients (inputs, every parameter) on the absorbed and the plain path."""
    results = []
    for plain in (False, True):
        with plain_attention() if plain else torch.enable_grad():
            y = attn(x, ctx)
            grads = torch.autograd.grad((y * y).sum(), [x, ctx, *attn.parameters()])
        results.append([y.detach(), *grads])
    return tuple(results)


@pytest.mark.parametrize(
    ("heads", "channels", "latents", "tokens"), [(4, 34, 16, 64), (1, 50, 32, 64), (2, 29, 8, 256)]
)
def test_outputs_and_gradients_equal_the_plain_path(
    heads: int, channels: int, latents: int, tokens: int
) -> None:
    torch.manual_seed(0)
    attn = Attention(dim=64, num_heads=heads, kv_dim=channels)
    assert attn._absorb(latents, tokens), "these shapes take the absorbed path"
    x = torch.randn(3, latents, 64, requires_grad=True)
    ctx = torch.randn(3, tokens, channels, requires_grad=True)
    absorbed, plain = _pair(attn, x, ctx)
    for a, p in zip(absorbed, plain, strict=True):
        torch.testing.assert_close(a, p, rtol=1e-4, atol=1e-5)


def test_attention_dropout_and_wide_contexts_keep_the_plain_path() -> None:
    attn = Attention(dim=64, num_heads=4, kv_dim=34, attn_dropout=0.1).train()
    assert not attn._absorb(16, 64)  # dropped attention weights do not sum to 1
    assert attn.eval()._absorb(16, 64)  # evaluation has no dropout
    assert not Attention(dim=64, num_heads=4, kv_dim=512)._absorb(64, 16)  # more work absorbed
    with plain_attention():
        assert not Attention(dim=64, num_heads=4, kv_dim=34)._absorb(16, 64)


def test_counted_flops_are_the_architectures() -> None:
    """FLOPs count the plain path: a model's cost does not depend on the shortcut."""
    hp = dict(
        patch_size=1, projection_dim=16, num_latents=16, latent_dim=64, cross_heads=4,
        num_freq_bands=4,
    )  # fmt: skip
    torch.manual_seed(0)
    model = models.build_model("perceiver", num_classes=10, image_size=8, in_channels=1, **hp)
    x = torch.randn(2, 1, 8, 8)
    counted = count_flops(model, x)
    with plain_attention():
        assert count_flops(model, x) == counted
    analytic = models.cost.estimate("perceiver", image_size=8, in_channels=1, num_classes=10, **hp)
    assert counted // 2 == analytic.flops
