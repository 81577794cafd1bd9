"""search/trial/optim.py: parameter groups, LAMB (the paper's update), one set of optimizer
hyperparameters for CPU and GPU, and the warmup + cosine schedule."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

import models
from search.trial.optim import (
    ADAMW_HPARAMS,
    LAMB_HPARAMS,
    Lamb,
    WarmupCosine,
    build_optimizer,
    flat_segments,
    optimizer_spec,
    param_groups,
)


def _paper_lamb_step(w0: torch.Tensor, g: torch.Tensor, *, lr: float, wd: float) -> torch.Tensor:
    """The first LAMB step of You et al. 2019, Algorithm 2 (bias-corrected moments)."""
    eps, cap = LAMB_HPARAMS["eps"], LAMB_HPARAMS["max_trust_ratio"]
    m_hat, v_hat = g, g * g  # (1 - b) x / (1 - b) on the first step
    update = m_hat / (v_hat.sqrt() + eps) + wd * w0
    trust = (w0.norm() / update.norm()).clamp(max=cap)
    return w0 - lr * trust * update


def test_lamb_matches_the_paper_update_on_one_step() -> None:
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(4, 3))
    g = torch.randn(4, 3)
    w0 = w.detach().clone()
    opt = Lamb([w], lr=0.1, weight_decay=0.01)
    w.grad = g.clone()
    opt.step()
    assert torch.allclose(w.detach(), _paper_lamb_step(w0, g, lr=0.1, wd=0.01), atol=1e-6)


def test_lamb_caps_the_trust_ratio_and_moves_zero_tensors_by_lr() -> None:
    big = torch.nn.Parameter(torch.full((8,), 1e4))
    zero = torch.nn.Parameter(torch.zeros(8))
    opt = Lamb([big, zero], lr=0.1)
    big.grad, zero.grad = torch.ones(8), torch.ones(8)
    opt.step()
    # trust ratio capped at 10: each element moves by lr * 10 * (1 / (1 + eps))
    assert torch.allclose(big.detach(), torch.full((8,), 1e4 - 1.0), rtol=0, atol=1e-3)
    # ||w|| = 0: trust ratio 1, the plain Adam-normalised step
    assert torch.allclose(zero.detach(), torch.full((8,), -0.1), atol=1e-6)


def test_lamb_trains_a_small_regression() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = x @ torch.randn(8, 1)
    model = torch.nn.Linear(8, 1)
    opt = Lamb(model.parameters(), lr=0.1)
    first = None
    for _ in range(200):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        first = first if first is not None else loss.item()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_flat_segments_name_each_elements_tensor_and_the_padding() -> None:
    # Three tensors of 3, 2 and 4 elements at offsets 0, 4 and 6 (one padding element at 3),
    # the group padded to 12: rank 1 of 2 holds elements 6..11.
    offsets, numels = [0, 4, 6], [3, 2, 4]
    assert flat_segments(offsets, numels, start=0, length=6).tolist() == [0, 0, 0, 3, 1, 1]
    assert flat_segments(offsets, numels, start=6, length=6).tolist() == [2, 2, 2, 2, 3, 3]


def test_lamb_over_flat_partitions_of_several_ranks_is_lamb_per_tensor() -> None:
    """ZeRO 1/2 hand each rank a slice of one flat tensor per group, cutting tensors across
    ranks: with ``track_flat`` the trust ratios are still each whole tensor's (the ranks' norm
    sums all-reduced; here two ranks as two threads summing through a barrier)."""
    import threading

    torch.manual_seed(0)
    shapes = [(4, 3), (5,), (2, 7)]
    weights = [torch.randn(s) for s in shapes]
    grads = [[torch.randn(s) for s in shapes] for _ in range(3)]  # three steps
    reference = [torch.nn.Parameter(w.clone()) for w in weights]
    ref_opt = Lamb(reference, lr=0.05, weight_decay=0.1)
    for step in grads:
        for p, g in zip(reference, step):
            p.grad = g.clone()
        ref_opt.step()

    numels = [w.numel() for w in weights]
    offsets = [0, 12, 17]
    total, ranks = 32, 2  # 31 elements padded to 32: rank 0 holds 0..15, rank 1 16..31
    size = total // ranks

    def flat(tensors: list[torch.Tensor]) -> torch.Tensor:
        out = torch.zeros(total)
        for t, offset in zip(tensors, offsets):
            out[offset : offset + t.numel()] = t.flatten()
        return out

    partials: list[torch.Tensor] = [torch.zeros(0)] * ranks
    barrier = threading.Barrier(ranks)
    results: list[torch.Tensor] = [torch.zeros(0)] * ranks

    def rank(r: int) -> None:
        def all_reduce(sums: torch.Tensor) -> None:
            partials[r] = sums.clone()
            barrier.wait()
            sums.copy_(partials[0] + partials[1])
            barrier.wait()

        part = torch.nn.Parameter(flat(weights)[r * size : (r + 1) * size].clone())
        opt = Lamb([part], lr=0.05, weight_decay=0.1)
        segments = flat_segments(offsets, numels, start=r * size, length=size)
        opt.track_flat(part, segments, count=len(shapes), reduce=all_reduce)
        for step in grads:
            part.grad = flat(step)[r * size : (r + 1) * size].clone()
            opt.step()
        results[r] = part.detach()

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    whole = torch.cat(results)
    for p, offset in zip(reference, offsets):
        got = whole[offset : offset + p.numel()].view_as(p)
        torch.testing.assert_close(got, p.detach(), rtol=1e-5, atol=1e-6)
    assert torch.count_nonzero(whole[31:]) == 0  # padding stays zero


def test_lamb_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="Lamb lr=0"):
        Lamb([torch.nn.Parameter(torch.ones(1))], lr=0)
    with pytest.raises(ValueError, match="max_trust_ratio=0"):
        Lamb([torch.nn.Parameter(torch.ones(1))], max_trust_ratio=0)


def test_cpu_and_gpu_optimizers_get_the_same_hyperparameters() -> None:
    cpu = optimizer_spec("lamb", lr=0.01, fused=False)
    gpu = optimizer_spec("lamb", lr=0.01, fused=True)
    assert cpu == gpu  # one LAMB on every device
    assert cpu.target == "search.trial.optim:Lamb"
    assert cpu.kwargs == {"lr": 0.01, **LAMB_HPARAMS}
    a_cpu = optimizer_spec("adamw", lr=1e-3, fused=False)
    a_gpu = optimizer_spec("adamw", lr=1e-3, fused=True)
    assert a_cpu.target == "torch.optim:AdamW" and a_gpu.target == "deepspeed.ops.adam:FusedAdam"
    assert a_gpu.kwargs["adam_w_mode"] is True  # decoupled decay, like torch's AdamW
    for key, value in {"lr": 1e-3, **ADAMW_HPARAMS}.items():
        assert a_cpu.kwargs[key] == a_gpu.kwargs[key] == value
    with pytest.raises(ValueError, match=r"optimizer='sgd'.*allowed: adamw, lamb"):
        optimizer_spec("sgd", lr=0.1, fused=False)


def test_the_cpu_adamw_is_torchs_fused_kernel_with_the_plain_update() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 3))
    twin = copy.deepcopy(model)
    ours = build_optimizer(model, "adamw", lr=1e-2, weight_decay=0.05, fused=False)
    assert all(group["fused"] for group in ours.param_groups)
    plain = torch.optim.AdamW(param_groups(twin, 0.05), lr=1e-2, **ADAMW_HPARAMS, foreach=False)
    x = torch.randn(16, 6)
    for _ in range(20):
        for net, opt in ((model, ours), (twin, plain)):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _no_decay_names(model: torch.nn.Module, weight_decay: float = 0.05) -> set[str]:
    groups = param_groups(model, weight_decay)
    assert [g["weight_decay"] for g in groups] == [weight_decay, 0.0]
    ids = {id(p) for p in groups[1]["params"]}
    assert len(groups[0]["params"]) + len(ids) == len(list(model.parameters()))
    return {n for n, p in model.named_parameters() if id(p) in ids}


@pytest.mark.parametrize("family", models.FAMILIES)
def test_no_decay_on_biases_norms_latents_and_position_embeddings(family: str) -> None:
    extra = {"perceiver": {"pos_encoding": "learned"}, "vit": {"pool": "cls"}}.get(family, {})
    model = models.build_model(family, num_classes=10, image_size=8, in_channels=1, **extra)
    skip = _no_decay_names(model)
    for name, p in model.named_parameters():
        expected = (
            p.ndim <= 1
            or name in {"latents", "cls_token"}
            or name.endswith(("pos.weight", "pos_embed.weight"))
        )
        assert (name in skip) == expected, name
    if family == "perceiver":
        assert {"latents", "pos.weight"} <= skip
    if family == "vit":
        assert {"cls_token", "pos_embed.weight"} <= skip


def test_build_optimizer_uses_the_groups() -> None:
    model = models.build_model("mixer", num_classes=4, image_size=8, in_channels=1)
    opt = build_optimizer(model, "lamb", lr=0.02, weight_decay=0.1, fused=False)
    assert isinstance(opt, Lamb)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    assert all(g["lr"] == 0.02 for g in opt.param_groups)


def test_warmup_never_trains_at_lr_zero_and_cosine_ends_at_min_ratio() -> None:
    sched = WarmupCosine(warmup_steps=4, total_steps=20, min_ratio=0.01)
    factors = [sched(step) for step in range(20)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(factors[4:]))  # decays monotonically
    assert factors[-1] == pytest.approx(0.01)
    assert min(factors) > 0
    assert WarmupCosine(warmup_steps=0, total_steps=5)(0) == pytest.approx(1.0)


def test_the_schedule_drives_the_optimizer_lr() -> None:
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1)
    sched = WarmupCosine(warmup_steps=2, total_steps=6).scheduler(opt)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.05) and lrs[1] == pytest.approx(0.1)
    assert lrs[-1] == pytest.approx(0.001)
