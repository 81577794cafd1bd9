"""search/report/export.py: PNG export through kaleido, and its failure without a browser.

The export test needs a Chromium (Debian package ``chromium``) and is skipped, with the reason,
without one.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _report_helpers import FIXTURE, chromium

from search import report


def test_png_without_browser_writes_html_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    shutil.copytree(FIXTURE, out)
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-chromium"))
    files = report.write_report(out, png=True, presets=[])
    assert files.html.is_file() and files.pngs == {}
    assert files.png_error and "chromium" in files.png_error
    assert "PNG export failed" in capsys.readouterr().err


@pytest.mark.skipif(chromium() is None, reason="no Chromium on PATH (apt-get install chromium)")
def test_png_export(tmp_path: Path) -> None:
    out = tmp_path / "results"
    shutil.copytree(FIXTURE, out)
    files = report.write_report(out, png=True, presets=[])
    assert files.png_error is None, files.png_error
    assert set(files.pngs) == set(report.MAIN_FIGURES)
    for path in files.pngs.values():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, path


@pytest.mark.skipif(chromium() is None, reason="no Chromium on PATH (apt-get install chromium)")
def test_report_png_command_prints_every_file_it_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from search.cli import main

    out = tmp_path / "results"
    shutil.copytree(FIXTURE, out)
    assert main(["report", str(out), "--png"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"report: {out / 'report.html'}"
    printed = sorted(line.removeprefix("png:").strip() for line in lines[1:])
    assert printed == sorted(str(p) for p in out.glob("*.png"))
    assert len(printed) == len(report.MAIN_FIGURES)
