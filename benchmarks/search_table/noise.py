"""How much of the table is signal: its best rows re-trained with other seeds.

A sampler can only beat random search where configurations differ by more than a row's noise.
This study takes, per family, the ``--top`` rows by val accuracy (the ones a front is made of)
and ``--top`` others drawn at random, re-trains them with other experiment seeds
(``build.py --keys``), and compares: if the top rows were better configurations, they stay
ahead under new seeds; if they were lucky draws, they fall back to the others' level
("winner's curse"). It also prints, per family, how much of the table's spread the
configuration explains (an additive model of the grid's dimensions) against what is left.

    python benchmarks/search_table/noise.py select --out benchmarks/search_table/noise
    python benchmarks/search_table/build.py --keys benchmarks/search_table/noise/keys.txt \\
        --set seed=1 --out benchmarks/search_table/noise/seed1        # and seed=2 -> seed2
    python benchmarks/search_table/noise.py analyse --out benchmarks/search_table/noise
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TABLE = HERE / "table.csv"
#: One val image of the default split (216 images), in accuracy.
ONE_IMAGE = 1 / 216


def read_rows(path: Path) -> list[dict[str, Any]]:
    """COMPLETE rows of a table, with their key's parameters parsed."""
    with path.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] == "COMPLETE"]
    for r in rows:
        r["params"] = json.loads(r["key"])
        r["val_accuracy"] = float(r["val_accuracy"])
        r["test_accuracy"] = float(r["test_accuracy"])
        r["flops"] = float(r["flops"])
    return rows


