"""A plain PyTorch training loop (no Ray, no DeepSpeed): the project's convergence anchor.

It trains one model family on a dataset's splits with the project's own pieces (the ``search.data``
splits, normalisation and augmentation, ``models.build_model``, ``search.trial.optim``'s optimizers
and warmup-cosine schedule) and nothing else, so a sweep's numbers can be checked against what the
same recipe reaches without the search machinery around it.

The recipe: ``load_dataset(dataset, val_fraction=0.15, train_subset=..., seed=0)`` (the split
fixed), ``--augment`` (default ``none``: only ``Augmenter.normalize``; else the policy, drawn from
``torch.Generator().manual_seed(seed)``), ``torch.manual_seed(seed)`` before the model is built,
one epoch of linear warmup then cosine decay (``WarmupCosine``, stepped after every optimizer
step), cross-entropy (optionally label-smoothed), gradient clipping at norm 1.0, the last short
batch dropped, a shuffle per epoch from ``torch.Generator().manual_seed(seed + epoch)``, and an
evaluation on val and test (eval mode, no_grad) after every epoch.

Usage::

    python benchmarks/plain_loop.py --family mixer \\
        --hparams '{"patch_size": 2, "hidden_dim": 64, "num_blocks": 4}' \\
        --optimizer adamw --lr 3e-3 --epochs 20 [--image-size 16] [--batch-size 64] \\
        [--weight-decay 0.05] [--label-smoothing 0.0] [--seed 0] [--threads 1] \\
        [--dataset fashion_mnist --train-subset 10000 --val-fraction 0.1 --augment crop_flip]

prints one JSON line: val/test accuracy of the final epoch, the best val accuracy, wall-clock
seconds of the training loop (evaluations included, data loading excluded) and the per-epoch
val accuracy history.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import models
from search.data import AUGMENT_POLICIES, DATASETS, Augmenter, DatasetSplits, batches, load_dataset
from search.trial.optim import WarmupCosine, build_optimizer

__all__ = ["evaluate", "main", "train_plain"]

VAL_FRACTION = 0.15
DATA_SEED = 0  # the split is fixed; `seed` only moves the model init and the shuffle
CLIP_NORM = 1.0


@torch.no_grad()
def evaluate(
    model: nn.Module, aug: Augmenter, x: Tensor, y: Tensor, batch_size: int = 512
) -> float:
    """Top-1 accuracy of ``model`` on uint8 images ``x`` with labels ``y`` (eval mode)."""
    model.eval()
    correct = 0
    for idx in batches(x, y, batch_size):
        logits = model(aug.normalize(x[idx]))
        correct += int((logits.argmax(dim=-1) == y[idx]).sum())
    return correct / max(len(y), 1)


def train_plain(
    family: str,
    hparams: dict[str, Any],
    splits: DatasetSplits,
    *,
    optimizer: str = "adamw",
    lr: float,
    weight_decay: float = 0.05,
    batch_size: int = 64,
    epochs: int,
    seed: int = 0,
    augment: str = "none",
    label_smoothing: float = 0.0,
    threads: int = 1,
) -> dict[str, Any]:
    """Train ``family`` with ``hparams`` on ``splits``; return its accuracies.

    Returns ``{"val_accuracy", "test_accuracy"}`` of the final epoch, ``"best_val_accuracy"``
    over epochs, ``"seconds"`` (wall clock of the loop, per-epoch evaluations included) and
    ``"history"`` (val accuracy after each epoch).
    """
    if epochs < 1:
        raise ValueError(f"epochs={epochs!r}: need >= 1")
    torch.set_num_threads(threads)
    aug = Augmenter(splits, policy=augment)
    aug_gen = torch.Generator().manual_seed(seed)
    n_train = len(splits.train_y)
    steps_per_epoch = n_train // batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch_size={batch_size}: larger than the {n_train} training images")

    torch.manual_seed(seed)
    model = models.build_model(
        family,
        num_classes=splits.num_classes,
        image_size=splits.image_size,
        in_channels=splits.in_channels,
        **hparams,
    )
    opt = build_optimizer(model, optimizer, lr=lr, weight_decay=weight_decay, fused=False)
    sched = WarmupCosine(
        warmup_steps=steps_per_epoch, total_steps=steps_per_epoch * epochs
    ).scheduler(opt)

    history: list[float] = []
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        gen = torch.Generator().manual_seed(seed + epoch)
        for idx in batches(
            splits.train_x, splits.train_y, batch_size, shuffle=True, generator=gen, drop_last=True
        ):
            xb = aug.augment(splits.train_x[idx], aug_gen)
            yb = splits.train_y[idx]
            loss = F.cross_entropy(model(xb), yb, label_smoothing=label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
            opt.step()
            sched.step()
        history.append(evaluate(model, aug, splits.val_x, splits.val_y))
    test_accuracy = evaluate(model, aug, splits.test_x, splits.test_y)
    seconds = time.perf_counter() - start
    return {
        "val_accuracy": history[-1],
        "test_accuracy": test_accuracy,
        "best_val_accuracy": max(history),
        "seconds": seconds,
        "history": history,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", required=True, choices=models.FAMILIES)
    parser.add_argument("--hparams", default="{}", help="model hyperparameters as a JSON object")
    parser.add_argument("--optimizer", default="adamw", choices=("adamw", "lamb"))
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dataset", default="digits", choices=DATASETS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--val-fraction", type=float, default=VAL_FRACTION)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--augment", default="none", choices=AUGMENT_POLICIES)
    args = parser.parse_args(argv)
    hparams = json.loads(args.hparams)
    if not isinstance(hparams, dict):
        parser.error("--hparams: expected a JSON object")
    splits = load_dataset(
        args.dataset,
        image_size=args.image_size,
        data_dir=args.data_dir,
        val_fraction=args.val_fraction,
        train_subset=args.train_subset,
        seed=DATA_SEED,
    )
    result = train_plain(
        args.family,
        hparams,
        splits,
        optimizer=args.optimizer,
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        epochs=args.epochs,
        seed=args.seed,
        augment=args.augment,
        label_smoothing=args.label_smoothing,
        threads=args.threads,
    )
    record = {
        "family": args.family,
        "hparams": hparams,
        "optimizer": args.optimizer,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "image_size": args.image_size,
        "dataset": args.dataset,
        "train_subset": args.train_subset,
        "val_fraction": args.val_fraction,
        "augment": args.augment,
        "seed": args.seed,
        "label_smoothing": args.label_smoothing,
        **result,
    }
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
