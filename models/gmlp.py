"""gMLP image classifier: MLPs with a spatial gating unit.

Liu, Dai, So, Le. "Pay Attention to MLPs", NeurIPS 2021. https://arxiv.org/abs/2105.08050

Block: ``x + ProjOut(SGU(GELU(ProjIn(LN(x)))))`` where the spatial gating unit splits its
input into halves (u, v), normalises v, mixes v along the sequence with a linear map
initialised near identity (weight ~ U(-1e-3, 1e-3), bias 1, so the gate starts at ~1) and
returns ``u * v``. The residual adds to the block INPUT; the Keras seed (``seeds/004_*.txt``)
adds it to the normalised input, a defect we do not copy. Seed names: embedding_dim is our
hidden_dim, ``embedding_dim * 2`` our ffn_dim. Like timm, gMLP is the Mixer classifier
(``mixer.PatchClassifier``) with a different block.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from torch import Tensor, nn

from ._config import ModelConfig
from .mixer import PatchBlock

__all__ = ["GMlpBlock", "GMlpConfig", "SpatialGatingUnit"]


@dataclasses.dataclass(frozen=True)
class GMlpConfig(ModelConfig):
    """gMLP hyperparameters."""

    family: ClassVar[str] = "gmlp"
    choices: ClassVar = {"pool": ("mean", "flatten")}
    even: ClassVar = ("ffn_dim",)
    #: not searched: the spatial projection's weights are per position already
    pos_embedding: ClassVar[bool] = False

    patch_size: int = 4
    hidden_dim: int = 128  # d_model
    num_blocks: int = 4
    ffn_dim: int = 512  # d_ffn; the SGU gates with one half, so it must be even
    pool: str = "mean"
    dropout: float = 0.0


class SpatialGatingUnit(nn.Module):
    """``[B, M, F] -> [B, M, F/2]``: u * SpatialProj(LN(v)) with (u, v) the channel halves."""

    def __init__(self, *, dim: int, num_tokens: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim // 2)
        self.proj = nn.Linear(num_tokens, num_tokens)
        self.init_weights()  # a unit built on its own starts as the paper says, too

    def init_weights(self) -> None:
        """Near-identity start: tiny weights, unit bias (the paper's init), so u * v ~ u."""
        nn.init.uniform_(self.proj.weight, -1e-3, 1e-3)
        nn.init.ones_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        u, v = x.chunk(2, dim=-1)  # [B, M, F/2] each
        v = self.proj(self.norm(v).transpose(1, 2)).transpose(1, 2)  # mix along M
        return u * v


class GMlpBlock(PatchBlock):
    """Pre-LN gMLP block with the residual on the un-normalised input."""

    def __init__(self, *, num_tokens: int, config: GMlpConfig):
        super().__init__(num_tokens=num_tokens, config=config)
        dim, ffn_dim = config.hidden_dim, config.ffn_dim
        self.norm = nn.LayerNorm(dim)
        self.proj_in = nn.Linear(dim, ffn_dim)
        self.act = nn.GELU()
        self.drop = nn.Dropout(config.dropout)
        self.sgu = SpatialGatingUnit(dim=ffn_dim, num_tokens=num_tokens)
        self.proj_out = nn.Linear(ffn_dim // 2, dim)

    def init_weights(self) -> None:
        """The spatial gate starts near identity; the other weights keep the model's init."""
        self.sgu.init_weights()

    def forward(self, x: Tensor) -> Tensor:
        y = self.drop(self.act(self.proj_in(self.norm(x))))  # [B, M, F]
        return x + self.drop(self.proj_out(self.sgu(y)))  # [B, M, E]
