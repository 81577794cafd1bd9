"""Where a sweep's time goes: phase timers for the driver and for each trial.

A trial adds its own phases (model build, cost measurement, engine set-up, reports,
checkpoints) to ``TrialProgress.phases`` and reports them with every epoch. The driver's
phases (a proposal's suggestion, the study writes at a trial's end) land in
:data:`DRIVER_PHASES` of the driver process, keyed by Tune trial id, for
``benchmarks/bench_sweep.py`` to read after an in-process sweep.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

__all__ = ["DRIVER_PHASES", "timed"]

#: Tune trial id -> driver phase -> seconds (and ``<phase>_at``: when the phase ended, epoch s).
DRIVER_PHASES: defaultdict[str, dict[str, float]] = defaultdict(dict)


@contextmanager
def timed(phases: MutableMapping[str, float], phase: str) -> Iterator[None]:
    """Add the time spent in the block to ``phases[phase]`` (seconds); note when it ended."""
    start = time.perf_counter()
    try:
        yield
    finally:
        phases[phase] = phases.get(phase, 0.0) + time.perf_counter() - start
        phases[f"{phase}_at"] = time.time()
