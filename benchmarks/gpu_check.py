"""One command for the day a GPU appears: a trial's GPU paths, checked in a few minutes on one
GPU, through the project's own trial code and without Ray (docs/gpu.md).

    python benchmarks/gpu_check.py --out gpu_check.json   # on a GPU: exit 0, or 1 on a wrong result
    python benchmarks/gpu_check.py --simulate-cpu         # the same steps on this CPU, in bf16

On a machine without a GPU (and without ``--simulate-cpu``) it says so in one line, exit 2.
The steps, each a section of the JSON it writes (device, versions, every number):

1. ``engines``: the half-precision engines at ZeRO 0 (bf16; fp16 with FusedAdam on a GPU) start
   from the model's weights with no optimizer state (``engine._undo_initial_step``), and the
   client optimizer is FusedAdam on a GPU.
2. ``precision``: one small trial trained in-process (``search.trial.train_in_process``: the
   sweep's loop and engine) in fp32, bf16, fp16 with FusedAdam and bf16 at ZeRO 2; each final
   train loss within :data:`LOSS_RTOL` of fp32's, ZeRO 2's within :data:`ZERO_RTOL` of ZeRO 0's.
3. ``fashion``: one epoch of each family at the ``fashion-gpu`` shape (1x28x28, 10 classes,
   batch 128, each family's default size, bf16): above chance.
4. ``step_time``: a default-size Mixer step through the trial's engine here, against the
   same step in fp32 on this machine's CPU (a child process: one process group per process).

``--simulate-cpu`` runs the same steps on the CPU in bf16 (the fp16 trial becomes bf16: a CPU has
no fp16 engine), on less data and smaller models, so a test keeps it from rotting. The dataset
is a parameter (``--dataset``): Fashion-MNIST, or synthetic images of its shape.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import models  # noqa: E402
from search.experiment import Experiment, load_experiment  # noqa: E402

#: A half-precision trial's final train loss, relative to fp32's from the same seed.
LOSS_RTOL = 0.05
#: bf16 at ZeRO 2 against bf16 at ZeRO 0 (tests/search/trial/test_trial_bf16.py measures 0.6%).
ZERO_RTOL = 0.02
#: Fashion-MNIST's shape (one channel, 28x28, ten classes) and training split.
CHANNELS, SIZE, CLASSES, FASHION_TRAIN = 1, 28, 10, 60_000
SMALL_MIXER = {"patch_size": 4, "hidden_dim": 64, "num_blocks": 2, "tokens_mlp_dim": 32,
               "channels_mlp_dim": 128, "dropout": 0.0}  # fmt: skip
TINY = {  # each family at a size the CPU trains in seconds (--simulate-cpu)
    "perceiver": {"projection_dim": 16, "num_latents": 8, "latent_dim": 32, "latent_heads": 2},
    "vit": {"embed_dim": 32, "depth": 2, "num_heads": 2},
    "mixer": {"hidden_dim": 32, "num_blocks": 2, "tokens_mlp_dim": 16, "channels_mlp_dim": 64},
    "fnet": {"hidden_dim": 32, "num_blocks": 2, "mlp_dim": 64},
    "gmlp": {"hidden_dim": 32, "num_blocks": 2, "ffn_dim": 64},
}
TRAIN_HP = {"optimizer": "adamw", "lr": 3e-3, "weight_decay": 0.05, "batch_size": 128,
            "warmup_epochs": 0, "label_smoothing": 0.0}  # fmt: skip


#: The steps in order, each a function filling its section of the results (by name, so a test
#: can stand one in).
STEPS = {
    "engines": "_engines",
    "precision": "_precision",
    "fashion": "_fashion",
    "step_time": "_step_time",
}


class CheckFailed(AssertionError):
    """A wrong result: the check goes on, and exits 1 at the end."""


@dataclass(frozen=True)
class Setup:
    """Where and how big: a GPU, or the CPU simulating one."""

    device: torch.device
    simulate: bool
    dataset: str
    data_dir: str | None
    threads: int  # torch's threads on the CPU

    @property
    def mixer(self) -> dict[str, Any]:
        """The precision trials' Mixer (tiny when simulated)."""
        return {**SMALL_MIXER, **TINY["mixer"]} if self.simulate else SMALL_MIXER

    @property
    def half(self) -> str:
        """The fp16 trial's precision: fp16 on a GPU, bf16 on a CPU."""
        return "bf16" if self.simulate else "fp16"

    def experiment(self, *overrides: str, images: int | None) -> Experiment:
        """The ``fashion-gpu`` preset on ``--dataset``, trained on ``images`` of its training
        images (None: all), without early stopping, test evaluation or retries."""
        data = [f"dataset.name={self.dataset}"]
        if self.dataset == "synthetic":  # Fashion-MNIST's shape and split
            data += [
                f"dataset.synthetic.in_channels={CHANNELS}",
                f"dataset.synthetic.num_classes={CLASSES}",
                f"dataset.synthetic.num_train={images or FASHION_TRAIN}",
                f"dataset.synthetic.num_test={max((images or FASHION_TRAIN) // 6, 256)}",
                "dataset.synthetic.noise=0.4",  # not trivially separable
            ]
        elif images is not None:
            data.append(f"dataset.train_subset={images}")
        if self.data_dir:
            data.append(f"dataset.data_dir={self.data_dir}")
        if self.simulate:  # a few steps learn more without augmentation; 1,200 val images
            data += ["training.augment=none", "dataset.val_fraction=0.02"]
        return load_experiment(
            "fashion-gpu",
            [
                *data,
                "training.eval_test=false",
                "scheduler.name=none",
                "resources.max_failures=0",
                f"training.num_threads={self.threads}",
                *overrides,
            ],
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    threads = 1 if args.simulate_cpu else min(os.cpu_count() or 1, 8)
    if args.cpu_step_ms:  # the child process of step 4
        cpu = Setup(torch.device("cpu"), True, "synthetic", None, threads=args.threads)
        hparams = cpu.mixer if args.simulate_cpu else models.default_hparams("mixer")
        print(json.dumps({"ms": _step_ms(cpu, "fp32", steps=args.cpu_step_ms, hparams=hparams)}))
        return 0
    if not torch.cuda.is_available() and not args.simulate_cpu:
        print(
            "gpu_check: no GPU here (torch sees no CUDA device); run it on a GPU, or with "
            "--simulate-cpu to run the same steps on this CPU in bf16",
            file=sys.stderr,
        )
        return 2
    setup = Setup(
        device=torch.device("cpu") if args.simulate_cpu else torch.device("cuda", 0),
        simulate=args.simulate_cpu,
        dataset=args.dataset,
        data_dir=args.data_dir,
        threads=threads,
    )
    _prepare_build(setup)
    started = time.perf_counter()
    results: dict[str, Any] = {"environment": _environment(setup), "checks": {}, "failures": []}
    for name, step in STEPS.items():
        t0 = time.perf_counter()
        out: dict[str, Any] = {}
        results["checks"][name] = out
        try:
            globals()[step](setup, out)
        except CheckFailed as exc:
            results["failures"].append(f"{name}: {exc}")
            out["failed"] = str(exc)
        out["seconds"] = round(time.perf_counter() - t0, 2)
        print(f"gpu_check: {name} done in {time.perf_counter() - t0:.1f}s", flush=True)
    results["wall_s"] = round(time.perf_counter() - started, 2)
    text = json.dumps(results, indent=2, default=str)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    for failure in results["failures"]:
        print(f"gpu_check: FAILED {failure}", file=sys.stderr)
    return 1 if results["failures"] else 0


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulate-cpu", action="store_true", help="the same steps on CPU, bf16")
    parser.add_argument("--out", help="write the results here (JSON)")
    parser.add_argument(
        "--dataset",
        default="fashion_mnist",
        help="fashion_mnist (default; its files from --data-dir or the system folder) or "
        "synthetic (images of Fashion-MNIST's shape)",
    )
    parser.add_argument("--data-dir", help="where --dataset's files are")
    parser.add_argument("--cpu-step-ms", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _prepare_build(setup: Setup) -> None:
    """DeepSpeed JIT-builds FusedAdam on first use: for this GPU's architecture only."""
    if setup.device.type == "cuda" and "TORCH_CUDA_ARCH_LIST" not in os.environ:
        major, minor = torch.cuda.get_device_capability(setup.device)
        os.environ["TORCH_CUDA_ARCH_LIST"] = f"{major}.{minor}"


def _environment(setup: Setup) -> dict[str, Any]:
    import deepspeed

    env: dict[str, Any] = {
        "simulate_cpu": setup.simulate,
        "dataset": setup.dataset,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "deepspeed": deepspeed.__version__,
        "cuda": torch.version.cuda,
        "cpus": os.cpu_count(),
        "host": platform.node(),
    }
    try:
        import optuna

        env["optuna"] = optuna.__version__
    except ImportError:
        env["optuna"] = None
    if setup.device.type == "cuda":
        props = torch.cuda.get_device_properties(setup.device)
        env.update(
            device=props.name,
            capability=f"{props.major}.{props.minor}",
            memory_gib=round(props.total_memory / 2**30, 1),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    else:
        env["device"] = f"CPU ({platform.processor() or platform.machine()})"
    return env


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise CheckFailed(message)


# ---- 1. engines ---------------------------------------------------------------------------


def _engines(setup: Setup, out: dict[str, Any]) -> None:
    """Each half-precision engine at ZeRO 0 starts from the model's weights, fresh state."""
    from search.trial.engine import build_engine, plan_batches

    for precision in sorted({"bf16", setup.half}):
        exp = setup.experiment(f"training.precision={precision}", images=1024)
        torch.manual_seed(0)
        model = models.build_model(
            "mixer", num_classes=CLASSES, image_size=SIZE, in_channels=CHANNELS, **setup.mixer
        ).to(setup.device)
        plan = plan_batches(128, world=1, n_train=1024, max_micro_batch_size=None)
        engine = build_engine(
            model, plan=plan, train_hp=TRAIN_HP, experiment=exp, device=setup.device
        )
        wrapper, client = engine.optimizer, engine.basic_optimizer
        masters = getattr(wrapper, "fp32_groups_flat", None) or [
            torch.cat([m.flatten() for m in group]) for group in wrapper.fp32_groups
        ]
        weights = [torch.cat([w.flatten() for w in group]) for group in wrapper.fp16_groups]
        out[precision] = {
            "wrapper": type(wrapper).__name__,
            "client_optimizer": type(client).__name__,
            "model_dtype": str(next(engine.module.parameters()).dtype),
        }
        _check(not client.state, f"{precision}: the client optimizer has state before step 1")
        for master, weight in zip(masters, weights, strict=True):
            _check(torch.equal(master, weight.float()), f"{precision}: masters != the weights")
        if setup.device.type == "cuda":
            _check(type(client).__name__ == "FusedAdam", f"{precision}: AdamW is not FusedAdam")
        engine.destroy()


# ---- 2. precision -------------------------------------------------------------------------


def _precision(setup: Setup, out: dict[str, Any]) -> None:
    """One trial per setting from the same seed: half precision near fp32, ZeRO 2 near ZeRO 0."""
    from search.sweep import load_experiment_data
    from search.trial import train_in_process

    images = 2048 if setup.simulate else 16384
    epochs = 2 if setup.simulate else 3
    settings = {
        "fp32": ("fp32", 0),
        "bf16": ("bf16", 0),
        f"{setup.half}_fused_adam": (setup.half, 0),
        "bf16_zero2": ("bf16", 2),
    }
    data = None
    runs: dict[str, dict[str, Any]] = {}
    for name, (precision, zero) in settings.items():
        exp = setup.experiment(
            f"training.precision={precision}",
            f"training.zero_stage={zero}",
            f"epochs={epochs}",
            images=images,
        )
        data = data or load_experiment_data(exp)
        config = {"family": "mixer", **setup.mixer, **TRAIN_HP}
        t0 = time.perf_counter()
        last = train_in_process(config, experiment=exp, data=data)
        _check("failure_reason" not in last, f"{name}: {last.get('failure_reason')}")
        runs[name] = out[name] = {
            "train_loss": last["train_loss"],
            "val_loss": last["val_loss"],
            "val_accuracy": last["val_accuracy"],
            "precision": last["precision"],
            "device": last["device"],
            "seconds": round(time.perf_counter() - t0, 2),
        }
    fp32 = runs["fp32"]["train_loss"]
    _check(fp32 < math.log(CLASSES) * 0.8, f"fp32 did not learn: train loss {fp32:.3f}")
    for name, row in runs.items():
        row["loss_vs_fp32"] = row["train_loss"] / fp32 - 1
        _check(  # relative, or 0.01 absolute: a loss near zero differs by more than 5%
            abs(row["train_loss"] - fp32) <= LOSS_RTOL * fp32 + 0.01,
            f"{name}: train loss {row['train_loss']:.4f} vs fp32 {fp32:.4f} "
            f"({row['loss_vs_fp32']:+.1%}, allowed {LOSS_RTOL:.0%})",
        )
    zero0, zero2 = runs["bf16"]["train_loss"], runs["bf16_zero2"]["train_loss"]
    _check(
        abs(zero2 - zero0) <= ZERO_RTOL * zero0 + 0.01,
        f"bf16 ZeRO 2 train loss {zero2:.4f} vs ZeRO 0 {zero0:.4f} (allowed {ZERO_RTOL:.0%})",
    )


# ---- 3. fashion-gpu-shaped trials -----------------------------------------------------------


def _fashion(setup: Setup, out: dict[str, Any]) -> None:
    """One epoch of each family in bf16, at its default size (tiny when simulated): above
    chance."""
    from search.sweep import load_experiment_data
    from search.trial import train_in_process

    images = 4096 if setup.simulate else None
    exp = setup.experiment("epochs=1", "training.precision=bf16", images=images)
    data = load_experiment_data(exp)
    out["train_images"] = len(data.train_y)
    for family in models.FAMILIES:
        hparams = {**models.default_hparams(family), "patch_size": 4}
        if setup.simulate:
            hparams.update(TINY[family])
        t0 = time.perf_counter()
        last = train_in_process(
            {"family": family, **hparams, **TRAIN_HP}, experiment=exp, data=data
        )
        _check("failure_reason" not in last, f"{family}: {last.get('failure_reason')}")
        out[family] = {
            "val_accuracy": last["val_accuracy"],
            "train_loss": last["train_loss"],
            "params": last["params"],
            "images_per_s": last["history"][-1]["images_per_s"],
            "seconds": round(time.perf_counter() - t0, 2),
        }
    # Above chance: by 0.3 after a GPU epoch (421 steps), by 0.05 after a simulated one (32).
    least = 1 / CLASSES + (0.05 if setup.simulate else 0.3)
    for family in models.FAMILIES:
        acc = out[family]["val_accuracy"]
        _check(acc > least, f"{family}: val accuracy {acc:.3f} after one epoch (< {least:.2f})")


# ---- 4. step time -------------------------------------------------------------------------


def _step_ms(setup: Setup, precision: str, *, steps: int, hparams: dict[str, Any]) -> float:
    """Milliseconds per optimizer step of a Mixer at batch 128, through the trial's engine
    (``search.trial.engine``) in ``precision`` on ``setup.device``."""
    import torch.nn.functional as F

    from search.trial.engine import build_engine, loop_clip_norm, optimizer_step, plan_batches

    exp = setup.experiment(f"training.precision={precision}", images=1024)
    torch.set_num_threads(setup.threads)
    torch.manual_seed(0)
    model = models.build_model(
        "mixer", num_classes=CLASSES, image_size=SIZE, in_channels=CHANNELS, **hparams
    ).to(setup.device)
    plan = plan_batches(128, world=1, n_train=1024, max_micro_batch_size=None)
    engine = build_engine(model, plan=plan, train_hp=TRAIN_HP, experiment=exp, device=setup.device)
    clip = loop_clip_norm(plan, exp, setup.device)
    dtype = next(engine.module.parameters()).dtype
    x = torch.randn(128, CHANNELS, SIZE, SIZE, device=setup.device, dtype=dtype)
    y = torch.randint(0, CLASSES, (128,), device=setup.device)

    def step() -> None:
        optimizer_step(engine, F.cross_entropy(engine(x).float(), y), clip)

    for _ in range(3):
        step()
    if setup.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if setup.device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps * 1000


def _step_time(setup: Setup, out: dict[str, Any]) -> None:
    """The default-size step here (bf16) against this machine's CPU (fp32, a child process);
    the precision trials' Mixer when simulated (bf16 on a CPU without bf16 units is slow)."""
    hparams = setup.mixer if setup.simulate else models.default_hparams("mixer")
    here = _step_ms(setup, "bf16", steps=3 if setup.simulate else 50, hparams=hparams)
    child = subprocess.run(
        [
            sys.executable,
            __file__,
            *("--cpu-step-ms", "3" if setup.simulate else "10"),
            *("--threads", str(setup.threads)),
            *(("--simulate-cpu",) if setup.simulate else ()),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        check=False,
    )
    _check(child.returncode == 0, f"the CPU step failed: {child.stderr.strip()[-300:]}")
    cpu = float(json.loads(child.stdout.strip().splitlines()[-1])["ms"])
    out.update(
        model={"family": "mixer", **hparams, "batch_size": 128},
        here_bf16_ms=here,
        cpu_fp32_ms=cpu,
        cpu_threads=setup.threads,
        speedup=cpu / here,
    )


if __name__ == "__main__":
    sys.exit(main())
