"""Two-worker trials: a Ray Train TorchTrainer of DeepSpeed engines (gloo on CPU) under Tune.

One Ray instance (3 CPUs: two 1-CPU workers + the 0.01-CPU trainable) serves the module
(``_ray_session.start_ray``: DeepSpeed's CPU op in a private cache).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import optuna
import pytest
import ray
from _ray_session import start_ray

import search
from search.data import load_dataset
from search.experiment import Experiment, load_experiment
from search.sweep import open_study
from search.trial.trainable import _deterministic_failure, _train_worker

WORKERS = 2
BATCH = 32  # global batch: 16 images per worker per step
TWO_WORKERS = [
    f"resources.workers_per_trial={WORKERS}",
    "resources.cpus_per_trial=1",
    "resources.max_concurrent_trials=1",
    "resources.max_failures=1",  # retries read checkpoints: trials save one each epoch
    "resources.checkpoint_interval_s=0",
]
MIXER = {
    "family": "mixer",
    "patch_size": 4,
    "hidden_dim": 16,
    "num_blocks": 1,
    "tokens_mlp_dim": 16,
    "channels_mlp_dim": 32,
    "dropout": 0.0,  # no dropout: a resumed epoch must repeat the interrupted one exactly
    "lr": 1e-3,
    "weight_decay": 0.01,
    "optimizer": "adamw",
    "batch_size": BATCH,
    "warmup_epochs": 1,
    "label_smoothing": 0.0,
}

# Its two MLP weights (512 x 256) exceed ZeRO-3's default persistence threshold (1e5 elements), so
# ZeRO-3 really partitions them over the ranks (smaller tensors stay whole on every rank).
ZERO3_MIXER = {**MIXER, "hidden_dim": 512, "channels_mlp_dim": 256}


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    start_ray(num_cpus=3)
    # The injected failure below is defined here: workers unpickle it by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield
    ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    ray.shutdown()


@pytest.fixture(scope="module")
def sweep(ray_session: None, tmp_path_factory: pytest.TempPathFactory) -> search.SweepResult:
    out = tmp_path_factory.mktemp("multiworker")
    return search.run(
        "smoke",
        overrides=[*TWO_WORKERS, "num_trials=2", "training.zero_stage=1"],
        output_dir=out,
        report=False,
        verbose=False,
    )


def _tune_results(out: Path, trial_id: str) -> list[dict[str, Any]]:
    """Every result Tune recorded for one trial (what TuneReportCallback forwarded)."""
    (trial_dir,) = (out / "tune" / "run-1").glob(f"train_trial_{trial_id}_*")
    lines = (trial_dir / "result.json").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _data(exp: Experiment) -> Any:
    d = exp.dataset
    return load_dataset(
        d.name, image_size=d.image_size, val_fraction=d.val_fraction, seed=exp.seed, **d.synthetic
    )


# ---- a real sweep of two-worker trials ----------------------------------------------------------
@pytest.mark.slow
def test_two_worker_trials_reach_the_study_and_trials_csv(sweep: search.SweepResult) -> None:
    with (sweep.output_dir / "trials.csv").open() as fh:
        rows = {int(r["number"]): r for r in csv.DictReader(fh)}
    study = open_study(sweep.experiment, create=False)
    assert sorted(rows) == [t.number for t in study.trials] and len(rows) == 2
    for t in study.trials:
        row = rows[t.number]
        assert row["status"] == "COMPLETE", row["failure_reason"]
        assert t.state == optuna.trial.TrialState.COMPLETE
        assert int(row["epochs_run"]) == 2
        history = t.user_attrs["history"]
        assert [h["epoch"] for h in history] == [1, 2]
        last = history[-1]["val_accuracy"]  # the weights that count are the last epoch's
        assert float(row["val_accuracy"]) == pytest.approx(last)
        assert t.values[0] == pytest.approx(last)  # objective 0: val_accuracy
        assert 0.0 <= last <= 1.0 and row["test_accuracy"] != ""
        assert all(math.isfinite(h["train_loss"]) and h["images_per_s"] > 0 for h in history)


@pytest.mark.slow
def test_each_worker_trains_its_own_shard(sweep: search.SweepResult) -> None:
    n_train = len(_data(sweep.experiment).train_y)
    per_worker = BATCH // WORKERS
    # Every full global batch of the epoch, each image trained on by exactly one worker.
    expected = (n_train // WORKERS // per_worker) * per_worker * WORKERS
    assert expected > n_train // 2  # a single worker's share could not reach it
    for row in sweep.trials:
        results = _tune_results(sweep.output_dir, row["trial_id"])
        assert [r["epoch"] for r in results] == [1, 2]  # both epochs trained in this trial
        for r in results:
            assert r["workers"] == WORKERS
            assert r["train_images"] == expected
            # Identical shards on both workers would count each image twice: half as many.
            assert r["train_images_distinct"] == expected


@pytest.mark.slow
def test_checkpoints_hold_every_ranks_zero_shard_in_the_trials_own_run(
    sweep: search.SweepResult,
) -> None:
    paths = set()
    for row in sweep.trials:
        last = _tune_results(sweep.output_dir, row["trial_id"])[-1]
        ckpt = Path(last["checkpoint_path"])  # forwarded by TuneReportCallback
        (trial_dir,) = (sweep.output_dir / "tune" / "run-1").glob(f"*_{row['trial_id']}_*")
        assert ckpt.parent == trial_dir / "train"  # this trial's own Train run, not a shared one
        kept = [p.name for p in ckpt.parent.glob("checkpoint_*") if p.is_dir()]
        assert kept == [ckpt.name]  # CheckpointConfig(num_to_keep=1)
        state = json.loads((ckpt / "trial_state.json").read_text())
        assert state["epoch"] == 2 and len(state["history"]) == 2
        shards = sorted(p.name for p in (ckpt / "last").glob("zero_pp_rank_*_optim_states.pt"))
        assert shards == [f"zero_pp_rank_{r}_mp_rank_00_optim_states.pt" for r in (0, 1)]
        assert (ckpt / "last" / "mp_rank_00_model_states.pt").is_file()
        paths.add(ckpt)
    assert len(paths) == 2


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_failing_two_worker_trial_is_recorded_and_the_sweep_ends(
    ray_session: None, tmp_path: Path
) -> None:
    result = search.run(
        "smoke",
        overrides=[*TWO_WORKERS, "num_trials=1", "space.batch_size=[4096]"],
        output_dir=tmp_path,
        report=False,
        verbose=False,
    )
    (row,) = result.trials
    assert row["status"] == "FAILED"
    assert "batch_size=4096" in row["failure_reason"]  # the workers' own reason, not Ray's
    (t,) = open_study(result.experiment, create=False).trials
    assert t.state == optuna.trial.TrialState.FAIL


# ---- one worker fails mid-epoch; the run restarted on the same storage resumes ------------------
class _RankOneFailsAtTestEval:
    """``experiment.training`` whose ``eval_test`` raises on rank 1 only (the last epoch)."""

    def __init__(self, training: Any) -> None:
        self.wrapped = training

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "wrapped":
            raise AttributeError(name)
        if name == "eval_test" and os.environ.get("RANK") == "1":
            raise RuntimeError("injected failure on rank 1")
        return getattr(self.wrapped, name)


def _trainer(exp: Experiment, data: Any, storage: Path) -> Any:
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    # As _fit_torch_trainer builds it, minus Tune: a Tune retry reuses the same storage and name.
    return TorchTrainer(
        _train_worker,
        train_loop_config={"config": ZERO3_MIXER, "experiment": exp, "data": data},
        torch_config=TorchConfig(backend="gloo"),
        scaling_config=ScalingConfig(num_workers=WORKERS, resources_per_worker={"CPU": 1}),
        run_config=RunConfig(
            name="train", storage_path=str(storage), failure_config=FailureConfig(max_failures=0)
        ),
    )


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_one_rank_failing_ends_the_run_and_a_restart_resumes_zero3(
    ray_session: None, tmp_path: Path
) -> None:
    from ray.train import WorkerGroupError

    exp = load_experiment(
        "smoke",
        [
            "training.zero_stage=3",
            "space.optimizer=[adamw]",  # LAMB with ZeRO-3 is refused (per-tensor trust ratio)
            f"resources.workers_per_trial={WORKERS}",
            "resources.max_failures=1",  # a retry reads the checkpoint: one is saved each epoch
            "resources.checkpoint_interval_s=0",
            # 513 validation images: uneven shards (257 + 256), so each rank evaluates the same
            # number of batches only with the wrapped-around positions, which must not count.
            "dataset.synthetic.num_train=684",
            "dataset.val_fraction=0.75",
        ],
    )
    data = _data(exp)
    n_val = len(data.val_y)
    assert n_val == 513
    failing = dataclasses.replace(exp, training=cast(Any, _RankOneFailsAtTestEval(exp.training)))

    t0 = time.monotonic()
    with pytest.raises(WorkerGroupError) as info:
        _trainer(failing, ray.put(data), tmp_path).fit()
    assert time.monotonic() - t0 < 150  # rank 0 was left in a collective: no hang
    failure = _deterministic_failure(info.value)
    assert failure is not None, info.value  # the trial's own failure: reported, not retried
    assert "injected failure on rank 1" in failure.metrics["failure_reason"]
    assert failure.metrics["epoch"] == 2
    interrupted = failure.metrics["history"]  # rank 1's view (its own epoch timings)
    (saved,) = [p for p in (tmp_path / "train").glob("checkpoint_*") if p.is_dir()]
    epoch1 = json.loads((saved / "trial_state.json").read_text())["history"]  # rank 0's
    assert [h["epoch"] for h in epoch1] == [1]

    # Restarted on the same storage (as a Tune retry of the trial): resumes after epoch 1 from
    # the checkpoint both ranks uploaded (ZeRO-3 shards parameters and optimizer state).
    result = _trainer(exp, data, tmp_path).fit()
    history = result.metrics["history"]
    assert result.metrics["epoch"] == 2 and len(history) == 2
    assert history[0] == epoch1[0]  # restored, timings included: not trained again
    # Epoch 2 repeats the interrupted one: parameters, Adam moments and LR schedule restored.
    for i in (0, 1):
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert history[i][key] == pytest.approx(interrupted[i][key], rel=1e-5, abs=1e-7)
    for h in history:
        correct = h["val_accuracy"] * n_val
        assert abs(correct - round(correct)) < 1e-6  # padded positions were masked out
    ckpt = Path(result.checkpoint.path) / "last"
    ranks = {p.name.split("_")[3] for p in ckpt.glob("zero_pp_rank_*_model_states.pt")}
    assert ranks == {"0", "1"}
