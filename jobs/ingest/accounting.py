"""The line accounting that gates the commit: staged buckets per file == framed lines.

Every physical line (plus one per damaged gzip stream) must land in exactly one bucket,
and the highest line number must equal the line count (plus, for a segment, the lines of
the file before it); otherwise nothing is committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.evidence.custody import CollectedRecord
from jobs.ingest.errors import IngestError
from jobs.ingest.lines import line_offset
from jobs.ingest.preflight import Framed
from jobs.lake.ledger import LedgerEntry

_ISO_UTC = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"


@dataclass
class Counts:
    """Rows per bucket of one evidence file in the staged data."""

    event: int = 0
    duplicate: int = 0
    quarantined: int = 0
    blank: int = 0
    max_line: int = 0
    first_event: str | None = None
    last_event: str | None = None

    @property
    def total(self) -> int:
        """Rows in all buckets."""
        return self.event + self.duplicate + self.quarantined + self.blank


def staged_counts(spark: SparkSession, staged: Path) -> dict[str, Counts]:
    """Per evidence file (SHA-256): the staged rows of each bucket and the event time span."""
    rows = (
        spark.read.parquet(str(staged))
        .groupBy("evidence_sha256", "bucket")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.max("line_no").alias("max_line"),
            # formatted by Spark in the session zone (UTC): collect() would convert
            # timestamps to the driver's local zone
            F.date_format(F.min("request_received_ts"), _ISO_UTC).alias("first"),
            F.date_format(F.max("request_received_ts"), _ISO_UTC).alias("last"),
        )
        .collect()
    )
    out: dict[str, Counts] = {}
    for r in rows:
        c = out.setdefault(r["evidence_sha256"], Counts())
        setattr(c, r["bucket"], getattr(c, r["bucket"]) + r["n"])
        c.max_line = max(c.max_line, r["max_line"] or 0)
        if r["bucket"] == "event" and r["first"] is not None:
            c.first_event, c.last_event = r["first"], r["last"]
    return out


def ledger_entries(
    run_id: str,
    framed: Sequence[Framed],
    meta: Mapping[str, CollectedRecord],
    counts: Mapping[str, Counts],
) -> list[LedgerEntry]:
    """One ledger entry per framed file.

    Raises:
        IngestError: a file's buckets do not add up to its framed lines.
    """
    entries = []
    for f in framed:
        c = counts.get(f.sha256, Counts())
        lines = f.lines + (1 if f.damage else 0)
        offset = line_offset(meta, f)
        if c.total != lines or (lines and c.max_line != offset + lines):
            raise IngestError(
                f"evidence {f.sha256}: {lines} lines framed but buckets add up to {c.total} "
                f"(max line number {c.max_line}): refusing to commit"
            )
        m = meta[f.sha256]
        entries.append(
            LedgerEntry(
                evidence_sha256=f.sha256,
                cluster=m["cluster"],
                master=m["master"],
                file=m["file_name"],
                compressed=f.compressed,
                damage=f.damage,
                first_event=c.first_event,
                last_event=c.last_event,
                lines=lines,
                events=c.event,
                duplicates=c.duplicate,
                quarantined=c.quarantined,
                blank=c.blank,
                run_id=run_id,
                file_b64=m.get("file_name_b64"),
                line_offset=offset,
            )
        )
    return entries
