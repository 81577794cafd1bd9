"""What a model costs, known before training: parameters, FLOPs, latency, training memory.

``estimate`` computes parameters and forward FLOPs per image analytically from the
hyperparameters, without building the model (cheap enough to filter a search space).
``measure`` counts them on a built model and times it.

FLOP conventions (shared by both, so they agree): a multiply-add is 2 FLOPs; counted are the
matrix products (linear layers, attention scores ``QK^T`` and ``AV``, the Mixer/gMLP token
projections) and FFTs at 5·N·log2(N) real FLOPs per 1-D transform of length N (a 2-D FFT of an
S x E array is E transforms of length S plus S of length E). Element-wise work (LayerNorm,
softmax, GELU, residuals, biases) is not counted, as in ``torch.utils.flop_counter``.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ._config import ModelConfig, check_positive_int
from ._registry import config_class
from .fnet import FNetConfig
from .gmlp import GMlpConfig
from .layers import mlp_hidden, plain_attention
from .mixer import MixerConfig
from .perceiver import PerceiverConfig
from .vit import ViTConfig

__all__ = ["Cost", "count_flops", "estimate", "fft_flops", "measure"]


@dataclasses.dataclass(frozen=True)
class Cost:
    """Cost of one model. ``flops`` are forward FLOPs per image (multiply-add = 2)."""

    params: int
    flops: int
    latency_ms_b1: float | None = None
    latency_ms_b64: float | None = None
    peak_train_memory_bytes: int | None = None


def fft_flops(shape: Sequence[int], dims: Sequence[int]) -> float:
    """FLOPs of FFTs of a ``shape`` tensor along ``dims``: 5·N·log2(N) per 1-D transform."""
    numel = math.prod(shape)
    # numel / N transforms of length N along each dim
    return sum(5.0 * numel * math.log2(shape[d]) for d in dims if shape[d] > 1)


# --------------------------------------------------------------------------- estimate


@dataclasses.dataclass
class _Tally:
    params: int = 0
    flops: float = 0.0

    def linear(self, d_in: int, d_out: int, tokens: int = 1, *, count: int = 1) -> None:
        """``count`` distinct weight sets; FLOPs for one application to ``tokens`` rows."""
        self.params += count * (d_in * d_out + d_out)
        self.flops += 2 * tokens * d_in * d_out

    def norm(self, dim: int, *, count: int = 1) -> None:
        self.params += count * 2 * dim

    def mlp(self, tokens: int, d_in: int, hidden: int, *, count: int = 1) -> None:
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
        for units in hidden_units:
            self.linear(d_in, units)
            d_in = units
        self.linear(d_in, num_classes)


def _patches(cfg: Any, image_size: int, in_channels: int, dim: int, t: _Tally) -> int:
    m = (image_size // cfg.patch_size) ** 2
    t.linear(cfg.patch_size**2 * in_channels, dim, m)
    return m


def _perceiver(cfg: PerceiverConfig, image_size: int, in_channels: int, k: int, t: _Tally) -> None:
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


def _vit(cfg: ViTConfig, image_size: int, in_channels: int, k: int, t: _Tally) -> None:
    e = cfg.embed_dim
    m = _patches(cfg, image_size, in_channels, e, t)
    s = m + (1 if cfg.pool == "cls" else 0)
    t.params += s * e + (e if cfg.pool == "cls" else 0)  # positions (+ class token)
    for _ in range(cfg.depth):
        t.block(s, e, mlp_hidden(e, cfg.mlp_ratio))
    t.norm(e)
    t.head(m * e if cfg.pool == "flatten" else e, cfg.head_units, k)


def _skeleton_head(cfg: Any, m: int, k: int, t: _Tally, *, final_norm: bool = True) -> None:
    if final_norm:
        t.norm(cfg.hidden_dim)
    t.head(m * cfg.hidden_dim if cfg.pool == "flatten" else cfg.hidden_dim, (), k)


def _mixer(cfg: MixerConfig, image_size: int, in_channels: int, k: int, t: _Tally) -> None:
    e = cfg.hidden_dim
    m = _patches(cfg, image_size, in_channels, e, t)
    for _ in range(cfg.num_blocks):
        t.norm(e)
        t.mlp(e, m, cfg.tokens_mlp_dim)  # token mixing: E rows of length M
        t.norm(e)
        t.mlp(m, e, cfg.channels_mlp_dim)
    _skeleton_head(cfg, m, k, t)


def _fnet(cfg: FNetConfig, image_size: int, in_channels: int, k: int, t: _Tally) -> None:
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


def _gmlp(cfg: GMlpConfig, image_size: int, in_channels: int, k: int, t: _Tally) -> None:
    e, f = cfg.hidden_dim, cfg.ffn_dim
    m = _patches(cfg, image_size, in_channels, e, t)
    for _ in range(cfg.num_blocks):
        t.norm(e)
        t.linear(e, f, m)
        t.norm(f // 2)
        t.linear(m, m, f // 2)  # spatial gating: F/2 rows of length M
        t.linear(f // 2, e, m)
    _skeleton_head(cfg, m, k, t)


_ESTIMATORS: dict[str, Callable[[Any, int, int, int, _Tally], None]] = {
    "perceiver": _perceiver,
    "vit": _vit,
    "mixer": _mixer,
    "fnet": _fnet,
    "gmlp": _gmlp,
}


def estimate(
    family: str, *, image_size: int, in_channels: int = 3, num_classes: int, **hparams: Any
) -> Cost:
    """Parameters and forward FLOPs per image of a ``family`` model, from the hparams alone.

    Validates like ``build_model`` (same ``ValueError``s). Latency and memory are None.
    """
    cfg: ModelConfig = config_class(family).resolve(
        image_size=image_size, in_channels=in_channels, **hparams
    )
    check_positive_int(family, "num_classes", num_classes)
    tally = _Tally()
    _ESTIMATORS[family](cfg, image_size, in_channels, num_classes, tally)
    return Cost(params=tally.params, flops=round(tally.flops))


# --------------------------------------------------------------------------- measure

_FFT_OPS = {
    torch.ops.aten._fft_c2c.default: "input",
    torch.ops.aten._fft_r2c.default: "input",
    torch.ops.aten._fft_c2r.default: "output",
}


class _FFTCounter(TorchDispatchMode):
    """Adds 5·N·log2(N) per 1-D transform for the FFT ops FlopCounterMode does not count."""

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0.0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        side = _FFT_OPS.get(func)
        if side is not None:
            ref = args[0] if side == "input" else out
            ndim = ref.dim()
            dims = [d % ndim for d in args[1]]
            self.flops += fft_flops(tuple(ref.shape), dims)
        return out


def count_flops(model: nn.Module, example: Tensor) -> int:
    """Forward FLOPs of ``model(example)`` for the whole batch (eval mode).

    Matmuls via ``FlopCounterMode`` (with SDPA forced to the MATH backend, whose matmuls it
    sees; it misses the fused CPU kernel), plus FFTs counted by ``_FFTCounter``. Runs with
    autograd on: FlopCounterMode's module tracker fails on views of parameters made under
    ``no_grad`` (e.g. the Perceiver's expanded latent array).
    """
    was_training = model.training
    model.eval()
    try:
        with (
            sdpa_kernel(SDPBackend.MATH),
            plain_attention(),
            FlopCounterMode(display=False) as counter,
            _FFTCounter() as ffts,
        ):
            model(example)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops()) + round(ffts.flops)


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _latency_ms(
    model: nn.Module, shape: Sequence[int], device: torch.device, repeats: int
) -> float:
    x = torch.randn(*shape, device=device)
    times = []
    with torch.no_grad():
        model(x)  # warm-up
        for _ in range(repeats):
            _sync(device)
            start = time.perf_counter()
            model(x)
            _sync(device)
            times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _peak_train_memory(model: nn.Module, shape: Sequence[int], device: torch.device) -> int | None:
    """Peak CUDA memory of one forward + backward at ``shape`` (weights, activations, grads).

    None on CPU: PyTorch's CPU allocator keeps no peak statistic, and reconstructing one from
    ``torch.profiler`` memory events is too slow and too approximate to be worth reporting.
    """
    if device.type != "cuda":
        return None
    x = torch.randn(*shape, device=device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    model.train()
    model(x).float().logsumexp(dim=-1).mean().backward()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device)
    model.zero_grad(set_to_none=True)
    return int(peak)


def measure(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    latency: bool = True,
    memory: bool = True,
    repeats: int = 5,
) -> Cost:
    """Count and time a built model on its device.

    ``input_shape`` is ``(B, C, H, W)``; FLOPs are counted on a batch of B and divided by B.
    Latency: median wall-clock ms of ``repeats`` forward passes (eval, no_grad, after one
    warm-up) at batch 1 and at batch 64. Memory: peak bytes of one training step (forward +
    backward, no optimizer state) at ``input_shape`` on CUDA, None on CPU. Gradients are
    cleared afterwards and the model's train/eval mode is restored.
    """
    batch, *rest = (int(v) for v in input_shape)
    device = _device(model)
    params = sum(p.numel() for p in model.parameters())  # shared weights counted once
    flops = count_flops(model, torch.randn(batch, *rest, device=device))
    was_training = model.training
    try:
        model.eval()
        lat1 = _latency_ms(model, (1, *rest), device, repeats) if latency else None
        lat64 = _latency_ms(model, (64, *rest), device, repeats) if latency else None
        peak = _peak_train_memory(model, (batch, *rest), device) if memory else None
    finally:
        model.train(was_training)
    return Cost(
        params=params,
        flops=round(flops / batch),
        latency_ms_b1=lat1,
        latency_ms_b64=lat64,
        peak_train_memory_bytes=peak,
    )
