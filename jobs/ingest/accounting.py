"""The line accounting that gates the commit: staged buckets per file == framed lines.

Every physical line (plus one per damaged gzip stream) must land in exactly one bucket,
and the highest line number must equal the line count (plus, for a segment, the lines of
the file before it); otherwise nothing is committed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
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
    """Per evidence file (SHA-256): the staged rows of each bucket and the event time span.

    From the staged files' Parquet footers when they can say (:func:`footer_counts`), else
    with a Spark aggregation over the staged rows; both give the same counts.
    """
    counts = footer_counts(staged)
    return counts if counts is not None else spark_counts(spark, staged)


_FOOTER_COLUMNS = ("evidence_sha256", "line_no", "request_received_ts")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _iso_utc(micros: int) -> str:
    """Microseconds since the epoch as Spark's ``date_format(ts, _ISO_UTC)`` writes them."""
    t = _EPOCH + dt.timedelta(microseconds=micros)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond:06d}Z"
    )


def footer_counts(staged: Path) -> dict[str, Counts] | None:
    """:func:`spark_counts` read from the footers of the staged Parquet files (no Spark job).

    Each staging task writes the rows of one evidence file, so a row group's statistics
    name its evidence file (min == max), its highest line number and its event time span;
    its row count is exact. None (count with Spark) when any row group cannot say: rows of
    two evidence files (a file rewritten by deduplication), or a statistic missing or null.
    """
    out: dict[str, Counts] = {}
    for path in sorted(staged.glob("bucket=*/**/*.parquet")):
        if path.name.startswith((".", "_")):  # Spark's reader skips them too
            continue
        bucket = path.relative_to(staged).parts[0].split("=", 1)[1]
        if bucket not in ("event", "duplicate", "quarantined", "blank"):
            return None
        meta = pq.ParquetFile(path).metadata
        names = [meta.schema.column(i).name for i in range(meta.num_columns)]
        if any(c not in names for c in _FOOTER_COLUMNS):
            return None
        sha_i, line_i, ts_i = (names.index(c) for c in _FOOTER_COLUMNS)
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            if group.num_rows == 0:
                continue
            sha, line = group.column(sha_i).statistics, group.column(line_i).statistics
            if not _whole(sha, group.num_rows) or not _whole(line, group.num_rows):
                return None
            if sha.min != sha.max:
                return None
            c = out.setdefault(sha.min, Counts())
            setattr(c, bucket, getattr(c, bucket) + group.num_rows)
            c.max_line = max(c.max_line, line.max)
            if bucket == "event":
                ts = group.column(ts_i).statistics
                if not _whole(ts, group.num_rows) or not str(ts.logical_type).startswith(
                    "Timestamp(isAdjustedToUTC=true, timeUnit=microseconds"
                ):
                    return None
                try:
                    first, last = _iso_utc(ts.min_raw), _iso_utc(ts.max_raw)
                except OverflowError:  # past year 9999: Python cannot, Spark can
                    return None
                c.first_event = min(first, c.first_event or first)
                c.last_event = max(last, c.last_event or last)
    return out


def _whole(stats: Any, rows: int) -> bool:
    """The statistics have a min and max, and the column no null, in a group of ``rows``."""
    return (
        stats is not None and stats.has_min_max and stats.has_null_count and stats.null_count == 0
    ) and rows > 0


def spark_counts(spark: SparkSession, staged: Path) -> dict[str, Counts]:
    """Per evidence file: the staged rows of each bucket and the event time span (Spark)."""
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
