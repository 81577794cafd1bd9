"""The README as a user reads it: its Python API snippet runs as printed, and the statuses it
lists are the ones a user can meet."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from search.vocabulary import TrialStatus

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def _api_snippet() -> str:
    (code,) = re.findall(r"```python\n(.*?)```", _section("Python API"), flags=re.S)
    return code


@pytest.mark.slow
def test_the_python_api_snippet_runs_as_printed(tmp_path: Path) -> None:
    # Run the snippet as printed, then look at what it left in its names.
    check = (
        "\nimport json\n"
        "print(json.dumps({'counts': result.counts(), 'front': result.front}, default=str))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", _api_snippet() + check],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["counts"].get("COMPLETE") == 4, seen["counts"]
    # the comments' claims: front rows hold these keys at top level, no "objectives" key
    for row in seen["front"]:
        assert {"trial_id", "family", "val_accuracy", "flops", "config", "history"} <= set(row)
        assert "objectives" not in row and row["status"] == "COMPLETE"
    assert (tmp_path / "results" / "smoke" / "trials.csv").is_file()


def test_the_readme_lists_every_status_a_user_can_meet() -> None:
    outputs = _section("Outputs")
    for status in TrialStatus:
        assert f"`{status}`" in outputs, status
    # the one status no table shows is said to be the study's alone
    assert "the tables never show it" in outputs
