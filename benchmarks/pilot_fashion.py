"""The Fashion-MNIST pilot: which plain-loop recipe beats a tuned SVC on the same subset?

Trains a queue of configurations with ``benchmarks/plain_loop.py`` (the project's models,
optimizer, schedule and augmentation; no Ray, no DeepSpeed), two at a time with one thread
each, and fits the anchors of ``bench_quality.sklearn_anchors`` (tuned RBF SVC, logistic
regression) on the same train subset, val split and resolution. Every finished row is appended
to ``--out`` at once, and a rerun skips the rows already there, so a stopped pilot loses nothing.

Usage::

    python benchmarks/pilot_fashion.py [--out benchmarks/pilot_fashion.json] [--epochs 15]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

TRAIN_SUBSET = 10_000
VAL_FRACTION = 0.1  # 6,000 val images, outside the subset
BATCH = 128
LR = 2e-3
WEIGHT_DECAY = 0.05

#: (family, hparams, image_size, augment, seed), most informative first.
_P2 = {"patch_size": 2, "hidden_dim": 64, "num_blocks": 4}
_P4 = {"patch_size": 4, "hidden_dim": 64, "num_blocks": 4}
QUEUE: list[tuple[str, dict[str, Any], int, str, int]] = [
    ("mixer", _P2, 14, "crop_flip", 0),
    ("gmlp", _P2, 14, "crop_flip", 0),
    ("mixer", _P2, 14, "none", 0),
    ("gmlp", _P2, 14, "none", 0),
    ("mixer", _P4, 28, "none", 0),
    ("gmlp", _P4, 28, "none", 0),
    ("mixer", _P2, 14, "translate", 0),
    ("mixer", _P2, 14, "none", 1),
    ("gmlp", _P2, 14, "none", 1),
    ("mixer", {**_P2, "hidden_dim": 128}, 14, "none", 0),
    ("mixer", _P2, 14, "crop_flip", 1),
    ("gmlp", _P2, 14, "crop_flip", 1),
]


def _key(row: dict[str, Any]) -> str:
    return json.dumps(
        [
            row["kind"],
            row.get("family"),
            row.get("hparams"),
            row["image_size"],
            row.get("augment"),
            row.get("seed"),
            row.get("epochs"),
        ],
        sort_keys=True,
    )


def _train(job: tuple[str, dict[str, Any], int, str, int, int]) -> dict[str, Any]:
    family, hparams, size, augment, seed, epochs = job
    from plain_loop import train_plain

    from search.data import load_dataset

    data = load_dataset(
        "fashion_mnist", image_size=size, val_fraction=VAL_FRACTION, train_subset=TRAIN_SUBSET
    )
    result = train_plain(
        family,
        hparams,
        data,
        lr=LR,
        weight_decay=WEIGHT_DECAY,
        batch_size=BATCH,
        epochs=epochs,
        seed=seed,
        augment=augment,
        threads=1,
    )
    return {
        "kind": "plain_loop",
        "family": family,
        "hparams": hparams,
        "image_size": size,
        "augment": augment,
        "seed": seed,
        "epochs": epochs,
        **result,
    }


def _anchors(size: int) -> list[dict[str, Any]]:
    from bench_quality import sklearn_anchors

    from search.data import load_dataset

    data = load_dataset(
        "fashion_mnist", image_size=size, val_fraction=VAL_FRACTION, train_subset=TRAIN_SUBSET
    )
    return [{"kind": k, "image_size": size, **v} for k, v in sklearn_anchors(data).items()]


def time_steps(rounds: int = 5, steps: int = 10) -> dict[str, float]:
    """Seconds per training step (batch :data:`BATCH`, one thread) of each family at 14x14 patch
    2 and at 28x28 patch 4 (the same 49 tokens), measured interleaved in one process so that a
    shared machine's load moves both alike: the median over ``rounds`` of ``steps`` steps."""
    import statistics

    import torch

    import models
    from search.trial.optim import build_optimizer

    torch.set_num_threads(1)
    shapes = {"14x14 p2": (14, _P2), "28x28 p4": (28, _P4)}
    runs = {}
    for family in ("mixer", "gmlp"):
        for label, (size, hp) in shapes.items():
            torch.manual_seed(0)
            model = models.build_model(family, num_classes=10, image_size=size, in_channels=1, **hp)
            opt = build_optimizer(model, "adamw", lr=LR, weight_decay=WEIGHT_DECAY, fused=False)
            x, y = torch.randn(BATCH, 1, size, size), torch.randint(0, 10, (BATCH,))
            runs[f"{family} {label}"] = (model, opt, x, y)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for key, (model, opt, x, y) in runs.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            times[key].append((time.perf_counter() - t0) / steps)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("pilot_fashion.json")))
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timing", action="store_true", help="only time the two resolutions")
    args = parser.parse_args(argv)
    if args.timing:
        print(json.dumps(time_steps(), indent=1))
        return 0
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {"rows": []}
    doc["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus"
    doc["revision"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    done = {_key(r) for r in doc["rows"]}

    def add(rows: list[dict[str, Any]]) -> None:
        for row in rows:
            doc["rows"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "history"}), flush=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(out)

    jobs = [(*q, args.epochs) for q in QUEUE]
    todo = [
        j
        for j in jobs
        if _key(
            {
                "kind": "plain_loop",
                "family": j[0],
                "hparams": j[1],
                "image_size": j[2],
                "augment": j[3],
                "seed": j[4],
                "epochs": j[5],
            }
        )
        not in done
    ]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(_train, j) for j in todo]
        for size in (14, 28):
            if _key({"kind": "svc_rbf", "image_size": size}) not in done:
                add(_anchors(size))
        for future in as_completed(futures):
            add([future.result()])
    print(f"pilot done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
