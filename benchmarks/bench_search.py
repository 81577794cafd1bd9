"""Sampler benchmark: replay random, TPE, NSGA-II and GP on the tabular benchmark.

Each (sampler, seed) replays the default sweep (2 trials at a time, equal family shares,
MO-ASHA grace 10 / eta 3) on ``benchmarks/search_table/table.csv``: trials look their results
up instead of training (``benchmarks/search_table/replay.py``). Printed and written, for
two hypervolume views (COMPLETE trials; the overall front as a fraction of the whole table's,
and the mean of each family's front as a fraction of that family's in the table): hypervolume
against trials and against compute, median and quartiles over seeds; per sampler the trials
needed to reach random search's median hypervolume at ``--target-trials``; and the same at
smaller budgets (random search's median at n trials, for n in :data:`BUDGETS`).

    python benchmarks/bench_search.py                              # 4 samplers x 10 seeds x 96
    python benchmarks/bench_search.py --samplers random tpe --seeds 3 --trials 40 \\
        --families mixer fnet --table /tmp/partial.csv --png ''
    python benchmarks/bench_search.py --grid fashion --samplers random tpe tpe-means  # seeded

A sampler named ``<sampler>-means`` observes each row's seed mean at every seed's cost (the
sweep with replicates); the others observe one seed's curve, drawn per trial (the single-seed
sweep). Also printed: how often the scheduler stopped a configuration on its family's front in
the table.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import math
import multiprocessing as mp
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.search_table import build  # noqa: E402
from benchmarks.search_table.replay import (  # noqa: E402
    SAMPLERS,
    ReplayResult,
    Row,
    Table,
    load_table,
    parse_variant,
    replay,
    replay_space,
)

OUT = ROOT / "benchmarks" / "search_table" / "replay_results"
PNG = ROOT / "docs" / "img" / "search-replay.png"
COMPUTE_POINTS = 60


def check_coverage(table: Table, space: Any, families: Sequence[str], grid: build.Grid) -> None:
    """Every grid point of ``families`` must have a row (else proposals would miss)."""
    import optuna

    from benchmarks.search_table.replay import config_key

    points = build.grid_points(families, grid.model, grid.training)
    missing = [p for p in points if config_key(space(optuna.trial.FixedTrial(p))) not in table.rows]
    if missing:
        raise SystemExit(
            f"the table lacks {len(missing)} grid points of {list(families)} "
            f"(first: {build.config_key(missing[0])}); pass --families with complete ones"
        )


_SETUP: dict[str, Any] = {}


def replay_experiment(grid: build.Grid, overrides: Sequence[str]) -> Any:
    """The grid's experiment as a replay runs it: the grid's replay settings, the grid as its
    space, then ``overrides`` (``UserError`` for a bad one)."""
    from search.experiment import load_experiment

    space = build.space_sets(grid.space_overrides())
    return load_experiment(grid.experiment, [*grid.replay_sets, *space, *overrides])


def _setup(table: Path, grid: str, overrides: Sequence[str], trials: int) -> None:
    """Load what every replay of this process shares (the table, experiment and space)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    the_grid = build.GRIDS[grid]
    exp = replay_experiment(the_grid, overrides)
    space = replay_space(exp, {})
    rows = load_table(table, exp.families)  # the searched families' yardsticks
    _SETUP.update(table=rows, experiment=exp, space=space, trials=trials, grid=the_grid)


def _replay_one(job: tuple[str, int]) -> tuple[ReplayResult, float]:
    """One (variant, seed) replay and its wall time."""
    variant, seed = job
    sampler, observe = parse_variant(variant)
    started = time.perf_counter()
    s = _SETUP
    res = replay(
        s["table"],
        s["space"],
        s["experiment"],
        sampler=sampler,
        seed=seed,
        num_trials=s["trials"],
        observe=observe,
    )
    return dataclasses.replace(res, sampler=variant), time.perf_counter() - started


