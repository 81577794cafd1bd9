"""The gate before any replay: per family, does the configuration explain the table's spread
better than one seed's draw does?

Each row of a seeded table (``build.py --grid fashion``) holds every seed's val accuracy; a
Perceiver row also holds its anytime points, one configuration per iteration count. Per family,
a one-way random-effects analysis of variance over its configurations:

- seed variance: the mean, over configurations, of the variance of its seeds (within);
- configuration variance: ``(s * var(configuration means) - seed variance) / s`` for ``s``
  seeds, floored at 0 (between, less what the seeds alone would put there);
- their ratio, and the F test's p-value that the configurations do not differ at all.

The gate passes when the configuration variance is at least ``--ratio`` (2) times the seed
variance in at least ``--families`` (3) families; only then do replays measure samplers. The
result goes to ``gate.json`` beside the table.

    python benchmarks/search_table/gate.py [--table benchmarks/search_table/fashion/table.csv]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TABLE = HERE / "fashion" / "table.csv"
#: The gate: configuration variance over seed variance, in how many families at least.
RATIO, FAMILIES = 2.0, 3


def configurations(rows: Iterable[Mapping[str, str]]) -> Iterator[tuple[str, list[float]]]:
    """(family, each seed's val accuracy) per configuration of the COMPLETE seeded rows; an
    anytime row gives one configuration per iteration count."""
    for row in rows:
        if row.get("status") != "COMPLETE":
            continue
        points = json.loads(row.get("anytime") or "null")
        if points:
            for point in points:
                yield row["family"], [float(v) for v in point["val_accuracy_seeds"]]
        else:
            yield row["family"], [float(v) for v in json.loads(row["val_accuracy_seeds"])]


def family_variances(seeds: list[list[float]]) -> dict[str, Any]:
    """The analysis of one family: its configurations' seed values, all with the same count."""
    from scipy.stats import f

    s = len(seeds[0])
    if s < 2 or any(len(v) != s for v in seeds) or len(seeds) < 2:
        raise ValueError("need 2 or more configurations, each with the same 2 or more seeds")
    within = statistics.fmean(statistics.variance(v) for v in seeds)
    means = [statistics.fmean(v) for v in seeds]
    between = s * statistics.variance(means)
    config = max(0.0, (between - within) / s)
    k = len(seeds)
    p = float(f.sf(between / within, k - 1, k * (s - 1))) if within > 0 else 0.0
    return {
        "configurations": k,
        "seeds": s,
        "seed_sd": within**0.5,
        "configuration_sd": config**0.5,
        "ratio": config / within if within > 0 else float("inf"),
        "p_value": p,
        "best_mean": max(means),
    }


def gate(
    rows: Iterable[Mapping[str, str]], ratio: float = RATIO, families: int = FAMILIES
) -> dict[str, Any]:
    """Per family the analysis, and whether the gate passes."""
    seeds: dict[str, list[list[float]]] = defaultdict(list)
    for family, values in configurations(rows):
        seeds[family].append(values)
    per_family = {fam: family_variances(v) for fam, v in sorted(seeds.items()) if len(v) >= 2}
    passing = sorted(f for f, r in per_family.items() if r["ratio"] >= ratio)
    return {
        "families": per_family,
        "passing": passing,
        "passes": len(passing) >= families,
        "rule": f"configuration variance >= {ratio} x seed variance in >= {families} families",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--ratio", type=float, default=RATIO)
    parser.add_argument("--families", type=int, default=FAMILIES)
    args = parser.parse_args(argv)
    if not args.table.is_file():
        parser.error(f"--table {args.table}: no such file (build it: build.py --grid fashion)")
    with args.table.open(newline="") as fh:
        result = gate(csv.DictReader(fh), args.ratio, args.families)
    (args.table.parent / "gate.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'family':10s} {'configs':>7s} {'seed sd':>8s} {'config sd':>9s} {'ratio':>6s}")
    for family, r in result["families"].items():
        print(
            f"{family:10s} {r['configurations']:7d} {100 * r['seed_sd']:7.2f}p "
            f"{100 * r['configuration_sd']:8.2f}p {r['ratio']:6.1f}"
        )
    print(f"gate ({result['rule']}): {'passes' if result['passes'] else 'does not pass'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
