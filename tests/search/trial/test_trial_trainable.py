"""The Tune trainable (search/trial/trainable.py), without a Ray instance: how a multi-worker
trial's worker failures are classified, and what each of its workers holds. The two-worker
trials themselves run in tests/search/trial/test_trial_multiworker.py."""

from __future__ import annotations

from search.trial.sessions import WorkerFailure
from search.trial.trainable import _deterministic_failure

WORKERS = 2


def _failure(reason: str, at: float, communication: bool = False) -> WorkerFailure:
    return WorkerFailure({"failure_reason": reason}, at=at, communication=communication)


def test_worker_failures_are_classified() -> None:
    from ray.exceptions import RayActorError
    from ray.train import WorkerGroupError
    from ray.train.v2._internal.exceptions import UserExceptionWithTraceback

    def group(**failures: Exception) -> WorkerGroupError:
        wrapped = {
            int(k[1:]): UserExceptionWithTraceback(e, "tb") if isinstance(e, WorkerFailure) else e
            for k, e in failures.items()
        }
        return WorkerGroupError("x", wrapped)

    first = _failure("ValueError: first", at=1.0)
    picked = _deterministic_failure(group(r0=_failure("later", at=2.0), r1=first))
    assert picked is not None and picked.metrics == first.metrics
    # A dead worker, or a peer's broken process group: infrastructure, so Tune may retry.
    assert _deterministic_failure(group(r0=first, r1=RayActorError())) is None
    assert _deterministic_failure(group(r0=_failure("gloo", at=0.5, communication=True))) is None
    assert _deterministic_failure(RuntimeError("controller")) is None


def test_each_worker_holds_its_cpus_and_one_whole_gpu_or_none() -> None:
    from search.experiment import Resources
    from search.trial.trainable import _worker_resources

    gpu = Resources(cpus_per_trial=2, gpus_per_trial=1, workers_per_trial=WORKERS)
    assert _worker_resources(gpu) == {"CPU": 2, "GPU": 1}
    cpu = Resources(cpus_per_trial=1.5, workers_per_trial=WORKERS)
    assert _worker_resources(cpu) == {"CPU": 1.5}
