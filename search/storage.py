"""Where results live: a local folder, or an object-store URI read and written through pyarrow.

An output location is either a local path (a :class:`~pathlib.Path`: everything keeps working
as plain files) or a URI such as ``s3://bucket/prefix`` or ``gs://bucket/prefix`` (anything
``pyarrow.fs.FileSystem.from_uri`` accepts), kept as its text. The helpers here take either and
do the same thing on both: :func:`read_text`, :func:`write_text` (atomic: a temporary file and
a rename locally, one PUT on an object store), :func:`exists`, :func:`delete`, and
:func:`tune_storage`, the ``storage_path`` / ``storage_filesystem`` pair for Ray Tune's
``RunConfig``.

``s3://`` honours the standard AWS environment, as boto3 does: ``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``), ``AWS_REGION`` or ``AWS_DEFAULT_REGION``,
and an endpoint override (MinIO, Ceph, a local test server) from ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from search.errors import UserError

__all__ = [
    "Where",
    "delete",
    "exists",
    "filesystem",
    "is_dir",
    "is_uri",
    "join",
    "read_text",
    "tune_storage",
    "write_text",
]

#: A results location: a local folder, or a URI (``s3://bucket/prefix``) as text.
Where = Path | str

_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(where: str | os.PathLike[str] | None) -> bool:
    """Whether ``where`` is a URI (``scheme://...``) rather than a local path."""
    return isinstance(where, str) and bool(_URI_RE.match(where))


def normalize(uri: str) -> str:
    """A URI without trailing slashes (``s3://b/p/`` and ``s3://b/p`` are one location)."""
    scheme, _, rest = uri.partition("://")
    return f"{scheme.lower()}://{rest.rstrip('/')}"


def join(where: Where, *names: str) -> Where:
    """``where / name / ...`` for a path or a URI."""
    if isinstance(where, Path):
        return where.joinpath(*names)
    return "/".join([where.rstrip("/"), *names])


def filesystem(uri: str) -> tuple[Any, str]:
    """The pyarrow filesystem of ``uri`` and the path inside it (``bucket/prefix`` for S3)."""
    import pyarrow.fs as pafs

    parsed = urllib.parse.urlsplit(uri)
    scheme = parsed.scheme.lower()
    try:
        if scheme == "s3" and not parsed.query:
            path = (parsed.netloc + parsed.path).rstrip("/")
            if not parsed.netloc:
                raise UserError(f"{uri}: no bucket; expected s3://BUCKET/PREFIX")
            return pafs.S3FileSystem(**_s3_options()), path
        fs, path = pafs.FileSystem.from_uri(uri)
    except UserError:
        raise
    except Exception as exc:  # ArrowInvalid (unknown scheme), missing credentials...
        raise UserError(f"{uri}: cannot open this location ({_first_line(exc)})") from None
    return fs, path.rstrip("/")


def _s3_options() -> dict[str, Any]:
    env = os.environ
    options: dict[str, Any] = {}
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        options.update(access_key=key, secret_key=secret)
        if env.get("AWS_SESSION_TOKEN"):
            options["session_token"] = env["AWS_SESSION_TOKEN"]
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        ep = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["endpoint_override"] = ep.netloc + ep.path.rstrip("/")
        options["scheme"] = ep.scheme or "https"
    return options


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _info(where: str) -> Any:
    fs, path = filesystem(where)
    try:
        return fs.get_file_info(path)
    except OSError as exc:
        raise UserError(f"{where}: cannot read it ({_first_line(exc)})") from None


def exists(where: Where) -> bool:
    """Whether a file or a folder (on an object store: any object under the prefix) is there."""
    if isinstance(where, Path):
        return where.exists()
    import pyarrow.fs as pafs

    return bool(_info(where).type != pafs.FileType.NotFound)


def is_dir(where: Where) -> bool:
    if isinstance(where, Path):
        return where.is_dir()
    import pyarrow.fs as pafs

    return bool(_info(where).type == pafs.FileType.Directory)


def is_file(where: Where) -> bool:
    if isinstance(where, Path):
        return where.is_file()
    import pyarrow.fs as pafs

    return bool(_info(where).type == pafs.FileType.File)


def read_text(where: Where) -> str:
    """The file's text (UTF-8); OSError (FileNotFoundError when missing) as for a local file."""
    if isinstance(where, Path):
        return where.read_text(encoding="utf-8")
    fs, path = filesystem(where)
    with fs.open_input_stream(path) as fh:
        data: bytes = fh.read()
    return data.decode("utf-8")


def write_text(where: Where, text: str) -> None:
    """Replace the file by ``text``, whole or not at all: locally a synced temporary file beside
    it renamed over it; on an object store one PUT (an object appears complete or not at all)."""
    if isinstance(where, Path):
        _atomic_local(where, text)
        return
    fs, path = filesystem(where)
    with fs.open_output_stream(path) as fh:
        fh.write(text.encode("utf-8"))


def delete(where: Where) -> None:
    """Remove a file if it is there."""
    if isinstance(where, Path):
        where.unlink(missing_ok=True)
        return
    fs, path = filesystem(where)
    with contextlib.suppress(FileNotFoundError):
        fs.delete_file(path)


def tune_storage(where: Where) -> tuple[str, Any]:
    """Ray Tune's ``(storage_path, storage_filesystem)`` for ``where``'s ``tune`` folder."""
    if isinstance(where, Path):
        return str(where / "tune"), None
    fs, path = filesystem(where)
    return f"{path}/tune", fs


def check_bucket(uri: str) -> None:
    """The URI's bucket (its first path component) exists and can be listed; else a UserError
    naming ``output_dir``."""
    import pyarrow.fs as pafs

    fs, path = filesystem(uri)
    bucket = path.split("/", 1)[0]
    try:
        info = fs.get_file_info(bucket)
    except OSError as exc:
        raise UserError(f"output_dir={uri!r}: cannot reach it ({_first_line(exc)})") from None
    if info.type != pafs.FileType.Directory:
        raise UserError(f"output_dir={uri!r}: bucket {bucket!r} does not exist; create it first")


def _atomic_local(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
