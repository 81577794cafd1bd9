"""search.console: paretotune's lines on the terminal, the libraries' output in the log.

Each case runs in a fresh interpreter whose standard output and error are pipes, as a user's
terminal or a job's log would be, so the redirection of file descriptors 1 and 2 is real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# What the libraries do: Python prints, a warning, a logging line, raw writes to both file
# descriptors, and a child process that inherits them (as Ray's raylet and workers do).
_NOISY = textwrap.dedent(
    """
    import logging, os, subprocess, sys, warnings
    from pathlib import Path
    from search import console

    def noise(tag):
        print(f"library print {tag}")
        warnings.warn(f"library warning {tag}")
        logging.getLogger("library").warning(f"library logging {tag}")
        os.write(1, f"raw fd1 {tag}\\n".encode())
        os.write(2, f"raw fd2 {tag}\\n".encode())
        subprocess.run(["sh", "-c", f"echo child {tag}; echo child-err {tag} >&2"], check=True)

    logging.basicConfig()
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    with console.libraries_to_log("test", enabled=ENABLED):
        console.say("own line before")
        noise("before")
        if out is not None:
            out.mkdir()
            console.keep_log_in(out)
        noise("after")
        console.say("own warning", err=True)
    console.say("own line at the end")
    """
)


def _run(tmp_path: Path, *, enabled: bool, keep: bool) -> subprocess.CompletedProcess[str]:
    code = _NOISY.replace("ENABLED", str(enabled))
    argv = [sys.executable, "-c", code] + ([str(tmp_path / "out")] if keep else [])
    env_tmp = tmp_path / "tmp"
    env_tmp.mkdir()
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env={**os.environ, "TMPDIR": str(env_tmp)}
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.parametrize("keep", [True, False], ids=["output-folder", "no-output-folder"])
def test_library_output_goes_to_the_log_and_own_lines_to_the_terminal(
    tmp_path: Path, keep: bool
) -> None:
    done = _run(tmp_path, enabled=True, keep=keep)
    assert done.stdout.splitlines() == ["own line before", "own line at the end"]
    assert done.stderr.splitlines() == ["own warning"]
    leftovers = list((tmp_path / "tmp").iterdir())
    assert leftovers == [], "the temporary log is removed"
    if keep:
        log = (tmp_path / "out" / "paretotune.log").read_text()
        assert log.startswith("== paretotune test at ")
        for tag in ("before", "after"):  # what came before the folder existed was moved there
            for what in (
                "library print",
                "library warning",
                "library logging",
                "raw fd1",
                "raw fd2",
                "child",
                "child-err",
            ):
                assert f"{what} {tag}" in log, (what, tag, log)
        assert "own line" not in log


def test_debug_leaves_everything_on_the_terminal(tmp_path: Path) -> None:
    done = _run(tmp_path, enabled=False, keep=True)
    both = done.stdout + done.stderr
    for what in ("library print", "library warning", "raw fd1", "raw fd2", "child-err"):
        assert f"{what} after" in both
    assert "own line before" in done.stdout and "own warning" in done.stderr
    assert not (tmp_path / "out" / "paretotune.log").exists()


def test_a_closed_standard_output_is_left_alone(tmp_path: Path) -> None:
    """Started with standard output closed (``>&-``), the command runs on, uncaptured."""
    script = tmp_path / "closed.py"
    script.write_text(
        "from search import console\n"
        "with console.libraries_to_log('test'):\n"
        "    console.say('own line')\n"
        "    console.say('own warning', err=True)\n"
    )
    done = subprocess.run(
        ["sh", "-c", f'"{sys.executable}" "{script}" >&-'],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "own warning\n"
    assert not list(tmp_path.glob("paretotune-*.log"))
