"""Ray token authentication for the Jobs client, and the refusal to talk to an open cluster.

Ray (>= 2.52) protects its dashboard / Jobs API and its RPCs with one shared bearer token when
the cluster runs with ``RAY_AUTH_MODE=token``. A client finds the token, like Ray itself, in
``RAY_AUTH_TOKEN``, else the file named by ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token``.
Ray's Jobs SDK (``ray.dashboard.modules.dashboard_sdk.SubmissionClient``) adds
``Authorization: Bearer <token>`` to every request, and to the log-tailing websocket, only when
``RAY_AUTH_MODE=token`` is set in the client's environment; and it leaves a caller's own
``Authorization`` header alone. So this module sets ``RAY_AUTH_MODE=token`` for the client *and*
hands the header explicitly (:meth:`ClientAuth.headers`): the token reaches the cluster whatever
Ray's cached configuration says. The token itself is never printed, logged, put in a job's
runtime environment or metadata, or written into results; :class:`Token` hides it from ``repr``.

Without a token, submitting to a non-loopback address is refused unless ``insecure=True``:
an unauthenticated Ray Jobs API runs anyone's code. The same holds when the cluster itself
reports (``GET /api/authentication_mode``, a public endpoint) that its token auth is off.
"""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from search.errors import UserError

__all__ = [
    "AUTH_MODE_ENV",
    "DEFAULT_ADDRESS",
    "TOKEN_ENV",
    "TOKEN_PATH_ENV",
    "ClientAuth",
    "InsecureClusterError",
    "Token",
    "apply_client_env",
    "check_policy",
    "default_address",
    "default_token_file",
    "find_token",
    "is_loopback",
    "normalize_address",
    "resolve",
    "server_auth_mode",
]

AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
DEFAULT_ADDRESS = "http://127.0.0.1:8265"

_WHY = "an unauthenticated Ray Jobs API runs anyone's code"


class InsecureClusterError(UserError):
    """Refused: a non-loopback Jobs API without token authentication (see ``--insecure``)."""


@dataclass(frozen=True)
class Token:
    """A Ray auth token and where it came from. ``repr``/``str`` never show the value."""

    value: str = field(repr=False)
    source: str

    def __str__(self) -> str:
        return f"<Ray auth token from {self.source}>"

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.value}"}


def default_token_file(environ: Mapping[str, str] | None = None) -> Path:
    """``~/.ray/auth_token`` (Ray's default token file)."""
    env = os.environ if environ is None else environ
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".ray" / "auth_token"


def find_token(environ: Mapping[str, str] | None = None) -> Token | None:
    """The client's token, looked up in Ray's order; ``None`` when there is none.

    A ``RAY_AUTH_TOKEN_PATH`` that cannot be read, or is empty, is an error (as in Ray).
    """
    env = os.environ if environ is None else environ
    value = env.get(TOKEN_ENV, "").strip()
    if value:
        return Token(value, TOKEN_ENV)
    path_str = env.get(TOKEN_PATH_ENV, "").strip()
    if path_str:
        path = Path(path_str).expanduser()
        try:
            value = path.read_text().strip()
        except OSError as exc:
            raise UserError(f"{TOKEN_PATH_ENV}={path}: cannot read it ({exc.strerror})") from None
        if not value:
            raise UserError(f"{TOKEN_PATH_ENV}={path}: the token file is empty")
        return Token(value, f"{TOKEN_PATH_ENV} file")
    path = default_token_file(env)
    try:
        value = path.read_text().strip()
    except OSError:
        return None
    return Token(value, "~/.ray/auth_token") if value else None


def default_address(environ: Mapping[str, str] | None = None) -> str:
    """``RAY_API_SERVER_ADDRESS``, else an ``http(s)://`` ``RAY_ADDRESS``, else local 8265."""
    env = os.environ if environ is None else environ
    for name in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        value = env.get(name, "").strip()
        if value.startswith(("http://", "https://")):
            return value
    return DEFAULT_ADDRESS


def normalize_address(address: str) -> str:
    """``HOST:PORT`` -> ``http://HOST:PORT``; only http(s) (the dashboard's Jobs API) is valid."""
    address = address.strip().rstrip("/")
    if not address:
        raise UserError("--address: give the dashboard address, e.g. http://HEAD:8265")
    if "://" not in address:
        address = f"http://{address}"
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https"):
        raise UserError(
            f"--address {address}: the Jobs API is the dashboard's http(s) address "
            "(e.g. http://HEAD:8265), not a ray:// or GCS address"
        )
    if not parts.hostname:
        raise UserError(f"--address {address}: no host in the address")
    return address


