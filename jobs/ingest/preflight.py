"""Before Spark: which evidence files are pending, and the framing facts Spark cannot give.

Pending files are those custody records and no committed ingest run holds. Framing gives
what Spark's text source cannot: line counts and gzip damage. It also re-hashes every file in
the same read: a file whose bytes no longer hash to its name (and custody record) is refused,
not framed.

Plain files are counted (newlines, plus a final line without one). Gzip files are
decompressed here, bounded, into a staging file that Spark then reads: a truncated or
corrupt stream keeps every complete line before the damage, and the damage itself becomes
one quarantined line (reason ``gzip_truncated``) so that nothing is silently lost.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from jobs.evidence.custody import (
    CollectedRecord,
    EvidenceAlteredRecord,
    append_custody,
    collected,
    named,
    now,
    read_custody,
)
from jobs.evidence.names import os_name
from jobs.evidence.store import evidence_path
from jobs.ingest.errors import IngestError
from jobs.lake.ledger import ingested_evidence
from jobs.settings import Layout

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_DECOMPRESSED = 64 << 30  # 64 GiB per file: decompression is bounded
TAIL_KEEP = 1 << 20  # bytes of a damaged partial line kept in quarantine


def pending_files(layout: Layout) -> list[CollectedRecord]:
    """Evidence files with a custody record and no ledger entry, oldest first.

    Order: by master's rotation time (backups by the UTC time in their name, the active
    file's snapshots by collection time), so the first copy of a duplicated event wins.
    """
    done = ingested_evidence(layout)
    first: dict[str, CollectedRecord] = {}
    for rec in collected(read_custody(layout)):
        if rec["sha256"] not in done:
            first.setdefault(rec["sha256"], rec)
    return sorted(first.values(), key=lambda r: (r["rotated_at"] or r["collected_at"], r["sha256"]))


@dataclass(frozen=True)
class Framed:
    """One evidence file, framed for Spark."""

    sha256: str
    read_path: Path  # what Spark reads (the evidence file, or its decompressed copy)
    lines: int  # physical lines Spark will see in read_path
    size: int  # bytes Spark will see
    compressed: bool
    damage: str | None = None  # gzip problem, if any
    damage_tail: bytes = b""  # the partial line at the point of damage
    actual_sha256: str = ""  # the evidence file's bytes as framed; "" when not hashed
    # what the per-line checks can skip (see :class:`Scan`); True (check) when not scanned
    odd_bytes: bool = True  # a NUL byte or bytes that are not UTF-8 somewhere in the file
    joined_objects: bool = True  # `}{` or `} {` somewhere in the file


@dataclass(frozen=True)
class Refused:
    """An evidence file whose bytes no longer hash to its name and custody record."""

    path: Path
    expected_sha256: str
    actual_sha256: str
    record: CollectedRecord

    def __str__(self) -> str:
        return (
            f"evidence file {self.path} altered: expected sha256 {self.expected_sha256}, "
            f"found {self.actual_sha256}; not ingested"
        )


@dataclass(frozen=True)
class Preflight:
    """The pending files framed for Spark, and those refused."""

    framed: list[Framed]
    refused: list[Refused]


class _Hashing:
    """A binary file whose bytes are hashed as they are read: one read gives both."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._digest = hashlib.sha256()

    def read(self, size: int, /) -> bytes:
        data = self._fh.read(size)
        self._digest.update(data)
        return data

    def hexdigest(self) -> str:
        """The hash of the whole file (what was not read yet is read now)."""
        while self.read(CHUNK):
            pass
        return self._digest.hexdigest()


_JOINED = re.compile(rb"\} ?\{")


