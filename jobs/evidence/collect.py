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
from typing import Any, cast

from jobs.evidence.custody import (
    ChainRestartedRecord,
    CollectedRecord,
    CompressedTwinRecord,
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
from jobs.evidence.segments import (
    Chain,
    GunzipHash,
    chains_of,
    collect_active,
    current_chain,
    held_content,
    link_backup,
    new_chain_id,
)
from jobs.evidence.sources import Entry, Source, open_source, unsafe_name
from jobs.evidence.store import Stored, store_stream
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
    # backups by rotation time, then the active file: a rotated chain is closed first
    for e in sorted(entries, key=_reading_order):
        if not fnmatch.fnmatchcase(e.name, pattern):
            continue
        why = unsafe_name(e.name)
        if why:
            yield e, why
        elif not e.regular:
            yield e, "not a regular file (symlinks are never followed)"
        elif e.name.endswith(".gz") and e.name[:-3] in names and rotation_time(e.name):
            yield e, COMPRESSING
        else:
            yield e, None


def _reading_order(e: Entry) -> tuple[bool, datetime, str]:
    rot = rotation_time(e.name)
    return (rot is None, rot or datetime.min.replace(tzinfo=UTC), e.name)


def _custody_key(rec: CollectedRecord | CompressedTwinRecord) -> CustodyKey:
    return (rec["cluster"], rec["master"], os_name(rec), rec["source_size"], rec["mtime_ns"])


def _known(records: list[CustodyRecord]) -> set[CustodyKey]:
    keyed: list[CollectedRecord | CompressedTwinRecord] = [*collected(records)]
    keyed += [r for r in records if r["record_type"] == "compressed_twin"]
    return {_custody_key(r) for r in keyed}


def _record(
    config: Config,
    master: MasterConfig,
    entry: Entry,
    stored: Stored,
    active: bool,
    **extra: Any,
) -> CollectedRecord:
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
        "inode": entry.inode,
        "lines": stored.lines,
    }
    record.update(cast(CollectedRecord, extra))
    return named(record, entry.name)


def _link(chain: str, offset: int, line_offset: int, prev: str | None) -> dict[str, Any]:
    """The fields that place a collected record in its chain of segments."""
    return {"chain": chain, "offset": offset, "line_offset": line_offset, "prev_segment": prev}


