"""FNet image classifier: Fourier token mixing instead of self-attention.

Lee-Thorp, Ainslie, Eckstein, Ontanon. "FNet: Mixing Tokens with Fourier Transforms",
NAACL 2022. https://arxiv.org/abs/2105.03824

Block (post-LN, as in the paper and the Keras seed ``seeds/004_*.txt``):
``x = LN(x + Re(FFT2(x)))`` then ``x = LN(x + FeedForward(x))``; the 2-D FFT runs over the
(sequence, hidden) dims and has no parameters. The seed's embedding_dim is our hidden_dim,
its FFN width (= embedding_dim) our mlp_dim, ``positional_encoding=True`` our
pos_embedding. The Mixer classifier (``mixer.PatchClassifier``) with this block, and no
extra final LayerNorm: the blocks already end with one.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch
from torch import Tensor, nn

from ._config import ModelConfig
from .layers import Mlp
from .mixer import PatchBlock

__all__ = ["FNetBlock", "FNetConfig", "FourierMixing"]


@dataclasses.dataclass(frozen=True)
class FNetConfig(ModelConfig):
    """FNet hyperparameters."""

    family: ClassVar[str] = "fnet"
    choices: ClassVar = {"pool": ("mean", "flatten")}

    patch_size: int = 4
    hidden_dim: int = 128
    num_blocks: int = 4
    mlp_dim: int = 256
    pos_embedding: bool = True  # learned, added after the patch projection
    pool: str = "mean"
    dropout: float = 0.0


class FourierMixing(nn.Module):
    """``Re(FFT2(x))`` over the last two dims (sequence, hidden) of ``[B, M, E]``."""

    def forward(self, x: Tensor) -> Tensor:
        # FFT in float32: half-precision FFTs need power-of-two sizes on CUDA
        return torch.fft.fft2(x.float(), dim=(-2, -1)).real.to(x.dtype)


class FNetBlock(PatchBlock):
    """Post-LN FNet encoder block: Fourier mixing and a feed-forward MLP, each + residual."""

    final_norm: ClassVar[bool] = False  # the block ends with a LayerNorm

    def __init__(self, *, num_tokens: int, config: FNetConfig):
        super().__init__(num_tokens=num_tokens, config=config)
        dim = config.hidden_dim
        self.mixing = FourierMixing()  # no parameters: any number of tokens
        self.norm1 = nn.LayerNorm(dim)
        self.mlp = Mlp(in_dim=dim, hidden_dim=config.mlp_dim, dropout=config.dropout)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x + self.mixing(x))  # [B, M, E]
        return self.norm2(x + self.mlp(x))  # [B, M, E]
