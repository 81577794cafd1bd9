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
import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from ._config import ModelConfig, check_positive_int
from ._estimate import Tally, fft_flops
from ._registry import model_family
from .layers import plain_attention

__all__ = ["Cost", "count_flops", "estimate", "measure"]


@dataclasses.dataclass(frozen=True)
class Cost:
    """Cost of one model. ``flops`` are forward FLOPs per image (multiply-add = 2)."""

    params: int
    flops: int
    latency_ms_b1: float | None = None
    latency_ms_b64: float | None = None
    peak_train_memory_bytes: int | None = None


# --------------------------------------------------------------------------- estimate


def estimate(
    family: str, *, image_size: int, in_channels: int = 3, num_classes: int, **hparams: Any
) -> Cost:
    """Parameters and forward FLOPs per image of a ``family`` model, from the hparams alone.

    Validates like ``build_model`` (same ``ValueError``s). Latency and memory are None.
    """
    record = model_family(family)
    cfg: ModelConfig = record.config.resolve(
        image_size=image_size, in_channels=in_channels, **hparams
    )
    check_positive_int(family, "num_classes", num_classes)
    tally = Tally()
    record.estimate(cfg, image_size, in_channels, num_classes, tally)
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
