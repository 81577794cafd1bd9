"""The command line's own output, kept apart from what the libraries under it print.

Optuna (its study lines and experimental warnings), Ray (token notices, Tune's tables, its
core workers' C++ log lines) and DeepSpeed all write to the process's standard output and
error. While :func:`libraries_to_log` is active, file descriptors 1 and 2 point at a log file,
so everything the libraries and the processes they start write lands there, whichever way
they write it; paretotune's own lines go through :func:`say`, which writes to the terminal the
command was started on. The log starts in a temporary file; once a sweep has its output
folder, :func:`keep_log_in` moves it to ``<output>/paretotune.log`` (an object-store output
gets a copy at the end). A command that never got an output folder leaves no log behind.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from search import storage as store

__all__ = ["LOG_NAME", "drop_log", "keep_log_in", "libraries_to_log", "say"]

#: The log a sweep's output folder holds: what Optuna, Ray and DeepSpeed printed.
LOG_NAME = "paretotune.log"


@dataclass
class _Capture:
    """The terminal paretotune writes to, and the log the libraries write to, for one command."""

    out: TextIO
    err: TextIO
    log_path: Path
    log_fd: int
    #: The log is still the temporary file (removed at the end, after any upload).
    temporary: bool = True
    kept: bool = False
    upload_to: str | None = None
    _owned: list[TextIO] = field(default_factory=list)


_active: _Capture | None = None


def say(message: str, *, err: bool = False) -> None:
    """Write one of paretotune's own lines to the terminal (standard error with ``err``)."""
    if _active is not None:
        stream = _active.err if err else _active.out
    else:
        stream = sys.stderr if err else sys.stdout
    print(message, file=stream, flush=True)


def _terminal(stream: TextIO, fd: int, owned: list[TextIO]) -> TextIO:
    """Where ``stream`` writes now, kept writable after fd ``fd`` is pointed elsewhere: a copy
    of the descriptor when ``stream`` writes to ``fd``, else ``stream`` itself (a test's
    in-memory stream, which the redirection does not touch)."""
    try:
        same = stream.fileno() == fd
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        same = False
    if not same:
        return stream
    copy = os.fdopen(os.dup(fd), "w", buffering=1, encoding=stream.encoding, errors="replace")
    owned.append(copy)
    return copy


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _point_fds_at(fd: int) -> None:
    _flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)


@contextlib.contextmanager
def libraries_to_log(command: str, *, enabled: bool = True) -> Iterator[None]:
    """For the block, the process's standard output and error (file descriptors 1 and 2) go to
    a log file and :func:`say` to the terminal. ``enabled=False`` (``--debug``) leaves both on
    the terminal. Not re-entrant: one command runs one capture."""
    global _active
    if not enabled or _active is not None:
        yield
        return
    try:
        saved: tuple[int, int] | None = (os.dup(1), os.dup(2))
    except OSError:  # a closed standard output or error: nothing to keep apart
        saved = None
    if saved is None:
        yield
        return
    owned: list[TextIO] = []
    out = _terminal(sys.stdout, 1, owned)
    err = _terminal(sys.stderr, 2, owned)
    fd, name = tempfile.mkstemp(prefix="paretotune-", suffix=".log")
    os.write(fd, f"== paretotune {command} at {time.strftime('%Y-%m-%d %H:%M:%S')} ==\n".encode())
    _active = _Capture(out=out, err=err, log_path=Path(name), log_fd=fd, _owned=owned)
    _point_fds_at(fd)
    try:
        yield
    finally:
        capture, _active = _active, None
        _flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for copy in saved:
            os.close(copy)
        os.close(capture.log_fd)
        _finish(capture)
        for stream in owned:
            with contextlib.suppress(OSError):
                stream.close()


def keep_log_in(where: store.Where) -> None:
    """The sweep's output folder exists: the log goes on in ``<where>/paretotune.log`` (appended
    to, so a resumed sweep adds to its first run's log). For an object-store URI the log stays
    local and is copied there when the command ends. Without a capture, nothing happens."""
    capture = _active
    if capture is None or capture.kept:
        return
    capture.kept = True
    if not isinstance(where, Path):
        capture.upload_to = str(store.join(where, LOG_NAME))
        return
    target = where / LOG_NAME
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _flush()
    with open(capture.log_path, "rb") as so_far, os.fdopen(os.dup(fd), "wb") as log:
        shutil.copyfileobj(so_far, log)
    _point_fds_at(fd)
    os.close(capture.log_fd)
    capture.log_path.unlink(missing_ok=True)
    capture.log_fd, capture.log_path, capture.temporary = fd, target, False


def _finish(capture: _Capture) -> None:
    """A temporary log is copied to its object store, then removed; one never kept, removed."""
    if not capture.temporary:
        return
    if capture.upload_to is not None:
        try:
            text = capture.log_path.read_text(encoding="utf-8", errors="replace")
            with contextlib.suppress(FileNotFoundError):
                text = store.read_text(capture.upload_to) + text
            store.write_text(capture.upload_to, text)
        except Exception as exc:  # the results are written; a log problem must not hide them
            say(f"paretotune: warning: {capture.upload_to} not written: {exc}", err=True)
    capture.log_path.unlink(missing_ok=True)


def drop_log() -> None:
    """A sweep that stopped before its first trial leaves nothing behind: its log neither (the
    libraries' output of this command then goes nowhere; ``--debug`` shows it)."""
    capture = _active
    if capture is None:
        return
    capture.upload_to = None
    if not capture.temporary:
        capture.log_path.unlink(missing_ok=True)
