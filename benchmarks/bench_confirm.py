"""Is ``confirm`` cheaper than brute force, and does it reach the same answer?

One single-seed sweep (default: the ``default`` preset on digits), confirmed two ways:

- **confirm**: ``search.sweep.confirm.confirm`` with ``--seeds`` new seeds (default 2, so
  K = 3 in all) for the configurations whose front membership is uncertain (0.1 < P < 0.9),
  the budget unlimited: it stops when each is settled or has its seeds;
- **brute force**: every front-eligible trial re-trained with the same new seeds (1..K-1).

Both train through the sweep's own loop (``train_in_process``), one seed per training, one
thread each. The confirmed set is the configurations with P(front) >= 0.5 once the new seeds
are merged. The benchmark prints and stores (``bench_confirm.json`` in ``--output``):

- how many points were uncertain before (the issue asks for at least 4);
- both confirmed sets, and whether they are equal;
- the extra training each way: trainings, epochs and their seconds (the loop's
  ``train_time_s``), and confirm's share of brute force's (the target is <= 1/3);
- for every (configuration, seed) trained both ways, whether the two trainings agree.

Brute force runs two trainings at a time (the sweep's own concurrency on 2 cores) and writes
each finished one to ``brute_force.json`` at once: a rerun with the same ``--output``
continues where a stopped one ended. A finished sweep in ``--output``/sweep is reused too.

    python benchmarks/bench_confirm.py [EXPERIMENT] [--set KEY=VALUE ...] [--output DIR]
        [--seeds K] [--workers W]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from benchmarks.bench_models import machine_info
from search.experiment import load_experiment
from search.pareto.membership import front_membership
from search.pareto.objectives import eligible_rows
from search.results import merge_confirmations, read_trials
from search.sweep.confirm import KEPT_METRICS
from search.vocabulary import ANYTIME_OF

#: A configuration is in the confirmed set at this membership probability or above.
CONFIRMED_AT = 0.5


def run_sweep(experiment: str, overrides: list[str], out: Path) -> None:
    """The single-seed sweep, in a process of its own (skipped when ``out`` holds one)."""
    if (out / "trials.json").exists():
        print(f"sweep: reusing {out}", flush=True)
        return
    sets = [a for o in [*overrides, "replicates=1"] for a in ("--set", o)]
    paretotune = Path(sys.executable).with_name("paretotune")
    cmd = [str(paretotune), "run", experiment, "--output", str(out), "--no-report", *sets]
    print("sweep:", " ".join(cmd), flush=True)
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"sweep: {time.perf_counter() - started:.0f} s wall", flush=True)


_WORKER: dict[str, Any] = {}


def _worker_start(exp_path: str) -> None:
    """Each brute-force process loads the experiment and its data once."""
    from search.sweep.preflight import load_experiment_data

    exp = load_experiment(Path(exp_path))
    _WORKER.update(experiment=exp, data=load_experiment_data(exp))


def train_one(config: dict[str, Any], seed: int) -> dict[str, Any]:
    """One seed of one configuration through the sweep's loop; its metrics and wall time."""
    from search.trial import train_in_process

    started = time.perf_counter()
    last = train_in_process(
        config, experiment=_WORKER["experiment"], data=_WORKER["data"], replicates=[seed]
    )
    if last.get("failure_reason"):
        raise RuntimeError(f"seed {seed} failed: {last['failure_reason']}")
    kept = {k: last.get(k) for k in KEPT_METRICS}  # as confirm keeps them
    return {**kept, "epochs": last.get("epoch"), "wall_s": time.perf_counter() - started}


def confirm_path(sweep: Path, out: Path, seeds: int) -> list[dict[str, Any]]:
    """``confirm`` on a copy of the sweep, budget unlimited; its runs, each with wall time."""
    from search.results import export_results
    from search.sweep import open_study
    from search.sweep.confirm import confirm

    if not (out / "confirm.done").exists():
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(sweep, out)
        trials = read_trials(out)
        _worker_start(str(out / "experiment.yaml"))
        walls: list[tuple[float, Any]] = []

        def timed(config: dict[str, Any], seed: int) -> dict[str, Any]:
            run = train_one(config, seed)
            walls.append((run["wall_s"], run["epochs"]))
            return run

        outcome = confirm(
            out,
            experiment=_WORKER["experiment"],
            rows=list(trials["trials"]),
            objectives=trials["objectives"],
            seeds=seeds,
            max_trainings=10**6,
            train=timed,
            data=_WORKER["data"],
        )
        export_results(
            open_study(_WORKER["experiment"], create=False),
            out,
            experiment=_WORKER["experiment"].to_dict(),
        )  # trials.csv/json with the confirmations merged, as `paretotune confirm` leaves them
        runs = [dict(r) for r in outcome.trained]
        for run, (wall, epochs) in zip(runs, walls):
            run.update(wall_s=wall, epochs=epochs)
        (out / "confirm.done").write_text(json.dumps({"runs": runs}, indent=1))
    return list(json.loads((out / "confirm.done").read_text())["runs"])


