"""Submit a sweep to a Ray cluster as a Ray Job, follow it, and manage it (Ray Jobs SDK).

A submission is: a working directory staged from the project (``models``, ``spaces``,
``search``, ``cluster`` and ``pyproject.toml``) plus the experiment file, the project's pip
requirements (less ``ray``, which the cluster provides), and the entrypoint
``python -m search.cli run <experiment> --output <storage>``, which is ``paretotune run``
run from the working directory (the project is shipped, not installed, so the console script
may not exist on the cluster). Results go to ``<storage>``: a path every node reaches or an
``s3://``/``gs://`` URI, and the Optuna study to the experiment's ``storage`` RDB URL.

Every function takes a ``JobSubmissionClient`` made by :func:`connect`, which applies the
token-auth policy of :mod:`cluster.auth`.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import IO, TYPE_CHECKING, Any

from cluster import auth as _auth
from search.errors import UserError

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

__all__ = [
    "EXPERIMENT_DIR",
    "PROJECT_FILES",
    "PROJECT_PACKAGES",
    "JobSpec",
    "connect",
    "exit_code",
    "follow_logs",
    "is_uri",
    "job_status",
    "new_job_id",
    "prepare",
    "project_requirements",
    "project_root",
    "resolve_output",
    "stage_working_dir",
    "stop_job",
    "submit",
    "wait",
]

PROJECT_PACKAGES = ("models", "spaces", "search", "cluster")
PROJECT_FILES = ("pyproject.toml", "README.md")
EXPERIMENT_DIR = "_experiment"
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".*")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def project_root() -> Path:
    """The directory that holds the project's packages (the parent of ``cluster/``)."""
    return Path(__file__).resolve().parent.parent


def is_uri(value: str) -> bool:
    """``s3://...``, ``gs://...`` and other ``scheme://`` storage URIs."""
    return bool(_URI.match(value))


def project_requirements(root: Path | None = None) -> list[str]:
    """The project's runtime requirements, without ``ray`` (the cluster has its own Ray).

    Read from the installed distribution's metadata, else from ``pyproject.toml``.
    """
    reqs: list[str] = []
    try:
        from importlib.metadata import PackageNotFoundError, requires

        reqs = [r for r in (requires("paretotune") or []) if "extra ==" not in r]
    except PackageNotFoundError:
        reqs = []
    if not reqs:
        pyproject = (root or project_root()) / "pyproject.toml"
        if pyproject.is_file():
            try:
                import tomllib
            except ModuleNotFoundError:  # pragma: no cover - Python 3.10
                return []
            data = tomllib.loads(pyproject.read_text())
            reqs = list(data.get("project", {}).get("dependencies", []))
    return [r for r in reqs if _requirement_name(r) != "ray"]


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9._-]+)", requirement)
    return match.group(1).lower().replace("_", "-") if match else ""


def stage_working_dir(dest: Path, experiment: str, *, root: Path | None = None) -> str:
    """Copy the project's packages (and the experiment file, if it is one) into ``dest``.

    Returns the experiment argument for the entrypoint: the staged file's relative path,
    or the preset name unchanged.
    """
    root = root or project_root()
    path = Path(experiment).expanduser()
    if not path.is_file() and (path.suffix in (".yaml", ".yml") or "/" in experiment):
        raise UserError(f"experiment {experiment!r}: no such file")
    for name in PROJECT_PACKAGES:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=_IGNORE)
    for name in PROJECT_FILES:
        if (root / name).is_file():
            shutil.copy2(root / name, dest / name)
    if path.is_file():
        (dest / EXPERIMENT_DIR).mkdir()
        shutil.copy2(path, dest / EXPERIMENT_DIR / path.name)
        return f"{EXPERIMENT_DIR}/{path.name}"
    return experiment  # a preset name; the cluster resolves it from search/presets/


