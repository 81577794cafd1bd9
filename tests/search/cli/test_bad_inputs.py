"""Bad inputs, table-driven: each is one line on stderr, the right exit code, names its field,
and changes nothing on disk.

Every case gets its own folder holding a copy of ``tests/fixtures/results_small`` (a finished
sweep's results) plus whatever the case sets up (image folders, SQLite studies, corrupted files).
A case asserts: the exit code (2: bad input; 1: a failure at run time), stderr is exactly one line
``paretotune: error: ...`` naming the field or flag, no traceback (unless ``--debug``), and every
file of the case's folder, the results copy included, is byte-for-byte what it was (sha256), with
nothing added. Pure-validation cases call ``search.cli.main`` in-process (fast); output-dir,
results-folder, address and storage cases run the real CLI in subprocesses, concurrently. The
whole table runs once (a module fixture); each case's test checks its own outcome.

Nothing here starts Ray or trains: in-process ``_fit`` is replaced by an assertion, and every
subprocess case fails before a sweep would start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "results_small"
#: An experiment.yaml in an earlier, unversioned layout (``dataset`` a name, ``budget`` holding
#: the trial count): ``load_experiment`` refuses it.
OLD_EXPERIMENT_YAML = """name: "fixture-small"
dataset: "digits"
image_size: 16
families: ["perceiver", "vit", "mixer"]
objectives: {"val_accuracy": "max", "flops": "min"}
budget: {"num_samples": 22, "max_epochs": 6, "max_flops": 300000000.0}
seed: 0
"""


@dataclass(frozen=True)
class Case:
    """One bad input. ``argv`` and ``field`` may name ``{d}`` (the case's folder),
    ``{results}`` (its copy of a finished sweep) and ``{port}`` (a port that accepts TCP and
    never answers)."""

    id: str
    argv: tuple[str, ...]
    field: str  # must appear in the error line
    code: int = 2
    sub: bool = False  # a real subprocess (else search.cli.main in-process)
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    max_s: float | None = None  # wall-clock limit (subprocess cases)
    stdout_has: str | None = None
    debug: bool = False  # --debug: a traceback precedes the line


@dataclass
class Outcome:
    folder: Path
    code: int
    stdout: str
    stderr: str
    seconds: float
    before: dict[str, str]
    after: dict[str, str]


# ---- setups --------------------------------------------------------------------------------
def _write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)


def _random_bytes(n: int, seed: int = 0) -> bytes:
    return hashlib.sha256(str(seed).encode()).digest() * (n // 32) + b"\xff\xfe"


def _study(path: Path, name: str, trials: int) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path.parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(study_name=name, storage=f"sqlite:///{path}")
    for i in range(trials):
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=float(i)))


def _smoke_dir(folder: Path, *, output_dir: str | None = None) -> None:
    """A results folder as ``run smoke`` leaves it before the study exists."""
    from search.experiment import load_experiment

    text = load_experiment("smoke").to_yaml()
    if output_dir is not None:
        text = text.replace("output_dir: null", f"output_dir: {output_dir}")
    _write(folder / "experiment.yaml", text)


def _pngs(folder: Path, classes: dict[str, int]) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(10, 10, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i}.png")


def _old_schema(path: Path) -> None:
    """An Optuna SQLite file whose schema version this Optuna cannot use."""
    _study(path, "older", 1)
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE alembic_version SET version_num = 'v0.9.0.a'")
        con.execute("UPDATE version_info SET schema_version = 1, library_version = '0.9.0'")
    con.close()


def _alias_bomb() -> str:
    lines = ["space:", "  x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for k in range(1, 5):
        lines.append(f"  x{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def S(**files: Callable[[Path], None]) -> Callable[[Path], None]:
    """A setup doing each ``name=fn`` as ``fn(d / name)``."""

    def setup(d: Path) -> None:
        for name, fn in files.items():
            fn(d / name)

    return setup


def _text(data: str | bytes) -> Callable[[Path], None]:
    return lambda p: _write(p, data)


def _copy_results(p: Path) -> None:
    shutil.copytree(FIXTURE, p)


def _old_experiment(p: Path) -> None:
    """The results folder ``p`` (a copy of the fixture) with an old experiment.yaml."""
    _write(p / "experiment.yaml", OLD_EXPERIMENT_YAML)


def _results_with_db(p: Path) -> None:
    shutil.copytree(FIXTURE, p)
    _study(p / "optuna.db", "fixture-small", 3)


def _corrupt_resume(p: Path) -> None:
    _smoke_dir(p, output_dir="/somewhere/else")
    _write(p / "optuna.db", _random_bytes(4096))


def _tables_no_db(p: Path) -> None:
    _smoke_dir(p)
    shutil.copy(FIXTURE / "trials.json", p / "trials.json")


def _other_study(p: Path) -> None:
    _smoke_dir(p)
    _study(p / "optuna.db", "someone-else", 2)


def _live_lock(p: Path) -> None:
    _write(p / ".paretotune.lock", f"{os.getpid()} 0\n")  # the test process: alive


SMOKE = ("run", "smoke", "--dry-run", "--output", "{d}/out")  # pure validation: never runs
RUN = ("run", "smoke", "--output", "{d}/out")  # a real run (fails before anything starts)
FOLDER = ("--set", "dataset.name=imagefolder", "--set", "dataset.data_dir={d}/imgs")


def _set(*pairs: str) -> tuple[str, ...]:
    return tuple(x for p in pairs for x in ("--set", p))


CASES: list[Case] = [
    # ---- numbers: finiteness, bounds, types ----------------------------------------------
    Case("cpus-inf", (*SMOKE, *_set("resources.cpus_per_trial=.inf")), "resources.cpus_per_trial"),
    Case("cpus-nan", (*SMOKE, *_set("resources.cpus_per_trial=.nan")), "resources.cpus_per_trial"),
    Case("cpus-huge", (*SMOKE, *_set("resources.cpus_per_trial=5000")), "resources.cpus_per_trial"),
    Case(
        "gpus-1e309", (*SMOKE, *_set("resources.gpus_per_trial=1e309")), "resources.gpus_per_trial"
    ),
    Case(
        "gpus-negative", (*SMOKE, *_set("resources.gpus_per_trial=-1")), "resources.gpus_per_trial"
    ),
    Case(
        "workers-bool",
        (*SMOKE, *_set("resources.workers_per_trial=true")),
        "resources.workers_per_trial",
    ),
    Case(
        "concurrent-0",
        (*SMOKE, *_set("resources.max_concurrent_trials=0")),
        "resources.max_concurrent_trials",
    ),
    Case("failures-neg", (*SMOKE, *_set("resources.max_failures=-1")), "resources.max_failures"),
    Case(
        "interval-ckpt-neg",
        (*SMOKE, *_set("resources.checkpoint_interval_s=-1")),
        "resources.checkpoint_interval_s",
    ),
    Case(
        "interval-report-nan",
        (*SMOKE, *_set("training.report_interval_s=nan")),
        "training.report_interval_s",
    ),
    Case("trials-0", (*SMOKE, *_set("num_trials=0")), "num_trials"),
    Case("trials-huge", (*SMOKE, *_set("num_trials=1000000000000")), "num_trials"),
    Case("epochs-float", (*SMOKE, *_set("epochs=1.5")), "epochs"),
    Case("epochs-2e63", (*SMOKE, *_set("epochs=100000000000000000000")), "epochs"),
    Case("seed-negative", (*SMOKE, *_set("seed=-1")), "seed=-1"),
    Case("seed-2e32", (*SMOKE, *_set("seed=4294967296")), "seed"),
    Case("name-space", (*SMOKE, *_set("name=a b")), "name"),
    Case("name-long", (*SMOKE, *_set("name=" + "x" * 100)), "name"),
    Case("sampler-grid", (*SMOKE, *_set("sampler=grid")), "sampler"),
    Case(
        "reduction-1", (*SMOKE, *_set("scheduler.reduction_factor=1")), "scheduler.reduction_factor"
    ),
    Case("grace-0", (*SMOKE, *_set("scheduler.grace_period=0")), "scheduler.grace_period"),
    Case("flops-inf", (*SMOKE, *_set("budget.max_flops=.inf")), "budget.max_flops"),
    Case("flops-negative", (*SMOKE, *_set("budget.max_flops=-5")), "budget.max_flops"),
    Case("budget-flops-unmet", (*SMOKE, *_set("budget.max_flops=10")), "budget.max_flops"),
    Case(
        "budget-params-unmet",
        (*SMOKE, *_set("budget.max_params=100", "family_allocation=sampler")),
        "budget.max_params",
    ),
    Case("zero-stage-bool", (*SMOKE, *_set("training.zero_stage=true")), "training.zero_stage"),
    Case("grad-clip-nan", (*SMOKE, *_set("training.grad_clip=.nan")), "training.grad_clip"),
    Case("threads-0", (*SMOKE, *_set("training.num_threads=0")), "training.num_threads"),
    Case(
        "micro-batch-huge",
        (*SMOKE, *_set("training.max_micro_batch_size=10000000")),
        "training.max_micro_batch_size",
    ),
    Case("precision-fp8", (*SMOKE, *_set("training.precision=fp8")), "training.precision"),
    Case("augment-mixup", (*SMOKE, *_set("training.augment=mixup")), "training.augment"),
    Case(
        "objective-direction",
        (*SMOKE, *_set("objectives={val_accuracy: max, flops: max}")),
        "objectives.flops",
    ),
    Case(
        "objective-no-accuracy",
        (*SMOKE, *_set("objectives={flops: min, params: min}")),
        "objectives",
    ),
    Case("families-empty", (*SMOKE, *_set("families=[]")), "families"),
    Case("families-twice", (*SMOKE, *_set("families=[vit, vit]")), "families"),
    # ---- dataset --------------------------------------------------------------------------
    Case("image-size-huge", (*SMOKE, *_set("dataset.image_size=100000")), "dataset.image_size"),
    Case("image-size-0", (*SMOKE, *_set("dataset.image_size=0")), "dataset.image_size"),
    Case(
        "dataset-memory",
        (*SMOKE, *_set("dataset.image_size=64", "dataset.synthetic.num_train=1000000")),
        "dataset.image_size",
    ),
    Case("val-fraction-big", (*SMOKE, *_set("dataset.val_fraction=0.95")), "dataset.val_fraction"),
    Case("val-fraction-nan", (*SMOKE, *_set("dataset.val_fraction=.nan")), "dataset.val_fraction"),
    Case(
        "synthetic-1-class",
        (*SMOKE, *_set("dataset.synthetic.num_classes=1")),
        "dataset.synthetic.num_classes",
    ),
    Case(
        "synthetic-unknown",
        (*SMOKE, *_set("dataset.synthetic.colour=3")),
        "dataset.synthetic.colour",
    ),
    Case(
        "synthetic-noise-inf",
        (*SMOKE, *_set("dataset.synthetic.noise=.inf")),
        "dataset.synthetic.noise",
    ),
    Case(
        "synthetic-on-digits",
        (*SMOKE, *_set("dataset.name=digits", "dataset.synthetic.num_classes=3")),
        "dataset.synthetic",
    ),
    Case(
        "download-digits",
        (*SMOKE, *_set("dataset.name=digits", "dataset.download=true")),
        "dataset.download",
    ),
    Case("cifar-no-dir", (*SMOKE, *_set("dataset.name=cifar10")), "dataset.data_dir"),
    # ---- space overrides that can never form a valid proposal ------------------------------
    Case(
        "patch-divides-nothing",
        (*SMOKE, *_set("space.perceiver.patch_size=[3]")),
        "space.perceiver.patch_size",
    ),
    Case("patch-zero", (*SMOKE, *_set("space.mixer.patch_size=[0]")), "space.mixer.patch_size"),
    Case("lr-reversed", (*SMOKE, *_set("space.adamw.lr=[1e-2, 1e-3]")), "space.adamw.lr"),
    Case("lr-negative", (*SMOKE, *_set("space.adamw.lr=[-1e-3, 1e-3]")), "space.adamw.lr"),
    Case("lr-three", (*SMOKE, *_set("space.lamb.lr=[1e-3, 2e-3, 3e-3]")), "space.lamb.lr"),
    Case("lr-nan", (*SMOKE, *_set("space.lamb.lr=[.nan, 1e-3]")), "space.lamb.lr"),
    Case("lr-above-1", (*SMOKE, *_set("space.adamw.lr=[0.1, 5.0]")), "space.adamw.lr"),
    Case("weight-decay-zero", (*SMOKE, *_set("space.weight_decay=[0, 0.1]")), "space.weight_decay"),
    Case(
        "latents-float",
        (*SMOKE, *_set("space.perceiver.num_latents=[8.5]")),
        "space.perceiver.num_latents",
    ),
    Case(
        "latents-one-float",
        (*SMOKE, *_set("space.perceiver.num_latents=[4, 8.5]")),
        "space.perceiver.num_latents",
    ),
    Case(
        "latents-huge",
        (*SMOKE, *_set("space.perceiver.num_latents=[1000000000]")),
        "space.perceiver.num_latents",
    ),
    Case(
        "latents-2e63",
        (*SMOKE, *_set("space.perceiver.num_latents=[100000000000000000000]")),
        "space.perceiver.num_latents",
    ),
    Case(
        "heads-bool",
        (*SMOKE, *_set("space.perceiver.latent_heads=[1, true]")),
        "space.perceiver.latent_heads",
    ),
    Case(
        "heads-divide-nothing",
        (*SMOKE, *_set("space.perceiver.latent_heads=[3]")),
        "space.perceiver.latent_heads",
    ),
    Case(
        "heads-one-never",
        (*SMOKE, *_set("space.perceiver.latent_heads=[2, 3]")),
        "space.perceiver.latent_heads",
    ),
    Case(
        "vit-heads",
        (*SMOKE, *_set("families=[vit]", "space.vit.num_heads=[3]")),
        "space.vit.num_heads",
    ),
    Case("choices-empty", (*SMOKE, *_set("space.mixer.hidden_dim=[]")), "space.mixer.hidden_dim"),
    Case("choices-scalar", (*SMOKE, *_set("space.mixer.hidden_dim=32")), "space.mixer.hidden_dim"),
    Case(
        "choice-nested",
        (*SMOKE, *_set("space.mixer.num_blocks=[[1, 2]]")),
        "space.mixer.num_blocks",
    ),
    Case(
        "pos-encoding",
        (*SMOKE, *_set("space.perceiver.pos_encoding=[rope]")),
        "space.perceiver.pos_encoding",
    ),
    Case(
        "share-weights-text",
        (*SMOKE, *_set("space.perceiver.share_weights=[maybe]")),
        "space.perceiver.share_weights",
    ),
    Case(
        "dropout-1.5", (*SMOKE, *_set("space.perceiver.dropout=[1.5]")), "space.perceiver.dropout"
    ),
    Case("batch-size-0", (*SMOKE, *_set("space.batch_size=[0]")), "space.batch_size"),
    Case("optimizer-sgd", (*SMOKE, *_set("space.optimizer=[sgd]")), "space.optimizer"),
    Case(
        "label-smoothing", (*SMOKE, *_set("space.label_smoothing=[1.5]")), "space.label_smoothing"
    ),
    Case("space-family", (*SMOKE, *_set("space.family=[vit]")), "space.family"),
    Case(
        "space-typo",
        (*SMOKE, *_set("space.perceiver.num_latent=[8]")),
        "space.perceiver.num_latent",
    ),
    Case(
        "image-vs-default-patches",
        (*SMOKE, *_set("dataset.image_size=7", "families=[vit]")),
        "space.vit.patch_size",
    ),
    # ---- --set syntax --------------------------------------------------------------------
    Case("set-no-equals", (*SMOKE, "--set", "num_trials"), "--set"),
    Case("set-no-key", (*SMOKE, "--set", "=3"), "--set"),
    Case("set-empty-part", (*SMOKE, "--set", "resources..cpus_per_trial=1"), "--set"),
    Case(
        "set-duplicate-key",
        (*SMOKE, "--set", "objectives={val_accuracy: max, val_accuracy: max}"),
        "--set",
    ),
    Case("set-not-a-section", (*SMOKE, "--set", "dataset.name.x=1"), "--set"),
    # ---- experiment files ------------------------------------------------------------------
    Case(
        "file-duplicate-key",
        ("run", "{d}/dup.yaml", "--dry-run", "-o", "{d}/out"),
        "duplicate key 'epochs'",
        setup=S(**{"dup.yaml": _text("name: dup\nepochs: 2\nepochs: 3\n")}),
    ),
    Case(
        "file-binary",
        ("run", "{d}/bin.yaml", "--dry-run", "-o", "{d}/out"),
        "bin.yaml: not a text file",
        setup=S(**{"bin.yaml": _text(_random_bytes(256))}),
    ),
    Case(
        "file-alias-bomb",
        ("run", "{d}/bomb.yaml", "--dry-run", "-o", "{d}/out"),
        "space.x4",
        setup=S(**{"bomb.yaml": _text(_alias_bomb())}),
    ),
    Case(
        "file-recursive-alias",
        ("run", "{d}/rec.yaml", "--dry-run", "-o", "{d}/out"),
        "rec.yaml: not valid YAML (line 1: found unconstructable recursive node",
        setup=S(**{"rec.yaml": _text("space: &s\n  perceiver.num_latents: *s\n")}),
    ),
    Case(
        "file-deep",
        ("run", "{d}/deep.yaml", "--dry-run", "-o", "{d}/out"),
        "space",
        setup=S(**{"deep.yaml": _text("space: " + "[" * 200 + "]" * 200 + "\n")}),
    ),
    Case(
        "file-list",
        ("run", "{d}/list.yaml", "--dry-run", "-o", "{d}/out"),
        "list.yaml: expected a mapping",
        setup=S(**{"list.yaml": _text("- a\n- b\n")}),
    ),
    Case(
        "file-tab",
        ("run", "{d}/tab.yaml", "--dry-run", "-o", "{d}/out"),
        "tab.yaml: not valid YAML (line",
        setup=S(**{"tab.yaml": _text("epochs: 2\n\tseed: 1\n")}),
    ),
    Case(
        "file-name-from-stem",
        ("run", "{d}/my sweep.yaml", "--dry-run", "-o", "{d}/out"),
        "name='my sweep'",
        setup=S(**{"my sweep.yaml": _text("epochs: 2\n")}),
    ),
    Case(
        "file-is-folder",
        ("run", "{d}/folder", "--dry-run", "-o", "{d}/out"),
        "is a folder",
        setup=S(folder=lambda p: p.mkdir()),
    ),
    Case("file-missing", ("run", "{d}/nope.yaml", "--dry-run"), "no such file or preset"),
    Case(
        "file-too-large",
        ("run", "{d}/big.yaml", "--dry-run", "-o", "{d}/out"),
        "big.yaml",
        setup=S(**{"big.yaml": _text("# padding\n" * 200_000)}),
    ),
    Case(
        "file-synthetic-on-digits",
        ("run", "{d}/syn.yaml", "--dry-run", "-o", "{d}/out"),
        "dataset.synthetic",
        setup=S(**{"syn.yaml": _text("dataset: {name: digits, synthetic: {num_classes: 3}}\n")}),
    ),
    Case(
        "file-nested-value",
        ("run", "{d}/z.yaml", "--dry-run", "-o", "{d}/out"),
        "training.zero_stage=4",
        setup=S(**{"z.yaml": _text("training: {zero_stage: 4}\n")}),
    ),
    # ---- data folders: found when the run loads the data, before anything is kept ------------
    Case(
        "data-one-class",
        (*RUN, *FOLDER),
        "dataset.data_dir",
        setup=S(imgs=lambda p: _pngs(p, {"cat": 6})),
    ),
    Case("data-missing", (*RUN, *FOLDER), "dataset.data_dir"),
    Case("data-is-file", (*RUN, *FOLDER), "dataset.data_dir", setup=S(imgs=_text("x"))),
    Case(
        "data-corrupt-image",
        (*RUN, *FOLDER),
        "bad.png",
        setup=S(imgs=lambda p: (_pngs(p, {"a": 4, "b": 4}), _write(p / "a" / "bad.png", b"no"))),
    ),
    Case(
        "data-too-few",
        (*RUN, *FOLDER),
        "dataset.data_dir",
        setup=S(imgs=lambda p: _pngs(p, {"a": 1, "b": 1})),
    ),
    Case(
        "data-no-val",
        (*RUN, *FOLDER, *_set("dataset.val_fraction=0.01")),
        "dataset.val_fraction",
        setup=S(imgs=lambda p: _pngs(p, {"a": 5, "b": 5})),
    ),
    Case(
        "data-test-extra-class",
        (*RUN, *FOLDER),
        "dataset.data_dir",
        setup=S(imgs=lambda p: (_pngs(p / "train", {"a": 4, "b": 4}), _pngs(p / "test", {"c": 2}))),
    ),
    Case(
        "data-cifar-empty",
        (*RUN, *_set("dataset.name=cifar10", "dataset.data_dir={d}/imgs")),
        "dataset.data_dir",
        setup=S(imgs=lambda p: p.mkdir()),
    ),
    # ---- command-line flags -----------------------------------------------------------------
    Case("flag-unknown", ("run", "smoke", "--frobnicate"), "--frobnicate"),
    Case("flag-no-value", ("run", "smoke", "--set"), "--set"),
    Case("flag-missing-dir", ("resume",), "DIR"),
    Case("flag-bad-command", ("rn",), "'rn'"),
    Case("flag-output-empty", ("run", "smoke", "--dry-run", "--output", ""), "output_dir"),
    Case("flag-address-form-dry", (*SMOKE, "--address", "127.0.0.1:abc"), "--address"),
    # ---- output and results folders (real subprocesses) ------------------------------------
    Case(
        "out-finished-sweep",
        ("run", "smoke", "--output", "{results}"),
        "{results} already holds a sweep",
        sub=True,
    ),
    Case(
        "out-sweep-with-study",
        ("run", "smoke", "--output", "{d}/old"),
        "study 'fixture-small'",
        sub=True,
        setup=S(old=_results_with_db),
    ),
    Case(
        "out-only-db-other-study",
        ("run", "smoke", "--output", "{d}/old"),
        "optuna.db with study 'someone-else'",
        sub=True,
        setup=S(old=lambda p: _study(p / "optuna.db", "someone-else", 1)),
    ),
    Case(
        "out-corrupt-db",
        ("run", "smoke", "--output", "{d}/old"),
        "optuna.db",
        sub=True,
        setup=S(old=lambda p: _write(p / "optuna.db", _random_bytes(2048))),
    ),
    Case(
        "out-only-csv",
        ("run", "smoke", "--output", "{d}/old"),
        "trials.csv",
        sub=True,
        setup=S(old=lambda p: _write(p / "trials.csv", (FIXTURE / "trials.csv").read_text())),
    ),
    Case(
        "out-live-sweep",
        ("run", "smoke", "--output", "{d}/live"),
        f"(pid {os.getpid()}) is running",
        sub=True,
        setup=S(live=_live_lock),
    ),
    Case(
        "out-is-file",
        ("run", "smoke", "--output", "{d}/afile"),
        "output_dir",
        sub=True,
        setup=S(afile=_text("x")),
    ),
    Case(
        "out-under-file",
        ("run", "smoke", "--output", "{d}/afile/sub"),
        "output_dir",
        sub=True,
        setup=S(afile=_text("x")),
    ),
    Case(
        "out-name-too-long",
        ("run", "smoke", "--output", "{d}/" + "x" * 300),
        "output_dir",
        sub=True,
    ),
    Case(
        "resume-old-experiment",
        ("resume", "{results}"),
        "experiment.yaml",
        sub=True,
        setup=S(results=_old_experiment),
    ),
    Case(
        "resume-corrupt-db",
        ("resume", "{d}/run"),
        "optuna.db",
        sub=True,
        setup=S(run=_corrupt_resume),
        stdout_has="output      {d}/run",
    ),
    Case(
        "resume-tables-no-db",
        ("resume", "{d}/run"),
        "optuna.db",
        sub=True,
        setup=S(run=_tables_no_db),
    ),
    Case(
        "resume-other-study",
        ("resume", "{d}/run"),
        "'someone-else'",
        sub=True,
        setup=S(run=_other_study),
    ),
    Case("resume-missing", ("resume", "{d}/nope"), "{d}/nope", sub=True),
    Case("resume-file", ("resume", "{d}/afile"), "{d}/afile", sub=True, setup=S(afile=_text("x"))),
    Case(
        "report-list",
        ("report", "{d}/rep"),
        "trials.json",
        sub=True,
        setup=S(rep=lambda p: _write(p / "trials.json", "[1, 2]")),
    ),
    Case(
        "report-bad-json",
        ("report", "{d}/rep"),
        "trials.json",
        sub=True,
        setup=S(rep=lambda p: _write(p / "trials.json", "{oops")),
    ),
    Case(
        "report-binary",
        ("report", "{d}/rep"),
        "trials.json",
        sub=True,
        setup=S(rep=lambda p: _write(p / "trials.json", _random_bytes(100))),
    ),
    Case(
        "report-rows",
        ("report", "{d}/rep"),
        "'trials'",
        sub=True,
        setup=S(rep=lambda p: _write(p / "trials.json", '{"trials": [1], "objectives": {}}')),
    ),
    Case("report-missing", ("report", "{d}/nope"), "{d}/nope", sub=True),
    Case(
        "reproduce-string",
        ("reproduce", "{d}/rep", "0"),
        "trials.json",
        sub=True,
        setup=S(rep=lambda p: (_write(p / "trials.json", '"text"'), _smoke_dir(p))),
    ),
    Case(
        "reproduce-old-experiment",
        ("reproduce", "{results}", "0"),
        "experiment.yaml",
        sub=True,
        setup=S(results=_old_experiment),
    ),
    # ---- Ray addresses (real subprocesses, bounded time) ------------------------------------
    Case("addr-refused", (*RUN, "--address", "127.0.0.1:1"), "--address", sub=True, max_s=20),
    Case("addr-silent", (*RUN, "--address", "127.0.0.1:{port}"), "--address", sub=True, max_s=25),
    Case("addr-port-text", (*RUN, "--address", "127.0.0.1:abc"), "--address", sub=True),
    Case("addr-port-range", (*RUN, "--address", "127.0.0.1:99999"), "--address", sub=True),
    Case("addr-ipv6", (*RUN, "--address", "[::1"), "--address", sub=True),
    Case("addr-http", (*RUN, "--address", "http://127.0.0.1:8265"), "--address", sub=True),
    Case("addr-scheme", (*RUN, "--address", "redis://h:1"), "--address", sub=True),
    Case("addr-empty", (*RUN, "--address", ""), "--address", sub=True),
    Case("addr-env", RUN, "RAY_ADDRESS", sub=True, env={"RAY_ADDRESS": "127.0.0.1:1"}, max_s=20),
    Case(
        "addr-resume",
        ("resume", "{d}/run", "--address", "127.0.0.1:1"),
        "--address",
        sub=True,
        setup=S(run=_smoke_dir),
        max_s=20,
    ),
    Case("addr-jobs-empty", ("jobs", "status", "x", "--address", ""), "--address", sub=True),
    Case(
        "addr-jobs-ipv6", ("jobs", "status", "x", "--address", "http://[::1"), "--address", sub=True
    ),
    Case(
        "addr-submit-port", ("submit", "smoke", "--address", "http://h:abc"), "--address", sub=True
    ),
    # ---- storage URLs (real subprocesses) ----------------------------------------------------
    Case("db-driver-missing", (*RUN, *_set("storage=mysql://u@localhost/db")), "storage", sub=True),
    Case("db-no-dialect", (*RUN, *_set("storage=postgresql+nosuch://u@h/db")), "storage", sub=True),
    Case("db-port-text", (*RUN, *_set("storage=postgresql://u@h:abc/db")), "storage", sub=True),
    Case("db-in-memory", (*RUN, *_set("storage=sqlite://")), "storage", sub=True),
    Case("db-scheme", (*RUN, *_set("storage=redis://x")), "storage", sub=True),
    Case("db-no-folder", (*RUN, *_set("storage=sqlite:///{d}/nope/x.db")), "storage", sub=True),
    Case(
        "db-folder-is-file",
        (*RUN, *_set("storage=sqlite:///{d}/afile/x.db")),
        "storage",
        sub=True,
        setup=S(afile=_text("x")),
    ),
    Case(
        "db-corrupt",
        (*RUN, *_set("storage=sqlite:///{d}/bad.db")),
        "storage",
        sub=True,
        setup=S(**{"bad.db": _text(_random_bytes(4096))}),
    ),
    Case(
        "db-refused",
        (*RUN, *_set("storage=postgresql+psycopg2://u@127.0.0.1:1/db")),
        "storage",
        sub=True,
        max_s=25,
    ),
    Case(
        "db-is-folder",
        (*RUN, *_set("storage=sqlite:///{d}/dbdir")),
        "storage",
        sub=True,
        setup=S(dbdir=lambda p: p.mkdir()),
    ),
    # ---- resources Ray can never offer on this machine (timed alone: test_sweep_resources.py) -
    Case(
        "res-gpus-local",
        (*RUN, *_set("resources.gpus_per_trial=0.25")),
        "resources.gpus_per_trial=0.25: this machine's Ray has",
        sub=True,
    ),
    Case(
        "res-cpus-local",
        (*RUN, *_set("resources.cpus_per_trial=512")),
        "resources.cpus_per_trial=512",
        sub=True,
    ),
    Case(
        "res-workers-local",
        (*RUN, *_set("resources.workers_per_trial=64")),
        "resources.workers_per_trial=64",
        sub=True,
    ),
    Case("res-wait-nan", (*SMOKE, *_set("resources.wait_for_resources_s=.nan")), "wait_for"),
    # ---- a failure at run time: exit 1, the cause and where to look ------------------------
    Case(
        "runtime-old-schema",
        (*RUN, *_set("storage=sqlite:///{d}/old.db")),
        "RuntimeError",
        code=1,
        sub=True,
        setup=S(**{"old.db": _old_schema}),
    ),
    Case(
        "runtime-old-schema-debug",
        ("--debug", *RUN, *_set("storage=sqlite:///{d}/old.db")),
        "RuntimeError",
        code=1,
        sub=True,
        setup=S(**{"old.db": _old_schema}),
        debug=True,
    ),
]


# `run --dry-run` is the run's own preflight: every input a run refuses before its first trial,
# the dry run refuses too, with the same line and nothing written.
CASES += [
    dataclasses.replace(c, id=f"{c.id}-dry", argv=(*c.argv, "--dry-run"))
    for c in CASES
    if c.argv[:1] == ("run",) and "--dry-run" not in c.argv and c.code == 2
]


# ---- running the table ----------------------------------------------------------------------
def _snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and folder) under ``folder``."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        out[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
    return out


def _fill(text: str, d: Path, port: int) -> str:
    return (
        text.replace("{results}", str(d / "results"))
        .replace("{d}", str(d))
        .replace("{port}", str(port))
    )


def _env(case: Case) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "PARETOTUNE_DEBUG")}
    env.update(case.env)
    return env


def _run_sub(case: Case, d: Path, port: int) -> tuple[int, str, str, float]:
    argv = [_fill(a, d, port) for a in case.argv]
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "search.cli", *argv],
        capture_output=True,
        text=True,
        cwd=d,
        env=_env(case),
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start


@contextlib.contextmanager
def _in_process(d: Path, case: Case) -> Iterator[None]:
    saved_cwd, saved_env = os.getcwd(), dict(os.environ)
    os.chdir(d)
    os.environ.clear()
    os.environ.update(_env(case))
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)


def _run_main(case: Case, d: Path, port: int) -> tuple[int, str, str, float]:
    from search.cli import main

    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with _in_process(d, case), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([_fill(a, d, port) for a in case.argv])
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue(), time.monotonic() - start


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    import search.sweep.tuner

    base = tmp_path_factory.mktemp("bad-inputs")
    silent = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    port = silent.getsockname()[1]
    folders: dict[str, Path] = {}
    before: dict[str, dict[str, str]] = {}
    for case in CASES:
        d = folders[case.id] = base / case.id
        _copy_results(d / "results")
        if case.setup is not None:
            case.setup(d)
        before[case.id] = _snapshot(d)

    def no_training(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a bad input reached training")

    results: dict[str, tuple[int, str, str, float]] = {}
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {c.id: pool.submit(_run_sub, c, folders[c.id], port) for c in CASES if c.sub}
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(search.sweep.tuner, "_fit", no_training)
                for case in CASES:
                    if not case.sub:
                        results[case.id] = _run_main(case, folders[case.id], port)
            for key, future in futures.items():
                results[key] = future.result()
    finally:
        silent.close()
    yield {
        c.id: Outcome(
            folders[c.id], *results[c.id], before=before[c.id], after=_snapshot(folders[c.id])
        )
        for c in CASES
    }


def test_the_table_is_large_and_covers_every_kind() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 60
    for prefix in ("out-", "resume-", "addr-", "db-", "data-", "file-", "flag-", "set-"):
        assert any(i.startswith(prefix) for i in ids), prefix
    subprocess_kinds = ("out-", "resume-", "report-", "reproduce-", "addr-", "db-", "runtime-")
    assert all(c.sub for c in CASES if c.id.startswith(subprocess_kinds))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_naming_the_field(case: Case, outcomes: dict[str, Outcome]) -> None:
    got = outcomes[case.id]
    lines = [line for line in got.stderr.splitlines() if line.strip()]
    detail = f"exit {got.code}\nstderr:\n{got.stderr}\nstdout tail:\n{got.stdout[-500:]}"
    assert got.code == case.code, detail
    assert lines, detail
    if case.debug:
        assert "Traceback" in got.stderr, detail
    else:
        assert len(lines) == 1, detail
        assert "Traceback" not in got.stderr, detail
    line = lines[-1]
    assert line.startswith("paretotune: error: "), detail
    assert _fill(case.field, got.folder, 0) in line, detail
    if case.code == 1:  # the cause, and where to look
        assert line.endswith("--debug shows the traceback)"), detail
    if case.stdout_has is not None:
        assert _fill(case.stdout_has, got.folder, 0) in got.stdout, detail
    if case.max_s is not None:
        assert got.seconds < case.max_s, f"{got.seconds:.1f} s\n{detail}"
    # the finished sweep copy and everything else in the case's folder: untouched, nothing added
    assert got.after == got.before, detail


def test_results_table_survives_a_refused_run_byte_for_byte(
    outcomes: dict[str, Outcome],
) -> None:
    """The issue's data-loss case, spelled out: a finished sweep of another name is refused
    before experiment.yaml or the tables are touched."""
    got = outcomes["out-finished-sweep"]
    assert got.code == 2
    names = {k for k in got.before if k.startswith("results/")}
    assert {"results/experiment.yaml", "results/trials.csv", "results/trials.json"} <= names
    assert {k: got.after[k] for k in names} == {k: got.before[k] for k in names}
    doc = json.loads((FIXTURE / "trials.json").read_text())
    assert doc["experiment"]["name"] == "fixture-small"  # another name than smoke's


def test_presets_still_load_fast() -> None:
    from search.experiment import load_experiment

    load_experiment("smoke")  # imports (torch, models) once
    for name in ("default", "smoke", "cifar100"):
        start = time.monotonic()
        load_experiment(name)
        assert time.monotonic() - start < 1.0, name


def test_tables_are_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """export_results writes each table to a temporary file and renames it: a failure midway
    (here: the disk refuses the flush) leaves the previous tables byte-for-byte, and no debris."""
    import optuna

    from search import results, storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = tmp_path / "results"
    shutil.copytree(FIXTURE, out)
    before = _snapshot(out)
    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(
        optuna.trial.create_trial(
            params={}, distributions={}, values=[0.5, 1.0], user_attrs={"status": "COMPLETE"}
        )
    )
    experiment = {"name": "x", "objectives": {"val_accuracy": "max", "flops": "min"}}

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", full_disk)  # the module that writes the tables
    with pytest.raises(OSError, match="No space left"):
        results.export_results(study, out, experiment=experiment)
    assert _snapshot(out) == before
    monkeypatch.undo()
    csv_path, json_path = results.export_results(study, out, experiment=experiment)
    assert csv_path.read_text().splitlines()[1].split(",")[3] == "COMPLETE"
    assert json.loads(json_path.read_text())["trials"][0]["status"] == "COMPLETE"
    assert sorted(p.name for p in out.iterdir()) == ["experiment.yaml", "trials.csv", "trials.json"]
