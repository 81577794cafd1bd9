"""A trial's evaluation: top-1, top-5 and loss over a split, sharded over the workers.

An anytime trial is evaluated once per iteration count (the last is the whole model's), and its
final report carries one point per count (:func:`anytime_points`): accuracies and own cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from deepspeed import DeepSpeedEngine

    from search.data import Augmenter
    from search.trial.model import Anytime
    from search.trial.sessions import TrialSession

__all__ = ["Evaluation", "anytime_points", "evaluate", "mean_evaluations"]


@dataclass(frozen=True)
class Evaluation:
    """One model's scores over a split."""

    loss: float
    accuracy: float  # top-1
    top5: float


@torch.no_grad()
def evaluate(
    engine: DeepSpeedEngine,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    *,
    augmenter: Augmenter,
    dtype: torch.dtype,
    session: TrialSession,
    anytime: Anytime | None,
) -> list[Evaluation]:
    """Top-1, top-5 and loss over a split (inputs normalized by ``augmenter`` and cast to
    ``dtype``), sharded over the session's workers and summed: one evaluation per iteration
    count of an anytime trial (the last is the whole model's), else one."""
    rank, world = session.rank, session.world_size
    engine.eval()
    device = engine.device
    counts = anytime.iterations if anytime else 1
    totals = torch.zeros(counts, 4, dtype=torch.float64, device=device)  # loss, top1, top5, n
    n = len(y_all)
    # Rank r takes positions r, r + world, ...; every rank runs the same number of forward
    # passes (ZeRO-3 gathers parameters collectively in forward): positions past the end wrap
    # around and are masked out.
    per_rank = -(-n // world)
    positions = torch.arange(per_rank) * world + rank
    for start in range(0, per_rank, 256):
        pos = positions[start : start + 256]
        valid = (pos < n).to(device)
        idx = pos % max(n, 1)
        x = augmenter.normalize(x_all[idx].to(device)).to(dtype)
        y = y_all[idx].to(device)
        every = engine(x, every_iteration=True) if anytime else engine(x)[None]
        for i, logits in enumerate(every.float()):  # [B, classes] per iteration count
            totals[i] += _scores(logits, y, valid)
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(totals)
    return [
        Evaluation(loss=float(t[0]) / c, accuracy=float(t[1]) / c, top5=float(t[2]) / c)
        for t, c in ((t, max(float(t[3]), 1.0)) for t in totals)
    ]


def _scores(logits: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Summed loss, top-1 and top-5 hits, and count over the valid rows of a batch."""
    k = min(5, logits.shape[-1])
    topk = logits.topk(k, dim=-1).indices
    loss = F.cross_entropy(logits, y, reduction="none")
    return torch.stack(
        [
            loss[valid].sum().double(),
            ((topk[:, 0] == y) & valid).sum().double(),
            ((topk == y[:, None]).any(dim=-1) & valid).sum().double(),
            valid.sum().double(),
        ]
    )


def mean_evaluations(runs: Sequence[list[Evaluation]]) -> list[Evaluation]:
    """The replicates' evaluations averaged per iteration count (one run: itself, exactly)."""
    if len(runs) == 1:
        return list(runs[0])
    return [
        Evaluation(
            loss=sum(e.loss for e in at_k) / len(at_k),
            accuracy=sum(e.accuracy for e in at_k) / len(at_k),
            top5=sum(e.top5 for e in at_k) / len(at_k),
        )
        for at_k in zip(*runs)
    ]


def anytime_points(
    anytime: Anytime,
    val: list[Evaluation],
    test: list[Evaluation] | None,
    *,
    val_runs: Sequence[list[Evaluation]] | None = None,
    test_runs: Sequence[list[Evaluation]] | None = None,
) -> list[dict[str, Any]]:
    """One point per iteration count: its accuracies on the final weights (the replicates'
    mean; with ``val_runs``/``test_runs``, each seed's too) and its own cost."""
    points = []
    for k, cost in enumerate(anytime.costs, 1):
        point: dict[str, Any] = {"iterations": k, **cost, "val_accuracy": val[k - 1].accuracy}
        point["val_top5"] = val[k - 1].top5
        if test is not None:
            point.update(test_accuracy=test[k - 1].accuracy, test_top5=test[k - 1].top5)
        if val_runs:
            point["val_accuracy_seeds"] = [run[k - 1].accuracy for run in val_runs]
        if test_runs:
            point["test_accuracy_seeds"] = [run[k - 1].accuracy for run in test_runs]
        points.append(point)
    return points
