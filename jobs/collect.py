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
    inode: int = 0  # 0 when the source cannot tell (checked against the opened file)


def is_active(name: str) -> bool:
    """The file kube-apiserver is still writing: not a rotated backup, not compressed.

    (A logrotate-style ``kubernetes.audit.1.gz`` is immutable; it is never cut.)
    """
    return rotation_time(name) is None and not name.endswith(".gz")


class Source(Protocol):
    uri: str

    def list(self) -> list[Entry]: ...
    def open(self, entry: Entry) -> Any: ...
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
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:  # rotated away between readdir and stat
                    continue
                entries.append(Entry(e.name, st.st_size, st.st_mtime_ns,
                                     stat.S_ISREG(st.st_mode), st.st_ino))
        return entries

    def open(self, entry: Entry) -> Any:
        name = entry.name
        if "/" in name or name in (".", ".."):
            raise ValueError(f"refusing file name {name!r}")
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self._dir_fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (entry.inode and st.st_ino != entry.inode):
            os.close(fd)
            raise ValueError(f"{name!r} was replaced between listing and opening")
        return os.fdopen(fd, "rb")

    def close(self) -> None:
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None


def open_source(master: MasterConfig) -> Source:
    if master.scheme == "file":
        return LocalSource(master.local_path, master.source)
    raise NotImplementedError(
        f"master {master.name}: {master.scheme}:// collection is not built yet")


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


def _custody_key(rec: dict[str, Any]) -> tuple[str, str, str, int, int]:
    return (rec["cluster"], rec["master"], rec["file_name"], rec["source_size"], rec["mtime_ns"])


def collect_master(config: Config, master: MasterConfig, layout: Layout,
                   known: set[tuple[str, str, str, int, int]]) -> dict[str, Any]:
    """Collect one master.

    A source problem (cannot list, a file unreadable or replaced mid-way) is recorded in
    custody and reported, and the other files and masters go on. A problem of the evidence
    store itself (disk full, permissions) raises: nothing may be silently left out.
    """
    result: dict[str, Any] = {"master": master.name, "collected": 0, "unchanged": 0,
                              "skipped": [], "failure": None}
    base = {"cluster": config.cluster, "master": master.name, "source_uri": master.source}
    source = None
    try:
        source = open_source(master)
        entries = source.list()
    except (OSError, NotImplementedError) as exc:
        if source is not None:
            source.close()
        msg = f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"
        append_custody(layout, [{"record_type": "collection_failure", **base, "error": msg,
                                 "at": _now()}])
        result["failure"] = msg
        return result
    records: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    try:
        for entry, skip in select_entries(entries, master.pattern):
            if skip:
                result["skipped"].append({"file": entry.name, "reason": skip})
                continue
            if (config.cluster, master.name, entry.name, entry.size, entry.mtime_ns) in known:
                result["unchanged"] += 1
                continue
            active = is_active(entry.name)
            try:
                fh = source.open(entry)
            except (OSError, ValueError) as exc:
                reason = f"unreadable: {exc}"
                result["skipped"].append({"file": entry.name, "reason": reason})
                problems.append({"record_type": "file_unreadable", **base,
                                 "file_name": entry.name, "error": reason, "at": _now()})
                continue
            with fh:
                stored = store_stream(layout, fh, limit=entry.size, complete_lines_only=active)
            rot = rotation_time(entry.name)
            records.append({
                "record_type": "collected", **base, "file_name": entry.name,
                "size": stored.size, "source_size": entry.size, "mtime_ns": entry.mtime_ns,
                "mtime": datetime.fromtimestamp(entry.mtime_ns / 1e9, UTC).isoformat(),
                "sha256": stored.sha256, "collected_at": _now(), "active": active,
                "rotated_at": rot.isoformat(timespec="milliseconds") if rot else None,
                "dropped_partial_bytes": stored.dropped_partial_bytes,
                "new_content": stored.is_new,
            })
    finally:
        source.close()
        if records or problems:
            # a concurrent collection of the same master may have recorded a file meanwhile
            written = append_custody(layout, records + problems, skip_if_known=_custody_key)
            result["collected"] = sum(1 for r in written if r["record_type"] == "collected")
            result["unchanged"] += len(records) - result["collected"]
    return result


def collect(config: Config, layout: Layout, parallel: int = 4) -> list[dict[str, Any]]:
    """Collect every master of the config, in parallel; one result per master."""
    known = _known(layout)
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(config.masters)))) as pool:
        return list(pool.map(lambda m: collect_master(config, m, layout, known), config.masters))
