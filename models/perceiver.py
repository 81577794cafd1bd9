"""Perceiver image classifier.

Jaegle, Gimeno, Brock, Zisserman, Vinyals, Carreira. "Perceiver: General Perception with
Iterative Attention", ICML 2021. https://arxiv.org/abs/2103.03206

A small latent array (N x D) attends to a large data array (M x C) by cross-attention, then
refines itself with a latent transformer; the pair is repeated ``num_iterations`` times.
Cost is O(M N) per cross-attend and O(N^2) per latent self-attention, never O(M^2).

Names here vs. the paper vs. the Keras seed example (``seeds/000_*.txt``):

=================  =================================  ============================
ours               paper                              Keras seed
=================  =================================  ============================
num_patches        M (index dimension of the input)   num_patches / data_dim
data channels      C (= projection_dim + 2(2F+1))     projection_dim
num_latents        N                                  latent_dim (=256)
latent_dim         D                                  projection_dim (=256)
projection_dim     (linear input projection width)    projection_dim (=256)
num_freq_bands     K (bands per dim)                  (learned positions only)
max_freq           mu (max frequency, Nyquist)        -
num_iterations     number of cross-attends            num_iterations
self_per_cross     latent blocks per cross-attend     num_transformer_blocks
cross_heads        cross-attention heads (1)          1 (keras Attention)
latent_heads       latent self-attention heads (8)    num_heads
mlp_ratio          MLP widening (1)                   ffn_units = [D, D] -> 1
=================  =================================  ============================

Faithful to the paper, unlike the seed: Fourier features (positions in [-1, 1] per spatial
dim, ``num_freq_bands`` bands spaced linearly from 1 to ``max_freq / 2``, features
sin(pi f x), cos(pi f x) and the raw position x, concatenated to the projected input);
pre-LayerNorm everywhere; latents initialised with a truncated normal (std 0.02); with
``share_weights`` the first cross-attend has its own weights and all later ones share one
set (sharing the first made training unstable in the paper), and the latent transformers
share weights across iterations; a final LayerNorm, mean over latents and a linear head.
``pos_encoding="learned"`` instead adds a learned embedding to the projection, as the seed
does. Each attention head has width D / heads (the seed's Keras MultiHeadAttention uses
key_dim = D per head). The paper trains with LAMB; that is the trainer's business.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor, nn

from ._config import ModelConfig
from .layers import Block, ClassifierHead, FourierFeatures, PatchEmbed, PosEmbed, init_weights

__all__ = ["AtIterations", "Perceiver", "PerceiverConfig"]


@dataclasses.dataclass(frozen=True)
class PerceiverConfig(ModelConfig):
    """Perceiver hyperparameters (see the module docstring for the paper's names)."""

    family: ClassVar[str] = "perceiver"
    choices: ClassVar = {"pos_encoding": ("fourier", "learned")}
    divides: ClassVar = (("latent_heads", "latent_dim"), ("cross_heads", "latent_dim"))

    patch_size: int = 2  # 1 = every pixel is one element of the data array
    projection_dim: int = 64  # linear projection of each flattened patch
    pos_encoding: str = "fourier"  # "fourier" (paper, concatenated) | "learned" (seed, added)
    num_freq_bands: int = 6  # K
    max_freq: float | None = None  # None: the patch grid side (Nyquist), set by resolve
    num_latents: int = 64  # N
    latent_dim: int = 128  # D
    num_iterations: int = 2  # cross-attends
    self_per_cross: int = 2  # latent transformer blocks after each cross-attend
    cross_heads: int = 1
    latent_heads: int = 8
    mlp_ratio: float = 1.0
    share_weights: bool = True
    dropout: float = 0.0
    attn_dropout: float = 0.0

    def _finalize(self, *, image_size: int) -> PerceiverConfig:
        if self.max_freq is None:
            return dataclasses.replace(self, max_freq=float(image_size // self.patch_size))
        return self

    def data_channels(self) -> int:
        """C: channels of the data array the cross-attention reads."""
        if self.pos_encoding == "fourier":
            return self.projection_dim + 2 * (2 * self.num_freq_bands + 1)
        return self.projection_dim


class Perceiver(nn.Module):
    """Perceiver classifier over ``[B, C, H, W]`` images; returns logits ``[B, num_classes]``.

    ``config`` is resolved here unless ``build_model`` did it already.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        image_size: int,
        in_channels: int = 3,
        config: PerceiverConfig | None = None,
    ):
        super().__init__()
        cfg = (config or PerceiverConfig()).resolved(image_size=image_size, in_channels=in_channels)
        assert cfg.max_freq is not None  # resolve sets it (the Nyquist rate) when None
        self.config = cfg
        d = cfg.latent_dim
        self.patch_embed = PatchEmbed(
            image_size=image_size,
            patch_size=cfg.patch_size,
            in_channels=in_channels,
            embed_dim=cfg.projection_dim,
        )
        grid = self.patch_embed.grid_size
        if cfg.pos_encoding == "fourier":
            self.pos: nn.Module = FourierFeatures(
                grid=(grid, grid), num_bands=cfg.num_freq_bands, max_freq=cfg.max_freq
            )
        else:
            self.pos = PosEmbed(num_tokens=grid * grid, dim=cfg.projection_dim)
        self.latents = nn.Parameter(torch.empty(cfg.num_latents, d))  # [N, D]

        def cross() -> Block:
            return Block(
                dim=d,
                num_heads=cfg.cross_heads,
                mlp_ratio=cfg.mlp_ratio,
                kv_dim=cfg.data_channels(),
                dropout=cfg.dropout,
                attn_dropout=cfg.attn_dropout,
            )

        def latent_transformer() -> nn.Sequential:
            return nn.Sequential(
                *(
                    Block(
                        dim=d,
                        num_heads=cfg.latent_heads,
                        mlp_ratio=cfg.mlp_ratio,
                        dropout=cfg.dropout,
                        attn_dropout=cfg.attn_dropout,
                    )
                    for _ in range(cfg.self_per_cross)
                )
            )

        # Distinct modules only; self.schedule maps iteration -> (cross index, latent index).
        n_cross = min(cfg.num_iterations, 2) if cfg.share_weights else cfg.num_iterations
        n_latent = 1 if cfg.share_weights else cfg.num_iterations
        self.cross_blocks = nn.ModuleList(cross() for _ in range(n_cross))
        self.latent_blocks = nn.ModuleList(latent_transformer() for _ in range(n_latent))
        self.schedule = [
            (min(i, n_cross - 1), min(i, n_latent - 1)) for i in range(cfg.num_iterations)
        ]
        self.norm = nn.LayerNorm(d)
        self.head = ClassifierHead(in_dim=d, num_classes=num_classes, dropout=cfg.dropout)
        self.init_weights()

    def init_weights(self) -> None:
        """ViT-style init of every module, then the latent array (truncated normal, std 0.02)."""
        self.apply(init_weights)
        nn.init.trunc_normal_(self.latents, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """The latent array is a learned input, not a weight: no decay (timm convention)."""
        return {"latents"}

    def forward(
        self, images: Tensor, iterations: int | None = None, *, every_iteration: bool = False
    ) -> Tensor:
        """Logits ``[B, num_classes]`` after ``iterations`` cross-attends (default: all).

        ``every_iteration``: the logits after each of the first ``iterations`` instead,
        ``[iterations, B, num_classes]``: the shared norm and head read the latents after each
        iteration, so row ``k - 1`` equals ``forward(images, k)`` (the anytime Perceiver).
        """
        k = self._iterations(iterations)
        data = self.pos(self.patch_embed(images))  # [B, M, C]
        x = self.latents.expand(images.shape[0], -1, -1)  # [B, N, D]
        outputs = []
        for ci, li in self.schedule[:k]:
            x = self.cross_blocks[ci](x, data)  # [B, N, D]: latents attend to the data
            x = self.latent_blocks[li](x)  # [B, N, D]: latent self-attention
            if every_iteration:
                outputs.append(self._classify(x))
        return torch.stack(outputs) if every_iteration else self._classify(x)

    def _classify(self, x: Tensor) -> Tensor:
        return self.head(self.norm(x).mean(dim=1))  # [B, D] -> [B, num_classes]

    def _iterations(self, iterations: int | None) -> int:
        total = self.config.num_iterations
        if iterations is None:
            return total
        if isinstance(iterations, bool) or not 1 <= int(iterations) <= total:
            raise ValueError(f"iterations={iterations!r}: allowed: 1..{total} (num_iterations)")
        return int(iterations)


class AtIterations(nn.Module):
    """A Perceiver run with its first ``iterations`` cross-attends only (the k-iteration model
    of an anytime Perceiver: what ``models.cost.measure`` counts for that point)."""

    def __init__(self, model: Perceiver, iterations: int) -> None:
        super().__init__()
        model._iterations(iterations)  # validated now, not at the first call
        self.model = model
        self.iterations = iterations

    def forward(self, images: Tensor) -> Tensor:
        return self.model(images, self.iterations)
