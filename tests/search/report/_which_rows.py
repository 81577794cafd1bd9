"""Hand-built trial rows for the "Which <family>" tests (test_report_dimensions.py,
test_report_which.py): a few Perceiver trials with chosen hyperparameters, costs and
accuracies, one anytime point, one STOPPED trial that must not count, and baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from search import pareto, report

PERCEIVER = ("num_latents", "num_iterations", "projection_dim", "patch_size")
VIT = ("patch_size", "embed_dim", "depth")


def row(tid: str, family: str, flops: float, acc: float, **extra: Any) -> dict[str, Any]:
    """A trial row as trials.json holds it; ``hp`` keyword: the model hyperparameters."""
    hp = extra.pop("hp", {})
    base = {"trial_id": tid, "number": len(tid), "family": family, "status": "COMPLETE",
            "val_accuracy": acc, "test_accuracy": round(acc - 0.01, 4), "flops": flops,
            "params": flops * 100, "latency_ms": flops / 10, "epochs_run": 3,
            "train_time_s": 1.0, "config": {"family": family, **hp, "lr": 0.001}}  # fmt: skip
    return {**base, **{f"hp.{k}": v for k, v in hp.items()}, **extra}


def perceiver(n: int, it: int, proj: int, patch: int) -> dict[str, Any]:
    return {"hp": {"num_latents": n, "num_iterations": it, "projection_dim": proj,
                   "patch_size": patch, "latent_dim": 64}}  # fmt: skip


def vit(patch: int, embed: int, depth: int) -> dict[str, Any]:
    return {"hp": {"patch_size": patch, "embed_dim": embed, "depth": depth}}


ROWS = (
    row("p1", "perceiver", 10, 0.80, **perceiver(16, 1, 32, 2)),
    row("p2", "perceiver", 40, 0.90, **perceiver(32, 2, 32, 2)),
    # the anytime point of p2 at 1 of its 2 iterations: its own cost, no training time
    row(
        "p2@k1",
        "perceiver",
        20,
        0.85,
        **perceiver(32, 1, 32, 2),
        anytime_of="p2",
        anytime_iterations=1,
        train_time_s=0.0,
    ),
    row("p3", "perceiver", 30, 0.82, **perceiver(32, 1, 64, 4)),  # dominated by p2@k1
    # cut early by the scheduler: the best accuracy of all, and it must not count
    row("p4", "perceiver", 15, 0.95, **perceiver(16, 2, 64, 4), status="STOPPED"),
    row("v1", "vit", 12, 0.83, **vit(2, 32, 2)),
    row("v2", "vit", 35, 0.87, **vit(2, 64, 4)),
    row("m1", "mixer", 25, 0.86, hp={"patch_size": 2, "hidden_dim": 64, "num_blocks": 2}),
    row("g1", "gmlp", 5, 0.99, hp={"patch_size": 2}, status="STOPPED"),  # no COMPLETE row
)
DIMENSIONS = {"perceiver": PERCEIVER, "vit": VIT, "fnet": ("patch_size",), "gmlp": ("patch_size",)}


def hand_results(rows: tuple[dict[str, Any], ...] = ROWS) -> report.Results:
    objectives = pareto.as_objectives({"val_accuracy": "max", "flops": "min"})
    return report.Results(Path("hand"), {"name": "hand"}, objectives, rows)
