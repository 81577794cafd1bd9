"""The checks of an experiment's values once its fields have their types: ranges, the family
shares, the dataset, the storage URL, the output location, and (``check_space``) the search
space. Each refusal is one :class:`~search.errors.UserError` naming the field."""

from __future__ import annotations

from pathlib import Path

from models import FAMILIES
from search.data.facts import DATA_DIR_REQUIRED, load_bytes
from search.data.rules import MAX_DATASET_BYTES, check_dataset_fields, check_seed
from search.errors import UserError
from search.experiment.feasibility import check_space
from search.experiment.limits import MAX_COUNT, MAX_REPLICATES, NAME_RE
from search.experiment.schema import Experiment, redact
from search.vocabulary import OBJECTIVES

__all__ = ["check_experiment", "check_output_dir"]


def _in_range(path: str, value: float | None, low: float, high: float) -> None:
    """``low <= value <= high`` (None passes): else one line naming the field and the range."""
    if value is not None and not low <= value <= high:
        raise UserError(f"{path}={value!r}: must be between {low:g} and {high:g}")


def check_experiment(exp: Experiment) -> None:
    def positive(path: str, value: float | None, *, allow_zero: bool = False) -> None:
        if value is not None and (value < 0 or (value == 0 and not allow_zero)):
            bound = ">= 0" if allow_zero else "> 0"
            raise UserError(f"{path}={value!r}: must be {bound}")

    if not NAME_RE.fullmatch(exp.name):
        raise UserError(
            f"name={exp.name!r}: use letters, digits, '-' and '_' only (at most 64 characters)"
        )
    if not exp.families:
        raise UserError(f"families=[]: give at least one of {', '.join(FAMILIES)}")
    for fam in exp.families:
        if fam not in FAMILIES:
            raise UserError(f"families: {fam!r} is not a family; allowed: {', '.join(FAMILIES)}")
    if len(set(exp.families)) != len(exp.families):
        raise UserError(f"families={list(exp.families)}: a family is listed twice")
    _check_dataset(exp)
    positive("num_trials", exp.num_trials)
    _in_range("num_trials", exp.num_trials, 1, MAX_COUNT)
    _check_family_trials(exp)
    positive("epochs", exp.epochs)
    _in_range("epochs", exp.epochs, 1, MAX_COUNT)
    _in_range("replicates", exp.replicates, 1, MAX_REPLICATES)
    _in_range("confirm.seeds", exp.confirm.seeds, 1, MAX_REPLICATES)
    _in_range("confirm.max_trainings", exp.confirm.max_trainings, 0, MAX_COUNT)
    if exp.replicates > 1 and exp.resources.workers_per_trial > 1:
        raise UserError(
            f"replicates={exp.replicates} with resources.workers_per_trial="
            f"{exp.resources.workers_per_trial}: a trial trains its seeds side by side in one "
            "process; allowed: replicates: 1 for a multi-worker trial"
        )
    if not 2 <= len(exp.objectives) <= 3:
        raise UserError(
            f"objectives={exp.objectives}: give two or three of {', '.join(OBJECTIVES)}"
        )
    for name, mode in exp.objectives.items():
        if name not in OBJECTIVES:
            raise UserError(
                f"objectives.{name}: unknown objective; allowed: {', '.join(OBJECTIVES)}"
            )
        if mode != OBJECTIVES[name].direction:
            raise UserError(f"objectives.{name}={mode!r}: allowed: {OBJECTIVES[name].direction}")
    if "val_accuracy" not in exp.objectives:
        raise UserError("objectives: val_accuracy must be one of the objectives")
    positive("scheduler.grace_period", exp.scheduler.grace_period)
    _in_range("scheduler.grace_period", exp.scheduler.grace_period, 1, MAX_COUNT)
    if exp.scheduler.reduction_factor < 2:
        raise UserError(
            f"scheduler.reduction_factor={exp.scheduler.reduction_factor}: must be >= 2"
        )
    _in_range("scheduler.reduction_factor", exp.scheduler.reduction_factor, 2, 100)
    positive("budget.max_flops", exp.budget.max_flops)
    positive("budget.max_params", exp.budget.max_params)
    positive("training.max_micro_batch_size", exp.training.max_micro_batch_size)
    _in_range("training.max_micro_batch_size", exp.training.max_micro_batch_size, 1, 65536)
    positive("training.grad_clip", exp.training.grad_clip, allow_zero=True)
    positive("training.num_threads", exp.training.num_threads)
    _in_range("training.num_threads", exp.training.num_threads, 1, 1024)
    from search.data import AUGMENT_POLICIES

    if exp.training.augment not in ("auto", *AUGMENT_POLICIES):
        raise UserError(
            f"training.augment={exp.training.augment!r}: not allowed; allowed: "
            + ", ".join(("auto", *AUGMENT_POLICIES))
        )
    res = exp.resources
    positive("resources.cpus_per_trial", res.cpus_per_trial)
    _in_range("resources.cpus_per_trial", res.cpus_per_trial, 0, 1024)
    positive("resources.gpus_per_trial", res.gpus_per_trial, allow_zero=True)
    _in_range("resources.gpus_per_trial", res.gpus_per_trial, 0, 64)
    if res.gpus_per_trial > 1 and res.gpus_per_trial != int(res.gpus_per_trial):
        raise UserError(
            f"resources.gpus_per_trial={res.gpus_per_trial}: fractions only below 1 "
            "(e.g. 0.25); above 1 use whole GPUs"
        )
    positive("resources.workers_per_trial", res.workers_per_trial)
    _in_range("resources.workers_per_trial", res.workers_per_trial, 1, 1024)
    if res.workers_per_trial > 1 and res.gpus_per_trial not in (0, 1):
        raise UserError(
            f"resources.gpus_per_trial={res.gpus_per_trial:g} with workers_per_trial="
            f"{res.workers_per_trial}: each data-parallel worker needs exactly one whole GPU "
            "(NCCL cannot put two ranks on one GPU); use gpus_per_trial=1, or "
            "workers_per_trial=1 to share GPUs between trials"
        )
    positive("resources.max_concurrent_trials", res.max_concurrent_trials)
    _in_range("resources.max_concurrent_trials", res.max_concurrent_trials, 1, 10_000)
    positive("resources.max_failures", res.max_failures, allow_zero=True)
    _in_range("resources.max_failures", res.max_failures, 0, 1000)
    _in_range("resources.checkpoint_interval_s", res.checkpoint_interval_s, 0, 86_400)
    _in_range("resources.wait_for_resources_s", res.wait_for_resources_s, 0, 86_400)
    _in_range("training.report_interval_s", exp.training.report_interval_s, 0, 86_400)
    check_seed(exp.seed)
    if exp.storage is not None:
        _check_storage(exp.storage)
    check_output_dir(exp)
    check_space(exp)
    _check_anytime(exp)
    _check_lamb_zero(exp)


