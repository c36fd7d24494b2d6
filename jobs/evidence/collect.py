"""Collect rotated audit files from each master into the evidence store.

A master's source lists entries (name, size, mtime); every regular file matching the master's
pattern that the store does not hold yet is copied byte for byte, hashed, stored read-only
and given a custody record. The active file (the one whose name is not a rotated backup) is
copied up to its last complete line. Symlinks, directories, devices and names with a path
separator are never followed: each is recorded in custody with the reason, as is a file that
cannot be read. A source that cannot be listed is recorded as a collection failure for that
master; the other masters are still collected.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from jobs.evidence.custody import (
    CollectedRecord,
    CustodyRecord,
    FileSkippedRecord,
    FileUnreadableRecord,
    append_custody,
    collected,
    named,
    now,
    read_custody,
)
from jobs.evidence.names import display_name, os_name
from jobs.evidence.sources import Entry, open_source
from jobs.evidence.store import store_stream
from jobs.settings import Config, Layout, MasterConfig

# lumberjack backup name: <prefix>-YYYY-MM-DDTHH-MM-SS.mmm<ext>[.gz] (UTC rotation time)
BACKUP_RE = re.compile(
    r"^(?P<prefix>.+)-(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3})(?P<ext>\.[^.]*)?(?P<gz>\.gz)?$"
)

CustodyKey = tuple[str, str, str, int, int]
"""(cluster, master, file name as os lists it, listed size, mtime_ns): one version of a file."""

COMPRESSING = "compression in progress (uncompressed twin present)"
"""The one skip that is not a refusal: the file is taken once compressed."""


@dataclass(frozen=True)
class Skipped:
    """A listed file not collected, and why."""

    file: str
    reason: str


@dataclass(frozen=True)
class MasterResult:
    """The outcome of collecting one master.

    Attributes:
        master: the master's name.
        collected: files recorded in custody by this collection.
        unchanged: files custody already held.
        skipped: files left out (unsafe, not regular, being compressed, unreadable).
        failure: why the master could not be listed, or None.
    """

    master: str
    collected: int = 0
    unchanged: int = 0
    skipped: tuple[Skipped, ...] = ()
    failure: str | None = None

    @property
    def refused(self) -> tuple[Skipped, ...]:
        """Files collect could not take (recorded in custody); not those it takes later."""
        return tuple(s for s in self.skipped if s.reason != COMPRESSING)

    @property
    def complete(self) -> bool:
        """The master was listed and every file it had was taken (or is taken later)."""
        return self.failure is None and not self.refused


def rotation_time(name: str) -> datetime | None:
    """The UTC rotation time encoded in a backup's name, or None for the active file."""
    m = BACKUP_RE.match(name)
    if not m:
        return None
    try:
        return datetime.strptime(m["ts"], "%Y-%m-%dT%H-%M-%S.%f").replace(tzinfo=UTC)
    except ValueError:
        return None


def is_active(name: str) -> bool:
    """The file kube-apiserver is still writing: not a rotated backup, not compressed.

    (A logrotate-style ``kubernetes.audit.1.gz`` is immutable; it is never cut.)
    """
    return rotation_time(name) is None and not name.endswith(".gz")


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
            yield e, COMPRESSING
        else:
            yield e, None


def _custody_key(rec: CollectedRecord) -> CustodyKey:
    return (rec["cluster"], rec["master"], os_name(rec), rec["source_size"], rec["mtime_ns"])


def _known(layout: Layout) -> set[CustodyKey]:
    return {_custody_key(r) for r in collected(read_custody(layout))}


def _store(
    config: Config, master: MasterConfig, entry: Entry, fh: BinaryIO, layout: Layout
) -> CollectedRecord:
    active = is_active(entry.name)
    with fh:
        stored = store_stream(layout, fh, limit=entry.size, complete_lines_only=active)
    rot = rotation_time(entry.name)
    record: CollectedRecord = {
        "record_type": "collected",
        "cluster": config.cluster,
        "master": master.name,
        "source_uri": master.source,
        "file_name": entry.name,
        "size": stored.size,
        "source_size": entry.size,
        "mtime_ns": entry.mtime_ns,
        "mtime": datetime.fromtimestamp(entry.mtime_ns / 1e9, UTC).isoformat(),
        "sha256": stored.sha256,
        "collected_at": now(),
        "active": active,
        "rotated_at": rot.isoformat(timespec="milliseconds") if rot else None,
        "dropped_partial_bytes": stored.dropped_partial_bytes,
        "new_content": stored.is_new,
    }
    return named(record, entry.name)


