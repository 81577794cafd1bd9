"""``paretotune submit`` and ``paretotune jobs status|logs|stop|list``: sweeps as Ray Jobs.

Registered by ``search/cli/main.py`` through :func:`register`. Every command resolves the address
and token through :mod:`cluster.auth` first, so a remote cluster without token auth is refused
(unless ``--insecure``) before anything is sent.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING

from cluster import auth as _auth
from cluster import jobs as _jobs

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

__all__ = ["register"]


def _add_connection_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=None,
        help="the cluster's dashboard / Jobs API, e.g. http://HEAD:8265 (default: "
        "$RAY_API_SERVER_ADDRESS, an http(s) $RAY_ADDRESS, else http://127.0.0.1:8265)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback address without Ray token authentication "
        "(an unauthenticated Jobs API runs anyone's code: only on a network that is yours)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``submit`` and ``jobs`` to the ``paretotune`` command line."""
    submit = subparsers.add_parser(
        "submit",
        help="run a sweep on a Ray cluster as a Ray Job",
        description="Submit EXPERIMENT (a YAML file or a preset name) to a Ray cluster as a Ray "
        "Job: the project and the experiment file are the job's working directory, the "
        "project's requirements its pip environment, and the entrypoint runs `paretotune run`. "
        "Prints the job id. The Ray auth token comes from RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH "
        "or ~/.ray/auth_token and is never printed.",
    )
    submit.add_argument("experiment", metavar="EXPERIMENT", help="YAML file or preset name")
    _add_connection_args(submit)
    submit.add_argument(
        "--output",
        default=None,
        metavar="STORAGE",
        help="results directory every node reaches: an absolute shared path or an s3:// / gs:// "
        "URI (default for a local cluster: ./results/NAME)",
    )
    submit.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an experiment field, as for `paretotune run` (repeatable); e.g. "
        "--set storage=postgresql://USER@DBHOST/optuna for the Optuna study",
    )
    submit.add_argument(
        "--wait", action="store_true", help="follow the logs; exit with the job's outcome"
    )
    submit.add_argument(
        "--no-pip",
        dest="pip",
        action="store_false",
        help="do not ask Ray to install the project's requirements (the cluster's image has them)",
    )
    submit.add_argument("--job-id", default=None, help="submission id (default: generated)")
    submit.add_argument(
        "--dry-run", action="store_true", help="print the job (entrypoint, environment) and stop"
    )
    submit.set_defaults(func=_cmd_submit)

    jobs = subparsers.add_parser("jobs", help="status, logs, stop or list Ray Jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION")
    jobs_sub.required = True

    status = jobs_sub.add_parser("status", help="a job's status, message and driver exit code")
    status.add_argument("job_id", metavar="JOB_ID")
    _add_connection_args(status)
    status.set_defaults(func=_cmd_status)

    logs = jobs_sub.add_parser("logs", help="a job's logs")
    logs.add_argument("job_id", metavar="JOB_ID")
    logs.add_argument("-f", "--follow", action="store_true", help="follow until the job ends")
    _add_connection_args(logs)
    logs.set_defaults(func=_cmd_logs)

    stop = jobs_sub.add_parser("stop", help="stop a running job")
    stop.add_argument("job_id", metavar="JOB_ID")
    stop.add_argument("--wait", action="store_true", help="wait until it has stopped")
    _add_connection_args(stop)
    stop.set_defaults(func=_cmd_stop)

    listing = jobs_sub.add_parser("list", help="the cluster's jobs, newest last")
    _add_connection_args(listing)
    listing.set_defaults(func=_cmd_list)


def _connect(args: argparse.Namespace) -> tuple[_auth.ClientAuth, JobSubmissionClient]:
    address = args.address or _auth.default_address()
    client_auth = _auth.resolve(address, insecure=args.insecure)
    _warn(client_auth)
    return client_auth, _jobs.connect(client_auth)


