"""The sweep: Optuna proposes, Ray Tune schedules, the study records.

- :mod:`~search.sweep.tuner`: ``run`` / ``resume``, the Tune run itself, the cost estimator;
- :mod:`~search.sweep.guards`: what keeps results safe (output checks, the run lock);
- :mod:`~search.sweep.study`: the Optuna study (opened, read, re-queued);
- :mod:`~search.sweep.preflight`: every check before the first trial (the run and its dry run);
- :mod:`~search.sweep.ray_cluster`: the Ray address, resolved once, and the connection;
- :mod:`~search.sweep.resources`: what a trial asks of Ray against what the cluster offers;
- :mod:`~search.sweep.interrupts`: SIGINT and SIGTERM, a clean stop either way
  (:mod:`~search.sweep.stopping`: between two steps of Tune's loop);
- :mod:`~search.sweep.searcher`, :mod:`~search.sweep.proposer`, :mod:`~search.sweep.samplers`:
  how proposals are made; :mod:`~search.sweep.schedulers`: MO-ASHA;
  :mod:`~search.sweep.progress`: the progress lines;
- :mod:`~search.sweep.confirm`: fresh seeds for the configurations whose place on the front
  is uncertain (``paretotune confirm``, or the sweep's last phase).
"""

from search.sweep.guards import stored_experiment
from search.sweep.interrupts import SweepInterrupted
from search.sweep.preflight import load_experiment_data, preflight
from search.sweep.ray_cluster import RayAddress, resolve_ray_address
from search.sweep.resources import ResourcesUnavailable
from search.sweep.study import count_trained, open_study
from search.sweep.tuner import CostEstimator, SweepResult, make_scheduler, resume, run

__all__ = [
    "CostEstimator",
    "RayAddress",
    "ResourcesUnavailable",
    "SweepInterrupted",
    "SweepResult",
    "count_trained",
    "load_experiment_data",
    "make_scheduler",
    "open_study",
    "preflight",
    "resolve_ray_address",
    "resume",
    "run",
    "stored_experiment",
]
