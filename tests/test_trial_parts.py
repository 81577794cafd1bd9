"""The trial's pure parts: DeepSpeed config, precision choice, failure reasons."""

from __future__ import annotations

import torch

from search.trial import NonFiniteLossError, _failure_reason, deepspeed_config, select_precision


def test_deepspeed_config_holds_geometry_precision_and_zero_but_no_optimizer() -> None:
    cfg = deepspeed_config(
        micro_batch_size=16, grad_accum=4, grad_clip=1.0, zero_stage=2, precision="bf16"
    )
    assert cfg["train_micro_batch_size_per_gpu"] * cfg["gradient_accumulation_steps"] == 64
    assert cfg["bf16"]["enabled"] and not cfg["fp16"]["enabled"]
    assert cfg["zero_optimization"]["stage"] == 2
    assert cfg["gradient_clipping"] == 1.0
    # optimizer and schedule are the client's (search.optim), the same on CPU and GPU
    assert "optimizer" not in cfg and "scheduler" not in cfg
    fp32 = deepspeed_config(
        micro_batch_size=8, grad_accum=1, grad_clip=0.0, zero_stage=0, precision="fp32"
    )
    assert not fp32["bf16"]["enabled"] and not fp32["fp16"]["enabled"]


def test_select_precision() -> None:
    cpu = torch.device("cpu")
    assert select_precision("auto", cpu) == "fp32"
    assert select_precision("bf16", cpu) == "fp32"  # half precision needs an accelerator
    assert select_precision("fp32", cpu) == "fp32"


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