def front_stops(table: Table, res: ReplayResult) -> tuple[int, int]:
    """(trained, stopped): the replay's trials whose configuration is on its family's front
    in the table, and how many of them the scheduler stopped at a rung."""
    on_front = [t for t in res.trials if t.config in table.family_front]
    return len(on_front), sum(t.status == "STOPPED" for t in on_front)


def run_all(args: argparse.Namespace) -> list[ReplayResult]:
    """Every (sampler, seed) replay (``--processes`` at a time), one line printed per replay."""
    setup = (args.table, args.grid, args.overrides, args.trials)
    _setup(*setup)
    check_coverage(_SETUP["table"], _SETUP["space"], _SETUP["experiment"].families, _SETUP["grid"])
    jobs = [(s, seed) for s in args.samplers for seed in range(args.seeds)]
    results = []
    with contextlib.ExitStack() as stack:
        if args.processes > 1:
            ctx = mp.get_context("spawn")
            pool = stack.enter_context(ctx.Pool(args.processes, _setup, setup))
            done: Iterator[tuple[ReplayResult, float]] = pool.imap(_replay_one, jobs)
        else:
            done = map(_replay_one, jobs)
        for res, seconds in done:
            results.append(res)
            stopped = sum(t.status == "STOPPED" for t in res.trials)
            front, front_stopped = front_stops(_SETUP["table"], res)
            print(
                f"{res.sampler:9s} seed {res.seed:2d}: hv {res.hv[-1]:.4f} (families "
                f"{res.family_hv[-1]:.4f}) after "
                f"{len(res.trials)} trials ({stopped} stopped, {front_stopped} of {front} on a "
                f"family front stopped, {res.duplicates} duplicates"
                f"{', exhausted' if res.exhausted else ''}), compute {res.compute_s[-1]:.0f} s, "
                f"replayed in {seconds:.1f} s",
                flush=True,
            )
    return results


#: The two hypervolume views of a replay (``ReplayResult`` fields), as printed.
VIEWS = {"hv": "overall front", "family_hv": "per-family fronts, mean"}
#: Budgets at which each sampler's trials to random search's hypervolume are printed.
BUDGETS = (16, 24, 32, 48, 64, 96)


def hv_by_trial(runs: Sequence[ReplayResult], trials: int, view: str = "hv") -> NDArray[np.float64]:
    """[runs, trials]: HV after each trial; a run that stopped short holds its last value."""
    out = np.zeros((len(runs), trials))
    for i, res in enumerate(runs):
        hv = list(getattr(res, view)[:trials]) or [0.0]
        out[i] = hv + [hv[-1]] * (trials - len(hv))
    return out


def hv_at_compute(
    res: ReplayResult, grid: NDArray[np.float64], view: str = "hv"
) -> NDArray[np.float64]:
    """The run's HV when ``grid[j]`` seconds of compute had been spent (finished trials)."""
    idx = np.searchsorted(np.asarray(res.compute_s), grid, side="right") - 1
    hv = np.asarray(getattr(res, view))
    return np.where(idx >= 0, hv[np.maximum(idx, 0)], 0.0)


def quartiles(matrix: NDArray[np.float64]) -> dict[str, list[float]]:
    """Median and quartiles over the rows (seeds), per column."""
    q1, med, q3 = np.percentile(matrix, [25, 50, 75], axis=0)
    return {"q1": q1.tolist(), "median": med.tolist(), "q3": q3.tolist()}


def trials_to_reach(hv: Sequence[float], target: float) -> int | None:
    """1-based trial count at which ``hv`` first reaches ``target`` (None: never)."""
    for i, value in enumerate(hv):
        if value >= target - 1e-12:
            return i + 1
    return None


def median_or_none(values: Sequence[float | None]) -> float | None:
    """Median with None counted as worse than any number; None when that median is None."""
    med = float(np.median([math.inf if v is None else v for v in values]))
    return med if math.isfinite(med) else None