def by_family(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        out[r["family"]].append(r)
    return dict(out)


def select(rows: Sequence[dict[str, Any]], top: int, seed: int = 0) -> dict[str, dict[str, list]]:
    """Per family: the ``top`` best rows (val, then cheaper, then key) and ``top`` others."""
    rng = random.Random(seed)
    out = {}
    for family, group in by_family(rows).items():
        ranked = sorted(group, key=lambda r: (-r["val_accuracy"], r["flops"], r["key"]))
        rest = ranked[top:]
        out[family] = {
            "top": [r["key"] for r in ranked[:top]],
            "others": [r["key"] for r in rng.sample(rest, min(top, len(rest)))],
        }
    return out


def additive_fit(group: Sequence[dict[str, Any]], sweeps: int = 50) -> dict[str, float]:
    """Spread of val accuracy in a family and the residual spread of an additive model of its
    varying grid dimensions (backfitting main effects): what the configuration explains."""
    names = [k for k in group[0]["params"] if len({json.dumps(r["params"][k]) for r in group}) > 1]
    ys = [r["val_accuracy"] for r in group]
    mean = statistics.fmean(ys)
    effects: dict[str, dict[str, float]] = {n: defaultdict(float) for n in names}

    def level(r: Mapping[str, Any], n: str) -> str:
        return json.dumps(r["params"][n])

    def others(r: Mapping[str, Any], skip: str) -> float:
        return sum(effects[n][level(r, n)] for n in names if n != skip)

    for _ in range(sweeps):
        for n in names:
            groups: dict[str, list[float]] = defaultdict(list)
            for r in group:
                groups[level(r, n)].append(r["val_accuracy"] - mean - others(r, n))
            effects[n] = defaultdict(float, {k: statistics.fmean(v) for k, v in groups.items()})
    residuals = [r["val_accuracy"] - mean - others(r, "") for r in group]
    return {
        "rows": len(group),
        "sd": statistics.pstdev(ys),
        "residual_sd": statistics.pstdev(residuals),
        "largest_effect": max(
            (max(e.values()) - min(e.values()) for e in effects.values()), default=0.0
        ),
    }


def analyse(out: Path, table: Path = TABLE) -> dict[str, Any]:
    """The study's numbers: per family and overall, top rows against the others, per seed."""
    base = {r["key"]: r for r in read_rows(table)}
    chosen = json.loads((out / "selection.json").read_text())
    seeds = sorted(p for p in out.glob("seed*/table.csv"))
    rerun_rows = {p.parent.name: {r["key"]: r for r in read_rows(p)} for p in seeds}
    groups = by_family(list(base.values()))
    families: dict[str, Any] = {}
    for family, sel in chosen.items():
        entry: dict[str, Any] = {"fit": additive_fit(groups[family])}
        for part in ("top", "others"):
            keys = sel[part]
            entry[part] = {"table": statistics.fmean(base[k]["val_accuracy"] for k in keys)}
            entry[f"{part}_test"] = {
                "table": statistics.fmean(base[k]["test_accuracy"] for k in keys)
            }
            for name, rows in rerun_rows.items():
                got = [rows[k] for k in keys if k in rows]
                full = len(got) == len(keys)
                for metric, into in (("val_accuracy", part), ("test_accuracy", f"{part}_test")):
                    entry[into][name] = statistics.fmean(r[metric] for r in got) if full else None
        entry["seed_sd"] = _seed_sd(base, rerun_rows, [*sel["top"], *sel["others"]])
        families[family] = entry
    pooled = {
        part: {
            seed: statistics.fmean(e[part][seed] for e in families.values())
            if all(e[part][seed] is not None for e in families.values())
            else None
            for seed in ["table", *sorted(rerun_rows)]
        }
        for part in ("top", "others", "top_test", "others_test")
    }
    return {"seeds": sorted(rerun_rows), "families": families, "mean_over_families": pooled}


def _seed_sd(
    base: Mapping[str, Any], reruns: Mapping[str, Mapping[str, Any]], keys: Sequence[str]
) -> float | None:
    """Median over configurations of the sd of val accuracy across all seeds (a median: one
    run that fails under one seed would dominate a mean)."""
    sds = []
    for k in keys:
        vals = [base[k]["val_accuracy"], *(r[k]["val_accuracy"] for r in reruns.values() if k in r)]
        if len(vals) > 1:
            sds.append(statistics.stdev(vals))
    return statistics.median(sds) if sds else None


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def print_summary(result: Mapping[str, Any]) -> None:
    seeds = result["seeds"]
    print("val accuracy (test accuracy), % (means over the chosen rows; seed0 = the table)")
    head = " ".join(f"{s:>12s}" for s in ["seed0", *seeds])
    print(f"{'family':10s} {'rows':6s} {head}   seed sd  spread  resid  largest effect")
    for family, e in result["families"].items():
        for part in ("top", "others"):
            vals = " ".join(
                f"{_points(e[part].get(s)):>5s} ({_points(e[part + '_test'].get(s)):>4s})"
                for s in ["table", *seeds]
            )
            fit = e["fit"]
            tail = (
                f"   {_points(e['seed_sd']):>7s} {_points(fit['sd']):>7s} "
                f"{_points(fit['residual_sd']):>6s} {_points(fit['largest_effect']):>7s}"
                if part == "top"
                else ""
            )
            print(f"{family:10s} {part:6s} {vals}{tail}")
    pooled = result["mean_over_families"]
    for part in ("top", "others"):
        vals = " ".join(
            f"{_points(pooled[part][s]):>5s} ({_points(pooled[part + '_test'][s]):>4s})"
            for s in ["table", *seeds]
        )
        print(f"{'all':10s} {part:6s} {vals}")
    print(f"(one val image = {100 * ONE_IMAGE:.2f} points)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=("select", "analyse"))
    parser.add_argument("--out", type=Path, default=HERE / "noise")
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--top", type=int, default=3, help="top rows (and as many others)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.command == "select":
        chosen = select(read_rows(args.table), args.top)
        text = json.dumps(chosen, indent=1) + "\n"
        selection = args.out / "selection.json"
        if selection.exists() and selection.read_text() != text:
            parser.error(f"--out: {args.out} holds another selection; choose a new folder")
        selection.write_text(text)
        keys = [k for sel in chosen.values() for part in sel.values() for k in part]
        (args.out / "keys.txt").write_text("\n".join(keys) + "\n")
        print(f"{len(keys)} keys -> {args.out / 'keys.txt'}")
        return 0
    result = analyse(args.out, args.table)
    (args.out / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
    print_summary(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
