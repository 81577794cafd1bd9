"""Shared building blocks for every model family (in the spirit of ``timm/layers``).

Model files compose these blocks; nothing here knows about a particular family.
Shapes in comments: B batch, S sequence (tokens), E/D channels, h heads, M patches.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "Attention",
    "Block",
    "ClassifierHead",
    "FourierFeatures",
    "Mlp",
    "PatchEmbed",
    "PosEmbed",
    "fourier_features",
    "init_weights",
    "mlp_hidden",
    "no_weight_decay_names",
    "patchify",
    "plain_attention",
    "pool_tokens",
]

POOLS = ("cls", "mean", "flatten")


def init_weights(module: nn.Module) -> None:
    """ViT-style init: truncated normal (std 0.02) for linear weights, zero biases.

    Models apply it to every module (``model.apply(init_weights)``), then give the modules
    that need another init their own (a gMLP block's ``init_weights()``, timm's override order).
    """
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Parameters trained without weight decay, as timm does: biases and norm weights (1-D),
    learned position embeddings, and whatever the model lists in its own ``no_weight_decay()``
    (the Perceiver's latent array, ViT's class token)."""
    names = {name for name, p in model.named_parameters() if p.ndim <= 1}
    for prefix, module in model.named_modules():
        if isinstance(module, PosEmbed):
            names.add(f"{prefix}.weight" if prefix else "weight")
    own = getattr(model, "no_weight_decay", None)
    if callable(own):
        names |= set(own())
    return names


def patchify(images: Tensor, patch_size: int) -> Tensor:
    """Cut ``[B, C, H, W]`` images into non-overlapping patches: ``[B, M, p*p*C]``.

    Patches are ordered row-major over the patch grid; each patch is flattened as (p, p, C),
    like Keras ``extract_patches`` on channels-last images.
    """
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)  # [B, C, H/p, p, W/p, p]
    x = x.permute(0, 2, 4, 3, 5, 1)  # [B, H/p, W/p, p, p, C]
    return x.reshape(b, (h // p) * (w // p), p * p * c)  # [B, M, p*p*C]


class PatchEmbed(nn.Module):
    """Patchify + linear projection: ``[B, C, H, W] -> [B, M, embed_dim]``."""

    def __init__(self, *, image_size: int, patch_size: int, in_channels: int, embed_dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.grid_size = image_size // patch_size
        self.num_patches = self.grid_size**2
        self.proj = nn.Linear(patch_size * patch_size * in_channels, embed_dim)

    def forward(self, images: Tensor) -> Tensor:
        return self.proj(patchify(images, self.patch_size))  # [B, M, E]


class PosEmbed(nn.Module):
    """Learned position embedding added to a ``[B, S, E]`` sequence (trunc normal, std 0.02)."""

    def __init__(self, *, num_tokens: int, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, num_tokens, dim))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.weight  # [B, S, E]


def fourier_features(grid: Sequence[int], *, num_bands: int, max_freq: float) -> Tensor:
    """Fourier position features of Jaegle et al. 2021 (Perceiver), one row per grid position.

    Positions x_d lie in [-1, 1] along each of the d spatial dims; the bands f_k are spaced
    linearly from 1 to ``max_freq / 2``. Each row is
    ``[x_1..x_d, sin(pi f_k x_j) for j, k, cos(pi f_k x_j) for j, k]`` (j-major),
    so it has ``d * (2 * num_bands + 1)`` features. Returns ``[prod(grid), d*(2F+1)]``.
    """
    axes = [torch.linspace(-1.0, 1.0, n, dtype=torch.float64) for n in grid]
    pos = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # [*grid, d]
    pos = pos.reshape(-1, len(grid))  # [M, d]
    freqs = torch.linspace(1.0, max_freq / 2, num_bands, dtype=torch.float64)  # [F]
    scaled = (pos[:, :, None] * freqs).reshape(pos.shape[0], -1)  # [M, d*F]
    feats = [pos, torch.sin(math.pi * scaled), torch.cos(math.pi * scaled)]
    return torch.cat(feats, dim=-1).float()  # [M, d*(2F+1)]


class FourierFeatures(nn.Module):
    """Concatenate fixed Fourier position features to a ``[B, M, C]`` data array.

    Output ``[B, M, C + 2*(2F+1)]`` for a 2-D ``grid``. The features are a non-persistent
    buffer: no parameters, not in the state dict.
    """

    features: Tensor  # [M, d*(2F+1)], registered in __init__

    def __init__(self, *, grid: Sequence[int], num_bands: int, max_freq: float):
        super().__init__()
        feats = fourier_features(grid, num_bands=num_bands, max_freq=max_freq)
        self.register_buffer("features", feats, persistent=False)
        self.num_features = feats.shape[1]

    def forward(self, x: Tensor) -> Tensor:
        pos = self.features.to(x.dtype).expand(x.shape[0], -1, -1)  # [B, M, d*(2F+1)]
        return torch.cat([x, pos], dim=-1)


class Mlp(nn.Module):
    """Two-layer MLP: Linear -> GELU -> Dropout -> Linear -> Dropout."""

    def __init__(
        self, *, in_dim: int, hidden_dim: int, out_dim: int | None = None, dropout: float = 0.0
    ):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_dim, out_dim or in_dim)
        self.drop2 = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))


_PLAIN_ATTENTION = contextvars.ContextVar("plain_attention", default=False)


@contextlib.contextmanager
def plain_attention() -> Iterator[None]:
    """Run every :class:`Attention` on its plain path (FLOP counting uses it: a model's FLOPs
    are those of the architecture, whichever exact shortcut computes it)."""
    token = _PLAIN_ATTENTION.set(True)
    try:
        yield
    finally:
        _PLAIN_ATTENTION.reset(token)