def collect_master(
    config: Config,
    master: MasterConfig,
    layout: Layout,
    known: set[CustodyKey],
    held: list[CustodyRecord] | None = None,
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
    except (OSError, NotImplementedError, ValueError) as exc:
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
    held = read_custody(layout) if held is None else held
    taker = _Taker(config, master, layout, source, held)
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
                taken = taker.take(entry)
            except (OSError, ValueError, EOFError) as exc:
                reason = f"unreadable: {getattr(exc, 'strerror', None) or exc}"
                skipped.append(Skipped(display_name(os.fsencode(entry.name)), reason))
                problems.append(_not_taken(config, master, entry, reason, unreadable=True))
                continue
            if not taken:
                unchanged += 1
            records += taken
    finally:
        source.close()
        written = 0
        if records or problems:
            # a concurrent collection of the same master may have recorded a file meanwhile
            sealed = append_custody(layout, records + problems, skip_if_known=_custody_key)
            written = len(collected(sealed))
    new = len(collected(records))
    return MasterResult(
        master.name,
        collected=written,
        unchanged=unchanged + new - written,
        skipped=tuple(skipped),
    )


class _Twin(Exception):
    def __init__(self, record: CollectedRecord) -> None:
        self.record = record


class _Taker:
    """Takes one master's files: segments of the active file, backup tails, gzip twins."""

    def __init__(
        self,
        config: Config,
        master: MasterConfig,
        layout: Layout,
        source: Source,
        held: list[CustodyRecord],
    ) -> None:
        self.config, self.master, self.layout, self.source = config, master, layout, source
        self.chains = chains_of(held, config.cluster, master.name)
        self.content = held_content(held)

    def take(self, entry: Entry) -> list[CustodyRecord]:
        """The custody records of one file taken (none when nothing new was appended)."""
        if is_active(entry.name):
            return self._active(entry)
        if entry.name.endswith(".gz"):
            return self._gzip(entry)
        active_name = _active_name_of(entry.name)
        chains = [c for c in self.chains if c.file == active_name]
        tail = link_backup(self.layout, self.source, entry, chains) if chains else None
        if tail is None:
            with self.source.open(entry) as fh:
                stored = store_stream(self.layout, fh, entry.size, False, expect_size=entry.size)
            rec = self._collected(entry, stored, False)
            self.content.setdefault(stored.sha256, rec)
            return [rec]
        chain = tail.chain
        rec = self._collected(
            entry,
            tail.stored,
            False,
            **_link(chain.id, chain.end, chain.lines, chain.segments[-1]["sha256"]),
            segments=[s["sha256"] for s in chain.segments],
            file_sha256=tail.file_sha256,
            file_size=entry.size,
        )
        chain.closed_by = rec
        self.content.setdefault(tail.file_sha256, rec)
        return [rec]

    def _collected(
        self, entry: Entry, stored: Stored, active: bool, **extra: Any
    ) -> CollectedRecord:
        return _record(self.config, self.master, entry, stored, active, **extra)

    def _active(self, entry: Entry) -> list[CustodyRecord]:
        chain = current_chain(self.chains, entry.name)
        at = now()
        new_id = new_chain_id(self.config.cluster, self.master.name, entry.name, at)
        seg = collect_active(self.layout, self.source, entry, chain, new_id)
        if seg is None:
            return []
        out: list[CustodyRecord] = []
        if seg.restart and chain is not None:
            chain.restarted = True
            restarted: ChainRestartedRecord = {
                "record_type": "chain_restarted",
                "cluster": self.config.cluster,
                "master": self.master.name,
                "source_uri": self.master.source,
                "file_name": entry.name,
                "chain": chain.id,
                "held_bytes": chain.end,
                "reason": seg.restart,
                "at": at,
            }
            out.append(named(restarted, entry.name))
        rec = self._collected(
            entry, seg.stored, True, **_link(seg.chain, seg.offset, seg.line_offset, seg.prev)
        )
        if seg.offset:
            assert chain is not None
            chain.segments.append(rec)
        else:
            self.chains.append(Chain(seg.chain, entry.name, entry.inode, [rec]))
        return [*out, rec]

    def _gzip(self, entry: Entry) -> list[CustodyRecord]:
        inflated = GunzipHash()
        transferred: list[str] = []

        def not_a_twin(sha: str) -> None:
            transferred.append(sha)
            content = inflated.hexdigest()
            if content is not None and content in self.content:
                raise _Twin(self.content[content])

        try:
            with self.source.open(entry) as fh:
                stored = store_stream(
                    self.layout,
                    fh,
                    entry.size,
                    False,
                    expect_size=entry.size,
                    observe=inflated.update,
                    before_link=not_a_twin,
                )
        except _Twin as twin:
            held = twin.record
            record: CompressedTwinRecord = {
                "record_type": "compressed_twin",
                "cluster": self.config.cluster,
                "master": self.master.name,
                "source_uri": self.master.source,
                "file_name": entry.name,
                "sha256": transferred[-1],
                "source_size": entry.size,
                "mtime_ns": entry.mtime_ns,
                "uncompressed_sha256": str(inflated.hexdigest()),
                "twin_file": held["file_name"],
                "twin_sha256": held["sha256"],
                "at": now(),
            }
            return [named(record, entry.name)]
        return [self._collected(entry, stored, False, uncompressed_sha256=inflated.hexdigest())]


def _active_name_of(backup: str) -> str | None:
    """``kubernetes-<TS>.audit`` -> ``kubernetes.audit`` (lumberjack's naming)."""
    m = BACKUP_RE.match(backup)
    return f"{m['prefix']}{m['ext'] or ''}" if m else None


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
    held = read_custody(layout)
    known = _known(held)
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(config.masters)))) as pool:
        return list(
            pool.map(lambda m: collect_master(config, m, layout, known, held), config.masters)
        )
