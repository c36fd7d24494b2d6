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
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from jobs.evidence.custody import (
    CollectedRecord,
    CustodyRecord,
    append_custody,
    collected,
    read_custody,
)
from jobs.evidence.sources import Entry, open_source
from jobs.evidence.store import store_stream
from jobs.settings import Config, Layout, MasterConfig

# lumberjack backup name: <prefix>-YYYY-MM-DDTHH-MM-SS.mmm<ext>[.gz] (UTC rotation time)
BACKUP_RE = re.compile(
    r"^(?P<prefix>.+)-(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3})(?P<ext>\.[^.]*)?(?P<gz>\.gz)?$"
)

CustodyKey = tuple[str, str, str, int, int]
"""(cluster, master, file name, listed size, mtime_ns): one listed version of a file."""


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
            yield e, "compression in progress (uncompressed twin present)"
        else:
            yield e, None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _custody_key(rec: CollectedRecord) -> CustodyKey:
    return (rec["cluster"], rec["master"], rec["file_name"], rec["source_size"], rec["mtime_ns"])


def _known(layout: Layout) -> set[CustodyKey]:
    return {_custody_key(r) for r in collected(read_custody(layout))}


def _store(
    config: Config, master: MasterConfig, entry: Entry, fh: BinaryIO, layout: Layout
) -> CollectedRecord:
    active = is_active(entry.name)
    with fh:
        stored = store_stream(layout, fh, limit=entry.size, complete_lines_only=active)
    rot = rotation_time(entry.name)
    return {
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
        "collected_at": _now(),
        "active": active,
        "rotated_at": rot.isoformat(timespec="milliseconds") if rot else None,
        "dropped_partial_bytes": stored.dropped_partial_bytes,
        "new_content": stored.is_new,
    }


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
        msg = f"{type(exc).__name__}: {getattr(exc, 'strerror', None) or exc}"
        failure: CustodyRecord = {
            "record_type": "collection_failure",
            "cluster": config.cluster,
            "master": master.name,
            "source_uri": master.source,
            "error": msg,
            "at": _now(),
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
                skipped.append(Skipped(entry.name, skip))
                continue
            if (config.cluster, master.name, entry.name, entry.size, entry.mtime_ns) in known:
                unchanged += 1
                continue
            try:
                fh = source.open(entry)
            except (OSError, ValueError) as exc:
                reason = f"unreadable: {exc}"
                skipped.append(Skipped(entry.name, reason))
                problems.append(
                    {
                        "record_type": "file_unreadable",
                        "cluster": config.cluster,
                        "master": master.name,
                        "source_uri": master.source,
                        "file_name": entry.name,
                        "error": reason,
                        "at": _now(),
                    }
                )
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


def collect(config: Config, layout: Layout, parallel: int = 4) -> list[MasterResult]:
    """Collect every master of the config, in parallel; one result per master."""
    known = _known(layout)
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(config.masters)))) as pool:
        return list(pool.map(lambda m: collect_master(config, m, layout, known), config.masters))
