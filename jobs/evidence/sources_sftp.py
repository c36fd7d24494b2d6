"""An sftp:// master: paramiko, key authentication, host keys checked against known_hosts.

Config (per master): ``source: sftp://user@host:port/var/log/kubernetes/`` with ``key_file``
(private key) and ``known_hosts`` (or ``host_key``: one known_hosts-style ``type base64`` key
pinned in the config); or ``conn_id``, an Airflow connection (login, host, port, password and
the extras ``key_file``, ``known_hosts``, ``host_key``), resolved only when used. Optional:
``timeout`` (seconds, connection and every transfer read, default 30) and ``retries``
(connection attempts, default 3, backoff 1 s, 2 s, 4 s...).

Host keys: an unknown or changed key stops that master with an error naming the host and the
key's SHA256 fingerprint; nothing is accepted or written to known_hosts. Authentication
failures and host key refusals are not retried (retrying cannot fix them).

Remote names are untrusted: a name with ``/``, ``..`` or control characters is refused before
any path is built from it, and a file is opened only when ``lstat`` shows a regular file
(SFTP opens follow symlinks, so the handle's attributes are compared with the listing too).
Listings carry no inode (SFTP v3 has none): a replaced file is recognised by size, mtime and
content (:mod:`jobs.evidence.segments`).
"""

from __future__ import annotations

import base64
import hashlib
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import unquote, urlsplit

import paramiko

from jobs.evidence.sources import Entry, unsafe_name
from jobs.settings import MasterConfig

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
BACKOFF = 1.0


class HostKeyError(OSError):
    """The master's host key is unknown or differs from known_hosts: never accepted."""


class AuthError(OSError):
    """The master refused the key or password."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's form: ``ssh-ed25519 SHA256:<base64 of the key's SHA-256, unpadded>``."""
    digest = base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")
    return f"{key.get_name()} SHA256:{digest}"


