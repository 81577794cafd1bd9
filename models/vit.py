"""Vision Transformer (ViT) image classifier.

Dosovitskiy et al. "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", ICLR 2021. https://arxiv.org/abs/2010.11929

Patches -> linear embedding + learned positions -> ``depth`` pre-LN transformer blocks ->
final LayerNorm -> pool -> head. ``pool="cls"`` prepends a learned class token and
classifies from it (the paper); ``"mean"`` averages the patch tokens; ``"flatten"`` with an
MLP head (``head_units``) reproduces the Keras seed example (``seeds/002_*.txt``:
projection_dim is our embed_dim, transformer_layers our depth, transformer_units
``[2E, E]`` our mlp_ratio=2, mlp_head_units our head_units). Each head has width
embed_dim / num_heads (the seed's Keras MultiHeadAttention uses key_dim = embed_dim per head,
and GELU after both MLP layers); one ``dropout`` rate is used throughout (the seed uses 0.5 in
its head and 0.1 elsewhere).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor, nn

from ._config import ModelConfig
from .layers import Block, ClassifierHead, PatchEmbed, PosEmbed, init_weights, pool_tokens

__all__ = ["ViTConfig", "VisionTransformer"]


@dataclasses.dataclass(frozen=True)
class ViTConfig(ModelConfig):
    """ViT hyperparameters."""

    family: ClassVar[str] = "vit"
    choices: ClassVar = {"pool": ("cls", "mean", "flatten")}
    divides: ClassVar = (("num_heads", "embed_dim"),)

    patch_size: int = 4
    embed_dim: int = 128
    depth: int = 6
    num_heads: int = 4
    mlp_ratio: float = 2.0
    pool: str = "cls"
    head_units: tuple[int, ...] = ()  # hidden layers of the MLP head (seed: (2048, 1024))
    dropout: float = 0.0
    attn_dropout: float = 0.0


class VisionTransformer(nn.Module):
    """ViT classifier over ``[B, C, H, W]`` images; returns logits ``[B, num_classes]``.

    ``config`` is resolved here unless ``build_model`` did it already.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        image_size: int,
        in_channels: int = 3,
        config: ViTConfig | None = None,
    ):
        super().__init__()
        cfg = (config or ViTConfig()).resolved(image_size=image_size, in_channels=in_channels)
        self.config = cfg
        e = cfg.embed_dim
        self.patch_embed = PatchEmbed(
            image_size=image_size,
            patch_size=cfg.patch_size,
            in_channels=in_channels,
            embed_dim=e,
        )
        m = self.patch_embed.num_patches
        self.num_prefix_tokens = 1 if cfg.pool == "cls" else 0
        self.cls_token = nn.Parameter(torch.zeros(1, 1, e)) if self.num_prefix_tokens else None
        self.pos_embed = PosEmbed(num_tokens=m + self.num_prefix_tokens, dim=e)
        self.pos_drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.Sequential(
            *(
                Block(
                    dim=e,
                    num_heads=cfg.num_heads,
                    mlp_ratio=cfg.mlp_ratio,
                    dropout=cfg.dropout,
                    attn_dropout=cfg.attn_dropout,
                )
                for _ in range(cfg.depth)
            )
        )
        self.norm = nn.LayerNorm(e)
        self.head = ClassifierHead(
            in_dim=m * e if cfg.pool == "flatten" else e,
            num_classes=num_classes,
            hidden_units=cfg.head_units,
            dropout=cfg.dropout,
        )
        self.init_weights()

    def init_weights(self) -> None:
        """ViT-style init of every module, then the class token (truncated normal, std 0.02)."""
        self.apply(init_weights)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """The class token is a learned input, not a weight: no decay (timm convention)."""
        return {"cls_token"} if self.cls_token is not None else set()

    def forward(self, images: Tensor) -> Tensor:
        x = self.patch_embed(images)  # [B, M, E]
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)  # [B, 1+M, E]
        x = self.pos_drop(self.pos_embed(x))
        x = self.norm(self.blocks(x))  # [B, S, E]
        x = pool_tokens(x, self.config.pool, num_prefix_tokens=self.num_prefix_tokens)
        return self.head(x)  # [B, num_classes]
