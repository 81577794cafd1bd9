"""Build a tabular benchmark: a grid of a sweep's space, every point trained by the sweep's code.

Two grids (``--grid``): ``digits`` (the default sweep's space, one seed, ``table.csv`` here) and
``fashion`` (Fashion-MNIST at a low fidelity, ``fashion.yaml``: 5,000 training images at 28x28,
4 epochs, **two seeds per row** trained side by side, a Perceiver factorial over N, projection
dim and patch size whose anytime runs give iterations 1..4; ``fashion/table.csv``). Every row
keeps each seed's curve, its epoch times and its provenance (code revision, machine).

Each configuration is proposed by the default sweep's own joint space (the grid's values fixed
through ``optuna.trial.FixedTrial``) and trained by ``search.trial.run_trial``, the function
every Tune trial runs, with the default experiment (digits 8x8, 40 epochs, the landed recipe,
its seed). Nothing is stopped early: each row holds the full learning curve, so a replay can
apply any early-stopping rule afterwards (``benchmarks/bench_search.py``).

Rows are appended to ``table.csv`` as trials finish, so an interrupted build resumes where it
stopped; ``provenance.json`` records the grid, the command, the code revision and the machine.
``--experiment`` and ``--set key=value`` choose another experiment (as ``paretotune run`` does),
e.g. a 2-epoch table for a test.

    python benchmarks/search_table/build.py                # the whole grid, 2 processes
    python benchmarks/search_table/build.py --families mixer --limit 4 --out /tmp/t
    python benchmarks/search_table/build.py --set epochs=2 --per-family 1 --out /tmp/t
    python benchmarks/search_table/build.py --keys keys.txt --set seed=1 --out /tmp/seed1
    python benchmarks/search_table/build.py --grid fashion     # 2 seeds a row, resumable
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import multiprocessing as mp
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models import FAMILIES  # noqa: E402  (torch-free)

HERE = Path(__file__).resolve().parent
EXPERIMENT = "default"

#: The grid's shared training values (one distribution per name across families, as in the
#: sweep): AdamW at the default preset's two ends and their geometric middle; the rest fixed.
TRAINING_GRID: dict[str, list[Any]] = {
    "optimizer": ["adamw"],
    "adamw.lr": [1.0e-3, 2.0e-3, 4.0e-3],
    "weight_decay": [1.0e-2],
    "batch_size": [32, 64],
    "warmup_epochs": [1],
    "label_smoothing": [0.0],
}

#: The ViT values every grid fixes.
_VIT_FIXED: dict[str, list[Any]] = {
    "num_heads": [4],
    "mlp_ratio": [2.0],
    "pool": ["mean"],
    "dropout": [0.0],
}
#: Per family: the searched dimensions with the default preset's values, the others fixed.
MODEL_GRID: dict[str, dict[str, list[Any]]] = {
    "mixer": {
        "patch_size": [1, 2],
        "hidden_dim": [32, 64],
        "num_blocks": [2, 4],
        "tokens_mlp_dim": [32],
        "channels_mlp_dim": [128],
        "dropout": [0.0],
    },
    "fnet": {
        "patch_size": [1, 2],
        "hidden_dim": [32, 64],
        "num_blocks": [2, 4],
        "mlp_dim": [128],
        "dropout": [0.0],
    },
    "gmlp": {
        "patch_size": [1, 2],
        "hidden_dim": [32, 64],
        "num_blocks": [2, 4],
        "ffn_dim": [128],
        "dropout": [0.0],
    },
    "vit": {"patch_size": [1, 2], "embed_dim": [32, 64], "depth": [2, 4], **_VIT_FIXED},
    "perceiver": {
        "patch_size": [2],  # patch 1 (64 inputs) trains ~3x slower: the build's budget
        "projection_dim": [16, 32],
        "num_latents": [16, 32],
        "num_iterations": [1, 2, 3],
        "latent_dim": [64],
        "self_per_cross": [1],
        "latent_heads": [4],
        "cross_heads": [4],
        "share_weights": [True],
        "pos_encoding": ["fourier"],
        "num_freq_bands": [4],
        "dropout": [0.0],
    },
}
#: ``models.FAMILIES`` cheap first, in the grid's order (a family without a grid fails here).
FAMILY_ORDER = tuple(sorted(FAMILIES, key=list(MODEL_GRID).index))

#: The Fashion-MNIST grid's training values: AdamW at two learning rates a family may prefer
#: differently (the family-conditioning question), the rest fixed at the `fashion` preset's.
FASHION_TRAINING_GRID: dict[str, list[Any]] = {
    "optimizer": ["adamw"],
    "adamw.lr": [1.0e-3, 3.0e-3],
    "weight_decay": [5.0e-2],
    "batch_size": [128],
    "warmup_epochs": [1],
    "label_smoothing": [0.0],
}
_PATCH_MLP = {"patch_size": [4, 7], "hidden_dim": [32, 64, 128], "num_blocks": [2, 4]}
#: Per family on Fashion-MNIST (28x28): patch 4 or 7 (49 or 16 tokens), three widths, two
#: depths, 12 configurations x 2 learning rates; the Perceiver's factorial is N x projection
#: dim x patch size at 4 shared-weight iterations, read at 1..4 (an anytime run): 18 x 2 lr
#: trainings, 144 configurations. 240 configurations in all.
FASHION_MODEL_GRID: dict[str, dict[str, list[Any]]] = {
    "mixer": {**_PATCH_MLP, "tokens_mlp_dim": [64], "channels_mlp_dim": [256], "dropout": [0.0]},
    "fnet": {**_PATCH_MLP, "mlp_dim": [256], "dropout": [0.0]},
    "gmlp": {**_PATCH_MLP, "ffn_dim": [256], "dropout": [0.0]},
    "vit": {"patch_size": [4, 7], "embed_dim": [32, 64, 128], "depth": [2, 4], **_VIT_FIXED},
    "perceiver": {
        "patch_size": [4, 7],
        "projection_dim": [16, 32, 64],
        "num_latents": [8, 16, 32],
        "num_iterations": [4],  # anytime: every k = 1..4 is read from the same run
        "latent_dim": [64],
        "self_per_cross": [1],
        "latent_heads": [4],
        "cross_heads": [1],
        "share_weights": [True],
        "pos_encoding": ["fourier"],
        "num_freq_bands": [4],
        "dropout": [0.0],
    },
}


@dataclass(frozen=True)
class Grid:
    """One table: its experiment (a preset name or YAML path), its grid and its folder, and
    the settings a replay of it adds to the experiment (``bench_search.py``)."""

    experiment: str
    training: Mapping[str, Sequence[Any]]
    model: Mapping[str, Mapping[str, Sequence[Any]]]
    out: Path
    replay_sets: tuple[str, ...] = ()

    @property
    def families(self) -> tuple[str, ...]:
        """Its families, in the order of ``FAMILY_ORDER`` (cheap first)."""
        return tuple(f for f in FAMILY_ORDER if f in self.model)

    def space_overrides(self) -> dict[str, list[Any]]:
        """The grid as its experiment's ``space`` overrides (:func:`space_overrides`)."""
        return space_overrides(self.model, self.training)


