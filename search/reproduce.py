"""``paretotune reproduce DIR TRIAL_ID``: retrain one finished trial and compare.

The trial's stored configuration is trained again with the experiment's seed, data split and
recipe (``experiment.yaml`` of the results directory), in this process, through the same
training loop and DeepSpeed engine a sweep uses (no Ray). On a CPU the training is
deterministic for a given thread count, so the reproduced metrics should equal the stored ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.errors import UserError
from search.vocabulary import TrialStatus

if TYPE_CHECKING:
    from search.experiment import Experiment

__all__ = ["COMPARED", "Reproduction", "check_seed_index", "find_trial", "reproduce"]

#: The metrics compared, in print order.
COMPARED = ("val_accuracy", "test_accuracy", "val_loss", "params", "flops", "epochs_run")


def find_trial(rows: list[dict[str, Any]], trial_id: str, where: object) -> dict[str, Any]:
    """The COMPLETE trial ``trial_id`` (a Tune trial id or the study's trial number) among
    ``rows``; a UserError naming it otherwise."""
    row = next((r for r in rows if str(r.get("trial_id")) == trial_id), None)
    if row is None:
        row = next((r for r in rows if str(r.get("number")) == trial_id), None)
    if row is None:
        known = ", ".join(str(r.get("trial_id")) for r in rows[:8])
        raise UserError(f"reproduce {trial_id!r}: no such trial in {where}; e.g. {known}")
    if row.get("status") != TrialStatus.COMPLETE:
        raise UserError(
            f"reproduce {trial_id}: status {row.get('status')}; only COMPLETE trials (full "
            "budget) can be reproduced"
        )
    return row


@dataclass(frozen=True)
class Reproduction:
    """A trial's stored metrics beside those of its retraining."""

    trial_id: str
    family: str
    config: dict[str, Any]
    stored: dict[str, Any]
    reproduced: dict[str, Any]

    def difference(self, metric: str) -> float:
        """``reproduced - stored`` (NaN where either is missing)."""
        a, b = self.stored.get(metric), self.reproduced.get(metric)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return float(b) - float(a)
        return math.nan


def check_seed_index(row: dict[str, Any], seed: int | None) -> None:
    """``--seed``: an index among the trial's replicates; a UserError naming them otherwise."""
    if seed is None:
        return
    count = int(row.get("replicates") or 1)
    if not 0 <= seed < count:
        raise UserError(
            f"reproduce --seed {seed}: trial {row.get('trial_id')} trained {count} seed(s); "
            f"allowed: 0 to {count - 1}"
        )


def reproduce(
    out_dir: str | Path,
    trial_id: str,
    *,
    experiment: Experiment | None = None,
    trials: dict[str, Any] | None = None,
    seed: int | None = None,
) -> Reproduction:
    """Retrain trial ``trial_id`` (a Tune trial id or the study's trial number) of a sweep:
    every replicate, or the one at index ``seed`` alone (compared with that seed's values).
    ``experiment`` and ``trials`` (:func:`search.results.read_trials`): its ``experiment.yaml``
    and ``trials.json`` when the caller has read them already."""
    from search.experiment import load_experiment
    from search.results import read_trials
    from search.sweep import load_experiment_data
    from search.trial import train_in_process

    out = Path(out_dir).expanduser()
    if not (out / "experiment.yaml").is_file() or not (out / "trials.json").is_file():
        raise UserError(f"reproduce {out}: no experiment.yaml and trials.json there")
    rows = (trials if trials is not None else read_trials(out))["trials"]
    row = find_trial(rows, trial_id, out)
    check_seed_index(row, seed)
    exp = experiment if experiment is not None else load_experiment(out / "experiment.yaml")
    last = train_in_process(
        row["config"],
        experiment=exp,
        data=load_experiment_data(exp),
        replicates=None if seed is None else [seed],
    )
    if last.get("failure_reason"):
        raise RuntimeError(f"reproduce {trial_id}: the retraining failed: {last['failure_reason']}")
    reproduced = {**last, "epochs_run": last.get("epoch")}
    return Reproduction(
        trial_id=str(row["trial_id"]),
        family=str(row["family"]),
        config=dict(row["config"]),
        stored={k: _stored(row, k, seed) for k in COMPARED},
        reproduced={k: reproduced.get(k) for k in COMPARED},
    )


def _stored(row: dict[str, Any], metric: str, seed: int | None) -> Any:
    """``row``'s stored ``metric``; for one seed, that seed's own value (None for a metric the
    row keeps only as the seeds' mean: nothing to compare one seed with)."""
    if seed is None or metric not in _PER_SEED:
        return row.get(metric)
    seeds = row.get(f"{metric}_seeds")
    return seeds[seed] if isinstance(seeds, list) and seed < len(seeds) else None


#: The metrics that differ from seed to seed (costs and epochs do not).
_PER_SEED = ("val_accuracy", "test_accuracy", "val_loss")