@dataclass
class Scan:
    """Facts of a whole file that let Spark skip per-line checks.

    A line is a run of the file's bytes between newlines, and no pattern below contains a
    newline (nor can a newline be part of a UTF-8 sequence): a file without NUL bytes and
    wholly valid UTF-8 has no line with a NUL or invalid UTF-8, and a file without `}{` or
    `} {` has no line showing them. Only the files where a fact fails pay for the per-line
    check (in :mod:`jobs.ingest.transforms`); the checks and their reasons stay the same.
    """

    lines: int = 0
    size: int = 0
    odd_bytes: bool = False
    joined_objects: bool = False
    _tail: bytes = b""  # the last two bytes read so far
    _utf8: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")()
    )

    def feed(self, chunk: bytes) -> None:
        """Account for the next chunk of the file."""
        self.lines += chunk.count(b"\n")
        self.size += len(chunk)
        if not self.odd_bytes:
            if b"\x00" in chunk:
                self.odd_bytes = True
            elif chunk.isascii() and not self._utf8.getstate()[0]:
                pass  # ASCII is UTF-8 (and no sequence is pending): no decoded copy needed
            else:
                try:
                    self._utf8.decode(chunk)
                except UnicodeDecodeError:
                    self.odd_bytes = True
        if not self.joined_objects:
            # a pattern may straddle the seam with the bytes before (the last two of them)
            seam = self._tail + chunk[:2]
            self.joined_objects = bool(_JOINED.search(seam) or _JOINED.search(chunk))
        self._tail = (self._tail + chunk[-2:])[-2:]

    def close(self) -> None:
        """End of file: a multi-byte sequence cut short is not UTF-8."""
        if not self.odd_bytes:
            try:
                self._utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                self.odd_bytes = True

    @property
    def physical_lines(self) -> int:
        """Newlines, plus one for a final line without a newline."""
        return self.lines + (1 if self._tail[-1:] not in (b"\n", b"") else 0)


def scan(fh: BinaryIO | _Hashing) -> Scan:
    """Read ``fh`` to its end: line count, size and the facts of :class:`Scan`."""
    out = Scan()
    while chunk := fh.read(CHUNK):
        out.feed(chunk)
    out.close()
    return out


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def decompression_bound(compressed_size: int) -> int:
    """The decompressed bytes allowed for a gzip file of ``compressed_size`` bytes.

    At most 100x the compressed size (audit JSON gzips about 6-15x), at least 1 GiB,
    never more than 64 GiB.
    """
    return min(DEFAULT_MAX_DECOMPRESSED, max(1 << 30, 100 * compressed_size))


def gunzip_salvage(src: Path, dest: Path, max_bytes: int | None = None) -> tuple[str | None, bytes]:
    """Decompress every gzip member of src into dest, streaming, up to the last complete line.

    Returns (damage, tail): damage describes a truncated or corrupt stream, or an exceeded
    bound; tail is the start (at most TAIL_KEEP bytes) of the partial line cut at that point
    (it goes to quarantine). Memory stays at a few chunks whatever the data: output is
    written through and only the offset of the last newline is remembered.
    """
    with open(src, "rb") as fin:
        return _salvage(fin, dest, max_bytes, src.stat().st_size)


def _salvage(
    fin: BinaryIO | _Hashing, dest: Path, max_bytes: int | None, compressed_size: int
) -> tuple[str | None, bytes]:
    limit = max_bytes if max_bytes is not None else decompression_bound(compressed_size)
    damage: str | None = None
    written = 0
    line_end = 0  # offset just after the last newline written
    with open(dest, "w+b") as fout:
        d = zlib.decompressobj(zlib.MAX_WBITS | 16)
        started = False  # bytes fed to the current member
        data = b""
        while True:
            if not data:
                data = fin.read(CHUNK)
                if not data:
                    break
            started = True
            try:
                out = d.decompress(data, CHUNK)
            except zlib.error as exc:
                damage = f"corrupt gzip stream: {exc}"
                break
            data = d.unconsumed_tail
            fout.write(out)
            nl = out.rfind(b"\n")
            if nl >= 0:
                line_end = written + nl + 1
            written += len(out)
            if written > limit:
                damage = f"decompressed size over the bound of {limit} bytes"
                break
            if d.eof:  # end of one member; another may follow (concatenated gzip)
                data = d.unused_data + data
                d = zlib.decompressobj(zlib.MAX_WBITS | 16)
                started = False
                if data and not data.startswith(GZIP_MAGIC[:1]):
                    if data.strip(b"\x00") or fin.read(CHUNK).strip(b"\x00"):
                        damage = "trailing garbage after the gzip stream"
                    break
        if damage is None and started and not d.eof:
            damage = "gzip stream truncated (unexpected end of input)"
        tail = b""
        if damage is not None and written > line_end:
            fout.seek(line_end)
            tail = fout.read(TAIL_KEEP)
            fout.truncate(line_end)
    return damage, tail