def _warn(client_auth: _auth.ClientAuth, *, dry_run: bool = False) -> None:
    """The token's warnings, on stderr: sent in plain text, or none sent (``--insecure``; in a
    dry run, also the refusal the real submit would make)."""
    warning = client_auth.plaintext_warning()
    if warning:
        print(f"paretotune: {warning}", file=sys.stderr)
    if client_auth.token is not None or client_auth.loopback:
        return
    if client_auth.insecure:
        talk = "would talk" if dry_run else "talking"
        print(
            f"paretotune: warning: --insecure: {talk} to {client_auth.address} without token auth",
            file=sys.stderr,
        )
    elif dry_run:
        try:
            _auth.check_policy(client_auth.address, token=None, insecure=False)
        except _auth.InsecureClusterError as exc:
            print(f"paretotune: warning: the submit would be refused: {exc}", file=sys.stderr)


def _cmd_submit(args: argparse.Namespace) -> int:
    address = _auth.normalize_address(args.address or _auth.default_address())
    loopback = _auth.is_loopback(address)
    with _jobs.prepare(
        args.experiment,
        output=args.output,
        overrides=args.overrides,
        pip=args.pip,
        loopback=loopback,
        job_id=args.job_id,
    ) as spec:
        if args.dry_run:  # nothing is sent: the token is looked up, the cluster not asked
            print(spec.describe())
            dry = _auth.resolve(address, insecure=True, probe=False)
            _warn(dataclasses.replace(dry, insecure=args.insecure), dry_run=True)
            return 0
        args.address = address
        client_auth, client = _connect(args)
        job_id = _jobs.submit(
            client,
            spec.entrypoint,
            runtime_env=spec.runtime_env,
            job_id=spec.job_id,
            metadata=spec.metadata,
        )
    print(job_id)
    print(
        f"paretotune: submitted to {client_auth.address} ({client_auth.describe()}); results: "
        f"{spec.output}\n  paretotune jobs status {job_id} --address {client_auth.address}\n"
        f"  paretotune jobs logs -f {job_id} --address {client_auth.address}",
        file=sys.stderr,
    )
    if not args.wait:
        return 0
    return _wait(client, job_id)


def _wait(client: JobSubmissionClient, job_id: str) -> int:
    try:
        code = _jobs.wait(client, job_id)
    except KeyboardInterrupt:
        print(
            f"\nparetotune: stopped following; job {job_id} keeps running "
            f"(paretotune jobs stop {job_id})",
            file=sys.stderr,
        )
        return 130
    info = _jobs.job_status(client, job_id)
    print(f"paretotune: job {job_id}: {_status_name(info)}", file=sys.stderr)
    return code


def _status_name(info: object) -> str:
    status = getattr(info, "status", "?")
    return str(getattr(status, "value", status))


def _cmd_status(args: argparse.Namespace) -> int:
    _, client = _connect(args)
    info = _jobs.job_status(client, args.job_id)
    print(f"{args.job_id}: {_status_name(info)}")
    message = getattr(info, "message", None)
    if message:
        print(f"  {message}")
    exit_code = getattr(info, "driver_exit_code", None)
    if exit_code is not None:
        print(f"  driver exit code: {exit_code}")
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    _, client = _connect(args)
    if args.follow:
        return _wait(client, args.job_id)
    _jobs.job_status(client, args.job_id)  # a clear error for an unknown id
    sys.stdout.write(client.get_job_logs(args.job_id))
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    _, client = _connect(args)
    if _jobs.stop_job(client, args.job_id):
        print(f"paretotune: stopping {args.job_id}", file=sys.stderr)
    else:
        print(f"paretotune: {args.job_id} had already ended", file=sys.stderr)
    if args.wait:
        _jobs.wait(client, args.job_id, follow=False)
    print(f"{args.job_id}: {_status_name(_jobs.job_status(client, args.job_id))}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    _, client = _connect(args)
    details = client.list_jobs()
    for info in sorted(details, key=lambda d: d.start_time or 0):
        job_id = info.submission_id or info.job_id
        print(f"{job_id}\t{_status_name(info)}\t{info.entrypoint}")
    return 0
