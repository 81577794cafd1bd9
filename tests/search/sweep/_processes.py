"""Stopping what a test started, by PID (never by name: other Ray instances may run beside)."""

from __future__ import annotations

import psutil


def kill_by_pid(procs: list[psutil.Process]) -> None:
    """SIGKILL each process still alive, and wait for them."""
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=30)
