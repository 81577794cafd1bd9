"""LAMB (You et al. 2019, arXiv 1904.00962) in plain PyTorch, for devices without DeepSpeed's
fused CUDA LAMB: the Perceiver paper's optimizer must still be available on CPU.

Per parameter tensor: Adam moments with bias correction, decoupled weight decay added to the
update, then the update is scaled by the trust ratio ||w|| / ||update|| (1 where either is 0).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["Lamb"]


class Lamb(torch.optim.Optimizer):
    """Layer-wise Adaptive Moments optimizer for Batch training."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        max_trust_ratio: float = 10.0,
    ) -> None:
        if lr <= 0:
            raise ValueError(f"Lamb lr={lr}: must be > 0")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Lamb betas={betas}: each must be in [0, 1)")
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, max_trust_ratio=max_trust_ratio
        )
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.float()
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
                    state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(grad, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                m_hat = m / (1 - beta1 ** state["step"])
                v_hat = v / (1 - beta2 ** state["step"])
                update = m_hat / (v_hat.sqrt() + group["eps"])
                weight = p.float()
                if group["weight_decay"]:
                    update = update.add(weight, alpha=group["weight_decay"])
                w_norm = weight.norm()
                u_norm = update.norm()
                trust = torch.where(
                    (w_norm > 0) & (u_norm > 0),
                    (w_norm / u_norm).clamp(max=group["max_trust_ratio"]),
                    torch.ones_like(w_norm),
                )
                p.add_((update * trust).to(p.dtype), alpha=-group["lr"])
        return loss
