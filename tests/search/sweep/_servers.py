"""Helpers for the tests that start a real server (PostgreSQL, optuna-dashboard, moto S3)."""

from __future__ import annotations

import socket
import subprocess


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Stop a server we started, by its PID: terminate, then kill if it does not exit."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