def frame(
    sha256: str, evidence: Path, staging: Path, max_decompressed: int | None = None
) -> Framed:
    """Count a file's lines and hash it in one read; a gzip file is salvaged into ``staging``."""
    compressed = is_gzip(evidence)
    with open(evidence, "rb") as raw:
        fh = _Hashing(raw)
        if not compressed:
            facts = scan(fh)
            return Framed(
                sha256, evidence, facts.physical_lines, facts.size, False,
                actual_sha256=fh.hexdigest(), odd_bytes=facts.odd_bytes,
                joined_objects=facts.joined_objects,
            )  # fmt: skip
        staging.mkdir(parents=True, exist_ok=True)
        plain = staging / sha256
        damage, tail = _salvage(fh, plain, max_decompressed, evidence.stat().st_size)
        actual = fh.hexdigest()  # past a damaged stream: the rest is read and hashed too
    with open(plain, "rb") as decompressed:
        facts = scan(decompressed)
    return Framed(
        sha256, plain, facts.physical_lines, facts.size, True, damage=damage, damage_tail=tail,
        actual_sha256=actual, odd_bytes=facts.odd_bytes, joined_objects=facts.joined_objects,
    )  # fmt: skip


def frame_pending(layout: Layout, pending: Sequence[CollectedRecord], staging: Path) -> Preflight:
    """Frame every pending file (gzip files are decompressed into ``staging``); refuse altered ones.

    Raises:
        IngestError: custody names a file the store does not hold.
    """
    missing = [r["sha256"] for r in pending if not evidence_path(layout, r["sha256"]).is_file()]
    if missing:
        raise IngestError(
            f"evidence missing from the store: {', '.join(missing)} "
            "(custody names them; run `kaudit verify`)"
        )
    out = Preflight([], [])
    for rec in pending:
        path = evidence_path(layout, rec["sha256"])
        framed = frame(rec["sha256"], path, staging)
        if framed.actual_sha256 == rec["sha256"]:
            out.framed.append(framed)
        else:
            out.refused.append(Refused(path, rec["sha256"], framed.actual_sha256, rec))
            if framed.compressed:
                framed.read_path.unlink(missing_ok=True)
    return out


def record_refusals(layout: Layout, refused: Sequence[Refused]) -> None:
    """Record each refused file in custody ("evidence_altered"), once per alteration seen.

    A refused file stays pending, so every later ingest refuses it again; the same
    (path, found hash) is not recorded twice.
    """
    seen = {
        (r.get("path"), r.get("actual_sha256"))
        for r in read_custody(layout)
        if r["record_type"] == "evidence_altered"
    }
    records = []
    for r in refused:
        if (str(r.path), r.actual_sha256) in seen:
            continue
        rec: EvidenceAlteredRecord = {
            "record_type": "evidence_altered",
            "cluster": r.record["cluster"],
            "master": r.record["master"],
            "source_uri": r.record["source_uri"],
            "file_name": os_name(r.record),
            "path": str(r.path),
            "expected_sha256": r.expected_sha256,
            "actual_sha256": r.actual_sha256,
            "at": now(),
        }
        records.append(named(rec, os_name(r.record)))
    if records:
        append_custody(layout, records)