def random_median(by: dict[str, list[ReplayResult]], n: int, view: str) -> float | None:
    """Random search's median HV after ``n`` trials (None: no random-search runs)."""
    if not by.get("random"):
        return None
    return float(np.median(hv_by_trial(by["random"], n, view)[:, n - 1]))


def budget_table(
    by: dict[str, list[ReplayResult]], trials: int, view: str
) -> dict[str, dict[str, Any]]:
    """Per budget ``n``: random search's median HV at ``n`` trials and, per sampler, the
    median trials its seeds need to reach it (None: more than ``trials``)."""
    out: dict[str, dict[str, Any]] = {}
    for n in [b for b in BUDGETS if b < trials] + [trials]:
        target = random_median(by, n, view)
        if target is None:
            return out
        needed = {
            s: median_or_none([trials_to_reach(getattr(r, view), target) for r in rs])
            for s, rs in by.items()
        }
        out[str(n)] = {"target_hv": target, "median_trials": needed}
    return out


def summarise_view(
    by: dict[str, list[ReplayResult]],
    view: str,
    trials: int,
    target_trials: int,
    grid: NDArray[np.float64],
) -> dict[str, Any]:
    """One hypervolume view: curves (median/quartiles), the random-search target at
    ``target_trials``, each sampler's trials to it, and the budget table."""
    target = random_median(by, target_trials, view)
    out: dict[str, Any] = {"target_hv": target, "samplers": {}}
    for s, rs in by.items():
        curves = [getattr(r, view) for r in rs]
        per_seed = [trials_to_reach(c, target) for c in curves] if target is not None else []
        compute = [None if n is None else r.compute_s[n - 1] for n, r in zip(per_seed, rs)]
        out["samplers"][s] = {
            "by_trial": quartiles(hv_by_trial(rs, trials, view)),
            "by_compute": quartiles(np.array([hv_at_compute(r, grid, view) for r in rs])),
            "trials_to_target": per_seed,
            "median_trials_to_target": median_or_none(per_seed),
            "median_compute_to_target_s": median_or_none(compute),
            "final_hv": [c[-1] if c else 0.0 for c in curves],
        }
    out["budgets"] = budget_table(by, trials, view)
    return out


def fewest_trials(table: Table, target: float, view: str) -> int | None:
    """How few of the table's COMPLETE rows reach ``target`` in ``view``, chosen greedily by
    their gain knowing the whole table (an oracle's bound on any sampler; None: never)."""
    rows = [r for r in table.rows.values() if r.status == "COMPLETE"]
    chosen: dict[str, list[tuple[float, float]]] = {}

    def value(points: dict[str, list[tuple[float, float]]]) -> float:
        if view == "hv":
            return table.hv(p for pts in points.values() for p in pts)
        return table.family_hv(points)

    def adding(row: Row) -> dict[str, list[tuple[float, float]]]:
        return {**chosen, row.family: [*chosen.get(row.family, []), *row.front_points()]}

    for n in range(1, len(rows) + 1):
        best = max(rows, key=lambda r: value(adding(r)))
        rows.remove(best)
        chosen = adding(best)
        if value(chosen) >= target - 1e-12:
            return n
    return None


def summarise(
    runs: Sequence[ReplayResult],
    samplers: Sequence[str],
    trials: int,
    target_trials: int,
    table: Table | None = None,
) -> dict[str, Any]:
    """Both hypervolume views (:data:`VIEWS`) and each sampler's run statistics (with
    ``table``: how many trials on a family front were stopped)."""
    by = {s: [r for r in runs if r.sampler == s] for s in samplers}
    full = [r for r in runs if len(r.compute_s) >= trials]
    top = min((r.compute_s[trials - 1] for r in full), default=0.0)
    grid = np.linspace(0.0, top, COMPUTE_POINTS)
    out: dict[str, Any] = {"trials": trials, "target_trials": target_trials}
    out["compute_grid_s"] = grid.tolist()
    out["views"] = {v: summarise_view(by, v, trials, target_trials, grid) for v in VIEWS}
    out["runs"] = {
        s: {
            "seeds": len(rs),
            "compute_s": [r.compute_s[-1] if r.compute_s else 0.0 for r in rs],
            "duplicates": [r.duplicates for r in rs],
            "stopped": [sum(t.status == "STOPPED" for t in r.trials) for r in rs],
            "exhausted": sum(r.exhausted for r in rs),
        }
        for s, rs in by.items()
    }
    if table is not None:
        for name, view in out["views"].items():
            for budget in view["budgets"].values():
                budget["fewest_trials"] = fewest_trials(table, budget["target_hv"], name)
        for s, rs in by.items():
            counts = [front_stops(table, r) for r in rs]
            out["runs"][s]["front_trained"] = [c[0] for c in counts]
            out["runs"][s]["front_stopped"] = [c[1] for c in counts]
    return out


