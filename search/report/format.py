"""How the report writes numbers, units and names, and the colour of each family.

Shared by the figures and the HTML tables, so a value reads the same everywhere.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from models import FAMILIES
from search.data.facts import describe_dataset
from search.pareto import as_float

__all__ = [
    "PALETTE",
    "VALUE_PALETTE",
    "colour",
    "cost_text",
    "count_text",
    "dataset_text",
    "dimension_text",
    "esc",
    "gap_text",
    "pct",
    "si",
    "value_colour",
    "value_label",
]

#: One colour per family of ``models.FAMILIES`` (in order), then two for any other.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
#: The values of one dimension (ColorBrewer Dark2: apart from the family colours' look).
VALUE_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
                 "#666666")  # fmt: skip
#: Short names of named dimensions (the papers' letters); others are written as they are.
DIMENSION_LABELS = {"num_latents": "N"}


def colour(family: str) -> str:
    """The family's colour: fixed for the known families, one of two spares for others."""
    if family in FAMILIES:
        return PALETTE[FAMILIES.index(family)]
    return PALETTE[len(FAMILIES) + sum(map(ord, family)) % 2]


def value_colour(index: int) -> str:
    """The colour of a dimension's ``index``-th value."""
    return VALUE_PALETTE[index % len(VALUE_PALETTE)]


def dimension_text(name: str) -> str:
    """A named dimension's short name: ``num_latents -> 'N'``; others as they are."""
    return DIMENSION_LABELS.get(name, name)


def value_label(name: str, value: Any) -> str:
    """A dimension value as the legend writes it: ``N=32``, ``patch_size=4``, ``depth=n/a``."""
    return f"{dimension_text(name)}={'n/a' if value is None else value}"


def count_text(n_trials: int, n_anytime: int) -> str:
    """``5 trials, +3 anytime`` (anytime points apart from trained trials)."""
    text = f"{n_trials} trial{'' if n_trials == 1 else 's'}"
    return text + (f", +{n_anytime} anytime" if n_anytime else "")


def gap_text(gap: float | None) -> str:
    """An accuracy difference in percentage points, ``0.012 -> '+1.2 pts'``; ``-`` for None."""
    return "-" if gap is None else f"{100 * gap:+.1f} pts"


def si(value: Any, unit: str = "") -> str:
    """``58720256 -> '58.7 M'`` (+ unit)."""
    v = as_float(value)
    if not math.isfinite(v):
        return "n/a"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= factor:
            return f"{v / factor:.3g} {prefix}{unit}".strip()
    return f"{v:.3g} {unit}".strip()


def cost_text(key: str, value: Any) -> str:
    """A cost of column ``key``: ``12.3 ms`` for latency, SI prefixes (FLOPs) otherwise."""
    if key == "latency_ms":
        v = as_float(value)
        return f"{v:.3g} ms" if math.isfinite(v) else "n/a"
    return si(value, "FLOPs" if key == "flops" else "")


def pct(value: Any) -> str:
    """A fraction as a percentage, ``0.912 -> '91.2%'``."""
    v = as_float(value)
    return f"{100 * v:.1f}%" if math.isfinite(v) else "n/a"


def esc(value: Any) -> str:
    """``str(value)`` escaped for HTML text and attributes."""
    return html.escape(str(value), quote=True)


def dataset_text(dataset: Any) -> str:
    """An experiment's ``dataset`` section -> ``Fashion-MNIST at 14x14, 10,000 training images
    (a stratified subset), 6,000 val`` (:func:`search.data.facts.describe_dataset`); strings as
    given."""
    if isinstance(dataset, Mapping):
        return describe_dataset(dataset)
    return "n/a" if dataset is None else str(dataset)
