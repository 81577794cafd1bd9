"""Where a sweep's time goes: training, or the machinery around it?

Runs an experiment (default: the ``default`` preset) in this process and prints:

- wall time, and the share of trial-slot time (``max_concurrent_trials`` x wall) the trials
  spent training and evaluating (their epochs);
- per-trial overhead, median and p90, by phase: suggestion (the driver's proposal), worker
  start or reuse plus data transfer (suggested -> the trial's loop entered), model build, cost
  measurement, engine set-up, reporting (the trial's ``tune.report`` calls), checkpoints, the
  end (last report -> the driver's study write) and the study write itself;
- sweep-level hardware use: useful training FLOPs (3 x forward FLOPs x images trained) over
  wall x this machine's fp32 matmul peak (all cores, 2048 x 2048 products, the best of
  before and after the sweep), measured in the same run.

``--two-node`` runs the same experiment on a two-node local Ray cluster (two ``ray start``
processes here, 1 CPU each) and prints the same numbers, and how many of the one-node run's
configurations it trained, and to the same accuracies. Each sweep runs in a process of its
own. Results go to ``bench_sweep.json`` in the output folder; ``docs/benchmarks.md`` records
them.

    python benchmarks/bench_sweep.py [EXPERIMENT] [--set KEY=VALUE ...] [--output DIR] [--two-node]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

#: The sweeps this benchmark runs: one node, or a two-node local cluster.
MODES = {"local": False, "two-node": True}

#: Per-trial phases, in the order a trial meets them.
PHASES = (
    "suggest",
    "start",
    "build",
    "cost",
    "engine",
    "report",
    "checkpoint",
    "end",
    "study_write",
)


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 10) -> float:
    """Best fp32 GEMM rate (GFLOP/s, 2 n^3 per product) with ``threads`` threads: the best of
    ``repeats`` products, so a moment when another process held a core does not lower it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        a @ b  # warm-up
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
    finally:
        torch.set_num_threads(before)
    return 2 * n**3 / best / 1e9


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _last_results(out: Path) -> dict[str, dict[str, Any]]:
    """Tune trial id -> its last reported result (Tune's result.json of each trial)."""
    results = {}
    for path in out.glob("tune/run-*/*/result.json"):
        lines = path.read_text().splitlines()
        if lines:
            last = json.loads(lines[-1])
            results[str(last.get("trial_id"))] = last
    return results


def trial_phases(
    row: dict[str, Any], last: dict[str, Any], driver: dict[str, float]
) -> dict[str, float]:
    """Seconds of each phase of one trial outside its epochs."""
    inner = last.get("phases") or {}
    phases = {
        p: float(inner.get(p, 0.0)) for p in ("build", "cost", "engine", "report", "checkpoint")
    }
    phases["suggest"] = driver.get("suggest", 0.0)
    entered = inner.get("entered_at")
    suggested = driver.get("suggest_at")
    phases["start"] = max(0.0, entered - suggested) if entered and suggested else 0.0
    # the last report's own time is not in its phases: it is part of the end
    written_from = driver.get("study_write_at", 0.0) - driver.get("study_write", 0.0)
    last_report_at = float(last.get("reported_at") or 0.0)
    phases["end"] = max(0.0, written_from - last_report_at) if last_report_at else 0.0
    phases["study_write"] = driver.get("study_write", 0.0)
    return phases


def analyse(out: Path, exp: Any, wall_s: float, peak: float) -> dict[str, Any]:
    """The sweep's time accounting from its study, Tune's results and the driver's timers."""
    from search.results import load_rows
    from search.trial.timing import DRIVER_PHASES
    from search.vocabulary import ANYTIME_OF, TrialStatus

    rows, _ = load_rows(out)
    trained = [r for r in rows if r["status"] in TrialStatus.trained() and not r.get(ANYTIME_OF)]
    last = _last_results(out)
    slots = exp.resources.max_concurrent_trials
    train_eval = sum(float(r.get("train_time_s") or 0.0) for r in trained)
    per_trial = [
        trial_phases(r, last.get(r["trial_id"], {}), DRIVER_PHASES.get(r["trial_id"], {}))
        for r in trained
    ]
    overhead = [sum(p.values()) for p in per_trial]
    useful = sum(
        3 * float(r["flops"] or 0) * _images_trained(r, last.get(r["trial_id"], {}))
        for r in trained
    )
    return {
        "wall_s": wall_s,
        "trials": len(trained),
        "slots": slots,
        "train_eval_s": train_eval,
        "slot_share": train_eval / (slots * wall_s),
        "overhead_median_s": statistics.median(overhead) if overhead else 0.0,
        "overhead_p90_s": _quantile(overhead, 0.9),
        "phases_median_s": {p: statistics.median(t[p] for t in per_trial) for p in PHASES}
        if per_trial
        else {},
        "phases_p90_s": {p: _quantile([t[p] for t in per_trial], 0.9) for p in PHASES},
        "useful_training_flops": useful,
        "matmul_peak_gflops": peak,
        "hardware_use": useful / (wall_s * peak * 1e9),
        "accuracies": {json.dumps(r["config"], sort_keys=True): r["val_accuracy"] for r in trained},
    }