def _load_experiment(experiment: str, overrides: Sequence[str]) -> Any | None:
    """Validate locally before uploading anything (``None`` if the loader is not there)."""
    try:
        from search.experiment import load_experiment
    except ImportError:  # pragma: no cover - the sweep engine is being built
        return None
    return load_experiment(experiment, list(overrides))


def resolve_output(output: str | None, experiment: Any | None, *, loopback: bool) -> str:
    """Where the sweep writes on the cluster: a URI or an absolute path every node reaches.

    A relative path would land in the job's temporary working directory, so: with a local
    cluster (loopback address) relative paths are made absolute here; with a remote one an
    absolute path or a URI is required. Without ``--output`` the experiment's ``output_dir``
    is used if it is absolute (or a URI), else ``results/<name>`` under the current directory
    for a local cluster.
    """
    if output is None and experiment is not None:
        declared = getattr(experiment, "output_dir", None)
        if declared and (is_uri(declared) or Path(declared).expanduser().is_absolute()):
            output = declared
    name = getattr(experiment, "name", None) or "sweep"
    if output is None:
        if not loopback:
            raise UserError(
                "--output: give a path that every node of the cluster mounts (e.g. "
                "/shared/results/NAME) or an s3:// / gs:// URI"
            )
        return str(Path("results", name).absolute())
    if is_uri(output):
        return output
    path = Path(output).expanduser()
    if not path.is_absolute():
        if not loopback:
            raise UserError(
                f"--output {output}: a relative path would land in the job's temporary "
                "directory; give an absolute path every node mounts, or an s3:// / gs:// URI"
            )
        path = path.absolute()
    return str(path)


def _check_study_storage(output: str, experiment: Any | None) -> None:
    if experiment is None or not is_uri(output):
        return
    if getattr(experiment, "storage", None) is None:
        raise UserError(
            f"--output {output}: the Optuna study cannot live in object storage (SQLite); "
            "give an RDB URL, e.g. --set storage=postgresql://USER@HOST/DB"
        )


def new_job_id(name: str) -> str:
    """A readable, unique submission id: ``paretotune-<name>-<YYYYmmdd-HHMMSS>-<hex>``."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "sweep"
    return f"paretotune-{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


@dataclass
class JobSpec:
    """What gets submitted: entrypoint, runtime environment, id and metadata (no secrets)."""

    entrypoint: str
    runtime_env: dict[str, Any]
    job_id: str
    output: str
    metadata: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """The spec as readable lines (for ``--dry-run``)."""
        env = dict(self.runtime_env)
        lines = [
            f"job id:      {self.job_id}",
            f"entrypoint:  {self.entrypoint}",
            f"output:      {self.output}",
            f"working_dir: {env.pop('working_dir', '-')}",
            f"pip:         {', '.join(env.pop('pip', [])) or '- (the cluster provides them)'}",
        ]
        lines += [f"{key}: {value}" for key, value in sorted(env.items())]
        return "\n".join(lines)


@contextmanager
def prepare(
    experiment: str,
    *,
    output: str | None = None,
    overrides: Sequence[str] = (),
    pip: bool = True,
    loopback: bool = True,
    job_id: str | None = None,
    root: Path | None = None,
) -> Iterator[JobSpec]:
    """Validate the experiment, stage the working dir, build the :class:`JobSpec`.

    A context manager: the staged directory lives until the block ends (submit inside it;
    the SDK uploads the directory during ``submit_job``).
    """
    loaded = _load_experiment(experiment, overrides)
    storage = resolve_output(output, loaded, loopback=loopback)
    _check_study_storage(storage, loaded)
    name = getattr(loaded, "name", None) or Path(experiment).stem
    with TemporaryDirectory(prefix="paretotune-job-") as tmp:
        staged = Path(tmp) / "project"
        staged.mkdir()
        exp_arg = stage_working_dir(staged, experiment, root=root)
        cmd = ["python", "-m", "search.cli", "run", exp_arg, "--output", storage]
        for item in overrides:
            cmd += ["--set", item]
        runtime_env: dict[str, Any] = {
            "working_dir": str(staged),
            "env_vars": {"PYTHONUNBUFFERED": "1"},
        }
        if pip:
            runtime_env["pip"] = project_requirements(root)
        yield JobSpec(
            entrypoint=shlex.join(cmd),
            runtime_env=runtime_env,
            job_id=job_id or new_job_id(name),
            output=storage,
            metadata={"paretotune.experiment": name, "paretotune.output": storage},
        )


def connect(auth: _auth.ClientAuth) -> JobSubmissionClient:
    """A Jobs SDK client for ``auth.address``, sending the token when there is one."""
    _auth.apply_client_env(auth)
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(auth.address, headers=auth.headers())
    except ConnectionError as exc:
        raise UserError(f"cannot reach the Ray Jobs API at {auth.address}: {exc}") from None
    except Exception as exc:  # AuthenticationError, a 404 (not a Ray dashboard): one line
        first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
        if type(exc).__name__ == "AuthenticationError":
            raise UserError(
                f"{auth.address} rejected the credentials ({auth.describe()}): {first_line}"
            ) from None
        if isinstance(exc, RuntimeError):
            raise UserError(f"{auth.address}: not a usable Ray Jobs API: {first_line}") from None
        raise


def submit(
    client: JobSubmissionClient,
    entrypoint: str,
    *,
    runtime_env: dict[str, Any] | None = None,
    job_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> str:
    """Submit one job; returns its submission id."""
    return client.submit_job(
        entrypoint=entrypoint,
        runtime_env=runtime_env,
        submission_id=job_id,
        metadata=metadata,
    )


def job_status(client: JobSubmissionClient, job_id: str) -> Any:
    """The SDK's ``JobDetails`` for one job (status, message, times, exit code)."""
    try:
        return client.get_job_info(job_id)
    except RuntimeError as exc:
        if "does not exist" in str(exc) or "404" in str(exc):
            raise UserError(f"no job {job_id!r} on this cluster") from None
        raise


