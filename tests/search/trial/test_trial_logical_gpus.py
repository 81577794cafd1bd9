"""GPU sweeps scheduled on logical GPUs: a Ray instance that declares two GPUs on a machine
without any (``ray.init(num_gpus=2)``). Tune schedules fractional and multi-worker GPU trials
and Ray sets ``CUDA_VISIBLE_DEVICES`` as on a GPU node; the trials train on the CPU because
they say so (``training.device=cpu``), and one that does not fails in one line.

One Ray instance serves the module (6 logical CPUs, so the GPUs decide how many trials run at
once; ``_ray_session.start_ray``: DeepSpeed's CPU op in a private cache).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import ray
from _ray_session import start_ray

import search
import search.sweep.progress
from benchmarks.bench_sweep import _last_results as last_results  # each trial's last report

pytestmark = pytest.mark.slow

GPUS = 2
SMALL = ["families=[mixer]", "epochs=2", "scheduler.name=none", "training.report_interval_s=0"]


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    start_ray(num_cpus=6, num_gpus=GPUS)
    yield
    ray.shutdown()


class _CountRunning(search.sweep.progress.ProgressCallback):
    """The sweep's progress callback, also counting the trials Tune runs at each step."""

    counts: ClassVar[list[int]] = []

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        _CountRunning.counts.append(sum(t.status == "RUNNING" for t in trials))


def _sweep(
    overrides: list[str], out: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[search.SweepResult, int]:
    """A sweep, and the most trials Tune ran at once."""
    _CountRunning.counts = []
    monkeypatch.setattr(search.sweep.progress, "ProgressCallback", _CountRunning)
    result = search.run("smoke", overrides=[*SMALL, *overrides], output_dir=out, report=False)
    return result, max(_CountRunning.counts, default=0)


def test_half_gpu_trials_run_four_at_once_on_two_gpus(
    ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, most = _sweep(
        [
            "num_trials=8",
            "resources.gpus_per_trial=0.5",
            "resources.cpus_per_trial=0.5",  # CPUs would allow 12 at once: the GPUs decide
            "resources.max_concurrent_trials=8",
            "training.device=cpu",
            "dataset.synthetic.num_train=1024",  # trials long enough to overlap as they start
        ],
        tmp_path / "half",
        monkeypatch,
    )
    trained = [r for r in result.trials if r["status"] == "COMPLETE"]
    assert len(trained) >= 4, result.counts()
    assert most == 2 * GPUS, _CountRunning.counts
    placements = last_results(Path(result.output_dir))
    assert {r["trial_id"] for r in trained} <= set(placements)
    for trial_id, last in placements.items():
        # Ray gave each trial half of one GPU, and that GPU alone is the one it sees.
        assert last["gpu_ids"] in {"0", "1"}, (trial_id, last["gpu_ids"])
        assert last["cuda_visible_devices"] == last["gpu_ids"]
        assert (last["device"], last["precision"]) == ("cpu", "float32")


def test_two_worker_trials_each_hold_both_gpus(
    ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, _ = _sweep(
        [
            "num_trials=2",
            "resources.workers_per_trial=2",
            "resources.gpus_per_trial=1",  # per worker: a trial holds both GPUs
            "resources.cpus_per_trial=1",
            "resources.max_concurrent_trials=2",
            "training.device=cpu",  # gloo between the workers, not nccl
        ],
        tmp_path / "two",
        monkeypatch,
    )
    trained = [r for r in result.trials if r["status"] == "COMPLETE"]
    assert len(trained) == 2, result.counts()
    placements = last_results(Path(result.output_dir))
    for row in trained:
        last = placements[row["trial_id"]]  # rank 0's report
        assert last["workers"] == 2
        # Ray Train shows each worker every GPU of the workers on its node; rank 0 holds one.
        assert last["cuda_visible_devices"] == "0,1"
        assert last["gpu_ids"] in {"0", "1"}
        assert last["device"] == "cpu"


def test_a_trial_given_a_gpu_that_sees_no_cuda_fails_in_one_line(
    ray_session: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, _ = _sweep(
        ["num_trials=1", "resources.gpus_per_trial=1", "resources.max_concurrent_trials=1"],
        tmp_path / "nocuda",
        monkeypatch,
    )
    (row,) = result.trials
    assert row["status"] == "FAILED"
    reason = row["failure_reason"]
    assert reason.startswith("RuntimeError: Ray gave this trial GPU ")
    assert "sees no CUDA device" in reason and "training.device=cpu" in reason
    assert "\n" not in reason and row["epochs_run"] == 0
