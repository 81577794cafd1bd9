"""Is one anytime Perceiver as good as T separately trained ones? And what does it buy?

On digits (the ``perceiver-cpu`` preset's recipe on the data it had when this was measured:
digits at 8x8, 40 epochs; :data:`DIGITS`), for each seed:

- one anytime trial of a weight-shared Perceiver with T = ``--iterations`` (4), trained with
  each anytime loss (``all``: the mean loss after every iteration; ``sampled``: one count per
  step), evaluated at every k = 1..T;
- the same configuration trained separately with k iterations, for each k.

Every run is ``search.trial.run_trial``, the function a sweep trial runs. It prints the
k-iteration point of each anytime run against the separately trained k-iteration model (val
and test accuracy, mean over seeds; goal: within 1.5 points at every k), and the Perceiver
front's hypervolume (val accuracy against FLOPs, over the k points) per training hour: one
anytime run against the T separate runs. Results go to ``--out`` (JSON);
``docs/benchmarks.md`` records them.

    python benchmarks/bench_anytime.py [--seeds 0 1 2] [--iterations 4] [--processes 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

#: The ``perceiver-cpu`` preset moved to Fashion-MNIST (issue 21); this benchmark keeps the
#: digits data its numbers in docs/benchmarks.md were measured on.
DIGITS = [
    "dataset.name=digits",
    "dataset.image_size=8",
    "dataset.val_fraction=0.15",
    "dataset.train_subset=null",
    "space.perceiver.patch_size=[1, 2]",
    "space.batch_size=[32, 64]",
]

#: The configuration (the perceiver-cpu space's middle; AdamW at the recipe's rate, batch 32).
CONFIG: dict[str, Any] = {
    "family": "perceiver",
    "patch_size": 2,
    "projection_dim": 32,
    "pos_encoding": "fourier",
    "num_freq_bands": 4,
    "max_freq": 4.0,
    "num_latents": 16,
    "latent_dim": 64,
    "self_per_cross": 1,
    "cross_heads": 4,
    "latent_heads": 4,
    "share_weights": True,
    "dropout": 0.0,
    "optimizer": "adamw",
    "lr": 2e-3,
    "weight_decay": 0.01,
    "batch_size": 32,
    "warmup_epochs": 1,
    "label_smoothing": 0.0,
}
GOAL_POINTS = 1.5


def _job(job: dict[str, Any]) -> dict[str, Any]:
    """One run: ``{"seed", "iterations", "anytime": loss | None}`` -> its points and time."""
    from search.experiment import load_experiment
    from search.sweep import load_experiment_data
    from search.trial import train_in_process

    overrides = [*DIGITS, f"seed={job['seed']}", f"epochs={job['epochs']}"]
    if job["anytime"]:
        overrides += ["training.anytime=true", f"training.anytime_loss={job['anytime']}"]
    else:
        overrides += ["training.anytime=false"]
    exp = load_experiment("perceiver-cpu", overrides)
    config = {**CONFIG, "num_iterations": job["iterations"]}
    last = train_in_process(config, experiment=exp, data=load_experiment_data(exp))
    if "failure_reason" in last:
        raise RuntimeError(f"{job}: {last['failure_reason']}")
    keys = ("iterations", "val_accuracy", "test_accuracy", "flops")
    points = last.get("anytime") or [{**last, "iterations": job["iterations"]}]
    kept = [{k: p[k] for k in keys} for p in points]
    return {**job, "train_time_s": last["train_time_s"], "points": kept}


def _jobs(seeds: Sequence[int], iterations: int, epochs: int) -> list[dict[str, Any]]:
    """Each seed's anytime runs (one per loss) and separate runs (one per k), slowest first."""
    runs = [(s, iterations, loss) for s in seeds for loss in ("all", "sampled")]
    runs += [(s, k, None) for s in seeds for k in range(iterations, 0, -1)]
    return [{"seed": s, "iterations": k, "anytime": a, "epochs": epochs} for s, k, a in runs]


def _front_hypervolume(points: Sequence[dict[str, Any]], reference_flops: float) -> float:
    from search.pareto import hypervolume

    values = [(p["val_accuracy"], p["flops"]) for p in points]
    return hypervolume(values, (0.0, reference_flops), ["max", "min"], log_scale=(False, True))


