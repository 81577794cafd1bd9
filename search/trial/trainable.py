"""How a trial is run: by Ray Tune (``train_trial``, every sweep trial) or in this process
(``train_in_process``: ``reproduce``, the search-table builder, the anytime benchmark).

With ``resources.workers_per_trial == 1`` it trains in its own process; with more it builds a
Ray Train ``TorchTrainer`` (data parallel, one DeepSpeed engine per worker, ZeRO stage from the
config) and forwards the workers' reports to Tune (Ray Train V2's supported pattern: a Tune
function trainable that fits a TorchTrainer). Either way each process runs the training loop
(``search.trial.loop.run_trial``) with its session (``search.trial.sessions``); neither of those
imports the other or this module. Every Ray import is inside the functions that need it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from search.trial.loop import run_trial
from search.trial.sessions import TrialSession, WorkerFailure, train_session, tune_session

if TYPE_CHECKING:
    from search.data import DatasetSplits
    from search.experiment import Experiment, Resources

__all__ = ["train_in_process", "train_trial"]


def train_trial(config: dict[str, Any], *, experiment: Experiment, data: DatasetSplits) -> None:
    """Ray Tune function trainable: one proposal, trained and reported epoch by epoch."""
    if experiment.resources.workers_per_trial > 1:
        _fit_torch_trainer(config, experiment=experiment, data=data)
        return
    run_trial(config, experiment=experiment, data=data, session=tune_session())


def train_in_process(
    config: Mapping[str, Any],
    *,
    experiment: Experiment,
    data: DatasetSplits,
    replicates: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Train proposal ``config`` here as a sweep trial would (the same loop and DeepSpeed
    engine; no Ray, no checkpoint to resume from) and return its last report ({} if none);
    ``replicates``: which seeds (default: all of the experiment's)."""
    reports: list[dict[str, Any]] = []
    session = TrialSession(
        report=lambda metrics, _ckpt: reports.append(metrics),
        restore_dir=lambda: nullcontext(None),
    )
    run_trial(
        dict(config), experiment=experiment, data=data, session=session, replicates=replicates
    )
    return reports[-1] if reports else {}


def _fit_torch_trainer(
    config: dict[str, Any], *, experiment: Experiment, data: DatasetSplits
) -> None:
    """Multi-worker trial: a TorchTrainer whose workers each train one DeepSpeed engine.

    ``resources.cpus_per_trial`` / ``gpus_per_trial`` are per worker here; this trainable itself
    holds ~0.01 CPU (``tuner._fit``). Ray Train sets up the process group (gloo on CPU, nccl with
    one whole GPU per worker) and the RANK/LOCAL_RANK/WORLD_SIZE/MASTER_* variables; DeepSpeed
    adopts that group (``dist_init_required=False``), each worker trains its shard of every
    global batch, and gradients are averaged by the engines.

    Reports: every worker calls ``ray.train.report`` each epoch; ``TuneReportCallback`` forwards
    rank 0's metrics to Tune plus ``checkpoint_path``, the merged checkpoint Ray Train persisted.
    Tune itself holds no checkpoint for these trials: the Train run lives in this Tune trial's
    own directory (``<trial>/train``, same storage filesystem), and a Tune retry of the trial
    builds the same run, which Ray Train restores from its latest checkpoint.

    Failures: a worker's deterministic failure (exception, non-finite loss, OOM) is raised, Ray
    Train stops the group (no retries at this level), and its failure report goes to Tune like a
    single-worker trial's. A dead worker or a broken process group is re-raised, so Tune's
    ``FailureConfig(max_failures)`` decides whether the trial is retried.
    """
    import ray
    from ray import tune
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    res = experiment.resources
    per_worker = _worker_resources(res)
    use_gpu = res.gpus_per_trial > 0
    # nccl between the workers' GPUs; gloo on CPUs (training.device=cpu: GPUs held, not used)
    backend = "nccl" if use_gpu and experiment.training.device != "cpu" else "gloo"
    storage = tune.get_context().get_storage()
    trainer = TorchTrainer(
        train_loop_per_worker=_train_worker,
        # The dataset goes through the object store once, not pickled into every worker's config.
        train_loop_config={"config": config, "experiment": experiment, "data": ray.put(data)},
        torch_config=TorchConfig(backend=backend),
        scaling_config=ScalingConfig(
            num_workers=res.workers_per_trial, use_gpu=use_gpu, resources_per_worker=per_worker
        ),
        run_config=RunConfig(
            name="train",
            storage_path=storage.trial_fs_path,
            storage_filesystem=storage.storage_filesystem,
            failure_config=FailureConfig(max_failures=0),
            checkpoint_config=CheckpointConfig(num_to_keep=1),
            # ray.train's static types are V1's; V2's RunConfig takes this UserCallback.
            callbacks=[TuneReportCallback()],  # type: ignore[list-item]
        ),
    )
    try:
        trainer.fit()
    except Exception as exc:
        failure = _deterministic_failure(exc)
        if failure is None:
            raise
        tune.report(failure.metrics)


def _worker_resources(res: Resources) -> dict[str, float]:
    """What each Ray Train worker holds: ``cpus_per_trial`` CPUs, and one whole GPU or none
    (any other GPU count with several workers is refused when the experiment loads)."""
    return res.trial_bundles()[1][0]


def _train_worker(loop_config: dict[str, Any]) -> None:
    import ray

    data = loop_config["data"]
    if isinstance(data, ray.ObjectRef):
        data = ray.get(data)
    run_trial(
        loop_config["config"],
        experiment=loop_config["experiment"],
        data=data,
        session=train_session(),
    )


def _deterministic_failure(error: BaseException) -> WorkerFailure | None:
    """The first worker failure that is the trial's own (None: infrastructure, retry)."""
    failures: list[WorkerFailure] = []
    for err in getattr(error, "worker_failures", {}).values():
        # Ray Train wraps a worker's exception (UserExceptionWithTraceback._base_exc).
        while err is not None and not isinstance(err, WorkerFailure):
            err = getattr(err, "_base_exc", None) or err.__cause__
        if not isinstance(err, WorkerFailure) or err.communication:
            return None  # a worker died or its peers lost it: not deterministic
        failures.append(err)
    return min(failures, key=lambda f: f.at, default=None)