def write_runs(runs: Sequence[ReplayResult], path: Path) -> None:
    """One CSV line per replayed trial (finish order): the run's sampler, seed, HV and compute
    so far (``run_compute_s``), then the trial's own fields."""
    run_fields = ["sampler", "seed", "trial", *VIEWS, "run_compute_s"]
    fields = [*run_fields, *asdict(runs[0].trials[0])]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for res in runs:
            for i, t in enumerate(res.trials):
                row = {"sampler": res.sampler, "seed": res.seed, "trial": i + 1}
                row.update({v: getattr(res, v)[i] for v in VIEWS}, run_compute_s=res.compute_s[i])
                writer.writerow({**asdict(t), **row})


def figure(summary: dict[str, Any]) -> Any:
    """One row per hypervolume view, against trials and against compute: median line,
    quartile band, random search's target dotted."""
    from plotly.subplots import make_subplots

    views = summary["views"]
    titles = [f"{VIEWS[v]}: {axis}" for v in views for axis in ("vs trials", "vs compute")]
    fig = make_subplots(rows=len(views), cols=2, subplot_titles=titles, vertical_spacing=0.12)
    trials = list(range(1, summary["trials"] + 1))
    grid = summary["compute_grid_s"]
    for row, view in enumerate(views.values(), 1):
        samplers = view["samplers"]
        for k, (name, s) in enumerate(samplers.items()):
            color = f"hsl({k * 360 // len(samplers)}, 65%, 45%)"
            for col, (x, q) in enumerate(((trials, s["by_trial"]), (grid, s["by_compute"])), 1):
                band = dict(x=[*x, *x[::-1]], y=[*q["q3"], *q["q1"][::-1]], fill="toself")
                fig.add_scatter(
                    **band, line_width=0, fillcolor=color, opacity=0.15, showlegend=False,
                    hoverinfo="skip", row=row, col=col,
                )  # fmt: skip
                fig.add_scatter(
                    x=x, y=q["median"], name=name, line_color=color, legendgroup=name,
                    showlegend=row == 1 and col == 1, row=row, col=col,
                )  # fmt: skip
        if view["target_hv"] is not None:
            fig.add_hline(y=view["target_hv"], line_dash="dot", line_color="gray", row=row)
        fig.update_yaxes(title_text="HV / the table's", row=row, col=1)
    fig.update_xaxes(title_text="trials", row=len(views), col=1)
    fig.update_xaxes(title_text="compute, s", row=len(views), col=2)
    fig.update_layout(width=1100, height=420 * len(views), template="plotly_white")
    return fig


