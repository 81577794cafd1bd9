"""``paretotune confirm DIR``, or a sweep's last phase (``confirm.max_trainings``): re-train,
with fresh seeds, the configurations whose place on the front is uncertain, most uncertain
first, until each is settled or the budget is spent.

A configuration is uncertain while its front-membership probability
(:mod:`search.pareto.membership`) is strictly between ``low`` and ``high`` (0.1 and 0.9). Each
confirmation trains the stored configuration once more, in this process, through the sweep's
own loop and engine (as ``reproduce`` does), with the next seed index the trial has not used
(its replicates are 0..K-1, so the first confirmation is seed K). Every finished seed is
appended at once to ``confirmations.json`` (written atomically): an interrupted ``confirm``
loses none, and a rerun continues. The probabilities are recomputed after each seed, with the
family's pooled seed variance now measured. ``trials.csv``/``trials.json`` are then exported
again with the confirmations merged (:func:`merge_confirmations`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search import storage
from search.errors import UserError
from search.pareto.membership import front_membership
from search.results import CONFIRMATIONS, load_confirmations, merge_confirmations
from search.vocabulary import ANYTIME_OF, TrialStatus

if TYPE_CHECKING:
    from search.data import DatasetSplits
    from search.experiment import Experiment

__all__ = ["KEPT_METRICS", "ConfirmOutcome", "check_confirmable", "confirm"]

#: The per-seed metrics a confirmation run keeps.
KEPT_METRICS = ("val_accuracy", "test_accuracy", "val_loss", "train_time_s")


@dataclass(frozen=True)
class ConfirmOutcome:
    """What a ``confirm`` did: the runs it trained, why it stopped, and the probabilities."""

    trained: tuple[dict[str, Any], ...]
    stopped_because: str
    probability: dict[str, float]
    uncertain: tuple[str, ...]


def check_confirmable(
    rows: Sequence[dict[str, Any]], running: int, out_dir: object, max_trainings: int, seeds: int
) -> None:
    """One line and exit 2 (a UserError) for what ``confirm`` cannot do; nothing is written."""
    if max_trainings < 1:
        raise UserError(f"confirm --max-trainings={max_trainings}: must be at least 1")
    if seeds < 1:
        raise UserError(f"confirm --seeds={seeds}: must be at least 1")
    if running:
        raise UserError(
            f"confirm {out_dir}: {running} trial(s) of its study are RUNNING: a sweep is running "
            f"there, or one stopped unresumed (`paretotune resume {out_dir}` first)"
        )
    if not any(r.get("status") == TrialStatus.COMPLETE for r in rows):
        raise UserError(f"confirm {out_dir}: no COMPLETE trial to confirm")


def confirm(
    out_dir: Path,
    *,
    experiment: Experiment,
    rows: list[dict[str, Any]],
    objectives: dict[str, str],
    seeds: int = 2,
    max_trainings: int = 8,
    low: float = 0.1,
    high: float = 0.9,
    train: Callable[[dict[str, Any], int], dict[str, Any]] | None = None,
    data: DatasetSplits | None = None,
    say: Callable[[str], None] = print,
) -> ConfirmOutcome:
    """Confirm the uncertain configurations of ``rows`` (read from ``out_dir``): each gets up
    to ``seeds`` confirmation seeds, at most ``max_trainings`` in all this call. ``train``
    (config, seed index) -> the last report: the sweep's loop in this process by default, on
    ``data`` (loaded when not given)."""
    train = train or _trainer(experiment, data)
    runs = load_confirmations(out_dir)
    trained: list[dict[str, Any]] = []
    while True:
        merged = [dict(r) for r in rows]
        merge_confirmations(merged, runs)
        membership = front_membership(merged, objectives)
        by_id = {str(r.get("trial_id")): r for r in merged}
        uncertain = tuple(
            t for t in membership.uncertain(low, high) if not by_id[t].get(ANYTIME_OF)
        )
        todo = [t for t in uncertain if by_id[t]["confirmations"] < seeds]
        if not todo:
            why = "every configuration is settled" if not uncertain else "each has its seeds"
            break
        if len(trained) >= max_trainings:
            why = f"the budget of {max_trainings} trainings is spent"
            break
        row = by_id[todo[0]]
        seed = int(row.get("replicates") or 1) + int(row["confirmations"])
        p = membership.overall[todo[0]]
        say(f"confirming {todo[0]} ({row.get('family')}, P(front) {p:.2f}) with seed {seed} ...")
        last = train(dict(row["config"]), seed)
        if last.get("failure_reason"):
            raise RuntimeError(f"confirm {todo[0]}: seed {seed} failed: {last['failure_reason']}")
        run = {"confirms": todo[0], "seed": seed, "finished_at": time.time()}
        run.update({k: last.get(k) for k in KEPT_METRICS})
        runs.append(run)
        trained.append(run)
        storage.write_text(
            storage.join(out_dir, CONFIRMATIONS), json.dumps({"runs": runs}, indent=1)
        )
        say(f"  {todo[0]} seed {seed}: val {run['val_accuracy']:.4f}")
    return ConfirmOutcome(tuple(trained), why, dict(membership.overall), uncertain)


def _trainer(
    experiment: Experiment, data: DatasetSplits | None
) -> Callable[[dict[str, Any], int], dict[str, Any]]:
    """Train one seed of a configuration through the sweep's loop, in this process."""
    from search.sweep.preflight import load_experiment_data
    from search.trial import train_in_process

    splits = data if data is not None else load_experiment_data(experiment)

    def train(config: dict[str, Any], seed: int) -> dict[str, Any]:
        return train_in_process(config, experiment=experiment, data=splits, replicates=[seed])

    return train
