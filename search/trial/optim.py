"""Optimizers and the learning-rate schedule of every trial, written once for CPU and GPU.

* **Parameter groups** (:func:`param_groups`): weight decay on weight matrices only; none on
  biases, norm weights, position embeddings, the Perceiver's latent array or ViT's class token
  (``models.layers.no_weight_decay_names``, the timm convention).
* **Optimizers** (:func:`build_optimizer`): AdamW or LAMB (You et al. 2019, arXiv 1904.00962;
  the Perceiver paper's optimizer), with the same groups and hyperparameters on every device
  (:data:`ADAMW_HPARAMS`, :data:`LAMB_HPARAMS`). AdamW is DeepSpeed's ``FusedAdam`` (AdamW
  mode) on a GPU and ``torch.optim.AdamW`` on a CPU: the same update. LAMB is :class:`Lamb`
  below on every device: DeepSpeed's ``FusedLamb`` computes its trust ratio on the update
  *before* bias correction and then scales the step by ``sqrt(1 - beta2^t) / (1 - beta1^t)``,
  which shrinks every early step about fivefold (0.18x at step 32), so a GPU sweep with it would
  not be comparable with a CPU one. Under ZeRO 1/2 DeepSpeed hands the optimizer one flat
  partition per group instead of the tensors: :meth:`Lamb.track_flat` tells it where each
  tensor lies, so its trust ratio stays per tensor (else one ratio per group: a different
  optimizer, 3x off in a tensor's update after 10 steps on a small Mixer).
* **Schedule** (:class:`WarmupCosine`): linear warmup that starts at ``lr / warmup_steps``
  (never at 0), then cosine decay to ``min_ratio * lr`` at the last step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from spaces.common import OPTIMIZERS

__all__ = [
    "ADAMW_HPARAMS",
    "LAMB_HPARAMS",
    "Lamb",
    "OptimizerSpec",
    "WarmupCosine",
    "build_optimizer",
    "flat_segments",
    "optimizer_spec",
    "param_groups",
]

#: AdamW's hyperparameters besides lr and weight decay (torch's and FusedAdam's defaults).
ADAMW_HPARAMS: dict[str, Any] = {"betas": (0.9, 0.999), "eps": 1e-8}

#: LAMB's hyperparameters besides lr and weight decay: Adam moments, eps added outside the
#: square root, and the trust ratio ||w|| / ||update|| capped at ``max_trust_ratio``.
LAMB_HPARAMS: dict[str, Any] = {"betas": (0.9, 0.999), "eps": 1e-6, "max_trust_ratio": 10.0}


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: decayed weight matrices, and the rest (``weight_decay`` 0)."""
    from models.layers import no_weight_decay_names

    skip = no_weight_decay_names(model)
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name in skip else decay).append(p)
    return [
        {"params": decay, "weight_decay": float(weight_decay)},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@dataclass(frozen=True)
class OptimizerSpec:
    """Which optimizer class to build (``module:Class``) and with which keyword arguments."""

    target: str
    kwargs: dict[str, Any]

    def build(self, groups: Iterable[dict[str, Any]]) -> torch.optim.Optimizer:
        import importlib

        module, _, name = self.target.partition(":")
        cls = getattr(importlib.import_module(module), name)
        return cls(list(groups), **self.kwargs)


def optimizer_spec(name: str, *, lr: float, fused: bool) -> OptimizerSpec:
    """The optimizer for ``name`` on a GPU (``fused``: DeepSpeed's AdamW kernel) or a CPU."""
    if name == "adamw":
        if fused:
            kwargs = {"lr": lr, **ADAMW_HPARAMS, "adam_w_mode": True}
            return OptimizerSpec("deepspeed.ops.adam:FusedAdam", kwargs)
        # torch's fused kernel: one pass over every parameter, 3-4x faster than foreach (and
        # ~4x the per-parameter loop) on the default sweep's models on CPU; the same update
        # to rounding
        return OptimizerSpec("torch.optim:AdamW", {"lr": lr, **ADAMW_HPARAMS, "fused": True})
    if name == "lamb":  # one implementation on every device (see the module docstring)
        return OptimizerSpec("search.trial.optim:Lamb", {"lr": lr, **LAMB_HPARAMS})
    raise ValueError(f"optimizer={name!r}: not allowed; allowed: {', '.join(OPTIMIZERS)}")


def build_optimizer(
    model: nn.Module, name: str, *, lr: float, weight_decay: float, fused: bool
) -> torch.optim.Optimizer:
    """The trial's optimizer over :func:`param_groups` (same groups on every device)."""
    return optimizer_spec(name, lr=lr, fused=fused).build(param_groups(model, weight_decay))


@dataclass(frozen=True)
class WarmupCosine:
    """LR factor for optimizer step ``step`` (0-based): ``(step + 1) / warmup_steps`` during
    warmup, then cosine from 1 to ``min_ratio`` at step ``total_steps - 1``.

    A picklable callable for ``torch.optim.lr_scheduler.LambdaLR`` (its state is saved in
    checkpoints). The first step trains at ``lr / warmup_steps``, never at 0.
    """

    warmup_steps: int
    total_steps: int
    min_ratio: float = 0.01

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(self.total_steps - 1 - self.warmup_steps, 1)
        progress = min((step - self.warmup_steps) / span, 1.0)
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def scheduler(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
        """The scheduler over ``optimizer`` (DeepSpeed calls this with its basic optimizer)."""
        return torch.optim.lr_scheduler.LambdaLR(optimizer, self)


class Lamb(torch.optim.Optimizer):
    """LAMB as in the paper (Algorithm 2), on any device.

    Per tensor: bias-corrected Adam moments ``m_hat, v_hat``; ``u = m_hat / (sqrt(v_hat) + eps)
    + wd * w``; trust ratio ``r = min(||w|| / ||u||, max_trust_ratio)`` (1 where either norm is
    0, e.g. a zero-initialised bias); ``w -= lr * r * u``. Each step moves a tensor by about
    ``lr`` times its own norm, which is why LAMB's learning rates are larger than AdamW's.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        betas: tuple[float, float] = LAMB_HPARAMS["betas"],
        eps: float = LAMB_HPARAMS["eps"],
        weight_decay: float = 0.0,
        max_trust_ratio: float = LAMB_HPARAMS["max_trust_ratio"],
    ) -> None:
        if lr <= 0:
            raise ValueError(f"Lamb lr={lr}: must be > 0")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Lamb betas={betas}: each must be in [0, 1)")
        if max_trust_ratio <= 0:
            raise ValueError(f"Lamb max_trust_ratio={max_trust_ratio}: must be > 0")
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, max_trust_ratio=max_trust_ratio
        )
        super().__init__(params, defaults)
        self._flat: dict[int, _FlatTensors] = {}  # id(param) -> the tensors a flat param holds

    def track_flat(
        self,
        param: torch.Tensor,
        segments: torch.Tensor,
        *,
        count: int,
        reduce: Callable[[torch.Tensor], None] | None = None,
    ) -> None:
        """``param`` is a flat partition of ``count`` tensors: element ``j`` belongs to tensor
        ``segments[j]`` (``count``: padding). Its trust ratios are then per tensor, from the
        squared norms summed over the partition and, with ``reduce`` (an in-place all-reduce
        over the ranks holding the other partitions), over every rank."""
        self._flat[id(param)] = _FlatTensors(segments.to(param.device), count, reduce)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group)
        return loss

    def _update(self, p: torch.Tensor, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        grad = p.grad.float()  # type: ignore[union-attr]
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.mul_(beta1).add_(grad, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        weight = p.float()
        update = (m / (1 - beta1**t)) / ((v / (1 - beta2**t)).sqrt() + group["eps"])
        if group["weight_decay"]:
            update.add_(weight, alpha=group["weight_decay"])
        cap = group["max_trust_ratio"]
        flat = self._flat.get(id(p))
        if flat is None:
            trust = _trust_ratio(weight.norm(), update.norm(), cap)
        else:
            trust = flat.trust_ratio(weight, update, cap)
        p.add_((update * trust).to(p.dtype), alpha=-group["lr"])


def _trust_ratio(w_norm: torch.Tensor, u_norm: torch.Tensor, cap: float) -> torch.Tensor:
    """``min(||w|| / ||u||, cap)``, 1 where either norm is 0."""
    return torch.where(
        (w_norm > 0) & (u_norm > 0), (w_norm / u_norm).clamp(max=cap), torch.ones_like(w_norm)
    )


@dataclass(frozen=True)
class _FlatTensors:
    """Where the tensors of a flat partition lie (:meth:`Lamb.track_flat`)."""

    segments: torch.Tensor  # [numel] long: each element's tensor, ``count`` for padding
    count: int
    reduce: Callable[[torch.Tensor], None] | None

    def trust_ratio(self, weight: torch.Tensor, update: torch.Tensor, cap: float) -> torch.Tensor:
        """Each element's tensor's trust ratio."""
        squares = torch.stack([weight.flatten().square(), update.flatten().square()], dim=1)
        sums = torch.zeros(self.count + 1, 2, dtype=squares.dtype, device=squares.device)
        sums.index_add_(0, self.segments, squares)
        if self.reduce is not None:
            self.reduce(sums)
        norms = sums.sqrt()
        return _trust_ratio(norms[:, 0], norms[:, 1], cap)[self.segments].view_as(weight)


def flat_segments(
    offsets: Sequence[int], numels: Sequence[int], *, start: int, length: int
) -> torch.Tensor:
    """For the elements ``start .. start + length`` of a group flattened with tensor ``t`` at
    ``offsets[t]`` (``numels[t]`` elements): the tensor each belongs to (``len(offsets)``:
    padding). The ``segments`` of :meth:`Lamb.track_flat`."""
    segments = torch.full((length,), len(offsets), dtype=torch.long)
    for t, (offset, numel) in enumerate(zip(offsets, numels, strict=True)):
        lo, hi = max(offset, start), min(offset + numel, start + length)
        if lo < hi:
            segments[lo - start : hi - start] = t
    return segments