def exit_code(info: Any) -> int:
    """The job's outcome as an exit code: 0 succeeded, the driver's code (or 1) if it failed,
    3 if it was stopped, 4 if it is not finished."""
    status = str(getattr(info.status, "value", info.status))
    if status == "SUCCEEDED":
        return 0
    if status == "FAILED":
        code = getattr(info, "driver_exit_code", None)
        return code if isinstance(code, int) and 0 < code < 256 else 1
    if status == "STOPPED":
        return 3
    return 4


async def _tail(client: JobSubmissionClient, job_id: str, out: IO[str]) -> None:
    async for chunk in client.tail_job_logs(job_id):
        out.write(chunk)
        out.flush()


def follow_logs(client: JobSubmissionClient, job_id: str, out: IO[str] | None = None) -> None:
    """Stream the job's logs to ``out`` until the job ends."""
    asyncio.run(_tail(client, job_id, out or sys.stdout))


def wait(
    client: JobSubmissionClient,
    job_id: str,
    *,
    out: IO[str] | None = None,
    follow: bool = True,
    poll_s: float = 1.0,
    timeout_s: float | None = None,
) -> int:
    """Follow the logs (or just poll) until the job ends; returns :func:`exit_code`."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    if follow:
        try:
            follow_logs(client, job_id, out)
        except RuntimeError as exc:  # the log socket dropped: fall back to polling
            print(f"paretotune: log stream ended early ({exc}); polling status", file=sys.stderr)
    while True:
        info = job_status(client, job_id)
        if str(getattr(info.status, "value", info.status)) in ("SUCCEEDED", "FAILED", "STOPPED"):
            return exit_code(info)
        if deadline is not None and time.monotonic() > deadline:
            return exit_code(info)
        time.sleep(poll_s)


def stop_job(client: JobSubmissionClient, job_id: str) -> bool:
    """Ask the cluster to stop the job; False if it had already ended."""
    job_status(client, job_id)  # a clear error for an unknown id
    return bool(client.stop_job(job_id))