def _check_family_trials(exp: Experiment) -> None:
    shares = exp.family_trials
    if not shares:
        return
    if exp.family_allocation != "equal":
        raise UserError(
            f"family_trials={shares}: needs family_allocation=equal (with `sampler` the "
            "sampler chooses each trial's family)"
        )
    if set(shares) != set(exp.families):
        raise UserError(
            f"family_trials={shares}: give a number for each family searched and no other; "
            f"families={list(exp.families)}"
        )
    for family, n in shares.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise UserError(f"family_trials.{family}={n!r}: expected a whole number >= 1")
    if sum(shares.values()) != exp.num_trials:
        raise UserError(
            f"family_trials={shares}: sums to {sum(shares.values())}, but num_trials="
            f"{exp.num_trials}; set num_trials to the sum"
        )


def _check_anytime(exp: Experiment) -> None:
    """``training.anytime`` needs a Perceiver whose iterations share weights."""
    if not exp.training.anytime:
        return
    if "perceiver" not in exp.families:
        raise UserError(
            "training.anytime=true: only the Perceiver has anytime iterations; add perceiver "
            "to families or set training.anytime=false"
        )
    shared = exp.space.get("perceiver.share_weights", [True, False])
    if list(shared) != [True]:
        raise UserError(
            f"training.anytime=true: needs perceiver.share_weights=[true] in the space (got "
            f"{list(shared)}): only with shared weights is iteration k of one model the "
            "k-iteration model"
        )


def _check_lamb_zero(exp: Experiment) -> None:
    """LAMB's trust ratio needs each tensor's whole norm: ZeRO 1/2 partitions are told where
    the tensors lie (``search.trial.optim.Lamb.track_flat``); ZeRO 3's are not."""
    from spaces.common import OPTIMIZERS

    if exp.training.zero_stage == 3 and "lamb" in exp.space.get("optimizer", OPTIMIZERS):
        raise UserError(
            "training.zero_stage=3: LAMB (in the space's optimizer choices) needs each "
            "tensor's whole norm, which ZeRO-3 splits over the ranks; set "
            "space.optimizer=[adamw] or training.zero_stage to 0, 1 or 2"
        )


