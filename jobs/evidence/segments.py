"""The active file, collected incrementally: a chain of segments, closed by its rotated backup.

Each collection of the active file stores only the bytes appended since the last one (up to
the last complete line) as a *segment*: its own evidence file and custody record naming the
file, the byte range (``offset``, ``size``), the lines before it (``line_offset``, so ingest
numbers lines as in the file) and the previous segment. The segments of one file form a
*chain*.

Before extending a chain, the held prefix must still be the file's: same inode (when the
source has inodes: sftp has none), size >= the bytes held, and the same bytes in a head
window (4 KiB) and a tail window (64 KiB) ending at the held offset. Windows, not a hash of
the whole prefix: re-reading up to 100 MB over SFTP every hour is the cost incremental
collection removes, and lumberjack only ever appends to the active file or renames it away
(a new inode, a smaller size, other first bytes); a truncated and regrown file differs in its
windows. A mismatch starts a new chain and is recorded (``chain_restarted``).

When the file rotates, its backup is read whole once: its first bytes are compared with the
held segments and hashed, and only the tail (what was appended after the last segment) is
stored. The tail's record carries the backup's SHA-256 and size and the list of segments, so
custody proves: backup bytes == segments concatenated + tail (``kaudit verify`` re-checks
it). Nothing is stored or ingested twice.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from jobs.evidence.custody import CollectedRecord, CustodyRecord, collected
from jobs.evidence.names import os_name
from jobs.evidence.sources import Entry, Source
from jobs.evidence.store import CHUNK, Stored, TransferError, evidence_path, store_stream
from jobs.settings import Layout

HEAD_WINDOW = 4096
TAIL_WINDOW = 1 << 16
READ_ATTEMPTS = 3
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass
class Chain:
    """The segments held of one active file, in order."""

    id: str
    file: str  # the active file's name as os lists it
    inode: int
    segments: list[CollectedRecord] = field(default_factory=list)
    restarted: bool = False
    closed_by: CollectedRecord | None = None  # the backup tail that proved the chain

    @property
    def end(self) -> int:
        """Bytes of the file held."""
        last = self.segments[-1] if self.segments else None
        return last.get("offset", 0) + last["size"] if last else 0

    @property
    def lines(self) -> int:
        """Lines of the file held."""
        last = self.segments[-1] if self.segments else None
        return last.get("line_offset", 0) + last.get("lines", 0) if last else 0

    @property
    def extendable(self) -> bool:
        """Neither restarted nor closed by its backup."""
        return not self.restarted and self.closed_by is None and bool(self.segments)


def chains_of(records: Sequence[CustodyRecord], cluster: str, master: str) -> list[Chain]:
    """The chains of one master, in the order they started."""
    by_id: dict[str, Chain] = {}
    for r in records:
        if r["cluster"] != cluster or r["master"] != master:
            continue
        if r["record_type"] == "collected" and "chain" in r:
            chain = by_id.setdefault(r["chain"], Chain(r["chain"], os_name(r), r.get("inode", 0)))
            if "file_sha256" in r:
                chain.closed_by = r
            else:
                chain.segments.append(r)
        elif r["record_type"] == "chain_restarted" and r["chain"] in by_id:
            by_id[r["chain"]].restarted = True
    return list(by_id.values())


def current_chain(chains: Sequence[Chain], name: str) -> Chain | None:
    """The chain an active file's next segment extends, if any."""
    for chain in reversed(chains):
        if chain.file == name:
            return chain if chain.extendable else None
    return None


def new_chain_id(cluster: str, master: str, name: str, at: str) -> str:
    """A chain id: stable for the collection that starts it."""
    key = b"\0".join([cluster.encode(), master.encode(), os.fsencode(name), at.encode()])
    return hashlib.sha256(key).hexdigest()[:16]


def held_bytes(layout: Layout, chain: Chain, start: int, end: int) -> bytes:
    """Bytes [start, end) of the file, as the chain's segments hold them."""
    out = bytearray()
    for seg in chain.segments:
        lo = seg.get("offset", 0)
        hi = lo + seg["size"]
        if hi <= start or lo >= end:
            continue
        with open(evidence_path(layout, seg["sha256"]), "rb") as fh:
            fh.seek(max(start, lo) - lo)
            out += fh.read(min(end, hi) - max(start, lo))
    return bytes(out)


