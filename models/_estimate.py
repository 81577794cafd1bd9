"""The analytic cost of each family: parameters and forward FLOPs per image, tallied from a
resolved config without building the model (``models.cost.estimate`` runs the family's
estimator, named by its ``ModelFamily`` record). The FLOP conventions are ``models.cost``'s.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

from .fnet import FNetConfig
from .gmlp import GMlpConfig
from .layers import mlp_hidden
from .mixer import MixerConfig
from .perceiver import PerceiverConfig
from .vit import ViTConfig

__all__ = [
    "Estimator",
    "Tally",
    "fft_flops",
    "fnet_cost",
    "gmlp_cost",
    "mixer_cost",
    "perceiver_cost",
    "vit_cost",
]


def fft_flops(shape: Sequence[int], dims: Sequence[int]) -> float:
    """FLOPs of FFTs of a ``shape`` tensor along ``dims``: 5·N·log2(N) per 1-D transform."""
    numel = math.prod(shape)
    # numel / N transforms of length N along each dim
    return sum(5.0 * numel * math.log2(shape[d]) for d in dims if shape[d] > 1)


@dataclasses.dataclass
class Tally:
    """A running count of parameters and forward FLOPs per image."""

    params: int = 0
    flops: float = 0.0

    def linear(self, d_in: int, d_out: int, tokens: int = 1, *, count: int = 1) -> None:
        """``count`` distinct weight sets; FLOPs for one application to ``tokens`` rows."""
        self.params += count * (d_in * d_out + d_out)
        self.flops += 2 * tokens * d_in * d_out

    def norm(self, dim: int, *, count: int = 1) -> None:
        """A LayerNorm of ``dim`` (``count`` distinct ones): parameters only."""
        self.params += count * 2 * dim

    def mlp(self, tokens: int, d_in: int, hidden: int, *, count: int = 1) -> None:
        """A two-layer MLP ``d_in -> hidden -> d_in`` applied to ``tokens`` rows."""
        self.linear(d_in, hidden, tokens, count=count)
        self.linear(hidden, d_in, tokens, count=count)

    def block(
        self,
        tokens: int,
        dim: int,
        hidden: int,
        *,
        ctx_tokens: int = 0,
        ctx_dim: int = 0,
        count: int = 1,
    ) -> None:
        """One pre-LN ``layers.Block`` (cross-attention when ``ctx_dim``)."""
        kv_tokens, kv_dim = (ctx_tokens, ctx_dim) if ctx_dim else (tokens, dim)
        self.norm(dim, count=count)
        if ctx_dim:
            self.norm(ctx_dim, count=count)
        self.linear(dim, dim, tokens, count=count)  # q
        self.linear(kv_dim, 2 * dim, kv_tokens, count=count)  # k, v
        self.flops += 2 * 2 * tokens * kv_tokens * dim  # scores QK^T and A V, over all heads
        self.linear(dim, dim, tokens, count=count)  # output projection
        self.norm(dim, count=count)
        self.mlp(tokens, dim, hidden, count=count)

    def head(self, d_in: int, hidden_units: Sequence[int], num_classes: int) -> None:
        """The classifier head: ``hidden_units`` linear layers, then ``num_classes``."""
        for units in hidden_units:
            self.linear(d_in, units)
            d_in = units
        self.linear(d_in, num_classes)


def _patches(cfg: Any, image_size: int, in_channels: int, dim: int, t: Tally) -> int:
    m = (image_size // cfg.patch_size) ** 2
    t.linear(cfg.patch_size**2 * in_channels, dim, m)
    return m


def perceiver_cost(
    cfg: PerceiverConfig, image_size: int, in_channels: int, k: int, t: Tally
) -> None:
    """Tally a Perceiver: patches, latent array, cross and latent blocks, head."""
    m = _patches(cfg, image_size, in_channels, cfg.projection_dim, t)
    if cfg.pos_encoding == "learned":
        t.params += m * cfg.projection_dim
    n, d, c = cfg.num_latents, cfg.latent_dim, cfg.data_channels()
    hidden = mlp_hidden(d, cfg.mlp_ratio)
    t.params += n * d  # the latent array
    iters = cfg.num_iterations
    n_cross = min(iters, 2) if cfg.share_weights else iters
    n_latent = 1 if cfg.share_weights else iters
    # FLOPs are per application (every iteration runs); params per distinct module
    for i in range(iters):
        first = i < n_cross
        t.block(n, d, hidden, ctx_tokens=m, ctx_dim=c, count=1 if first else 0)
        for _ in range(cfg.self_per_cross):
            t.block(n, d, hidden, count=1 if i < n_latent else 0)
    t.norm(d)
    t.head(d, (), k)


def vit_cost(cfg: ViTConfig, image_size: int, in_channels: int, k: int, t: Tally) -> None:
    """Tally a ViT: patches, positions (and class token), blocks, head."""
    e = cfg.embed_dim
    m = _patches(cfg, image_size, in_channels, e, t)
    s = m + (1 if cfg.pool == "cls" else 0)
    t.params += s * e + (e if cfg.pool == "cls" else 0)  # positions (+ class token)
    for _ in range(cfg.depth):
        t.block(s, e, mlp_hidden(e, cfg.mlp_ratio))
    t.norm(e)
    t.head(m * e if cfg.pool == "flatten" else e, cfg.head_units, k)


def _skeleton_head(cfg: Any, m: int, k: int, t: Tally, *, final_norm: bool = True) -> None:
    if final_norm:
        t.norm(cfg.hidden_dim)
    t.head(m * cfg.hidden_dim if cfg.pool == "flatten" else cfg.hidden_dim, (), k)


def mixer_cost(cfg: MixerConfig, image_size: int, in_channels: int, k: int, t: Tally) -> None:
    """Tally an MLP-Mixer: patches, token- and channel-mixing MLPs, head."""
    e = cfg.hidden_dim
    m = _patches(cfg, image_size, in_channels, e, t)
    for _ in range(cfg.num_blocks):
        t.norm(e)
        t.mlp(e, m, cfg.tokens_mlp_dim)  # token mixing: E rows of length M
        t.norm(e)
        t.mlp(m, e, cfg.channels_mlp_dim)
    _skeleton_head(cfg, m, k, t)


def fnet_cost(cfg: FNetConfig, image_size: int, in_channels: int, k: int, t: Tally) -> None:
    """Tally an FNet: patches, 2-D FFT mixing, feed-forward MLPs, head."""
    e = cfg.hidden_dim
    m = _patches(cfg, image_size, in_channels, e, t)
    if cfg.pos_embedding:
        t.params += m * e
    for _ in range(cfg.num_blocks):
        t.flops += fft_flops((m, e), (0, 1))
        t.norm(e)
        t.mlp(m, e, cfg.mlp_dim)
        t.norm(e)
    _skeleton_head(cfg, m, k, t, final_norm=False)


def gmlp_cost(cfg: GMlpConfig, image_size: int, in_channels: int, k: int, t: Tally) -> None:
    """Tally a gMLP: patches, gating feed-forward with spatial gating, head."""
    e, f = cfg.hidden_dim, cfg.ffn_dim
    m = _patches(cfg, image_size, in_channels, e, t)
    for _ in range(cfg.num_blocks):
        t.norm(e)
        t.linear(e, f, m)
        t.norm(f // 2)
        t.linear(m, m, f // 2)  # spatial gating: F/2 rows of length M
        t.linear(f // 2, e, m)
    _skeleton_head(cfg, m, k, t)


#: ``estimator(config, image_size, in_channels, num_classes, tally)``: adds a family's
#: parameters and FLOPs to ``tally``.
Estimator = Callable[[Any, int, int, int, Tally], None]