def collect_master(
    config: Config, master: MasterConfig, layout: Layout, known: set[CustodyKey]
) -> MasterResult:
    """Collect one master.

    A source problem (cannot list, a file unreadable or replaced mid-way) is recorded in
    custody and reported, and the other files and masters go on. A problem of the evidence
    store itself (disk full, permissions) raises: nothing may be silently left out.
    """
    source = None
    try:
        source = open_source(master)
        entries = source.list()
    except (OSError, NotImplementedError) as exc:
        if source is not None:
            source.close()
        msg = _listing_failure(master, exc)
        failure: CustodyRecord = {
            "record_type": "collection_failure",
            "cluster": config.cluster,
            "master": master.name,
            "source_uri": master.source,
            "error": msg,
            "at": now(),
        }
        append_custody(layout, [failure])
        return MasterResult(master.name, failure=msg)
    records: list[CustodyRecord] = []
    problems: list[CustodyRecord] = []
    skipped: list[Skipped] = []
    unchanged = 0
    try:
        for entry, skip in select_entries(entries, master.pattern):
            if skip:
                skipped.append(Skipped(display_name(os.fsencode(entry.name)), skip))
                if skip != COMPRESSING:
                    problems.append(_not_taken(config, master, entry, skip, unreadable=False))
                continue
            if (config.cluster, master.name, entry.name, entry.size, entry.mtime_ns) in known:
                unchanged += 1
                continue
            try:
                fh = source.open(entry)
            except (OSError, ValueError) as exc:
                reason = f"unreadable: {getattr(exc, 'strerror', None) or exc}"
                skipped.append(Skipped(display_name(os.fsencode(entry.name)), reason))
                problems.append(_not_taken(config, master, entry, reason, unreadable=True))
                continue
            records.append(_store(config, master, entry, fh, layout))
    finally:
        source.close()
        written = 0
        if records or problems:
            # a concurrent collection of the same master may have recorded a file meanwhile
            sealed = append_custody(layout, records + problems, skip_if_known=_custody_key)
            written = len(collected(sealed))
    return MasterResult(
        master.name,
        collected=written,
        unchanged=unchanged + len(records) - written,
        skipped=tuple(skipped),
    )


def _not_taken(
    config: Config, master: MasterConfig, entry: Entry, reason: str, unreadable: bool
) -> CustodyRecord:
    """The custody record of a listed file collect did not take, with the reason."""
    # one body, two record types: the unreadable record keeps its original "error" key
    body: dict[str, Any] = {
        "cluster": config.cluster,
        "master": master.name,
        "source_uri": master.source,
        "file_name": entry.name,
        "at": now(),
    }
    if unreadable:
        body |= {"record_type": "file_unreadable", "error": reason}
        return named(cast(FileUnreadableRecord, body), entry.name)
    body |= {"record_type": "file_skipped", "reason": reason}
    return named(cast(FileSkippedRecord, body), entry.name)


def _listing_failure(master: MasterConfig, exc: Exception) -> str:
    """Why a master could not be listed, naming the directory (never a Python class name)."""
    if isinstance(exc, NotImplementedError):
        return str(exc)
    where = master.local_path if master.scheme == "file" else master.source
    return f"cannot list {where}: {getattr(exc, 'strerror', None) or exc}"


def collect(config: Config, layout: Layout, parallel: int = 4) -> list[MasterResult]:
    """Collect every master of the config, in parallel; one result per master."""
    known = _known(layout)
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(config.masters)))) as pool:
        return list(pool.map(lambda m: collect_master(config, m, layout, known), config.masters))
