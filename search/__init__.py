"""paretotune's search engine: experiments, sweeps, results, Pareto fronts and reports.

Python API (mirrors the CLI)::

    import search
    result = search.run("smoke", overrides=["num_trials=4"], output_dir="results/smoke")
    result.front          # Pareto-optimal trial rows
    search.resume("results/smoke")

Heavy modules (Ray, DeepSpeed) are imported lazily, when a sweep starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.errors import UserError
from search.experiment import Experiment, load_experiment

if TYPE_CHECKING:
    from search.sweep import SweepResult

__all__ = ["Experiment", "SweepResult", "UserError", "load_experiment", "resume", "run"]


def run(
    experiment: Experiment | str | Path | dict[str, Any] = "default", **kwargs: Any
) -> SweepResult:
    """Run a sweep; see :func:`search.sweep.run`."""
    from search.sweep import run as _run

    return _run(experiment, **kwargs)


def resume(output_dir: str | Path, **kwargs: Any) -> SweepResult:
    """Continue an interrupted sweep; see :func:`search.sweep.resume`."""
    from search.sweep import resume as _resume

    return _resume(output_dir, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "SweepResult":
        from search.sweep import SweepResult

        return SweepResult
    raise AttributeError(name)
