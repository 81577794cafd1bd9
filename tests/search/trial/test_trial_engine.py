"""The trial's DeepSpeed engine parts (search/trial/engine.py): the batch plan, the DeepSpeed
config, precision choice."""

from __future__ import annotations

import pytest
import torch

from search.trial.engine import BatchPlan, deepspeed_config, plan_batches, select_precision


def test_deepspeed_config_holds_geometry_precision_and_zero_but_no_optimizer() -> None:
    cfg = deepspeed_config(
        micro_batch_size=16, grad_accum=4, grad_clip=1.0, zero_stage=2, precision="bf16"
    )
    assert cfg["train_micro_batch_size_per_gpu"] * cfg["gradient_accumulation_steps"] == 64
    assert cfg["bf16"]["enabled"] and not cfg["fp16"]["enabled"]
    assert cfg["zero_optimization"]["stage"] == 2
    assert cfg["gradient_clipping"] == 1.0
    # optimizer and schedule are the client's (search.trial.optim), the same on CPU and GPU
    assert "optimizer" not in cfg and "scheduler" not in cfg
    fp32 = deepspeed_config(
        micro_batch_size=8, grad_accum=1, grad_clip=0.0, zero_stage=0, precision="fp32"
    )
    assert not fp32["bf16"]["enabled"] and not fp32["fp16"]["enabled"]


def test_select_precision() -> None:
    cpu = torch.device("cpu")
    assert select_precision("auto", cpu) == "fp32"  # auto never picks bf16 on a CPU
    assert select_precision("bf16", cpu) == "bf16"  # asked for: DeepSpeed's bf16 engine on CPU
    assert select_precision("fp32", cpu) == "fp32"
    with pytest.raises(ValueError, match=r"^training.precision=fp16: needs a GPU") as err:
        select_precision("fp16", cpu)
    assert "\n" not in str(err.value)


def test_one_worker_trains_the_whole_batch_in_one_micro_batch() -> None:
    plan = plan_batches(32, world=1, n_train=320, max_micro_batch_size=None)
    assert plan == BatchPlan(
        batch_size=32,
        world=1,
        micro_batch_size=32,
        grad_accum=1,
        micro_steps_per_epoch=10,
        steps_per_epoch=10,
    )
    assert plan.micro_batch_all_ranks == 32


def test_the_micro_batch_is_the_largest_divisor_of_the_share_up_to_the_maximum() -> None:
    plan = plan_batches(32, world=1, n_train=320, max_micro_batch_size=12)
    assert (plan.micro_batch_size, plan.grad_accum) == (8, 4)  # 12, 11, 10, 9 do not divide 32
    assert (plan.micro_steps_per_epoch, plan.steps_per_epoch) == (40, 10)
    # A maximum at least the share changes nothing.
    assert plan_batches(32, world=1, n_train=320, max_micro_batch_size=64).grad_accum == 1
    # A prime share under a smaller maximum: one image per micro-step.
    prime = plan_batches(7, world=1, n_train=70, max_micro_batch_size=4)
    assert (prime.micro_batch_size, prime.grad_accum, prime.steps_per_epoch) == (1, 7, 10)


def test_the_global_batch_is_split_over_the_workers() -> None:
    two = plan_batches(32, world=2, n_train=100, max_micro_batch_size=None)
    assert (two.micro_batch_size, two.grad_accum) == (16, 1)
    assert two.micro_steps_per_epoch == 3  # each worker's shard: 50 images
    assert two.micro_batch_all_ranks == 32
    three = plan_batches(32, world=3, n_train=300, max_micro_batch_size=4)
    # 32 // 3 = 10 images per worker (the remainder is not trained), in micro-batches of 2.
    assert (three.micro_batch_size, three.grad_accum) == (2, 5)
    assert (three.micro_steps_per_epoch, three.steps_per_epoch) == (50, 10)
    assert three.micro_batch_all_ranks == 6
    # A batch smaller than the world: one image per worker.
    assert plan_batches(2, world=4, n_train=40, max_micro_batch_size=None).micro_batch_size == 1


@pytest.mark.parametrize("world", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("maximum", [None, 1, 3, 8, 16, 100])
@pytest.mark.parametrize("batch_size", [1, 7, 32, 48, 64, 128])
def test_every_plan_trains_whole_shares_in_equal_micro_batches(
    world: int, maximum: int | None, batch_size: int
) -> None:
    plan = plan_batches(batch_size, world=world, n_train=4096, max_micro_batch_size=maximum)
    share = max(1, batch_size // world)
    assert plan.micro_batch_size * plan.grad_accum == share
    assert plan.micro_batch_size <= (maximum or share)
    assert plan.steps_per_epoch * plan.grad_accum <= plan.micro_steps_per_epoch
    assert plan.micro_steps_per_epoch * plan.micro_batch_size <= 4096 // world


def test_a_batch_larger_than_the_training_set_is_refused() -> None:
    with pytest.raises(ValueError, match=r"batch_size=512: larger than the training set \(256"):
        plan_batches(512, world=1, n_train=256, max_micro_batch_size=None)
    with pytest.raises(ValueError, match="larger than the training set"):
        plan_batches(64, world=2, n_train=60, max_micro_batch_size=8)  # 30 per worker, 32 a step
    # Exactly one optimizer step per epoch is enough.
    assert plan_batches(256, world=1, n_train=256, max_micro_batch_size=64).steps_per_epoch == 1


def test_the_engine_builds_ops_with_this_environments_ninja(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os
    import sys
    from pathlib import Path

    from search.trial.engine import _use_this_environments_ninja

    here = str(Path(sys.executable).parent)
    if not (Path(here) / "ninja").is_file():
        pytest.skip("no ninja beside this interpreter (installed with the project's venv)")
    monkeypatch.setenv("PATH", os.pathsep.join(["/usr/bin", here, "/bin"]))
    _use_this_environments_ninja()
    assert os.environ["PATH"].split(os.pathsep) == [here, "/usr/bin", "/bin"]  # once, first
    _use_this_environments_ninja()
    assert os.environ["PATH"].split(os.pathsep) == [here, "/usr/bin", "/bin"]