def print_summary(summary: dict[str, Any]) -> None:
    """Per view: final HV quartiles, trials to random search's target, the budget table."""
    n, t = summary["trials"], summary["target_trials"]
    for name, view in summary["views"].items():
        target = view["target_hv"]
        print(f"\n{VIEWS[name]}: random search's median HV at {t} trials = {target}")
        print(f"{'sampler':8s} {'HV@' + str(n) + ' q1/med/q3':>24s}  trials to target (per seed)")
        for sampler, s in view["samplers"].items():
            q = s["by_trial"]
            med = s["median_trials_to_target"]
            shown = "n/a" if target is None else (f">{n}" if med is None else f"{med:g}")
            print(
                f"{sampler:8s} {q['q1'][-1]:.4f}/{q['median'][-1]:.4f}/{q['q3'][-1]:.4f}  "
                f"{shown:>5s}  {s['trials_to_target']}"
            )
        if view["budgets"]:
            budgets = view["budgets"]
            print("median trials to random search's median HV at n trials:")
            print(f"{'n':>8s} " + " ".join(f"{b:>7s}" for b in budgets))
            print(f"{'HV':>8s} " + " ".join(f"{b['target_hv']:7.4f}" for b in budgets.values()))
            rows = {s: [b["median_trials"][s] for b in budgets.values()] for s in view["samplers"]}
            if all("fewest_trials" in b for b in budgets.values()):
                rows["(oracle)"] = [b["fewest_trials"] for b in budgets.values()]
            for sampler, cells in rows.items():
                print(
                    f"{sampler:>8s} "
                    + " ".join(f"{'>' + str(n) if c is None else f'{c:g}':>7s}" for c in cells)
                )


def print_front_stops(summary: dict[str, Any]) -> None:
    """Per sampler: of the trials on a family front in the table, how many were stopped."""
    for sampler, r in summary["runs"].items():
        if "front_trained" in r:
            trained, stopped = sum(r["front_trained"]), sum(r["front_stopped"])
            share = f"{stopped / trained:.0%}" if trained else "n/a"
            print(f"{sampler:9s} stopped {stopped} of {trained} family-front trials ({share})")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=sorted(build.GRIDS), default="digits")
    parser.add_argument("--table", type=Path, help="default: the grid's table.csv")
    parser.add_argument("--samplers", nargs="+", default=list(SAMPLERS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=96)
    parser.add_argument("--target-trials", type=int, default=0, help="default: --trials")
    parser.add_argument("--families", nargs="*", default=[], help="default: the experiment's")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="on the grid's experiment"
    )
    parser.add_argument("--processes", type=int, default=1, help="replays at a time")
    parser.add_argument("--out", type=Path, help="default: replay_results[/<grid>]")
    parser.add_argument("--png", help="figure as PNG ('' for none); default: docs/img/")
    args = parser.parse_args(argv)
    args.target_trials = args.target_trials or args.trials
    if not 1 <= args.target_trials <= args.trials:
        parser.error("--target-trials must be in 1..--trials")
    for name in args.samplers:
        try:
            parse_variant(name)
        except ValueError as err:
            parser.error(f"--samplers: {err}")
    digits = args.grid == "digits"  # the first table's outputs keep their names
    args.table = args.table or build.GRIDS[args.grid].out / "table.csv"
    args.out = args.out or (OUT if digits else OUT / args.grid)
    if args.png is None:
        args.png = str(PNG if digits else PNG.with_stem(f"{PNG.stem}-{args.grid}"))
    if not args.table.is_file():
        parser.error(f"--table {args.table}: no such file (build.py --grid {args.grid})")
    families = [f"families=[{', '.join(args.families)}]"] if args.families else []
    args.overrides = [*args.set, *families]
    from search.errors import UserError

    try:  # checked once here, before any replay process starts
        replay_experiment(build.GRIDS[args.grid], args.overrides)
    except UserError as exc:
        parser.error(str(exc))  # names the field, the value and what is allowed
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    runs = run_all(args)
    summary = summarise(runs, args.samplers, args.trials, args.target_trials, _SETUP["table"])
    summary["command"] = " ".join(["python", *sys.argv])
    summary["table"] = str(args.table)
    summary["replay_s"] = round(time.perf_counter() - started, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    write_runs(runs, args.out / "runs.csv")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    fig = figure(summary)
    fig.write_html(args.out / "figure.html", include_plotlyjs="cdn")
    if args.png:
        fig.write_image(args.png, scale=1)
    print_summary(summary)
    print_front_stops(summary)
    print(f"\nwritten: {args.out}/{{runs.csv,summary.json,figure.html}} {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
