"""Token lookup and the refusal policy of ``cluster.auth`` (no network: remote addresses are
names under ``.invalid``, and the probe of the cluster is replaced where one would be sent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster import auth
from search.errors import UserError

REMOTE = "http://head.example.invalid:8265"
SECRET = "s3cr3t-token-value-0123456789abcdef"


def _home_with_token(tmp_path: Path, value: str = SECRET) -> dict[str, str]:
    (tmp_path / ".ray").mkdir(exist_ok=True)
    (tmp_path / ".ray" / "auth_token").write_text(value + "\n")
    return {"HOME": str(tmp_path)}


@pytest.fixture(autouse=True)
def _no_probe(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record probes instead of sending them."""
    sent: list[str] = []

    def fake(address: str, *, timeout_s: float = 10.0) -> str | None:
        sent.append(address)
        return None

    monkeypatch.setattr(auth, "server_auth_mode", fake)
    return sent


# ---- where the token comes from ------------------------------------------------------------
def test_token_lookup_follows_rays_order(tmp_path: Path) -> None:
    env = _home_with_token(tmp_path, "from-file")
    assert auth.find_token(env) == auth.Token("from-file", "~/.ray/auth_token")
    path_file = tmp_path / "elsewhere"
    path_file.write_text("from-path\n")
    env[auth.TOKEN_PATH_ENV] = str(path_file)
    assert auth.find_token(env).value == "from-path"  # type: ignore[union-attr]
    env[auth.TOKEN_ENV] = "from-env"
    assert auth.find_token(env).value == "from-env"  # type: ignore[union-attr]


def test_no_token_anywhere(tmp_path: Path) -> None:
    assert auth.find_token({"HOME": str(tmp_path)}) is None
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("  \n")
    assert auth.find_token({"HOME": str(tmp_path)}) is None


def test_unreadable_token_path_is_an_error(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), auth.TOKEN_PATH_ENV: str(tmp_path / "missing")}
    with pytest.raises(UserError, match="RAY_AUTH_TOKEN_PATH"):
        auth.find_token(env)
    (tmp_path / "empty").write_text("")
    env[auth.TOKEN_PATH_ENV] = str(tmp_path / "empty")
    with pytest.raises(UserError, match="empty"):
        auth.find_token(env)


def test_token_is_never_shown(tmp_path: Path) -> None:
    token = auth.find_token(_home_with_token(tmp_path))
    assert token is not None
    client = auth.resolve(REMOTE, environ={"HOME": str(tmp_path)})
    for text in (repr(token), str(token), repr(client), client.describe()):
        assert SECRET not in text
    assert client.headers() == {"Authorization": f"Bearer {SECRET}"}


# ---- addresses -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("http://127.0.0.1:8265", True),
        ("127.0.0.1:8265", True),
        ("http://127.3.2.1:8265", True),
        ("http://localhost:8265", True),
        ("http://[::1]:8265", True),
        ("https://localhost", True),
        (REMOTE, False),
        ("http://10.0.0.5:8265", False),
        ("http://0.0.0.0:8265", False),
        ("http://my-laptop:8265", False),  # names are not resolved: remote unless localhost
    ],
)
def test_loopback_detection(address: str, loopback: bool) -> None:
    assert auth.is_loopback(address) is loopback


def test_address_forms() -> None:
    assert auth.normalize_address("head:8265/") == "http://head:8265"
    with pytest.raises(UserError, match="dashboard's http"):
        auth.normalize_address("ray://head:10001")
    with pytest.raises(UserError, match="dashboard address"):
        auth.normalize_address("  ")
    assert auth.default_address({"RAY_ADDRESS": "10.0.0.5:6379"}) == auth.DEFAULT_ADDRESS
    assert auth.default_address({"RAY_ADDRESS": "http://h:8265"}) == "http://h:8265"
    env = {"RAY_API_SERVER_ADDRESS": "https://a:1", "RAY_ADDRESS": "http://b:2"}
    assert auth.default_address(env) == "https://a:1"


