"""The FusedAdam trap: on a GPU ``build_optimizer(..., fused=True)`` returns DeepSpeed's
``FusedAdam``, whose ``zero_grad`` takes no ``set_to_none``. Nothing that handles a trial's
optimizer may call it so: neither the trial (through DeepSpeed's wrappers, at every precision
and ZeRO stage a CPU runs) nor any other code of the project (read from the source)."""

from __future__ import annotations

import ast
import contextlib
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import search.trial.optim
from search.experiment import load_experiment
from search.sweep import load_experiment_data
from search.trial import TrialSession, run_trial

ROOT = Path(__file__).resolve().parents[3]

#: Every ``.zero_grad(...)`` with arguments outside the engine, and why it is safe: the file and
#: the name it is called on. A new one must be added here after checking it never meets FusedAdam.
SAFE_ZERO_GRAD_CALLS = {
    ("models/cost.py", "model"),  # nn.Module.zero_grad
    ("benchmarks/plain_loop.py", "opt"),  # build_optimizer(..., fused=False): torch's AdamW
    ("benchmarks/pilot_fashion.py", "opt"),  # build_optimizer(..., fused=False)
    ("benchmarks/bench_models.py", "optimizer"),  # torch.optim.AdamW
    ("benchmarks/bench_step_variants.py", "optimizer"),  # torch.optim.AdamW
}


class _FusedAdamLike(torch.optim.AdamW):
    """torch's AdamW with FusedAdam's ``zero_grad`` signature (no ``set_to_none``)."""

    def zero_grad(self) -> None:  # type: ignore[override]
        super().zero_grad()


def test_the_stand_in_has_fused_adams_zero_grad_signature() -> None:
    from deepspeed.ops.adam import FusedAdam  # importing builds nothing

    assert "set_to_none" not in inspect.signature(FusedAdam.zero_grad).parameters
    ours, theirs = (inspect.signature(c.zero_grad) for c in (_FusedAdamLike, FusedAdam))
    assert list(ours.parameters) == list(theirs.parameters) == ["self"]


def _zero_grad_calls_with_arguments(path: Path) -> list[tuple[str, int]]:
    calls = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "zero_grad"
            and (node.args or node.keywords)
        ):
            calls.append((ast.unparse(node.func.value), node.lineno))
    return calls


def test_no_code_outside_the_engine_calls_zero_grad_with_set_to_none_on_an_optimizer() -> None:
    found = set()
    for package in ("models", "spaces", "search", "cluster", "benchmarks"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for receiver, line in _zero_grad_calls_with_arguments(path):
                assert (rel, receiver) in SAFE_ZERO_GRAD_CALLS, (
                    f"{rel}:{line}: {receiver}.zero_grad(...) with arguments: FusedAdam (a GPU "
                    "trial's AdamW) takes none; call zero_grad() or leave it to the engine"
                )
                found.add((rel, receiver))
    assert found == SAFE_ZERO_GRAD_CALLS  # the list holds no stale entries


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield None


@pytest.mark.parametrize(
    ("precision", "zero"), [("fp32", 0), ("bf16", 0), ("bf16", 1), ("bf16", 2)]
)
def test_a_trial_trains_with_an_optimizer_whose_zero_grad_takes_no_arguments(
    precision: str, zero: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training, evaluation and a checkpoint, through DeepSpeed's wrapper for each setting."""
    built: list[_FusedAdamLike] = []

    def fused_adam_like(model: torch.nn.Module, name: str, **kwargs: Any) -> Any:
        groups = search.trial.optim.param_groups(model, kwargs["weight_decay"])
        built.append(_FusedAdamLike(groups, lr=kwargs["lr"]))
        return built[-1]

    monkeypatch.setattr(search.trial.optim, "build_optimizer", fused_adam_like)
    exp = load_experiment(
        "smoke",
        [
            f"training.precision={precision}",
            f"training.zero_stage={zero}",
            "epochs=1",
            "resources.max_failures=1",  # a checkpoint is saved at the epoch
            "resources.checkpoint_interval_s=0",
        ],
    )
    reports: list[dict[str, Any]] = []
    config = {
        "family": "mixer",
        "patch_size": 4,
        "hidden_dim": 16,
        "num_blocks": 1,
        "tokens_mlp_dim": 16,
        "channels_mlp_dim": 32,
        "dropout": 0.0,
        "optimizer": "adamw",
        "lr": 3e-3,
        "weight_decay": 0.05,
        "batch_size": 32,
        "warmup_epochs": 0,
        "label_smoothing": 0.0,
    }
    session = TrialSession(report=lambda m, _ckpt: reports.append(m), restore_dir=_nothing)
    run_trial(config, experiment=exp, data=load_experiment_data(exp), session=session)
    assert built and "failure_reason" not in reports[-1], reports[-1]
    assert reports[-1]["epoch"] == 1