def summarise(runs: Sequence[dict[str, Any]], iterations: int) -> dict[str, Any]:
    """Per k: mean accuracies of each anytime loss's k point and of the separate k model; per
    method: front hypervolume per training hour (mean over seeds)."""
    seeds = sorted({r["seed"] for r in runs})
    by = {(r["seed"], r["anytime"], r["iterations"]): r for r in runs}
    ref = 1.1 * max(p["flops"] for r in runs for p in r["points"])
    per_k = []
    for k in range(1, iterations + 1):
        row: dict[str, Any] = {"k": k}
        for method in ("all", "sampled"):
            pts = [by[(s, method, iterations)]["points"][k - 1] for s in seeds]
            row[method] = {
                m: statistics.mean(p[m] for p in pts) for m in ("val_accuracy", "test_accuracy")
            }
        sep = [by[(s, None, k)]["points"][0] for s in seeds]
        row["separate"] = {
            m: statistics.mean(p[m] for p in sep) for m in ("val_accuracy", "test_accuracy")
        }
        row["flops"] = sep[0]["flops"]
        per_k.append(row)
    flops = [row["flops"] for row in per_k]  # forward FLOPs per image of the k-iteration model
    # Training compute per image and epoch, in forward-FLOP units (x3 for the backward pass):
    # `all` runs T iterations every step, `sampled` k ~ U{1..T}, separate runs each their own k.
    step_flops = {"all": flops[-1], "sampled": statistics.mean(flops), "separate": sum(flops)}
    hv: dict[str, Any] = {}
    for method in ("all", "sampled", None):
        per_seed = []
        for s in seeds:
            if method is None:
                chosen = [by[(s, None, k)] for k in range(1, iterations + 1)]
                points = [r["points"][0] for r in chosen]
            else:
                chosen = [by[(s, method, iterations)]]
                points = chosen[0]["points"]
            hours = sum(r["train_time_s"] for r in chosen) / 3600
            per_seed.append({"hv": _front_hypervolume(points, ref), "hours": hours})
        name = str(method or "separate")
        mean_hv = statistics.mean(x["hv"] for x in per_seed)
        hv[name] = {
            "hypervolume": mean_hv,
            "train_hours": statistics.mean(x["hours"] for x in per_seed),
            "hypervolume_per_hour": statistics.mean(x["hv"] / x["hours"] for x in per_seed),
            "train_flops_per_image_epoch": 3 * step_flops[name],
            "hypervolume_per_train_gflop": mean_hv / (3 * step_flops[name] / 1e9),
        }
    return {"seeds": seeds, "iterations": iterations, "per_k": per_k, "hypervolume": hv}


def _print(summary: dict[str, Any]) -> None:
    print("\nk  FLOPs       separate val/test   anytime(all) val/test  gap   anytime(sampled)  gap")
    for row in summary["per_k"]:
        sep = row["separate"]
        val, test = sep["val_accuracy"], sep["test_accuracy"]
        cells = [f"{row['k']}  {row['flops']:<10.3g}  {val:.3f} / {test:.3f}"]
        for method in ("all", "sampled"):
            a = row[method]
            gap = 100 * (a["val_accuracy"] - sep["val_accuracy"])
            cells.append(f"{a['val_accuracy']:.3f} / {a['test_accuracy']:.3f}  {gap:+.1f}")
        print("      ".join(cells))
    print("\nmethod     front HV   train h   HV per hour   HV per training GFLOP/image-epoch")
    for method, v in summary["hypervolume"].items():
        hv, hours, rate = v["hypervolume"], v["train_hours"], v["hypervolume_per_hour"]
        per_flop = v["hypervolume_per_train_gflop"]
        print(f"{method:9s}  {hv:.4g}  {hours:.4f}  {rate:8.4g}  {per_flop:.4g}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=40, help="the preset's 40 by default")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/bench_anytime.json"))
    parser.add_argument("--summarise", type=Path, help="summarise a saved run instead")
    args = parser.parse_args(argv)
    if args.summarise:
        saved = json.loads(args.summarise.read_text())
        saved["summary"] = summarise(saved["runs"], saved["summary"]["iterations"])
        args.summarise.write_text(json.dumps(saved, indent=1) + "\n")
        _print(saved["summary"])
        return 0
    jobs = _jobs(args.seeds, args.iterations, args.epochs)
    started = time.perf_counter()
    runs = []
    with mp.get_context("spawn").Pool(args.processes) as pool:
        for i, run in enumerate(pool.imap_unordered(_job, jobs), 1):
            runs.append(run)
            what = f"seed {run['seed']} T={run['iterations']} anytime={run['anytime']}"
            took = f"{run['train_time_s']:.0f} s ({time.perf_counter() - started:.0f} s)"
            print(f"[{i}/{len(jobs)}] {what} {took}", flush=True)
    summary = summarise(runs, args.iterations)
    args.out.write_text(
        json.dumps({"summary": summary, "runs": runs, "config": CONFIG}, indent=1) + "\n"
    )
    _print(summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