class Attention(nn.Module):
    """Multi-head attention through ``F.scaled_dot_product_attention``.

    Self-attention when called as ``attn(x)``; cross-attention when called as
    ``attn(x, context)``: queries from ``x`` ([B, S, dim]), keys/values from ``context``
    ([B, T, kv_dim], which may have another channel count). The inner width is ``dim``
    (head_dim = dim / num_heads) and the output is projected back to ``dim``.

    Cross-attention to a narrow context (the Perceiver reading its data array) is computed
    *absorbed* where that is cheaper and exact: the key projection folds into the query
    (``q_h Wk_h``, ``[B, h, S, C]``; the key bias adds one constant to each query's scores,
    which softmax ignores), attention runs over the raw context, and the value projection is
    applied to the ``[B, h, S, C]`` result plus the value bias (attention rows sum to 1, so
    this holds without attention dropout only).
    """

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        kv_dim: int | None = None,
        attn_dropout: float = 0.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.attn_dropout = attn_dropout
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(kv_dim or dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if context is not None and self._absorb(x.shape[1], context.shape[1]):
            return self.proj_drop(self.proj(self._absorbed(x, context)))
        context = x if context is None else context
        b, s, dim = x.shape
        t = context.shape[1]
        h = self.num_heads
        q = self.q(x).view(b, s, h, dim // h).transpose(1, 2)  # [B, h, S, dim/h]
        k, v = self.kv(context).view(b, t, 2, h, dim // h).permute(2, 0, 3, 1, 4)  # [B, h, T, .]
        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)  # [B, h, S, dim/h]
        y = y.transpose(1, 2).reshape(b, s, dim)  # [B, S, dim]
        return self.proj_drop(self.proj(y))

    def _absorb(self, s: int, t: int) -> bool:
        """Absorbed is exact (no attention dropout) and does fewer multiply-adds per head:
        ``2 S d C + 2 S T C`` against ``2 T C d + 2 S T d`` (d the head width)."""
        if _PLAIN_ATTENTION.get() or (self.training and self.attn_dropout > 0):
            return False
        c, d = self.kv.in_features, self.q.out_features // self.num_heads
        return s * d * c + s * t * c < t * c * d + s * t * d

    def _absorbed(self, x: Tensor, context: Tensor) -> Tensor:
        b, s, dim = x.shape
        h, c = self.num_heads, context.shape[-1]
        d = dim // h
        w_k, w_v = self.kv.weight.view(2, h, d, c)  # each [h, d, C]
        q = self.q(x).view(b, s, h, d).transpose(1, 2)  # [B, h, S, d]
        q_c = (q @ w_k).reshape(b, 1, h * s, c)  # [B, 1, h*S, C]: every head reads one context
        ctx = context.unsqueeze(1)  # [B, 1, T, C]
        y_c = F.scaled_dot_product_attention(q_c, ctx, ctx, scale=d**-0.5)  # [B, 1, h*S, C]
        y = y_c.view(b, h, s, c) @ w_v.transpose(1, 2)  # [B, h, S, d]
        y = y + self.kv.bias.view(2, h, 1, d)[1]  # the value bias
        return y.transpose(1, 2).reshape(b, s, dim)  # [B, S, dim]


class Block(nn.Module):
    """Pre-LN transformer block: ``x + Attn(LN(x)[, LN(ctx)])`` then ``x + MLP(LN(x))``.

    With ``kv_dim`` set, the attention is cross-attention to a context of ``kv_dim`` channels
    (normalised by its own LayerNorm), as in the Perceiver's cross-attend block; the
    residual runs through the query stream.
    """

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        kv_dim: int | None = None,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(kv_dim) if kv_dim is not None else None
        self.attn = Attention(
            dim=dim,
            num_heads=num_heads,
            kv_dim=kv_dim,
            attn_dropout=attn_dropout,
            dropout=dropout,
        )
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(in_dim=dim, hidden_dim=mlp_hidden(dim, mlp_ratio), dropout=dropout)

    def forward(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if self.norm_context is not None:
            if context is None:
                raise ValueError("cross-attention block called without a context")
            x = x + self.attn(self.norm1(x), self.norm_context(context))
        else:
            x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def mlp_hidden(dim: int, mlp_ratio: float) -> int:
    """Hidden width of a transformer MLP: ``max(1, int(dim * mlp_ratio))``."""
    return max(1, int(dim * mlp_ratio))


def pool_tokens(x: Tensor, pool: str, *, num_prefix_tokens: int = 0) -> Tensor:
    """Reduce ``[B, S, E]`` tokens to one vector per example.

    ``cls``: the first token ``[B, E]``; ``mean``: mean over the non-prefix tokens ``[B, E]``;
    ``flatten``: the non-prefix tokens concatenated ``[B, (S - prefix) * E]``.
    """
    if pool == "cls":
        return x[:, 0]
    x = x[:, num_prefix_tokens:]
    if pool == "mean":
        return x.mean(dim=1)
    if pool == "flatten":
        return x.flatten(1)
    raise ValueError(f"pool={pool!r}; allowed: {', '.join(POOLS)}")


class ClassifierHead(nn.Module):
    """Dropout, then optional ``[Linear -> GELU -> Dropout]`` per ``hidden_units``, then Linear."""

    def __init__(
        self,
        *,
        in_dim: int,
        num_classes: int,
        hidden_units: Sequence[int] = (),
        dropout: float = 0.0,
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        for units in hidden_units:
            layers += [nn.Linear(in_dim, units), nn.GELU(), nn.Dropout(dropout)]
            in_dim = units
        layers.append(nn.Linear(in_dim, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)  # [B, num_classes]