# ---- the refusal ---------------------------------------------------------------------------
def test_remote_without_token_is_refused_before_anything_is_sent(
    tmp_path: Path, _no_probe: list[str]
) -> None:
    with pytest.raises(auth.InsecureClusterError) as excinfo:
        auth.resolve(REMOTE, environ={"HOME": str(tmp_path)})
    message = str(excinfo.value)
    assert "an unauthenticated Ray Jobs API runs anyone's code" in message
    assert "--insecure" in message
    assert "\n" not in message
    assert _no_probe == []  # refused before probing the cluster


def test_insecure_allows_remote_without_token(tmp_path: Path) -> None:
    client = auth.resolve(REMOTE, insecure=True, environ={"HOME": str(tmp_path)})
    assert client.token is None and client.headers() == {}
    assert "--insecure" in client.describe()


def test_auth_mode_disabled_means_no_token(tmp_path: Path) -> None:
    env = {**_home_with_token(tmp_path), auth.AUTH_MODE_ENV: "disabled"}
    with pytest.raises(auth.InsecureClusterError):
        auth.resolve(REMOTE, environ=env)
    assert auth.resolve("http://127.0.0.1:8265", environ=env).token is None


def test_auth_mode_token_without_token_is_an_error(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), auth.AUTH_MODE_ENV: "token"}
    with pytest.raises(UserError, match="RAY_AUTH_MODE=token but no token"):
        auth.resolve("http://127.0.0.1:8265", environ=env)


def test_loopback_without_token_is_allowed(tmp_path: Path) -> None:
    client = auth.resolve("http://127.0.0.1:8265", environ={"HOME": str(tmp_path)})
    assert client.loopback and client.token is None
    assert client.plaintext_warning() is None


def test_remote_with_token_is_allowed_and_warned_about_plain_http(tmp_path: Path) -> None:
    client = auth.resolve(REMOTE, environ=_home_with_token(tmp_path))
    assert client.token is not None and not client.loopback
    assert "SSH tunnel" in (client.plaintext_warning() or "")
    https = auth.resolve("https://head.example.invalid", environ={"HOME": str(tmp_path)})
    assert https.plaintext_warning() is None


def test_cluster_with_auth_off_is_refused_even_with_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "server_auth_mode", lambda address, **_: "disabled")
    with pytest.raises(auth.InsecureClusterError, match="turned off"):
        auth.resolve(REMOTE, environ=_home_with_token(tmp_path))
    auth.resolve(REMOTE, insecure=True, environ=_home_with_token(tmp_path))
    auth.resolve("http://127.0.0.1:8265", environ=_home_with_token(tmp_path))


def test_cluster_requiring_a_token_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "server_auth_mode", lambda address, **_: "token")
    with pytest.raises(UserError, match="requires a Ray auth token"):
        auth.resolve("http://127.0.0.1:8265", environ={"HOME": str(tmp_path)})


def test_check_policy_matrix() -> None:
    token = auth.Token(SECRET, "test")
    auth.check_policy("http://127.0.0.1:1", token=None, insecure=False, server_mode="disabled")
    auth.check_policy(REMOTE, token=token, insecure=False, server_mode="token")
    auth.check_policy(REMOTE, token=token, insecure=False, server_mode=None)
    auth.check_policy(REMOTE, token=None, insecure=True, server_mode="disabled")
    for kwargs in (
        {"token": None, "server_mode": None},
        {"token": None, "server_mode": "token"},
        {"token": token, "server_mode": "disabled"},
    ):
        with pytest.raises(auth.InsecureClusterError):
            auth.check_policy(REMOTE, insecure=False, **kwargs)  # type: ignore[arg-type]


def test_client_env_gets_auth_mode_only(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    client = auth.resolve("http://127.0.0.1:8265", environ=_home_with_token(tmp_path))
    auth.apply_client_env(client, environ)
    assert environ == {auth.AUTH_MODE_ENV: "token"}
    environ.clear()
    auth.apply_client_env(auth.resolve("http://127.0.0.1:8265", environ={"HOME": "/x"}), environ)
    assert environ == {}