#: The tables this script builds (``--grid``).
GRIDS = {
    "digits": Grid(EXPERIMENT, TRAINING_GRID, MODEL_GRID, HERE),
    "fashion": Grid(
        str(HERE / "fashion.yaml"),
        FASHION_TRAINING_GRID,
        FASHION_MODEL_GRID,
        HERE / "fashion",
        # the table is built without early stopping; a replay stops as the sweep does, at the
        # table's 4 epochs: MO-ASHA, rungs at epochs 1 and 2, half kept at each
        replay_sets=(
            "scheduler.name=moasha",
            "scheduler.grace_period=1",
            "scheduler.reduction_factor=2",
        ),
    ),
}
#: The grid's parameters the joint space searches as log-uniform ranges (``spaces/common.py``):
#: their overrides are ``[low, high]``, not a list of choices.
RANGES = frozenset({"adamw.lr", "weight_decay"})
COLUMNS = (
    "key",
    "family",
    "config",
    "status",
    "val_accuracy",
    "test_accuracy",
    "flops",
    "params",
    "latency_ms",
    "train_time_s",
    "epochs",
    "val_curve",
    "time_curve",
    "seed",
    "failure_reason",
    # Seeds (a table built with replicates), anytime points, provenance; a table written
    # before these columns existed keeps its own header.
    "replicates",
    "val_accuracy_seeds",
    "test_accuracy_seeds",
    "val_curves",
    "anytime",
    "revision",
    "machine",
)


def space_overrides(
    model_grid: Mapping[str, Mapping[str, Sequence[Any]]] = MODEL_GRID,
    training_grid: Mapping[str, Sequence[Any]] = TRAINING_GRID,
) -> dict[str, list[Any]]:
    """The grid as the default sweep's ``space`` overrides: a choice list per categorical,
    ``[min, max]`` per log-uniform range (a range over one value fixes it)."""
    out = {k: _override(k, v) for k, v in training_grid.items()}
    for family, grid in model_grid.items():
        out.update({f"{family}.{k}": list(v) for k, v in grid.items()})
    return out