def _read_at(fh: BinaryIO, offset: int, size: int) -> bytes:
    fh.seek(offset)
    out = bytearray()
    while len(out) < size:
        chunk = fh.read(min(CHUNK, size - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def prefix_mismatch(layout: Layout, chain: Chain, fh: BinaryIO, entry: Entry) -> str | None:
    """Why the file no longer starts with the chain's bytes, or None when it does."""
    end = chain.end
    if chain.inode and entry.inode and chain.inode != entry.inode:
        return f"replaced (inode {entry.inode}, the chain's was {chain.inode})"
    if entry.size < end:
        return f"shrank to {entry.size} bytes, {end} held"
    for lo, hi in ((0, min(HEAD_WINDOW, end)), (max(0, end - TAIL_WINDOW), end)):
        if _read_at(fh, lo, hi - lo) != held_bytes(layout, chain, lo, hi):
            return f"bytes {lo}-{hi} differ from those held (truncated and rewritten?)"
    return None


class _Changed(Exception):
    """The file changed under the read; the read is retried."""


class _NothingNew(Exception):
    """No complete line was appended."""


@dataclass(frozen=True)
class Segment:
    """A segment just stored, and where it sits in its chain."""

    stored: Stored
    chain: str
    offset: int
    line_offset: int
    prev: str | None
    restart: str | None  # why the previous chain could not be extended


def collect_active(
    layout: Layout, source: Source, entry: Entry, chain: Chain | None, new_id: str
) -> Segment | None:
    """Store what was appended to the active file since ``chain``; None when nothing was.

    A read during which the file shrank or was replaced (rotation during the copy) is
    discarded and retried on the file now under the name.

    Raises:
        OSError: the file vanished, or kept changing for every attempt.
        ValueError: the source refused to open it (replaced, no longer regular).
    """
    for _ in range(READ_ATTEMPTS):
        fh = source.open(entry)
        current = entry
        with fh:
            restart = prefix_mismatch(layout, chain, fh, entry) if chain else None
            start = chain.end if chain and restart is None else 0

            def unchanged(sha: str, current: Entry = current, start: int = start) -> None:
                now = source.stat(current.name)
                if now is None or now.size < current.size or now.inode != current.inode:
                    raise _Changed
                if start and sha == EMPTY_SHA256:
                    raise _NothingNew

            fh.seek(start)
            try:
                stored = _store_rest(layout, fh, entry, start, True, before_link=unchanged)
            except _NothingNew:
                return None
            except (_Changed, TransferError):
                again = source.stat(entry.name)
                if again is None or not again.regular:
                    raise OSError("the active file vanished while it was read") from None
                entry = again
                continue
        if start:
            assert chain is not None
            last = chain.segments[-1]["sha256"]
            return Segment(stored, chain.id, start, chain.lines, last, None)
        return Segment(stored, new_id, 0, 0, None, restart)
    raise OSError(f"the active file kept changing while read ({READ_ATTEMPTS} attempts)")


@dataclass(frozen=True)
class BackupTail:
    """A backup whose head the chain held: only its tail was stored."""

    stored: Stored
    chain: Chain
    file_sha256: str


def link_backup(
    layout: Layout, source: Source, entry: Entry, chains: Sequence[Chain]
) -> BackupTail | None:
    """Store only the tail of a plain backup whose head a chain holds; None when none does.

    The whole backup is read once: its head is compared byte for byte with the chain's
    segments and hashed with the tail, so the record proves the concatenation.
    """
    for chain in reversed(chains):
        end = chain.end
        if chain.closed_by is not None or not chain.segments or entry.size < end:
            continue
        if chain.inode and entry.inode and chain.inode != entry.inode:
            continue
        with source.open(entry) as fh:
            n = min(HEAD_WINDOW, end)
            if _read_at(fh, 0, n) != held_bytes(layout, chain, 0, n):
                continue
            fh.seek(0)
            whole = hashlib.sha256()
            if not _same_prefix(layout, chain, fh, whole):
                continue
            stored = _store_rest(layout, fh, entry, end, False, observe=whole.update)
        return BackupTail(stored, chain, whole.hexdigest())
    return None


def _store_rest(
    layout: Layout,
    fh: BinaryIO,
    entry: Entry,
    start: int,
    complete_lines_only: bool,
    observe: Callable[[bytes], None] | None = None,
    before_link: Callable[[str], None] | None = None,
) -> Stored:
    """Store ``entry`` from ``start`` to its listed size; fewer bytes is a failed transfer."""
    rest = entry.size - start
    return store_stream(
        layout,
        fh,
        limit=rest,
        complete_lines_only=complete_lines_only,
        expect_size=rest,
        observe=observe,
        before_link=before_link,
    )


def _same_prefix(layout: Layout, chain: Chain, fh: BinaryIO, whole: hashlib._Hash) -> bool:
    for seg in chain.segments:
        with open(evidence_path(layout, seg["sha256"]), "rb") as held:
            while block := held.read(CHUNK):
                got = _read_at(fh, fh.tell(), len(block))
                if got != block:
                    return False
                whole.update(got)
    return True


def concatenation_problem(layout: Layout, record: CollectedRecord) -> str | None:
    """Why a backup tail's record does not prove its backup (segments + tail), or None."""
    whole = hashlib.sha256()
    for sha in [*record.get("segments", []), record["sha256"]]:
        path = evidence_path(layout, sha)
        if not path.is_file():
            return f"segment {sha} missing"
        with open(path, "rb") as fh:
            while block := fh.read(CHUNK):
                whole.update(block)
    if whole.hexdigest() != record.get("file_sha256"):
        return "segments + tail do not hash to the backup's recorded SHA-256"
    return None


class GunzipHash:
    """The SHA-256 of a gzip stream's content, fed chunk by chunk (members concatenated)."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        self._digest = hashlib.sha256()
        self._broken = False
        self._in_member = False  # bytes fed to a member that has not ended

    def update(self, data: bytes) -> None:
        """Feed compressed bytes."""
        while data and not self._broken:
            self._in_member = True
            try:
                self._digest.update(self._d.decompress(data))
            except zlib.error:
                self._broken = True
                return
            if not self._d.eof:
                return
            self._in_member = False
            data = self._d.unused_data
            self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def hexdigest(self) -> str | None:
        """The content hash; None for a damaged or unfinished stream (a partial .gz)."""
        return None if self._broken or self._in_member else self._digest.hexdigest()


def held_content(records: Sequence[CustodyRecord]) -> dict[str, CollectedRecord]:
    """Whole-file content hashes custody holds uncompressed -> the record holding them."""
    out: dict[str, CollectedRecord] = {}
    for r in collected(records):
        if "file_sha256" in r:
            out.setdefault(r["file_sha256"], r)
        elif not r["active"] and "chain" not in r and not r["file_name"].endswith(".gz"):
            out.setdefault(r["sha256"], r)
    return out
