"""MLP-Mixer image classifier, and the patch-token classifier skeleton FNet and gMLP reuse.

Tolstikhin et al. "MLP-Mixer: An all-MLP Architecture for Vision", NeurIPS 2021.
https://arxiv.org/abs/2105.01601

Mixer block (paper): ``x = x + TokenMLP(LN(x)^T)^T`` (mixes across patches, per channel),
then ``x = x + ChannelMLP(LN(x))`` (mixes across channels, per patch); each residual adds to
the un-normalised input, and the two LayerNorms are distinct. The Keras seed example
(``seeds/004_*.txt``) reuses ONE LayerNorm for both, a defect we do not copy; its
``num_patches`` widths for both MLPs are our tokens_mlp_dim and channels_mlp_dim, its
embedding_dim our hidden_dim.

``PatchClassifier`` is the shared skeleton (like timm's ``MlpMixer`` taking a block class):
patch embedding (+ optional learned positions) -> blocks -> optional LayerNorm -> pool
(mean or flatten) -> dropout -> linear head.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import ClassVar

from torch import Tensor, nn

from ._config import ModelConfig
from .layers import ClassifierHead, Mlp, PatchEmbed, PosEmbed, init_weights, pool_tokens

__all__ = ["MixerBlock", "MixerConfig", "MlpMixer", "PatchClassifier"]


@dataclasses.dataclass(frozen=True)
class MixerConfig(ModelConfig):
    """MLP-Mixer hyperparameters."""

    family: ClassVar[str] = "mixer"
    choices: ClassVar = {"pool": ("mean", "flatten")}

    patch_size: int = 4
    hidden_dim: int = 128  # C in the paper
    num_blocks: int = 4
    tokens_mlp_dim: int = 64  # D_S
    channels_mlp_dim: int = 256  # D_C
    pool: str = "mean"
    dropout: float = 0.0


class PatchClassifier(nn.Module):
    """Patch tokens -> ``blocks`` -> [LayerNorm] -> pool -> head (the Mixer skeleton).

    ``make_block(num_patches)`` builds one block mapping ``[B, M, E] -> [B, M, E]``.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        image_size: int,
        in_channels: int,
        patch_size: int,
        hidden_dim: int,
        num_blocks: int,
        make_block: Callable[[int], nn.Module],
        pool: str = "mean",
        pos_embedding: bool = False,
        final_norm: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.pool = pool
        self.patch_embed = PatchEmbed(
            image_size=image_size,
            patch_size=patch_size,
            in_channels=in_channels,
            embed_dim=hidden_dim,
        )
        m = self.patch_embed.num_patches
        self.pos_embed = PosEmbed(num_tokens=m, dim=hidden_dim) if pos_embedding else None
        self.blocks = nn.Sequential(*(make_block(m) for _ in range(num_blocks)))
        self.norm = nn.LayerNorm(hidden_dim) if final_norm else nn.Identity()
        self.head = ClassifierHead(
            in_dim=m * hidden_dim if pool == "flatten" else hidden_dim,
            num_classes=num_classes,
            dropout=dropout,
        )
        self.apply(init_weights)

    def forward(self, images: Tensor) -> Tensor:
        x = self.patch_embed(images)  # [B, M, E]
        if self.pos_embed is not None:
            x = self.pos_embed(x)
        x = self.norm(self.blocks(x))  # [B, M, E]
        return self.head(pool_tokens(x, self.pool))  # [B, num_classes]


class MixerBlock(nn.Module):
    """Token-mixing MLP then channel-mixing MLP, each pre-LN with its own LayerNorm."""

    def __init__(
        self,
        *,
        num_tokens: int,
        dim: int,
        tokens_mlp_dim: int,
        channels_mlp_dim: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.mlp_tokens = Mlp(in_dim=num_tokens, hidden_dim=tokens_mlp_dim, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp_channels = Mlp(in_dim=dim, hidden_dim=channels_mlp_dim, dropout=dropout)

    def forward(self, x: Tensor) -> Tensor:
        # token mixing acts along M, so run the MLP on [B, E, M]
        x = x + self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)  # [B, M, E]
        return x + self.mlp_channels(self.norm2(x))  # [B, M, E]


class MlpMixer(PatchClassifier):
    """MLP-Mixer classifier over ``[B, C, H, W]`` images; returns ``[B, num_classes]``."""

    def __init__(
        self,
        *,
        num_classes: int,
        image_size: int,
        in_channels: int = 3,
        config: MixerConfig | None = None,
    ):
        cfg = MixerConfig.resolve(
            image_size=image_size, in_channels=in_channels, **(config or MixerConfig()).to_dict()
        )
        assert isinstance(cfg, MixerConfig)

        def make_block(num_tokens: int) -> nn.Module:
            return MixerBlock(
                num_tokens=num_tokens,
                dim=cfg.hidden_dim,
                tokens_mlp_dim=cfg.tokens_mlp_dim,
                channels_mlp_dim=cfg.channels_mlp_dim,
                dropout=cfg.dropout,
            )

        super().__init__(
            num_classes=num_classes,
            image_size=image_size,
            in_channels=in_channels,
            patch_size=cfg.patch_size,
            hidden_dim=cfg.hidden_dim,
            num_blocks=cfg.num_blocks,
            make_block=make_block,
            pool=cfg.pool,
            dropout=cfg.dropout,
        )
        self.config = cfg
