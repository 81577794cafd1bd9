"""PNG export of the main figures through kaleido (which drives a Chrome/Chromium)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import plotly.graph_objects as go

__all__ = ["export_pngs"]


def _still(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` for a still image: a dropdown means nothing there."""
    still = go.Figure(fig)
    still.layout.updatemenus = ()
    return still


def export_pngs(
    figures: Mapping[str, go.Figure], names: Sequence[str], directory: Path
) -> tuple[dict[str, Path], str | None]:
    """Write the figures ``names`` (those present) as ``report-<name>.png`` in ``directory``,
    one browser start for all. Never raises: returns the paths, or ``{}`` and why not."""
    try:
        import kaleido  # noqa: F401 - a clear error when the extra is missing
        import plotly.io as pio
    except ImportError as exc:
        return {}, f"PNG export needs kaleido>=1.0 (pip install 'paretotune[png]'): {exc}"
    present = [n for n in names if n in figures]
    paths = {n: directory / f"report-{n.replace('_', '-')}.png" for n in present}
    figs = [_still(figures[n]) for n in present]
    try:
        pio.write_images(
            figs,
            [paths[n] for n in present],
            width=1200,
            height=[int(f.layout.height or 500) for f in figs],
            scale=1,
        )
    except Exception as exc:  # no browser, a broken one, a kaleido error
        detail = " ".join(str(exc).split())[:200]
        return {}, (
            f"PNG export failed, no PNG written ({type(exc).__name__}: {detail}). kaleido needs "
            "Chrome or Chromium: install the system package (Debian/Ubuntu: apt-get install "
            "chromium) or run `kaleido_get_chrome`. report.html was written."
        )
    return paths, None
