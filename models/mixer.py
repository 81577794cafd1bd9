"""MLP-Mixer image classifier, and the patch classifier FNet and gMLP are built on.

Tolstikhin et al. "MLP-Mixer: An all-MLP Architecture for Vision", NeurIPS 2021.
https://arxiv.org/abs/2105.01601

Mixer block (paper): ``x = x + TokenMLP(LN(x)^T)^T`` (mixes across patches, per channel),
then ``x = x + ChannelMLP(LN(x))`` (mixes across channels, per patch); each residual adds to
the un-normalised input, and the two LayerNorms are distinct. The Keras seed example
(``seeds/004_*.txt``) reuses ONE LayerNorm for both, a defect we do not copy; its
``num_patches`` widths for both MLPs are our tokens_mlp_dim and channels_mlp_dim, its
embedding_dim our hidden_dim.

``PatchClassifier`` is the one classifier of Mixer, FNet and gMLP, each built with its own
block class (timm's ``MlpMixer(block_layer=...)``): patch embedding (+ optional learned
positions) -> ``num_blocks`` blocks -> LayerNorm (none after post-LN blocks) -> pool (mean or
flatten) -> dropout -> linear head. A block class derives from ``PatchBlock``: it is built as
``block_layer(num_tokens=M, config=cfg)`` from its family's config and carries its own
``init_weights()``.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Protocol, TypeVar, cast

from torch import Tensor, nn

from ._config import ModelConfig
from .layers import ClassifierHead, Mlp, PatchEmbed, PosEmbed, init_weights, pool_tokens

__all__ = ["MixerBlock", "MixerConfig", "PatchBlock", "PatchClassifier", "PatchConfig"]

_P = TypeVar("_P", bound="PatchConfig")


class PatchConfig(Protocol):
    """What ``PatchClassifier`` reads from a family config (Mixer, FNet, gMLP)."""

    @property
    def patch_size(self) -> int: ...
    @property
    def hidden_dim(self) -> int: ...  # E, the token width
    @property
    def num_blocks(self) -> int: ...
    @property
    def pool(self) -> str: ...
    @property
    def dropout(self) -> float: ...
    @property
    def pos_embedding(self) -> bool: ...  # add learned positions after the patch projection

    def resolved(self: _P, *, image_size: int, in_channels: int = 3) -> _P:
        """``ModelConfig.resolved``: validated for the image size, resolved at most once."""
        ...


@dataclasses.dataclass(frozen=True)
class MixerConfig(ModelConfig):
    """MLP-Mixer hyperparameters."""

    family: ClassVar[str] = "mixer"
    choices: ClassVar = {"pool": ("mean", "flatten")}
    #: not searched: the token-mixing weights are per position already
    pos_embedding: ClassVar[bool] = False

    patch_size: int = 4
    hidden_dim: int = 128  # C in the paper
    num_blocks: int = 4
    tokens_mlp_dim: int = 64  # D_S
    channels_mlp_dim: int = 256  # D_C
    pool: str = "mean"
    dropout: float = 0.0


class PatchBlock(nn.Module):
    """Base of the blocks ``PatchClassifier`` stacks: ``[B, M, E] -> [B, M, E]``.

    Every block class takes the same keyword arguments, the number of tokens M and its
    family's config, and reads its own widths from that config.
    """

    #: the classifier adds a LayerNorm after the last block (False: post-LN blocks, whose
    #: output is normalised already)
    final_norm: ClassVar[bool] = True

    def __init__(self, *, num_tokens: int, config: PatchConfig) -> None:
        super().__init__()

    def init_weights(self) -> None:
        """The block's own init, on top of the model-wide ``layers.init_weights`` that the
        classifier applies to every module first (timm's override order). Default: none."""


class PatchClassifier(nn.Module):
    """Patch tokens -> ``block_layer`` x ``num_blocks`` -> [LayerNorm] -> pool -> head.

    Maps ``[B, in_channels, image_size, image_size]`` images to ``[B, num_classes]`` logits.
    ``config`` is the family's config, resolved here unless ``build_model`` did it already;
    ``block_layer`` the family's block (``MixerBlock``, ``FNetBlock``, ``GMlpBlock``).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        image_size: int,
        in_channels: int = 3,
        config: PatchConfig,
        block_layer: type[PatchBlock],
    ):
        super().__init__()
        cfg = config.resolved(image_size=image_size, in_channels=in_channels)
        self.config = cfg
        e = cfg.hidden_dim
        self.patch_embed = PatchEmbed(
            image_size=image_size,
            patch_size=cfg.patch_size,
            in_channels=in_channels,
            embed_dim=e,
        )
        m = self.patch_embed.num_patches
        self.pos_embed = PosEmbed(num_tokens=m, dim=e) if cfg.pos_embedding else None
        self.blocks = nn.Sequential(
            *(block_layer(num_tokens=m, config=cfg) for _ in range(cfg.num_blocks))
        )
        self.norm = nn.LayerNorm(e) if block_layer.final_norm else nn.Identity()
        self.head = ClassifierHead(
            in_dim=m * e if cfg.pool == "flatten" else e,
            num_classes=num_classes,
            dropout=cfg.dropout,
        )
        self.init_weights()

    def init_weights(self) -> None:
        """ViT-style init of every module, then each block's own (gMLP's gate)."""
        self.apply(init_weights)
        for block in self.blocks:
            cast(PatchBlock, block).init_weights()

    def forward(self, images: Tensor) -> Tensor:
        x = self.patch_embed(images)  # [B, M, E]
        if self.pos_embed is not None:
            x = self.pos_embed(x)
        x = self.norm(self.blocks(x))  # [B, M, E]
        return self.head(pool_tokens(x, self.config.pool))  # [B, num_classes]


class MixerBlock(PatchBlock):
    """Token-mixing MLP then channel-mixing MLP, each pre-LN with its own LayerNorm."""

    def __init__(self, *, num_tokens: int, config: MixerConfig):
        super().__init__(num_tokens=num_tokens, config=config)
        dim, dropout = config.hidden_dim, config.dropout
        self.norm1 = nn.LayerNorm(dim)
        self.mlp_tokens = Mlp(in_dim=num_tokens, hidden_dim=config.tokens_mlp_dim, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp_channels = Mlp(in_dim=dim, hidden_dim=config.channels_mlp_dim, dropout=dropout)

    def forward(self, x: Tensor) -> Tensor:
        # token mixing acts along M, so run the MLP on [B, E, M]
        x = x + self.mlp_tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)  # [B, M, E]
        return x + self.mlp_channels(self.norm2(x))  # [B, M, E]