def _images_trained(row: dict[str, Any], last: dict[str, Any]) -> float:
    per_epoch = float(last.get("train_images") or 0)
    return per_epoch * float(row.get("epochs_run") or 0)


def _quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@contextmanager
def _two_nodes() -> Iterator[str]:
    """A local Ray cluster of two 1-CPU nodes; yields its address."""
    from cluster.local import LocalCluster

    cluster = LocalCluster(num_cpus=1)
    try:
        cluster.start_head()
        cluster.add_worker()
        cluster.wait_for_nodes(2)
        os.environ.update(cluster.client_env())
        yield cluster.gcs_address
    finally:
        cluster.stop()


def run_and_analyse(
    experiment: str, overrides: list[str], out: Path, two_node: bool
) -> dict[str, Any]:
    import search
    from search.experiment import load_experiment

    exp = load_experiment(experiment, overrides)
    threads = os.cpu_count() or 1
    peak_before = matmul_peak_gflops(threads)
    with _two_nodes() if two_node else nullcontext(None) as address:
        started = time.perf_counter()
        search.run(exp, output_dir=out, address=address, report=False, verbose=False)
        wall = time.perf_counter() - started
    # The machine's peak: the better of before and after the sweep (a busy moment lowers one).
    return analyse(out, exp, wall, max(peak_before, matmul_peak_gflops(threads)))


def _print(title: str, r: dict[str, Any]) -> None:
    share, median, p90 = r["slot_share"], r["overhead_median_s"], r["overhead_p90_s"]
    print(f"\n== {title}: {r['trials']} trials, wall {r['wall_s']:.1f} s, {r['slots']} slots")
    print(f"train+eval {r['train_eval_s']:.1f} s = {100 * share:.1f}% of trial-slot time")
    print(f"overhead per trial: median {median:.2f} s, p90 {p90:.2f} s")
    for p in PHASES:
        med, high = r["phases_median_s"].get(p, 0.0), r["phases_p90_s"].get(p, 0.0)
        print(f"  {p:12s} median {med:.3f} s   p90 {high:.3f} s")
    useful, peak = r["useful_training_flops"] / 1e12, r["matmul_peak_gflops"]
    print(
        f"hardware use {100 * r['hardware_use']:.1f}% ({useful:.2f} TFLOP, peak {peak:.1f} GFLOP/s)"
    )


def compare(local: dict[str, float], other: dict[str, float]) -> dict[str, int]:
    """How many configurations both runs trained, and how many of those to the same accuracy."""
    both = set(local) & set(other)
    return {
        "trained": len(local),
        "in_both": len(both),
        "same_accuracy": sum(local[c] == other[c] for c in both),
    }


def _run_in_child(args: argparse.Namespace, base: Path, mode: str) -> dict[str, Any]:
    """One sweep in a fresh process (a Ray driver each: a second ``ray.init`` in one process
    does not reach another cluster); its analysis comes back as JSON."""
    sets = [f"--set={o}" for o in args.overrides]
    cmd = [sys.executable, __file__, args.experiment, *sets, "--output", str(base), "--one", mode]
    subprocess.run(cmd, check=True)
    return dict(json.loads((base / f"{mode}.json").read_text()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", default="default")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--two-node", action="store_true", help="also run on two local Ray nodes")
    parser.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)  # a child's one sweep
    args = parser.parse_args(argv)
    base = args.output or Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    if args.one:
        result = run_and_analyse(args.experiment, args.overrides, base / args.one, MODES[args.one])
        (base / f"{args.one}.json").write_text(json.dumps(result, indent=1) + "\n")
        return 0
    results: dict[str, Any] = {"local": _run_in_child(args, base, "local")}
    _print("one node", results["local"])
    if args.two_node:
        results["two_node"] = _run_in_child(args, base, "two-node")
        _print("two nodes", results["two_node"])
        same = compare(results["local"]["accuracies"], results["two_node"]["accuracies"])
        print(
            f"\ntwo nodes trained {same['in_both']} of the {same['trained']} configurations of one "
            f"node, {same['same_accuracy']} of them to the same val accuracy"
        )
        results["same_results"] = same
    (base / "bench_sweep.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"\n-> {base / 'bench_sweep.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
