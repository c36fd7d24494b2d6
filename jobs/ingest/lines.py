"""Framed evidence files -> one classified Spark row per physical line (plus gzip damage).

Line numbers come from the row index within a partition, so the text scan must put each
file, unsplit, in a partition of its own (:func:`one_file_per_partition`); the ledger check
(Spark's per-file counts == framed line counts) verifies it on every run. A segment of a
file collected incrementally (:mod:`jobs.evidence.segments`) is parsed once, on its own; its
line numbers continue the file's (its custody record's ``line_offset`` is added), so a lake
row is (evidence_sha256 of the segment, line number in the FILE).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, BooleanType, IntegerType, LongType, StringType

from jobs.evidence.custody import CollectedRecord
from jobs.frames import literal_frame, struct_type
from jobs.ingest.preflight import Framed
from jobs.ingest.transforms import GZIP_TRUNCATED, OUTPUT_COLUMNS, classify_unranked

_LOW_33_BITS = (1 << 33) - 1
_S, _L = StringType(), LongType()
_FILES_SCHEMA = struct_type(
    evidence_sha256=_S, cluster=_S, master=_S, file_order=IntegerType(), line_offset=_L,
    check_bytes=BooleanType(), check_joined=BooleanType(),
)  # fmt: skip
_DAMAGE_SCHEMA = struct_type(
    evidence_sha256=_S, line_no=_L, reason=_S, detail=_S, raw=BinaryType(), raw_length=_L,
    master=_S, cluster=_S, bucket=_S,
)  # fmt: skip


def _lines_df(
    spark: SparkSession, framed: Sequence[Framed], meta: Mapping[str, CollectedRecord]
) -> DataFrame:
    files = literal_frame(
        spark,
        [
            (
                f.sha256,
                meta[f.sha256]["cluster"],
                meta[f.sha256]["master"],
                i,
                line_offset(meta, f),
                f.odd_bytes,
                f.joined_objects,
            )
            for i, f in enumerate(framed)
        ],
        _FILES_SCHEMA,
    )
    raw = (
        spark.read.option("lineSep", "\n")
        .text([str(f.read_path) for f in framed])
        .select(
            "value",
            F.element_at(F.split(F.col("_metadata.file_path"), "/"), -1).alias("evidence_sha256"),
            ((F.monotonically_increasing_id().bitwiseAND(F.lit(_LOW_33_BITS))) + 1).alias(
                "line_no"
            ),
        )
    )
    joined = raw.join(F.broadcast(files), on="evidence_sha256", how="inner")
    # a segment's lines are numbered as in the file it is part of
    return joined.withColumn("line_no", F.col("line_no") + F.col("line_offset")).drop("line_offset")


def line_offset(meta: Mapping[str, CollectedRecord], framed: Framed) -> int:
    """Lines of the file before this evidence file (a segment); 0 for a whole file."""
    return meta[framed.sha256].get("line_offset", 0) if not framed.compressed else 0


def _damage_rows(
    spark: SparkSession, framed: Sequence[Framed], meta: Mapping[str, CollectedRecord]
) -> DataFrame | None:
    """One quarantined row per damaged gzip file, numbered after its last complete line."""
    rows = [
        (
            f.sha256,
            line_offset(meta, f) + f.lines + 1,
            GZIP_TRUNCATED,
            f.damage,
            f.damage_tail[: 1 << 20],
            len(f.damage_tail),
            meta[f.sha256]["master"],
            meta[f.sha256]["cluster"],
            "quarantined",
        )
        for f in framed
        if f.damage
    ]
    return literal_frame(spark, rows, _DAMAGE_SCHEMA) if rows else None


@contextlib.contextmanager
def one_file_per_partition(spark: SparkSession, framed: Sequence[Framed]) -> Iterator[None]:
    """Make the text scan put each file, unsplit, in a partition of its own.

    Spark reads lazily: whatever runs the scan (the staged write) must run inside.
    """
    largest = max([f.size for f in framed if f.size > 0], default=0)
    keys = {
        "spark.sql.files.maxPartitionBytes": str(largest + 1),
        "spark.sql.files.openCostInBytes": str(largest + 1),
    }
    old = {k: spark.conf.get(k, None) for k in keys}
    for k, v in keys.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, previous in old.items():
            if previous is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, previous)


def classified_rows(
    spark: SparkSession,
    framed: Sequence[Framed],
    meta: Mapping[str, CollectedRecord],
    max_line_bytes: int,
) -> DataFrame | None:
    """Every line of the framed files, classified; every candidate staged as an event.

    Duplicates are moved out after staging, over the staged keys (:mod:`jobs.ingest.dedup`).

    Returns:
        Rows with :data:`OUTPUT_COLUMNS`, or None when the files hold no line at all.
    """
    parts: list[DataFrame] = []
    readable = [f for f in framed if f.size > 0]
    if readable:
        rows = classify_unranked(_lines_df(spark, readable, meta), max_line_bytes)
        candidate = F.col("bucket") == "candidate"
        parts.append(
            rows.withColumn(
                "bucket", F.when(candidate, F.lit("event")).otherwise(F.col("bucket"))
            ).select(*OUTPUT_COLUMNS)
        )
    damage = _damage_rows(spark, framed, meta)
    if damage is not None:
        parts.append(damage)
    if not parts:
        return None
    out = parts[0]
    for extra in parts[1:]:
        out = out.unionByName(extra, allowMissingColumns=True)
    return out
