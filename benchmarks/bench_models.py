"""Training-step throughput of our model families against reference implementations.

For each family, our model (``models.build_model``) and a reference implementation are built at
the same configuration and trained on one fixed random batch (forward + cross-entropy backward +
AdamW step) on the CPU. After warmup, the two are timed in alternating order (ours, ref, ref,
ours, ...) in one process, ``--repeats`` times ``--steps`` steps each, so drifts of a shared
machine hit both equally. Reported: median images/s of each, and the median over repeats of
the paired speed ratio ours/reference (> 1: ours is faster), from wall-clock time and from
process CPU time (which leaves out time spent waiting for a core, steadier when other jobs
share the machine). Parameter counts of both are printed to show the configurations match.

References (the ``bench`` extra: ``pip install -e '.[bench]'``):

=========  ==========================================================================
vit        timm ``VisionTransformer`` (class token, learned positions, fused-qkv SDPA)
mixer      timm ``MlpMixer`` (``MixerBlock``)
gmlp       timm ``MlpMixer(block_layer=SpatialGatingBlock, mlp_layer=GatedMlp)``
perceiver  ``perceiver_pytorch.Perceiver`` (lucidrains): pixels + Fourier features,
           GEGLU feed-forward (x4). Ours runs on pixels too (patch_size=1, a 3->3
           projection) with mlp_ratio=6, which gives its GELU MLP the same parameters
           and FLOPs as the reference's GEGLU x4; no weight sharing in either.
fnet       no reference in timm or perceiver-pytorch: compared to OUR ViT at equal
           width, depth, MLP width and mean pooling (the ratio measures what Fourier
           mixing saves over self-attention, not an implementation gap).
=========  ==========================================================================

Usage::

    python benchmarks/bench_models.py [--families vit,mixer,gmlp,perceiver,fnet] [--steps 2]
        [--repeats 15] [--warmup 3] [--batch-size 32] [--threads 1] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import models

__all__ = ["CONFIGS", "Pair", "build_pairs", "main", "run_pair"]

IMAGE_SIZE = 32
IN_CHANNELS = 3
NUM_CLASSES = 10

#: Our hyperparameters per family (small CPU-sized configurations).
CONFIGS: dict[str, dict[str, Any]] = {
    "vit": {"patch_size": 4, "embed_dim": 128, "depth": 4, "num_heads": 4, "mlp_ratio": 2.0},
    "mixer": {
        "patch_size": 4,
        "hidden_dim": 128,
        "num_blocks": 4,
        "tokens_mlp_dim": 64,
        "channels_mlp_dim": 256,
    },
    "gmlp": {"patch_size": 4, "hidden_dim": 128, "num_blocks": 4, "ffn_dim": 512},
    "perceiver": {
        "patch_size": 1,
        "projection_dim": IN_CHANNELS,
        "num_freq_bands": 6,
        "max_freq": float(IMAGE_SIZE),
        "num_latents": 64,
        "latent_dim": 128,
        "num_iterations": 2,
        "self_per_cross": 2,
        "cross_heads": 1,
        "latent_heads": 8,
        "mlp_ratio": 6.0,
        "share_weights": False,
    },
    "fnet": {"patch_size": 4, "hidden_dim": 128, "num_blocks": 4, "mlp_dim": 256, "pool": "mean"},
}


@dataclasses.dataclass
class Pair:
    """Our model and its reference at one configuration."""

    family: str
    reference_name: str
    ours: nn.Module
    reference: nn.Module
    # the reference's input layout (identity unless it wants e.g. channels-last)
    reference_input: Callable[[Tensor], Tensor] = lambda x: x
    params_comparable: bool = True
    note: str = ""


def _ours(family: str, **override: Any) -> nn.Module:
    hparams = {**CONFIGS[family], **override}
    return models.build_model(
        family, num_classes=NUM_CLASSES, image_size=IMAGE_SIZE, in_channels=IN_CHANNELS, **hparams
    )


def _reference(family: str) -> tuple[str, nn.Module, Callable[[Tensor], Tensor]]:
    cfg = CONFIGS[family]
    common: dict[str, Any] = {
        "num_classes": NUM_CLASSES,
        "img_size": IMAGE_SIZE,
        "in_chans": IN_CHANNELS,
    }
    if family == "vit":
        from timm.models.vision_transformer import VisionTransformer

        model: nn.Module = VisionTransformer(
            **common,
            patch_size=cfg["patch_size"],
            embed_dim=cfg["embed_dim"],
            depth=cfg["depth"],
            num_heads=cfg["num_heads"],
            mlp_ratio=cfg["mlp_ratio"],
            global_pool="token",
        )
        return "timm VisionTransformer", model, lambda x: x
    if family == "mixer" or family == "gmlp":  # timm MlpMixer, with its gMLP blocks
        from timm.models.mlp_mixer import MlpMixer

        d = cfg["hidden_dim"]
        if family == "mixer":
            ratio: Any = (cfg["tokens_mlp_dim"] / d, cfg["channels_mlp_dim"] / d)
            extra: dict[str, Any] = {}
            name = "timm MlpMixer"
        else:
            from timm.layers import GatedMlp
            from timm.models.mlp_mixer import SpatialGatingBlock

            ratio = cfg["ffn_dim"] / d
            extra = {"block_layer": SpatialGatingBlock, "mlp_layer": GatedMlp}
            name = "timm MlpMixer+SpatialGatingBlock"
        model = MlpMixer(
            **common,
            patch_size=cfg["patch_size"],
            num_blocks=cfg["num_blocks"],
            embed_dim=d,
            mlp_ratio=ratio,
            **extra,
        )
        return name, model, lambda x: x
    if family == "perceiver":
        from perceiver_pytorch import Perceiver

        d = cfg["latent_dim"]
        model = Perceiver(
            num_freq_bands=cfg["num_freq_bands"],
            depth=cfg["num_iterations"],
            max_freq=cfg["max_freq"],
            input_channels=IN_CHANNELS,
            input_axis=2,
            num_latents=cfg["num_latents"],
            latent_dim=d,
            cross_heads=cfg["cross_heads"],
            latent_heads=cfg["latent_heads"],
            cross_dim_head=d // cfg["cross_heads"],
            latent_dim_head=d // cfg["latent_heads"],
            num_classes=NUM_CLASSES,
            self_per_cross_attn=cfg["self_per_cross"],
            weight_tie_layers=False,
        )
        # it takes channels-last pixels [B, H, W, C]
        return "perceiver-pytorch Perceiver", model, lambda x: x.permute(0, 2, 3, 1).contiguous()
    if family == "fnet":
        vit = _ours(
            "vit",
            patch_size=cfg["patch_size"],
            embed_dim=cfg["hidden_dim"],
            depth=cfg["num_blocks"],
            num_heads=4,
            mlp_ratio=cfg["mlp_dim"] / cfg["hidden_dim"],
            pool="mean",
        )
        return "our ViT (same width/depth)", vit, lambda x: x
    raise ValueError(f"family={family!r}: no benchmark; allowed: {', '.join(CONFIGS)}")


def build_pairs(families: Sequence[str]) -> list[Pair]:
    """Build (ours, reference) for each family, both seeded the same."""
    pairs = []
    for family in families:
        torch.manual_seed(0)
        ours = _ours(family)
        torch.manual_seed(0)
        name, reference, layout = _reference(family)
        notes = {
            "perceiver": "ours: patch_size=1, projection 3->3, mlp_ratio=6 (= GEGLU x4 cost)",
            "fnet": "no library reference; vs our ViT at equal width/depth (attention vs FFT)",
        }
        pairs.append(
            Pair(
                family=family,
                reference_name=name,
                ours=ours,
                reference=reference,
                reference_input=layout,
                params_comparable=family != "fnet",
                note=notes.get(family, ""),
            )
        )
    return pairs


def _train_step(model: nn.Module, x: Tensor, y: Tensor) -> Callable[[], None]:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def _time_steps(step: Callable[[], None], steps: int) -> tuple[float, float]:
    """Run ``steps`` steps; return (wall seconds, process CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return time.perf_counter() - wall, time.process_time() - cpu


def run_pair(
    pair: Pair, *, batch_size: int, steps: int, repeats: int, warmup: int
) -> dict[str, Any]:
    """Time ``pair`` (interleaved, alternating order) and return a result row.

    Each repeat times ``steps`` steps of each model back to back (order flipped every repeat).
    Throughputs are medians over repeats; the ratios are medians of the per-repeat paired
    ratios, from wall-clock time and from process CPU time (CPU time excludes the time the
    process waits for a core, so it is the steadier number on a shared machine).
    """
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, IN_CHANNELS, IMAGE_SIZE, IMAGE_SIZE, generator=g)
    y = torch.randint(0, NUM_CLASSES, (batch_size,), generator=g)
    with torch.no_grad():
        assert pair.ours(x).shape == (batch_size, NUM_CLASSES)
        assert pair.reference(pair.reference_input(x)).shape == (batch_size, NUM_CLASSES)
    runs = {
        "ours": _train_step(pair.ours, x, y),
        "reference": _train_step(pair.reference, pair.reference_input(x), y),
    }
    for step in runs.values():
        for _ in range(warmup):
            step()
    wall: dict[str, list[float]] = {"ours": [], "reference": []}
    cpu: dict[str, list[float]] = {"ours": [], "reference": []}
    for r in range(repeats):
        order = ("ours", "reference") if r % 2 == 0 else ("reference", "ours")
        for key in order:
            w, c = _time_steps(runs[key], steps)
            wall[key].append(w)
            cpu[key].append(c)
    images = steps * batch_size
    wall_ratios = [ref / o for o, ref in zip(wall["ours"], wall["reference"])]
    cpu_ratios = [ref / max(o, 1e-9) for o, ref in zip(cpu["ours"], cpu["reference"])]
    params_ours = sum(p.numel() for p in pair.ours.parameters())
    params_ref = sum(p.numel() for p in pair.reference.parameters())
    return {
        "family": pair.family,
        "reference": pair.reference_name,
        "config": CONFIGS[pair.family],
        "params_ours": params_ours,
        "params_reference": params_ref,
        "params_rel_diff": (params_ours - params_ref) / params_ref,
        "params_comparable": pair.params_comparable,
        "ours_images_per_s": images / statistics.median(wall["ours"]),
        "reference_images_per_s": images / statistics.median(wall["reference"]),
        "ratio": statistics.median(wall_ratios),
        "ratio_q1_q3": _quartiles(wall_ratios),
        "ours_cpu_images_per_s": images / statistics.median(cpu["ours"]),
        "reference_cpu_images_per_s": images / statistics.median(cpu["reference"]),
        "cpu_ratio": statistics.median(cpu_ratios),
        "cpu_ratio_q1_q3": _quartiles(cpu_ratios),
        "ours_wall_s": wall["ours"],
        "reference_wall_s": wall["reference"],
        "ours_cpu_s": cpu["ours"],
        "reference_cpu_s": cpu["reference"],
        "note": pair.note,
    }


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def machine_info(threads: int) -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "git_commit": commit or "unknown",
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": threads,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "timm": version("timm"),
        "perceiver-pytorch": version("perceiver-pytorch"),
    }


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    head = (
        "| family | reference | params ours | params ref | diff | ours img/s | ref img/s "
        "| ours/ref wall (IQR) | ours/ref CPU (IQR) |"
    )
    lines = [head, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        diff = f"{100 * r['params_rel_diff']:+.1f}%" if r["params_comparable"] else "n/a"
        (w1, w3), (c1, c3) = r["ratio_q1_q3"], r["cpu_ratio_q1_q3"]
        lines.append(
            f"| {r['family']} | {r['reference']} | {r['params_ours']:,} | "
            f"{r['params_reference']:,} | {diff} | {r['ours_images_per_s']:.0f} | "
            f"{r['reference_images_per_s']:.0f} | {r['ratio']:.2f}x ({w1:.2f}-{w3:.2f}) | "
            f"**{r['cpu_ratio']:.2f}x** ({c1:.2f}-{c3:.2f}) |"
        )
    return "\n".join(lines)


def _families(text: str) -> list[str]:
    names = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in names if f not in CONFIGS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"--families={text!r}: allowed (comma-separated): {', '.join(CONFIGS)}"
        )
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=_families, default=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=2, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats (median)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per model first")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT", help="write results")
    args = parser.parse_args(argv)
    for flag in ("steps", "repeats", "batch_size", "threads"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be >= 1")
    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    print(
        f"# {info['cpu']}, {info['logical_cpus']} logical CPUs, torch {info['torch']} "
        f"({args.threads} thread(s)), timm {info['timm']}, "
        f"perceiver-pytorch {info['perceiver-pytorch']}, commit {info['git_commit']}, "
        f"load average {info['load_average_1min_at_start']}"
    )
    print(
        f"# batch {args.batch_size}, {IMAGE_SIZE}x{IMAGE_SIZE}x{IN_CHANNELS}, "
        f"{args.warmup} warmup + {args.repeats} x {args.steps} timed steps per model",
        flush=True,
    )
    rows = []
    for pair in build_pairs(args.families):
        row = run_pair(
            pair,
            batch_size=args.batch_size,
            steps=args.steps,
            repeats=args.repeats,
            warmup=args.warmup,
        )
        rows.append(row)
        print(
            f"{row['family']:>9}: ours {row['ours_images_per_s']:8.1f} img/s, "
            f"ref {row['reference_images_per_s']:8.1f} img/s, ratio {row['ratio']:.2f}x wall, "
            f"{row['cpu_ratio']:.2f}x CPU "
            f"(params {row['params_ours']:,} vs {row['params_reference']:,})",
            flush=True,
        )
        del pair
    print()
    print(format_table(rows))
    for r in rows:
        if r["note"]:
            print(f"- {r['family']}: {r['note']}")
    if args.json is not None:
        info["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
        payload = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": info,
            "settings": {
                "batch_size": args.batch_size,
                "steps": args.steps,
                "repeats": args.repeats,
                "warmup": args.warmup,
                "image_size": IMAGE_SIZE,
                "in_channels": IN_CHANNELS,
                "num_classes": NUM_CLASSES,
                "optimizer": "AdamW(lr=1e-4, weight_decay=0.05)",
            },
            "results": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