def brute_force(
    sweep: Path, rows: list[dict[str, Any]], seeds: int, out: Path, workers: int
) -> list[dict[str, Any]]:
    """Every eligible, trainable row re-trained with seeds 1..``seeds``; resumable."""
    done = json.loads(out.read_text())["runs"] if out.exists() else []
    have = {(r["confirms"], r["seed"]) for r in done}
    todo = [
        (str(r["trial_id"]), r["config"], s)
        for r in rows
        for s in range(1, seeds + 1)
        if (str(r["trial_id"]), s) not in have
    ]
    print(f"brute force: {len(have)} trainings kept, {len(todo)} to train", flush=True)
    with ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),  # a fork would inherit torch's threads
        initializer=_worker_start,
        initargs=(str(sweep / "experiment.yaml"),),
    ) as pool:
        futures = {pool.submit(train_one, config, seed): (tid, seed) for tid, config, seed in todo}
        for future in as_completed(futures):
            tid, seed = futures[future]
            done.append({"confirms": tid, "seed": seed, **future.result()})
            out.write_text(json.dumps({"runs": done}, indent=1))
            print(f"  brute force {len(done)}/{len(have) + len(todo)}", flush=True)
    return list(done)


def confirmed_set(
    rows: list[dict[str, Any]], objectives: dict[str, str], runs: list[dict[str, Any]]
) -> tuple[set[str], dict[str, float]]:
    """The configurations with P(front) >= CONFIRMED_AT once ``runs`` are merged."""
    merged = [dict(r) for r in rows]
    merge_confirmations(merged, runs)
    overall = front_membership(merged, objectives).overall
    return {t for t, p in overall.items() if p >= CONFIRMED_AT}, overall


def totals(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Trainings, epochs and seconds (the loop's training time, and wall) of ``runs``."""
    return {
        "trainings": len(runs),
        "epochs": sum(int(r.get("epochs") or 0) for r in runs),
        "train_time_s": round(sum(float(r.get("train_time_s") or 0) for r in runs), 1),
        "wall_s": round(sum(float(r.get("wall_s") or 0) for r in runs), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", nargs="?", default="default")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--output", type=Path, default=Path("results/bench_confirm"))
    parser.add_argument("--seeds", type=int, default=2, help="new seeds per configuration")
    parser.add_argument("--workers", type=int, default=2, help="brute force's trainings at once")
    args = parser.parse_args(argv)
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYTHONWARNINGS", "ignore")

    run_sweep(args.experiment, args.overrides, out / "sweep")
    trials = read_trials(out / "sweep")
    objectives = trials["objectives"]
    rows = [r for r in eligible_rows(trials["trials"], objectives) if not r.get(ANYTIME_OF)]
    before = front_membership(trials["trials"], objectives)
    uncertain = before.uncertain(0.1, 0.9)
    print(f"{len(rows)} eligible trials; {len(uncertain)} uncertain before", flush=True)

    confirmed_runs = confirm_path(out / "sweep", out / "confirm", args.seeds)
    brute_json = out / "brute_force.json"
    brute_runs = brute_force(out / "sweep", rows, args.seeds, brute_json, args.workers)

    all_rows = list(trials["trials"])
    via_confirm, p_confirm = confirmed_set(all_rows, objectives, confirmed_runs)
    via_brute, p_brute = confirmed_set(all_rows, objectives, brute_runs)
    cost_confirm, cost_brute = totals(confirmed_runs), totals(brute_runs)
    by_key = {(r["confirms"], r["seed"]): r for r in brute_runs}
    agree = [
        abs(float(r["val_accuracy"]) - float(by_key[(r["confirms"], r["seed"])]["val_accuracy"]))
        for r in confirmed_runs
        if (r["confirms"], r["seed"]) in by_key
    ]
    result = {
        "experiment": args.experiment,
        "overrides": args.overrides,
        "seeds": args.seeds,
        "eligible": len(rows),
        "uncertain_before": {t: round(before.overall[t], 3) for t in uncertain},
        "confirmed_by_confirm": sorted(via_confirm),
        "confirmed_by_brute_force": sorted(via_brute),
        "same_confirmed_set": via_confirm == via_brute,
        "probability_confirm": {t: round(p, 3) for t, p in p_confirm.items()},
        "probability_brute_force": {t: round(p, 3) for t, p in p_brute.items()},
        "extra_training": {"confirm": cost_confirm, "brute_force": cost_brute},
        "share_of_brute_force": {
            k: round(cost_confirm[k] / cost_brute[k], 3) if cost_brute[k] else None
            for k in ("trainings", "epochs", "train_time_s", "wall_s")
        },
        "same_seed_val_difference_max": max(agree) if agree else None,
        "machine": machine_info(threads=1),
    }
    (out / "bench_confirm.json").write_text(json.dumps(result, indent=1))
    shown = {k: v for k, v in result.items() if not k.startswith("probability")}
    print(json.dumps(shown, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