def _expand(path_field: str, value: str) -> Path:
    try:
        return Path(value).expanduser()
    except RuntimeError as exc:  # ~someone who has no home here
        raise UserError(f"{path_field}={value!r}: cannot expand it ({exc})") from None


def check_output_dir(exp: Experiment) -> None:
    """The output location is a folder path or an object-store URI the study can go with."""
    from search import storage

    if storage.is_uri(exp.output_dir):
        if exp.storage is None:
            raise UserError(
                f"output_dir={exp.output_dir!r}: an object-store output needs the study in an RDB: "
                "set storage (e.g. --set storage=postgresql://USER@DBHOST/optuna, or a local "
                "sqlite:////abs/path/optuna.db); the default <output_dir>/optuna.db cannot live "
                "there"
            )
        if any(c in str(exp.output_dir) for c in "\n\r\0"):
            raise UserError(f"output_dir={exp.output_dir!r}: a URI without line breaks, please")
        return
    if exp.output_dir is not None:
        _expand("output_dir", exp.output_dir)
    if exp.storage is None:
        out = str(exp.resolved_output_dir())
        if "\n" in out or "\r" in out:
            raise UserError(f"output_dir={out!r}: a folder path without line breaks, please")


def _check_dataset(exp: Experiment) -> None:
    ds = exp.dataset
    check_dataset_fields(
        ds.name,
        image_size=ds.image_size,
        val_fraction=ds.val_fraction,
        download=ds.download,
        synthetic=ds.synthetic,
        train_subset=ds.train_subset,
    )
    if ds.name in DATA_DIR_REQUIRED and not ds.data_dir:
        raise UserError(
            f"dataset.data_dir: required for dataset.name={ds.name}; "
            f"e.g. --set dataset.data_dir=~/data"
        )
    if ds.data_dir is not None:
        _expand("dataset.data_dir", ds.data_dir)
    need = load_bytes(ds.name, ds.image_size, ds.synthetic)
    if need is not None and need > MAX_DATASET_BYTES:
        extra = " or dataset.synthetic.num_train / num_test" if ds.name == "synthetic" else ""
        raise UserError(
            f"dataset.image_size={ds.image_size}: {ds.name} at {ds.image_size}x{ds.image_size} "
            f"needs ~{need / 2**30:.1f} GiB of memory to load (limit "
            f"{MAX_DATASET_BYTES / 2**30:g} GiB); lower dataset.image_size{extra}"
        )


def _check_storage(url: str) -> None:
    """An Optuna RDB URL that parses, of SQLite, PostgreSQL or MySQL, whose driver is installed;
    not an in-memory SQLite database (the study would be lost)."""
    shown = redact(url)
    allowed = "expected an RDB URL (sqlite:///path/optuna.db or postgresql://user@host/db)"
    if "://" not in url:
        raise UserError(f"storage={shown!r}: {allowed}")
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        parsed = make_url(url)
        port = parsed.port  # parses it: 'host:abc' fails here
    except (ArgumentError, ValueError, TypeError) as exc:
        raise UserError(f"storage={shown!r}: not a valid URL ({exc}); {allowed}") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql", "mysql"):
        raise UserError(f"storage={shown!r}: {allowed}; {backend!r} is not one")
    if backend == "sqlite":
        db = parsed.database or ""
        if db in ("", ":memory:") or "mode=memory" in db or parsed.query.get("mode") == "memory":
            raise UserError(
                f"storage={shown!r}: an in-memory SQLite study is lost when the sweep ends; give "
                "a file, e.g. sqlite:///results/optuna.db (or leave storage out)"
            )
        _expand("storage", db)
    else:
        if not parsed.host:
            raise UserError(f"storage={shown!r}: no database host; e.g. {backend}://user@dbhost/db")
        if port is not None and not 1 <= port <= 65535:
            raise UserError(f"storage={shown!r}: port {port}: allowed: 1-65535")
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise UserError(
            f"storage={shown!r}: SQLAlchemy has no driver {parsed.drivername!r}; e.g. "
            "postgresql+psycopg://, postgresql+psycopg2://, mysql+pymysql://"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        module = getattr(exc, "name", None) or str(exc)
        raise UserError(
            f"storage={shown!r}: its database driver ({module}) is not installed; install it "
            "(e.g. pip install 'psycopg[binary]' for postgresql+psycopg://, pymysql for "
            "mysql+pymysql://) or choose a driver you have"
        ) from None
