"""Stops that mean stop: Ctrl-C (SIGINT) and SIGTERM (SLURM, Kubernetes, spot preemption) end a
sweep the same way.

While :func:`catch_stops` is active, the first of either signal raises :class:`SweepInterrupted`
in the driver's main thread (a bare KeyboardInterrupt where Ray's compiled code re-raises it:
:func:`interruption` recovers the stop). Where the driver writes the study, the stop is
:func:`deferred` to a safe point instead, so no write is cut in half: the end of the block, or
the end of a step of Tune's loop (:class:`~search.sweep.stopping.StopBetweenSteps` calls
:func:`raise_pending`). The sweep then marks its trials in flight
INTERRUPTED (re-queued for ``resume``), writes its tables (each renamed into place whole) and
stops Ray (``search.sweep.tuner``); the command prints one line naming ``paretotune resume DIR``
and exits with 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM. A second signal
meanwhile forces the exit: the driver's child processes (a private Ray's) are killed by PID and
the process ends at once. The tables are then as last written whole, the study is a database,
and ``resume`` marks what was still running.

Ray's ``ray.init`` takes SIGTERM for itself (it exits the driver mid-call); :func:`rearm` takes
it back (``search.sweep.ray_cluster.init_ray`` calls it). Tune's own SIGINT handler, which ends
a run as if it had finished, is switched off by the sweep.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from search import console
from search import storage as store

__all__ = [
    "STOP_SIGNALS",
    "SweepInterrupted",
    "catch_stops",
    "deferred",
    "interruption",
    "raise_pending",
    "rearm",
]

#: The signals that stop a sweep, handled alike.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SweepInterrupted(KeyboardInterrupt):
    """A stop signal ended the sweep. ``output``: the results folder ``resume`` continues (None
    when the run left nothing behind); ``marked``: the trials in flight marked INTERRUPTED."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.output: store.Where | None = None
        self.marked = 0

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, as a shell reports a process that the signal ended."""
        return 128 + self.signum

    def __str__(self) -> str:
        name = signal.Signals(self.signum).name
        if self.output is None:
            return f"interrupted by {name} before the first trial; nothing was kept"
        if self.marked:
            trials = "1 trial" if self.marked == 1 else f"{self.marked} trials"
            marked = f"{trials} in flight marked INTERRUPTED"
        else:
            marked = "no trial was in flight"
        return f"interrupted by {name}: {marked}; continue with `paretotune resume {self.output}`"


class _Stops:
    """The handlers' state: how deep ``catch_stops`` is nested, the signal received, where the
    sweep writes, and the handlers it replaced."""

    def __init__(self) -> None:
        self.depth = 0
        self.deferring = 0
        self.received: int | None = None
        self.raised = False
        self.output: store.Where | None = None
        self.previous: dict[int, Any] = {}


_stops = _Stops()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _stops.received is not None:
        _force_exit(signum)
    _stops.received = signum
    if not _stops.deferring:
        raise_pending()


def raise_pending() -> None:
    """Raise the stop a signal asked for, once (nothing when none was received)."""
    if _stops.received is not None and not _stops.raised:
        _stops.raised = True
        raise SweepInterrupted(_stops.received)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """In the block a stop signal is only noted; it is raised at the block's end (or earlier,
    at a :func:`raise_pending`). A second signal still forces the exit at once."""
    _stops.deferring += 1
    try:
        yield
    finally:
        _stops.deferring -= 1
    if not _stops.deferring:
        raise_pending()


def _force_exit(signum: int) -> None:
    """A second stop signal: no more cleaning up. The driver's child processes (a private
    Ray's raylet, workers and agents) are killed by PID, then this process ends."""
    name = signal.Signals(signum).name
    hint = f"; continue with `paretotune resume {_stops.output}`" if _stops.output else ""
    with contextlib.suppress(Exception):
        console.say(
            f"paretotune: a second {name}: stopped at once; the tables hold what was last "
            f"written whole{hint}",
            err=True,
        )
    with contextlib.suppress(Exception):
        import psutil

        children = psutil.Process().children(recursive=True)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        psutil.wait_procs(children, timeout=5)
    os._exit(128 + signum)


def interruption(exc: KeyboardInterrupt) -> SweepInterrupted:
    """``exc`` as the stop it stands for. Ray's compiled calls turn any exception a signal
    handler raises inside them into a bare KeyboardInterrupt: the signal received says which."""
    if isinstance(exc, SweepInterrupted):
        return exc
    return SweepInterrupted(_stops.received or signal.SIGINT)


def rearm() -> None:
    """Take the stop signals back (after a library, such as ``ray.init``, installed its own)."""
    if _stops.depth and threading.current_thread() is threading.main_thread():
        for signum in STOP_SIGNALS:
            signal.signal(signum, _on_signal)


@contextlib.contextmanager
def catch_stops(output: store.Where) -> Iterator[None]:
    """For the block, SIGINT and SIGTERM raise :class:`SweepInterrupted` (a second one forces
    the exit); ``output`` is the results folder named in the forced exit's line. Outside the
    main thread, where Python cannot handle signals, the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _stops.depth == 0:
        _stops.received, _stops.raised, _stops.output = None, False, output
        _stops.previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    _stops.depth += 1
    rearm()
    try:
        yield
    except KeyboardInterrupt as exc:
        stop = interruption(exc)
        if stop is exc:
            raise
        raise stop from None
    finally:
        _stops.depth -= 1
        if _stops.depth == 0:
            for signum, handler in _stops.previous.items():
                signal.signal(signum, handler)
            _stops.received = None