def space_sets(overrides: Mapping[str, Sequence[Any]]) -> list[str]:
    """``space`` overrides as experiment ``--set`` strings (``space.<name>=<JSON list>``)."""
    return [f"space.{k}={json.dumps(list(v))}" for k, v in overrides.items()]


def point_overrides(params: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The ``space`` overrides that fix the joint space to one grid point (``family`` aside)."""
    return {k: _override(k, [v]) for k, v in params.items() if k != "family"}


def _override(name: str, values: Sequence[Any]) -> list[Any]:
    return [min(values), max(values)] if name in RANGES else list(values)


def grid_points(
    families: Sequence[str],
    model_grid: Mapping[str, Mapping[str, Sequence[Any]]] = MODEL_GRID,
    training_grid: Mapping[str, Sequence[Any]] = TRAINING_GRID,
) -> Iterator[dict[str, Any]]:
    """Optuna parameter dicts, one per grid point, family by family."""
    for family in families:
        names = [f"{family}.{k}" for k in model_grid[family]] + list(training_grid)
        values = [*model_grid[family].values(), *training_grid.values()]
        for combo in itertools.product(*values):
            yield {"family": family, **dict(zip(names, combo, strict=True))}


def config_key(params: Mapping[str, Any]) -> str:
    """The row key: the Optuna parameters, sorted (what a replay looks up)."""
    return json.dumps(dict(sorted(params.items())), sort_keys=True)


_WORKER: dict[str, Any] = {}


def _init_worker(experiment: str = EXPERIMENT, overrides: Sequence[str] = ()) -> None:
    from search.experiment import load_experiment
    from search.sweep import load_experiment_data
    from spaces import joint

    exp = load_experiment(experiment, list(overrides))
    data = load_experiment_data(exp)
    _WORKER.update(
        experiment=exp,
        data=data,
        revision=_revision(),
        machine=_machine(),
        space=joint(
            exp.families,
            image_size=data.image_size,
            in_channels=data.in_channels,
            overrides=exp.space,
        ),
    )


def train_point(params: dict[str, Any]) -> dict[str, Any]:
    """Train one grid point as a sweep trial would; its table row."""
    import optuna

    from search.trial import train_in_process, trial_seed
    from search.vocabulary import TrialStatus

    exp, data = _WORKER["experiment"], _WORKER["data"]
    proposal = _WORKER["space"](optuna.trial.FixedTrial(params))
    last = train_in_process(proposal, experiment=exp, data=data)
    history = last.get("history", [])
    seeded = bool(history) and "val_accuracy_seeds" in history[0]
    return {
        "key": config_key(params),
        "family": params["family"],
        "config": json.dumps(proposal, sort_keys=True),
        "status": str(
            TrialStatus.ended(
                failed="failure_reason" in last,
                epochs_run=len(history),
                max_epochs=exp.epochs,
            )
        ),
        "val_accuracy": last.get("val_accuracy"),
        "test_accuracy": last.get("test_accuracy"),
        "flops": last.get("flops"),
        "params": last.get("params"),
        "latency_ms": last.get("latency_ms"),
        "train_time_s": last.get("train_time_s"),
        "epochs": len(history),
        "val_curve": json.dumps([round(h["val_accuracy"], 6) for h in history]),
        "time_curve": json.dumps([round(h["epoch_time_s"], 4) for h in history]),
        "seed": trial_seed(exp),
        "failure_reason": last.get("failure_reason", ""),
        "replicates": last.get("replicates", 1),
        "val_accuracy_seeds": json.dumps(last.get("val_accuracy_seeds")),
        "test_accuracy_seeds": json.dumps(last.get("test_accuracy_seeds")),
        # per seed, its val accuracy at every epoch
        "val_curves": json.dumps(
            [
                [round(v, 6) for v in seeds]
                for seeds in zip(*(h["val_accuracy_seeds"] for h in history))
            ]
            if seeded
            else None
        ),
        "anytime": json.dumps(last.get("anytime")),
        "revision": _WORKER["revision"],
        "machine": _WORKER["machine"],
    }


def _revision() -> str:
    """The code revision rows are trained by (``-dirty`` with uncommitted changes)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    code = ("search", "models", "spaces", "benchmarks/search_table/build.py")
    return git("rev-parse", "HEAD") + (
        "-dirty" if git("status", "--porcelain", "--", *code) else ""
    )


def _machine() -> str:
    """This machine: the CPU model, its logical CPUs, the platform."""
    from benchmarks.bench_models import machine_info

    info = machine_info(threads=1)
    return f"{info['cpu']}, {info['logical_cpus']} CPUs, {info['platform']}"


def _header(path: Path) -> list[str]:
    """The columns ``path`` was written with (an older table has fewer)."""
    with path.open(newline="") as fh:
        return next(csv.reader(fh))


def _done_keys(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    with path.open(newline="") as fh:
        return {row["key"] for row in csv.DictReader(fh)}


def _provenance(args: argparse.Namespace, families: Sequence[str], grid: Grid) -> dict[str, Any]:
    import torch

    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "experiment": args.experiment,
        "overrides": list(args.set),
        "families": list(families),
        "training_grid": grid.training,
        "model_grid": {f: grid.model[f] for f in families},
        "space_overrides": space_overrides(grid.model, grid.training),
        "git_revision": _revision(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": _machine(),
        "torch": torch.__version__,
        "processes": args.processes,
    }


def _selected(
    families: Sequence[str],
    per_family: int,
    keys: set[str] | None = None,
    grid: Grid = GRIDS["digits"],
) -> list[dict[str, Any]]:
    """The grid points of ``families`` (only those in ``keys`` when given), the first
    ``per_family`` of each when that is > 0."""
    points = [
        p
        for p in grid_points(families, grid.model, grid.training)
        if keys is None or config_key(p) in keys
    ]
    if per_family <= 0:
        return points
    return [p for f in families for p in [q for q in points if q["family"] == f][:per_family]]


def build_order(points: Sequence[dict[str, Any]], seed: int = 0) -> list[dict[str, Any]]:
    """``points`` in the order to train them: each family's shuffled (seeded), the families
    taking turns, so that a build stopped part way has rows of every family across its grid."""
    import random

    rng = random.Random(seed)
    queues: dict[str, list[dict[str, Any]]] = {}
    for point in points:
        queues.setdefault(point["family"], []).append(point)
    for queue in queues.values():
        rng.shuffle(queue)
    turns = itertools.zip_longest(*queues.values())
    return [p for turn in turns for p in turn if p is not None]


def read_keys(path: Path) -> set[str]:
    """Row keys, one per line (blank lines ignored)."""
    return {line.strip() for line in path.read_text().splitlines() if line.strip()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=sorted(GRIDS), default="digits")
    parser.add_argument("--out", type=Path, help="the table's folder (default: the grid's)")
    parser.add_argument("--families", nargs="*", help="default: the grid's")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="at most this many points per run")
    parser.add_argument("--per-family", type=int, default=0, help="at most this many per family")
    parser.add_argument("--experiment", help="preset name or YAML path (default: the grid's)")
    parser.add_argument("--keys", type=Path, help="train only these row keys (one per line)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="experiment override"
    )
    args = parser.parse_args(argv)
    from search.errors import UserError
    from search.experiment import load_experiment

    grid = GRIDS[args.grid]
    args.out = args.out or grid.out
    args.families = args.families or list(grid.families)
    args.experiment = args.experiment or grid.experiment
    # The grid is the experiment's space; checked here, once, before any worker starts.
    sets = [*space_sets(grid.space_overrides()), *args.set]
    try:
        load_experiment(args.experiment, sets)
    except UserError as exc:
        parser.error(f"--experiment {args.experiment}: {exc}")
    args.out.mkdir(parents=True, exist_ok=True)
    table = args.out / "table.csv"
    done = _done_keys(table)
    keys = read_keys(args.keys) if args.keys else None
    selected = _selected(args.families, args.per_family, keys, grid)
    points = grid_points(args.families, grid.model, grid.training)
    unknown = sorted((keys or set()) - {config_key(p) for p in points})
    if unknown:
        parser.error(
            f"--keys: {len(unknown)} keys are no grid point of {args.families}: {unknown[0]}"
        )
    todo = build_order([p for p in selected if config_key(p) not in done])
    if args.limit:
        todo = todo[: args.limit]
    provenance = args.out / "provenance.json"
    if not provenance.exists():
        provenance.write_text(json.dumps(_provenance(args, args.families, grid), indent=2) + "\n")
    print(f"{len(done)} rows done, {len(todo)} to train -> {table}", flush=True)
    new_file = not table.exists()
    columns = COLUMNS if new_file else _header(table)
    started = time.perf_counter()
    ctx = mp.get_context("spawn")
    with (
        table.open("a", newline="") as fh,
        ctx.Pool(args.processes, _init_worker, (args.experiment, sets)) as pool,
    ):
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        for i, row in enumerate(pool.imap(train_point, todo), 1):
            writer.writerow(row)
            fh.flush()
            print(
                f"[{i}/{len(todo)}] {row['family']:9s} val {row['val_accuracy']:.3f} "
                f"{row['train_time_s']:.0f} s  ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
