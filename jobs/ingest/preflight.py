"""Before Spark: which evidence files are pending, and the framing facts Spark cannot give.

Pending files are those custody records and no committed ingest run holds. Framing gives
what Spark's text source cannot: line counts and gzip damage.

Plain files are counted (newlines, plus a final line without one). Gzip files are
decompressed here, bounded, into a staging file that Spark then reads: a truncated or
corrupt stream keeps every complete line before the damage, and the damage itself becomes
one quarantined line (reason ``gzip_truncated``) so that nothing is silently lost.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jobs.evidence.custody import CollectedRecord, collected, read_custody
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


def count_lines(path: Path) -> tuple[int, int]:
    """(lines, bytes): newlines, plus one for a final line without a newline."""
    lines = size = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            lines += chunk.count(b"\n")
            size += len(chunk)
            last = chunk[-1:]
    return lines + (1 if last != b"\n" else 0), size


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
    limit = max_bytes if max_bytes is not None else decompression_bound(src.stat().st_size)
    damage: str | None = None
    written = 0
    line_end = 0  # offset just after the last newline written
    with open(src, "rb") as fin, open(dest, "w+b") as fout:
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
    """Count a file's lines; a gzip file is first salvaged into ``staging`` (see above)."""
    if not is_gzip(evidence):
        lines, size = count_lines(evidence)
        return Framed(sha256, evidence, lines, size, compressed=False)
    staging.mkdir(parents=True, exist_ok=True)
    plain = staging / sha256
    damage, tail = gunzip_salvage(evidence, plain, max_decompressed)
    lines, size = count_lines(plain)
    return Framed(sha256, plain, lines, size, compressed=True, damage=damage, damage_tail=tail)


def frame_pending(
    layout: Layout, pending: Sequence[CollectedRecord], staging: Path
) -> list[Framed]:
    """Frame every pending file; gzip files are decompressed into ``staging``.

    Raises:
        IngestError: custody names a file the store does not hold.
    """
    missing = [r["sha256"] for r in pending if not evidence_path(layout, r["sha256"]).is_file()]
    if missing:
        raise IngestError(
            f"evidence missing from the store: {', '.join(missing)} "
            "(custody names them; run `kaudit verify`)"
        )
    return [frame(r["sha256"], evidence_path(layout, r["sha256"]), staging) for r in pending]
