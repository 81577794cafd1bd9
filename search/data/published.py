"""Published results of a dataset: the rows of its own results table, shipped as a small CSV
in ``search/data/published/<dataset>.csv`` citing its source in ``#`` lines. The report draws them
as reference markers (on the parameter axis where a row gives a count) and lists them.

Torch-free.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PublishedResult", "published_results", "published_source"]

_FOLDER = Path(__file__).with_name("published")


@dataclass(frozen=True)
class PublishedResult:
    """One row of a dataset's published table: test accuracy in [0, 1], ``params`` where the row
    gives a count."""

    model: str
    test_accuracy: float
    params: float | None
    preprocessing: str
    submitter: str


def _path(dataset: str) -> Path:
    return _FOLDER / f"{dataset}.csv"


def published_results(dataset: str) -> tuple[PublishedResult, ...]:
    """The published rows of ``dataset`` (empty when it has no table here)."""
    path = _path(dataset)
    if not path.is_file():
        return ()
    with path.open(encoding="utf-8", newline="") as f:
        lines = [line for line in f if not line.startswith("#")]
    return tuple(
        PublishedResult(
            model=row["model"],
            test_accuracy=float(row["test_accuracy"]),
            params=float(row["params"]) if row["params"] else None,
            preprocessing=row["preprocessing"],
            submitter=row["submitter"],
        )
        for row in csv.DictReader(lines)
    )


def published_source(dataset: str) -> str:
    """Where ``dataset``'s table comes from: its CSV's ``#`` lines, joined ("" when none)."""
    path = _path(dataset)
    if not path.is_file():
        return ""
    with path.open(encoding="utf-8") as f:
        return " ".join(line[1:].strip() for line in f if line.startswith("#"))
