"""What would make a default-sweep training step faster here: one step, several ways.

For configurations of the default sweep's space (digits, 8x8, 1 channel, 10 classes), one
training step (forward, cross-entropy backward, AdamW, gradient clipping at 1.0) on a fixed
random batch, 1 thread, timed in these variants in one process, interleaved (a, b, c, c, b,
a, ...) so a shared machine's drifts hit them alike:

- ``plain``: our model in a plain PyTorch loop;
- ``deepspeed``: the trial's own DeepSpeed engine (``search.trial.engine.build_engine``, fp32);
- ``bf16``: the plain loop under ``torch.autocast("cpu", torch.bfloat16)`` (native bf16 on CPUs
  with AVX512-BF16/AMX);
- ``compiled``: the plain loop with ``torch.compile(model)``; its first step (the compile) is
  reported apart.

``--batch-sizes`` also times the plain step at other batch sizes: images/s and useful GFLOP/s
(3 x forward FLOPs x images / s) show how much of the matmul peak these shapes can reach.

The step's own matrix products, timed alone (every ``mm``/``addmm``/``bmm`` a profiled plain
step runs, replayed with the same shapes), give the ceiling of an fp32 implementation that
keeps these products: useful FLOPs over their time alone, beside the machine's 1-thread
2048 x 2048 peak.

    python benchmarks/bench_step_variants.py [--families vit,...]
        [--variants plain,deepspeed,bf16,compiled] [--batch-sizes 32,64,128,256] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import models
from benchmarks.bench_sweep import matmul_peak_gflops
from models.cost import estimate

IMAGE = {"image_size": 8, "in_channels": 1, "num_classes": 10}
VARIANTS = ("plain", "deepspeed", "bf16", "compiled")

#: (family, hyperparameters, batch size): configurations the default sweep trains.
CONFIGS: list[tuple[str, dict[str, Any], int]] = [
    ("vit", {"patch_size": 1, "embed_dim": 32, "depth": 2, "num_heads": 4}, 32),
    ("vit", {"patch_size": 2, "embed_dim": 64, "depth": 2, "num_heads": 4}, 64),
    ("mixer", {"patch_size": 1, "hidden_dim": 32, "num_blocks": 4}, 64),
    ("mixer", {"patch_size": 2, "hidden_dim": 64, "num_blocks": 2}, 32),
    ("fnet", {"patch_size": 2, "hidden_dim": 32, "num_blocks": 2}, 32),
    ("gmlp", {"patch_size": 2, "hidden_dim": 64, "num_blocks": 2}, 32),
    ("gmlp", {"patch_size": 1, "hidden_dim": 64, "num_blocks": 4}, 32),
    (
        "perceiver",
        {"patch_size": 2, "projection_dim": 16, "num_latents": 32, "latent_dim": 64,
         "num_iterations": 3, "self_per_cross": 1, "latent_heads": 4, "cross_heads": 1},
        32,
    ),
]  # fmt: skip

Step = Callable[[torch.Tensor, torch.Tensor], None]


def make_step(family: str, hparams: dict[str, Any], batch_size: int, variant: str) -> Step:
    """One training step of a freshly built model (seed 0) in ``variant``."""
    torch.manual_seed(0)
    model = models.build_model(family, **IMAGE, **hparams)
    if variant == "deepspeed":
        return _engine_step(model, batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    forward = torch.compile(model) if variant == "compiled" else model

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=variant == "bf16"):
            logits = forward(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    return step


def _engine_step(model: torch.nn.Module, batch_size: int) -> Step:
    from search.experiment import load_experiment
    from search.trial.engine import build_engine, plan_batches

    plan = plan_batches(batch_size, world=1, n_train=1024, max_micro_batch_size=None)
    hp = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.01, "warmup_epochs": 1}
    engine = build_engine(
        model,
        plan=plan,
        train_hp=hp,
        experiment=load_experiment("default"),
        device=torch.device("cpu"),
    )

    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        loss = F.cross_entropy(engine(x).float(), y)
        engine.backward(loss)
        engine.step()

    return step


def _batch(batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, IMAGE["in_channels"], 8, 8, generator=gen)
    return x, torch.randint(0, IMAGE["num_classes"], (batch_size,), generator=gen)


def time_variants(
    steps: dict[str, Step], batch_size: int, *, repeats: int = 5, per_repeat: int = 20
) -> dict[str, float]:
    """Median ms per step of each variant, timed interleaved after 5 warmup steps each."""
    x, y = _batch(batch_size)
    for step in steps.values():
        for _ in range(5):
            step(x, y)
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for r in range(repeats):
        for name in order if r % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            for _ in range(per_repeat):
                steps[name](x, y)
            times[name].append((time.perf_counter() - start) / per_repeat * 1000)
    return {name: statistics.median(t) for name, t in times.items()}


#: A GEMM's operands in ``torch.profiler``'s ``input_shapes`` order, by op; and its product.
GEMMS: dict[str, tuple[Callable[..., torch.Tensor], slice]] = {
    "aten::mm": (torch.mm, slice(0, 2)),
    "aten::addmm": (torch.addmm, slice(0, 3)),
    "aten::bmm": (torch.bmm, slice(0, 2)),
    "aten::baddbmm": (torch.baddbmm, slice(0, 3)),
}


def step_gemms(step: Step, batch_size: int) -> list[tuple[str, list[tuple[int, ...]]]]:
    """The matrix products one step runs: (op, operand shapes), in order."""
    from torch.profiler import ProfilerActivity, profile

    x, y = _batch(batch_size)
    step(x, y)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        step(x, y)
    return [
        (e.name, [tuple(s) for s in e.input_shapes][GEMMS[e.name][1]])
        for e in prof.events()
        if e.name in GEMMS
    ]


def gemm_flops(op: str, shapes: Sequence[tuple[int, ...]]) -> int:
    """2 m k n (x batch) of one product."""
    a, b = shapes[-2:]
    return 2 * a[-2] * a[-1] * b[-1] * (a[0] if op.endswith("bmm") else 1)


def time_gemms(gemms: Sequence[tuple[str, list[tuple[int, ...]]]]) -> float:
    """Median ms of the products alone, back to back, on random operands of their shapes."""
    calls = [(GEMMS[op][0], [torch.randn(s) for s in shapes]) for op, shapes in gemms]

    def run(_x: torch.Tensor, _y: torch.Tensor) -> None:
        for fn, args in calls:
            fn(*args)

    return time_variants({"gemms": run}, 1)["gemms"]


def first_step_s(step: Step, batch_size: int) -> float:
    x, y = _batch(batch_size)
    start = time.perf_counter()
    step(x, y)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=None, help="comma-separated (default: all)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="plain is always run")
    parser.add_argument("--batch-sizes", default="32,64,128,256")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    variants = ["plain", *(v for v in args.variants.split(",") if v and v != "plain")]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: {unknown} not among {list(VARIANTS)}")
    torch.set_num_threads(1)
    peak = matmul_peak_gflops(1)
    print(f"1-thread fp32 peak (2048 x 2048): {peak:.0f} GFLOP/s", flush=True)
    rows = []
    families = args.families.split(",") if args.families else None
    for family, hparams, bs in CONFIGS:
        if families is not None and family not in families:
            continue
        steps = {v: make_step(family, hparams, bs, v) for v in variants}
        compile_s = first_step_s(steps["compiled"], bs) if "compiled" in steps else None
        ms = time_variants(steps, bs)
        flops = estimate(family, **IMAGE, **hparams).flops
        gemms = step_gemms(steps["plain"], bs)
        gemm_ms = time_gemms(gemms)
        gemm_gflops = sum(gemm_flops(*g) for g in gemms) / gemm_ms / 1e6
        useful_gflop = 3 * flops * bs / 1e9
        step_gflops, ceiling = useful_gflop / (ms["plain"] / 1000), useful_gflop / (gemm_ms / 1000)
        scaling = {}
        for size in (int(b) for b in args.batch_sizes.split(",") if b):
            step_ms = time_variants({"plain": make_step(family, hparams, size, "plain")}, size)
            scaling[size] = 3 * flops * size / (step_ms["plain"] / 1000) / 1e9
        rows.append(
            {"family": family, "hparams": hparams, "batch_size": bs, "ms_per_step": ms,
             "compile_s": compile_s, "gflops_by_batch": scaling, "gemms": len(gemms),
             "gemm_ms": gemm_ms, "gemm_gflops": gemm_gflops,
             "step_gflops": step_gflops, "ceiling_gflops": ceiling, "peak_gflops": peak}
        )  # fmt: skip
        ratios = " ".join(f"{v} {ms[v]:.2f} ms ({ms['plain'] / ms[v]:.2f}x)" for v in ms)
        gf = " ".join(f"b{b}:{g:.0f}" for b, g in scaling.items())
        first = f" compile {compile_s:.1f} s" if compile_s is not None else ""
        print(
            f"{family:9s} bs{bs} {hparams}\n  {ratios}{first}\n  GFLOP/s {gf}\n"
            f"  its {len(gemms)} GEMMs alone: {gemm_ms:.2f} ms ({100 * gemm_ms / ms['plain']:.0f}% "
            f"of the step), {gemm_gflops:.0f} GFLOP/s; ceiling {ceiling:.0f} GFLOP/s "
            f"= {100 * ceiling / peak:.0f}% of peak (the step {100 * step_gflops / peak:.0f}%)",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
