"""The trial's pure parts: DeepSpeed config, precision choice, LAMB, failure reasons."""

from __future__ import annotations

import pytest
import torch

from search.optim import Lamb
from search.trial import NonFiniteLossError, _failure_reason, deepspeed_config, select_precision

TRAIN = {"lr": 1e-3, "weight_decay": 0.05, "optimizer": "lamb", "batch_size": 64}


def _config(**kw: object) -> dict:
    args = dict(
        train_hp=TRAIN,
        micro_batch_size=16,
        grad_accum=4,
        total_steps=100,
        warmup_steps=10,
        grad_clip=1.0,
        zero_stage=2,
        precision="bf16",
        fused_optimizer=True,
    )
    args.update(kw)
    return deepspeed_config(**args)  # type: ignore[arg-type]


def test_deepspeed_config_on_gpu_uses_fused_optimizer_bf16_and_zero() -> None:
    cfg = _config()
    assert cfg["train_micro_batch_size_per_gpu"] * cfg["gradient_accumulation_steps"] == 64
    assert cfg["optimizer"] == {"type": "Lamb", "params": {"lr": 1e-3, "weight_decay": 0.05}}
    assert cfg["bf16"]["enabled"] and not cfg["fp16"]["enabled"]
    assert cfg["zero_optimization"]["stage"] == 2
    sched = cfg["scheduler"]
    assert sched["type"] == "WarmupCosineLR"
    assert sched["params"]["total_num_steps"] == 100 and sched["params"]["warmup_num_steps"] == 10
    assert cfg["gradient_clipping"] == 1.0
    adamw = _config(train_hp={**TRAIN, "optimizer": "adamw"})
    assert adamw["optimizer"]["type"] == "AdamW"


def test_deepspeed_config_on_cpu_leaves_the_optimizer_to_the_client() -> None:
    cfg = _config(precision="fp32", fused_optimizer=False)
    assert "optimizer" not in cfg
    assert not cfg["bf16"]["enabled"] and not cfg["fp16"]["enabled"]
    # warmup can never reach the end of a one-step schedule
    tiny = _config(total_steps=1, warmup_steps=5)
    assert tiny["scheduler"]["params"]["warmup_num_steps"] == 0


def test_select_precision() -> None:
    cpu = torch.device("cpu")
    assert select_precision("auto", cpu) == "fp32"
    assert select_precision("bf16", cpu) == "fp32"  # half precision needs an accelerator
    assert select_precision("fp32", cpu) == "fp32"


def test_lamb_matches_the_paper_update_on_one_step() -> None:
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    g = torch.randn(4, 3)
    w0 = w.detach().clone()
    opt = Lamb([w], lr=0.1, weight_decay=0.01, eps=1e-6)
    w.grad = g.clone()
    opt.step()
    m_hat = g  # (1 - b1) g / (1 - b1)
    v_hat = g * g
    update = m_hat / (v_hat.sqrt() + 1e-6) + 0.01 * w0
    trust = w0.norm() / update.norm()
    assert torch.allclose(w.detach(), w0 - 0.1 * trust * update, atol=1e-6)


def test_lamb_trains_a_small_regression() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = x @ torch.randn(8, 1)
    model = torch.nn.Linear(8, 1)
    opt = Lamb(model.parameters(), lr=0.05)
    first = None
    for _ in range(100):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_lamb_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="Lamb lr=0"):
        Lamb([torch.nn.Parameter(torch.ones(1))], lr=0)


def test_failure_reasons_are_one_clear_line() -> None:
    assert _failure_reason(NonFiniteLossError("loss=nan at epoch 2")).startswith(
        "non-finite loss: loss=nan"
    )
    oom = _failure_reason(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert oom.startswith("out of memory:")
    try:
        raise ValueError("vit.patch_size=5: does not divide image_size=32\nmore")
    except ValueError as exc:
        reason = _failure_reason(exc)
    assert reason.startswith("ValueError: vit.patch_size=5: does not divide image_size=32 (at ")
    assert "\n" not in reason