def is_loopback(address: str) -> bool:
    """True for ``localhost`` and 127.0.0.0/8 or ::1; any other name counts as remote.

    Names are not resolved: a name that happens to point at this machine still counts as
    remote, which errs on the safe side.
    """
    host = urlsplit(normalize_address(address)).hostname or ""
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_auth_mode(address: str, *, timeout_s: float = 10.0) -> str | None:
    """The cluster's own word on its auth: ``"token"``, ``"disabled"``, or ``None`` if unknown.

    Reads ``/api/authentication_mode``, which Ray serves without a token; clusters older
    than token auth (404) or an unreachable address give ``None``.
    """
    url = f"{normalize_address(address)}/api/authentication_mode"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            data = json.loads(resp.read().decode() or "{}")
    except (OSError, ValueError, urllib.error.HTTPError):
        return None
    mode = data.get("authentication_mode") if isinstance(data, dict) else None
    return str(mode) if mode else None


def check_policy(
    address: str, *, token: Token | None, insecure: bool, server_mode: str | None = None
) -> None:
    """Refuse a non-loopback address without token auth, unless ``insecure``.

    Without auth means: the client has no token, or the cluster reports its auth is off.
    Raises :class:`InsecureClusterError` with a one-line reason.
    """
    if insecure or is_loopback(address):
        return
    if server_mode == "disabled":
        raise InsecureClusterError(
            f"refusing {address}: the cluster has Ray token authentication turned off, and "
            f"{_WHY}. Start every node with {AUTH_MODE_ENV}=token (see docs/cluster.md), or pass "
            "--insecure if the network is yours alone"
        )
    if token is None:
        raise InsecureClusterError(
            f"refusing {address}: no Ray auth token ({TOKEN_ENV}, {TOKEN_PATH_ENV} or "
            f"~/.ray/auth_token) for a non-loopback address, and {_WHY}. Get the cluster's "
            "token (`ray get-auth-token` where it was made), or pass --insecure if the "
            "cluster is on a network that is yours alone"
        )


@dataclass(frozen=True)
class ClientAuth:
    """How this client talks to one Jobs API: address, token (or none), the policy outcome."""

    address: str
    token: Token | None
    loopback: bool
    insecure: bool = False
    server_mode: str | None = None

    def headers(self) -> dict[str, str]:
        """HTTP headers for the Jobs SDK (the bearer token when there is one)."""
        return self.token.header() if self.token else {}

    def describe(self) -> str:
        """One line for the user, without the token."""
        if self.token is not None:
            return f"token auth (token from {self.token.source})"
        return "no token auth" + (" (--insecure)" if self.insecure and not self.loopback else "")

    def plaintext_warning(self) -> str | None:
        """A warning when a token goes over plain http to another machine."""
        if self.token is not None and not self.loopback and self.address.startswith("http://"):
            return (
                "warning: the token travels unencrypted over http:// to a remote address; "
                "prefer an SSH tunnel (`ray dashboard cluster.yaml`, `kubectl port-forward`) "
                "and --address http://127.0.0.1:8265, or an https:// proxy"
            )
        return None


def resolve(
    address: str,
    *,
    insecure: bool = False,
    environ: Mapping[str, str] | None = None,
    probe: bool = True,
) -> ClientAuth:
    """Find the token, apply the policy, ask the cluster whether it enforces auth, apply it again.

    Nothing is sent to a non-loopback address when the client has no token (and not
    ``insecure``): the refusal comes first.

    ``RAY_AUTH_MODE=disabled`` in the client's environment means "no token". With
    ``RAY_AUTH_MODE=token`` a missing token is an error; when the mode is unset, a token found
    is used (Ray 2.60 clusters have token auth on by default).
    """
    env = os.environ if environ is None else environ
    address = normalize_address(address)
    mode = env.get(AUTH_MODE_ENV, "").strip().lower()
    token = None if mode == "disabled" else find_token(env)
    if mode == "token" and token is None:
        raise UserError(
            f"{AUTH_MODE_ENV}=token but no token found: set {TOKEN_ENV} or {TOKEN_PATH_ENV}, "
            "or put the cluster's token in ~/.ray/auth_token"
        )
    # Refuse before sending anything: no token for a remote address.
    check_policy(address, token=token, insecure=insecure)
    server_mode = server_auth_mode(address) if probe else None
    check_policy(address, token=token, insecure=insecure, server_mode=server_mode)
    if server_mode == "token" and token is None:
        raise UserError(
            f"{address} requires a Ray auth token and none was found: set {TOKEN_ENV} or "
            f"{TOKEN_PATH_ENV}, or put the cluster's token in ~/.ray/auth_token"
        )
    return ClientAuth(
        address=address,
        token=token,
        loopback=is_loopback(address),
        insecure=insecure,
        server_mode=server_mode,
    )


def apply_client_env(auth: ClientAuth, environ: MutableMapping[str, str] | None = None) -> None:
    """Set ``RAY_AUTH_MODE=token`` for this client process when it has a token.

    Only the mode is set; the token stays where it was found (never copied into the
    environment, so child processes of this client do not inherit it by our doing).
    """
    env = os.environ if environ is None else environ
    if auth.token is not None:
        env[AUTH_MODE_ENV] = "token"
