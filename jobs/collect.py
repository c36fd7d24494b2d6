"""Collect rotated audit files from each master into the evidence store.

A master's source lists entries (name, size, mtime); every regular file matching the master's
pattern that the store does not hold yet is copied byte for byte, hashed, stored read-only
and given a custody record. The active file (the one whose name is not a rotated backup) is
copied up to its last complete line. Symlinks, directories, devices and names with a path
separator are never followed. A source that cannot be listed is recorded as a collection
failure for that master; the other masters are still collected.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from jobs.evidence import append_custody, read_custody, store_stream
from jobs.settings import Config, Layout, MasterConfig

# lumberjack backup name: <prefix>-YYYY-MM-DDTHH-MM-SS.mmm<ext>[.gz] (UTC rotation time)
BACKUP_RE = re.compile(
    r"^(?P<prefix>.+)-(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3})(?P<ext>\.[^.]*)?(?P<gz>\.gz)?$"
)


def rotation_time(name: str) -> datetime | None:
    """The UTC rotation time encoded in a backup's name, or None for the active file."""
    m = BACKUP_RE.match(name)
    if not m:
        return None
    try:
        return datetime.strptime(m["ts"], "%Y-%m-%dT%H-%M-%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class Entry:
    name: str
    size: int
    mtime_ns: int
    regular: bool  # a regular file, not a symlink/dir/device


class Source(Protocol):
    uri: str

    def list(self) -> list[Entry]: ...
    def open(self, name: str) -> Any: ...
    def close(self) -> None: ...


class LocalSource:
    """A file:// directory on this machine."""

    def __init__(self, directory: Path, uri: str) -> None:
        self.directory = directory
        self.uri = uri
        self._dir_fd: int | None = None

    def list(self) -> list[Entry]:
        self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        entries = []
        with os.scandir(self._dir_fd) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                entries.append(Entry(e.name, st.st_size, st.st_mtime_ns, stat.S_ISREG(st.st_mode)))
        return entries

    def open(self, name: str) -> Any:
        if "/" in name or name in (".", ".."):
            raise ValueError(f"refusing file name {name!r}")
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self._dir_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ValueError(f"{name!r} is no longer a regular file")
        return os.fdopen(fd, "rb")

    def close(self) -> None:
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None


def open_source(master: MasterConfig) -> Source:
    if master.scheme == "file":
        return LocalSource(master.local_path, master.source)
    raise NotImplementedError(f"master {master.name}: {master.scheme}:// collection is not built yet")


def select_entries(entries: list[Entry], pattern: str) -> Iterator[tuple[Entry, str | None]]:
    """Entries to consider, each with a skip reason or None.

    A backup X whose compressed twin X.gz also exists is being compressed: the uncompressed
    one is taken and X.gz is skipped until X is gone (it may still be partial).
    """
    names = {e.name for e in entries}
    for e in sorted(entries, key=lambda e: e.name):
        if not fnmatch.fnmatchcase(e.name, pattern):
            continue
        if "/" in e.name or e.name.startswith("."):
            yield e, "unsafe name"
        elif not e.regular:
            yield e, "not a regular file (symlinks are never followed)"
        elif e.name.endswith(".gz") and e.name[:-3] in names and rotation_time(e.name):
            yield e, "compression in progress (uncompressed twin present)"
        else:
            yield e, None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _known(layout: Layout) -> set[tuple[str, str, str, int, int]]:
    return {
        (r["cluster"], r["master"], r["file_name"], r["source_size"], r["mtime_ns"])
        for r in read_custody(layout)
        if r.get("record_type") == "collected"
    }


def collect_master(config: Config, master: MasterConfig, layout: Layout,
                   known: set[tuple[str, str, str, int, int]]) -> dict[str, Any]:
    """Collect one master; never raises for a source problem (recorded as a failure)."""
    result: dict[str, Any] = {"master": master.name, "collected": 0, "unchanged": 0,
                              "skipped": [], "failure": None}
    try:
        source = open_source(master)
        entries = source.list()
    except (OSError, NotImplementedError) as exc:
        msg = f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"
        append_custody(layout, [{
            "record_type": "collection_failure", "cluster": config.cluster,
            "master": master.name, "source_uri": master.source, "error": msg, "at": _now(),
        }])
        result["failure"] = msg
        return result
    records = []
    try:
        for entry, skip in select_entries(entries, master.pattern):
            if skip:
                result["skipped"].append({"file": entry.name, "reason": skip})
                continue
            key = (config.cluster, master.name, entry.name, entry.size, entry.mtime_ns)
            if key in known:
                result["unchanged"] += 1
                continue
            active = rotation_time(entry.name) is None
            try:
                with source.open(entry.name) as fh:
                    stored = store_stream(layout, fh, limit=entry.size, complete_lines_only=active)
            except (OSError, ValueError) as exc:
                result["skipped"].append({"file": entry.name, "reason": f"unreadable: {exc}"})
                continue
            rot = rotation_time(entry.name)
            records.append({
                "record_type": "collected", "cluster": config.cluster, "master": master.name,
                "source_uri": master.source, "file_name": entry.name,
                "size": stored.size, "source_size": entry.size, "mtime_ns": entry.mtime_ns,
                "mtime": datetime.fromtimestamp(entry.mtime_ns / 1e9, UTC).isoformat(),
                "sha256": stored.sha256, "collected_at": _now(), "active": active,
                "rotated_at": rot.isoformat(timespec="milliseconds") if rot else None,
                "dropped_partial_bytes": stored.dropped_partial_bytes,
                "new_content": stored.is_new,
            })
            result["collected"] += 1
    finally:
        source.close()
        if records:
            append_custody(layout, records)
    return result


def collect(config: Config, layout: Layout, parallel: int = 4) -> list[dict[str, Any]]:
    """Collect every master of the config, in parallel; one result per master."""
    known = _known(layout)
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(config.masters)))) as pool:
        return list(pool.map(lambda m: collect_master(config, m, layout, known), config.masters))