class _Refuse(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """RejectPolicy that names the host and the fingerprint it refused."""

    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        raise HostKeyError(
            f"host key of {hostname} ({fingerprint(key)}) is not in {self.known_hosts}: "
            "refusing to connect (add the key after checking it out of band)"
        )


@dataclass(frozen=True)
class SftpTarget:
    """Where and how to connect, from the master's config or its Airflow connection."""

    host: str
    port: int
    user: str
    directory: str
    key_file: str | None
    known_hosts: str | None
    host_key: str | None
    password: str | None
    timeout: float
    retries: int

    @property
    def host_id(self) -> str:
        """The host as known_hosts names it."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def target_of(master: MasterConfig) -> SftpTarget:
    """The connection settings of an sftp:// master.

    Raises:
        OSError: a required setting is missing (no host key source, no user).
    """
    from jobs.settings import secret_from_env

    url = urlsplit(master.source)
    opts = dict(master.options)
    password = secret_from_env(opts.get("password_env"))
    host, port, user = url.hostname or "", url.port, unquote(url.username or "")
    if opts.get("conn_id"):
        conn = _airflow_connection(str(opts["conn_id"]))
        extra = conn.get("extra") or {}
        host = host or conn.get("host") or ""
        port = port or conn.get("port")
        user = user or conn.get("login") or ""
        password = password or conn.get("password")
        for key in ("key_file", "known_hosts", "host_key"):
            opts.setdefault(key, extra.get(key))
    user = user or str(opts.get("user") or "")
    if not host or not user:
        raise OSError(f"master {master.name}: sftp source needs a user and a host")
    known_hosts = opts.get("known_hosts")
    if not known_hosts and not opts.get("host_key"):
        raise OSError(
            f"master {master.name}: sftp needs known_hosts or host_key (host keys are verified)"
        )
    return SftpTarget(
        host=host,
        port=int(port or opts.get("port") or 22),
        user=user,
        directory=unquote(url.path) or ".",
        key_file=str(opts["key_file"]) if opts.get("key_file") else None,
        known_hosts=str(known_hosts) if known_hosts else None,
        host_key=str(opts["host_key"]) if opts.get("host_key") else None,
        password=password,
        timeout=float(opts.get("timeout") or DEFAULT_TIMEOUT),
        retries=max(1, int(opts.get("retries") or DEFAULT_RETRIES)),
    )


def _airflow_connection(conn_id: str) -> dict[str, Any]:
    """An Airflow connection's fields (Task SDK: the SFTP provider is not installed here)."""
    try:
        from airflow.sdk import Connection
    except ImportError as exc:
        raise OSError(f"conn_id {conn_id}: Airflow is not installed") from exc
    try:
        conn = Connection.get(conn_id)
    except Exception as exc:
        raise OSError(f"Airflow connection {conn_id!r} not found: {exc}") from exc
    return {
        "host": conn.host,
        "port": conn.port,
        "login": conn.login,
        "password": conn.password,
        "extra": conn.extra_dejson,
    }


def _client(t: SftpTarget) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    if t.known_hosts:
        client.load_host_keys(str(Path(t.known_hosts).expanduser()))
    if t.host_key:
        kind, _, blob = t.host_key.strip().partition(" ")
        key = paramiko.PKey.from_type_string(kind, base64.b64decode(blob.split()[0]))
        client.get_host_keys().add(t.host_id, kind, key)
    client.set_missing_host_key_policy(_Refuse(t.known_hosts or "the configured host_key"))
    return client


def _connect_once(t: SftpTarget) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
    client = _client(t)
    try:
        client.connect(
            t.host,
            port=t.port,
            username=t.user,
            key_filename=t.key_file,
            password=t.password,
            timeout=t.timeout,
            banner_timeout=t.timeout,
            auth_timeout=t.timeout,
            channel_timeout=t.timeout,
            allow_agent=False,
            look_for_keys=False,
        )
        sftp = client.open_sftp()
        channel = sftp.get_channel()
        if channel is not None:
            channel.settimeout(t.timeout)  # a stalled transfer fails instead of hanging
        return client, sftp
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyError(
            f"host key of {t.host_id} changed: it offers {fingerprint(exc.key)}, "
            f"known_hosts has {fingerprint(exc.expected_key)}: refusing to connect"
        ) from exc
    except paramiko.AuthenticationException as exc:
        client.close()
        raise AuthError(f"{t.user}@{t.host_id}: authentication failed ({exc})") from exc
    except BaseException:
        client.close()
        raise


def connect(t: SftpTarget, sleep: Any = time.sleep) -> tuple[paramiko.SSHClient, Any]:
    """Connect with bounded retries and exponential backoff; refusals are not retried.

    Raises:
        HostKeyError: unknown or changed host key.
        AuthError: authentication refused.
        OSError: unreachable after ``t.retries`` attempts (the last error named).
    """
    last: Exception | None = None
    for attempt in range(t.retries):
        if attempt:
            sleep(BACKOFF * 2 ** (attempt - 1))
        try:
            return _connect_once(t)
        except (HostKeyError, AuthError):
            raise
        except (OSError, paramiko.SSHException, EOFError) as exc:
            last = exc
    why = getattr(last, "strerror", None) or last or "no attempt"
    raise OSError(f"{t.user}@{t.host_id} unreachable after {t.retries} attempts: {why}")


class SftpSource:
    """A master's log directory over SFTP."""

    def __init__(self, target: SftpTarget, client: paramiko.SSHClient, sftp: Any, uri: str) -> None:
        self.target = target
        self.uri = uri
        self._client = client
        self._sftp = cast(paramiko.SFTPClient, sftp)

    @classmethod
    def connect(cls, master: MasterConfig) -> SftpSource:
        """Connect to the master (retries, host key checks: see :func:`connect`)."""
        target = target_of(master)
        client, sftp = connect(target)
        return cls(target, client, sftp, master.source)

    def _path(self, name: str) -> str:
        why = unsafe_name(name)
        if why:
            raise ValueError(f"refusing remote file name {name!r}: {why}")
        return f"{self.target.directory.rstrip('/')}/{name}"

    def list(self) -> list[Entry]:
        """Every entry, with the attributes the server lists (lstat: symlinks are not regular)."""
        return [_entry(a.filename, a) for a in self._sftp.listdir_attr(self.target.directory)]

    def stat(self, name: str) -> Entry | None:
        """The entry now under ``name``; None when it is gone."""
        try:
            return _entry(name, self._sftp.lstat(self._path(name)))
        except FileNotFoundError:
            return None

    def open(self, entry: Entry) -> BinaryIO:
        """Open a listed regular file; refuses symlinks and files replaced since listing."""
        path = self._path(entry.name)
        if not stat.S_ISREG(self._sftp.lstat(path).st_mode or 0):
            raise ValueError(f"{entry.name!r} is no longer a regular file")
        fh = self._sftp.open(path, "rb")
        try:
            now = fh.stat()
            after = self._sftp.lstat(path)
            if not stat.S_ISREG(after.st_mode or 0) or (now.st_size or 0) < entry.size:
                raise ValueError(f"{entry.name!r} was replaced between listing and opening")
            fh.settimeout(self.target.timeout)
        except BaseException:
            fh.close()
            raise
        return cast(BinaryIO, fh)

    def close(self) -> None:
        """Close the SFTP session and the SSH connection."""
        self._sftp.close()
        self._client.close()


def _entry(name: str, attrs: paramiko.SFTPAttributes) -> Entry:
    mode = attrs.st_mode or 0
    return Entry(name, attrs.st_size or 0, int(attrs.st_mtime or 0) * 10**9, stat.S_ISREG(mode))
