"""The Ray cluster a sweep runs on: the address resolved and checked once per command (its form,
and that it answers within :data:`~search.sweep.study.CONNECT_TIMEOUT_S`: Ray itself retries a
dead address for minutes), then connected to, or a private local Ray started."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from search.errors import UserError, reason
from search.sweep.interrupts import rearm
from search.sweep.study import CONNECT_TIMEOUT_S

__all__ = [
    "RayAddress",
    "init_ray",
    "ray_connection",
    "resolve_ray_address",
]


@dataclass(frozen=True)
class RayAddress:
    """A Ray address resolved and checked once per command: ``value`` is None for a private
    local Ray, else what ``ray.init`` takes (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``);
    ``flag`` names where it came from (``--address`` or ``RAY_ADDRESS``)."""

    value: str | None
    flag: str = "--address"


def resolve_ray_address(address: str | RayAddress | None, *, probe: bool = True) -> RayAddress:
    """The Ray address to connect to (``--address``, else ``RAY_ADDRESS``), checked: ``None``
    (a private local Ray), ``auto``, ``HOST:PORT`` (the cluster's GCS) or ``ray://HOST[:PORT]``
    (Ray Client), whose port must answer within :data:`CONNECT_TIMEOUT_S` (Ray itself retries
    a dead address for minutes; ``probe=False`` checks the form only). Anything else is a
    UserError naming the flag. A :class:`RayAddress` is already resolved: it comes back as it
    is, probed no second time."""
    if isinstance(address, RayAddress):
        return address
    flag = "--address"
    if address is None:
        env = os.environ.get("RAY_ADDRESS")
        if env is None or not env.strip():
            return RayAddress(None)  # Ray too ignores an empty RAY_ADDRESS
        address, flag = env, "RAY_ADDRESS"
    if not isinstance(address, str):
        raise UserError(f"{flag}={address!r}: expected text such as 10.0.0.5:6379")
    value = address.strip()
    forms = "HOST:PORT (the head's GCS, e.g. 10.0.0.5:6379), ray://HOST:10001 or auto"
    if not value:
        raise UserError(
            f"{flag}={address!r}: empty; give {forms}, or leave {flag} out for a private local Ray"
        )
    if value == "local":
        return RayAddress(None, flag)
    if value == "auto":
        found = _find_local_cluster(flag) if probe else None
        if found is not None:
            _probe_ray(flag, value, *_split_host_port(flag, found, default_port=None))
        return RayAddress(value, flag)
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    scheme = scheme.lower()
    if scheme in ("http", "https"):
        raise UserError(
            f"{flag}={value!r}: an http(s) address is the dashboard's Jobs API, for `paretotune "
            f"submit` / `jobs`; run and resume take {forms}"
        )
    if scheme not in ("", "ray"):
        raise UserError(f"{flag}={value!r}: unknown scheme {scheme + '://'!r}; allowed: {forms}")
    host, port = _split_host_port(flag, value, rest, default_port=10001 if scheme else None)
    if probe:
        _probe_ray(flag, value, host, port)
    return RayAddress(value, flag)


def _split_host_port(
    flag: str, shown: str, rest: str | None = None, *, default_port: int | None
) -> tuple[str, int]:
    """``HOST:PORT`` / ``[IPv6]:PORT`` -> (host, port), else a UserError naming ``flag``."""
    rest = shown if rest is None else rest
    where = f"{flag}={shown!r}"
    if "/" in rest.rstrip("/") or "@" in rest or any(c.isspace() for c in rest):
        raise UserError(f"{where}: expected HOST:PORT, without a path, user or spaces")
    rest = rest.rstrip("/")
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or not host or (tail and not tail.startswith(":")):
            raise UserError(f"{where}: an IPv6 host is written [ADDRESS]:PORT, e.g. [::1]:6379")
        port_text = tail[1:] if tail else ""
    else:
        if rest.count(":") > 1:
            raise UserError(f"{where}: an IPv6 host is written [ADDRESS]:PORT, e.g. [::1]:6379")
        host, _, port_text = rest.partition(":")
        if not host:
            raise UserError(f"{where}: no host; expected HOST:PORT, e.g. 10.0.0.5:6379")
        if not re.fullmatch(r"[A-Za-z0-9._-]+", host):
            raise UserError(f"{where}: {host!r} is not a host name or IP address")
    if not port_text and ":" not in rest.removeprefix("[" + host + "]") and default_port:
        return host, default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise UserError(
            f"{where}: port {port_text!r} is not a number from 1 to 65535; expected HOST:PORT, "
            "e.g. 10.0.0.5:6379"
        )
    return host, int(port_text)


def _find_local_cluster(flag: str) -> str | None:
    """``auto``: the address of the Ray cluster running on this machine (``ray start``)."""
    try:
        from ray._private.services import canonicalize_bootstrap_address_or_die
    except ImportError:  # pragma: no cover - Ray moved it: let ray.init look
        return None
    try:
        return str(canonicalize_bootstrap_address_or_die("auto"))
    except ConnectionError as exc:
        raise UserError(
            f"{flag}=auto: no running Ray cluster found on this machine ({reason(exc)}); start "
            "one with `ray start --head`, give HOST:PORT, or leave it out for a private local Ray"
        ) from None
    except Exception:  # Ray internals: let ray.init decide
        return None


def _probe_ray(flag: str, shown: str, host: str, port: int) -> None:
    """Fail within CONNECT_TIMEOUT_S unless ``host:port`` accepts a connection and speaks gRPC
    (the GCS and the Ray Client server both do)."""
    where = f"{flag}={shown!r}"
    hint = f"start the head with `ray start --head`, or leave {flag} out for a private local Ray"
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except socket.gaierror as exc:
        raise UserError(f"{where}: unknown host {host!r} ({reason(exc)})") from None
    except TimeoutError:
        raise UserError(
            f"{where}: no answer within {CONNECT_TIMEOUT_S:g} s; is the head reachable? {hint}"
        ) from None
    except OSError as exc:
        raise UserError(f"{where}: no Ray cluster there ({reason(exc)}); {hint}") from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return  # a TLS GCS does not answer a plain gRPC handshake: the TCP check is all we do
    try:
        import grpc
    except ImportError:  # pragma: no cover - Ray depends on grpcio
        return
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    channel = grpc.insecure_channel(target, options=[("grpc.enable_http_proxy", 0)])
    try:
        grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
    except grpc.FutureTimeoutError:
        raise UserError(
            f"{where}: something listens there, but not a Ray cluster (no gRPC answer within "
            f"{CONNECT_TIMEOUT_S:g} s); the GCS port is usually 6379, Ray Client's 10001"
        ) from None
    finally:
        channel.close()


@contextlib.contextmanager
def ray_connection(target: RayAddress, *, start_local: bool = False) -> Iterator[None]:
    """Connected to the cluster at ``target`` for the block (and a private local Ray started
    with ``start_local``), unless Ray is already initialised in this process; what this
    started is shut down at the end."""
    if target.value is None and not start_local:
        yield
        return
    import ray

    if ray.is_initialized():
        yield
        return
    init_ray(target)
    try:
        yield
    finally:
        ray.shutdown()


def init_ray(target: RayAddress) -> None:
    """``ray.init`` for ``target`` (resolved already: no second check). The stop signals stay
    the sweep's (``ray.init`` installs its own SIGTERM handler)."""
    import ray

    # Trial output (DeepSpeed, Ray Train) stays in the trials' logs; progress lines come from
    # the driver. PARETOTUNE_WORKER_LOGS=1 streams the workers' output too.
    log_to_driver = os.environ.get("PARETOTUNE_WORKER_LOGS", "0") == "1"
    if target.value:
        try:
            ray.init(address=target.value, log_to_driver=log_to_driver)
        except Exception as exc:  # version mismatch, auth, a cluster that went away...
            raise UserError(
                f"{target.flag}={target.value!r}: cannot connect to the Ray cluster "
                f"({reason(exc)}); check that its Ray version matches and, with token "
                "authentication, RAY_AUTH_TOKEN"
            ) from None
    else:
        # A private local instance; no dashboard unless asked (it would bind a port).
        ray.init(include_dashboard=False, log_to_driver=log_to_driver)
    rearm()
