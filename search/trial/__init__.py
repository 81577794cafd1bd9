"""One trial: a proposal's model trained through a DeepSpeed engine, evaluated and reported.

- :mod:`~search.trial.trainable`: ``train_trial``, the Ray Tune function trainable (one
  process, or a Ray Train ``TorchTrainer`` of several workers), and ``train_in_process``;
- :mod:`~search.trial.sessions`: :class:`TrialSession`, where a trial reports to and restores
  from, and its Tune / Ray Train V2 adapters;
- :mod:`~search.trial.loop`: ``run_trial``, the training loop (setup, epochs, reports);
- :mod:`~search.trial.model`: the model built and its cost measured (per anytime iteration);
- :mod:`~search.trial.evaluate`: top-1, top-5 and loss over a split, per anytime iteration;
- :mod:`~search.trial.state`: the trial's progress and its checkpoint, saved and restored;
- :mod:`~search.trial.engine`: batch plan, DeepSpeed config and engine, process group, a step;
- :mod:`~search.trial.optim`: parameter groups, AdamW/LAMB, the warmup-cosine schedule;
- :mod:`~search.trial.timing`: phase timers, the trial's and the driver's.

The trainable imports the loop and the sessions; neither imports the other.
"""

from __future__ import annotations

from search.trial.loop import run_trial, trial_seed
from search.trial.sessions import TrialSession
from search.trial.trainable import train_in_process, train_trial

__all__ = [
    "TrialSession",
    "run_trial",
    "train_in_process",
    "train_trial",
    "trial_seed",
]
