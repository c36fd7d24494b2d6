"""Deduplication over the staged keys: move the staged events that lose to ``duplicate``.

Ingest stages every candidate as an event first (the JSON is parsed once, in that write).
Most lines are unique, so ranking every row (a window over full rows, the old way) shuffled
the whole batch to move a handful. Here a narrow aggregation over 64-bit hashes of the
staged (cluster, dedup_key) pairs finds the hashes that repeat within the run or are already
in the lake (read only in the days the run's events fall on, one day either side); the same
aggregation over the pairs themselves, restricted to those hashes, finds the pairs that do
(a hash collision is dropped there). Only those keys are ranked, with the rule of
:func:`jobs.ingest.transforms.with_bucket` (the first copy in evidence order wins, a key
already in the lake always loses). The staged files that hold a losing row are rewritten
(their other rows unchanged, the losers as duplicates); no other file is touched, and a run
without duplicates rewrites nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow.parquet as pq
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructType

from jobs.frames import literal_frame, struct_type
from jobs.ingest.errors import IngestError
from jobs.ingest.preflight import Framed
from jobs.ingest.transforms import keep_for
from jobs.lake.events import known_keys
from jobs.lake.runs import PARTITIONS, PLAIN_ENCODED
from jobs.settings import Layout

DAY_MARGIN = dt.timedelta(days=1)
_FILE = "_file"
_ORDER_SCHEMA = struct_type(evidence_sha256=StringType(), file_order=IntegerType())


def staged_days(staged: Path) -> set[dt.date]:
    """UTC days of the staged events (their ``event_date`` folders)."""
    days = set()
    for folder in (staged / "bucket=event").glob("cluster=*/event_date=*"):
        value = folder.name.split("=", 1)[1]
        try:
            days.add(dt.date.fromisoformat(value))
        except ValueError:
            continue  # Spark's folder for a null date: no event has one
    return days


def lake_days(days: set[dt.date]) -> set[dt.date]:
    """The lake days whose keys a run's events can repeat: each day, and one either side."""
    return {d + k * DAY_MARGIN for d in days for k in (-1, 0, 1)}


def _staged_keys(spark: SparkSession, staged: Path, schema: StructType) -> DataFrame:
    return (
        spark.read.schema(schema)
        .option("basePath", str(staged))
        .parquet(str(staged / "bucket=event"))
        .select(
            "cluster",
            "dedup_key",
            "evidence_sha256",
            "line_no",
            F.col("_metadata.file_path").alias(_FILE),  # a constant per file: no per-row cost
        )
    )


_PAIR = ["cluster", "dedup_key"]
_HASH = "_h"


def _tagged(keys: DataFrame, known: DataFrame | None) -> DataFrame:
    """Staged keys (``_n`` 1) and the lake's (``_n`` 0, ``_known``), one row each."""
    tagged = keys.select(*_PAIR, F.lit(1).alias("_n"), F.lit(False).alias("_known"))
    if known is not None:
        tagged = tagged.unionByName(
            known.select(*_PAIR, F.lit(0).alias("_n"), F.lit(True).alias("_known"))
        )
    return tagged


def _repeated(tagged: DataFrame, by: Sequence[str | Column]) -> DataFrame:
    """Groups of ``by`` staged twice or more, or staged and already in the lake."""
    return (
        tagged.groupBy(*by)
        .agg(F.sum("_n").alias("_n"), F.max("_known").alias("_known"))
        .where((F.col("_n") > 1) | (F.col("_known") & (F.col("_n") > 0)))
    )


def suspect_keys(keys: DataFrame, known: DataFrame | None) -> DataFrame:
    """The (cluster, dedup_key, ``_known``) pairs staged twice or more, or already in the lake.

    ``keys``: the staged events' (cluster, dedup_key, ...); ``known``: (cluster, dedup_key)
    already in the lake, or None. One aggregation over the keys (and the lake's).
    """
    return _repeated(_tagged(keys, known), _PAIR).select(*_PAIR, "_known")


def suspect_hashes(keys: DataFrame, known: DataFrame | None) -> DataFrame:
    """The 64-bit hashes (``_h``) of :func:`suspect_keys`' pairs, and of colliding pairs.

    The same aggregation over an 8-byte hash of the pair instead of the pair's text (a
    dedup_key is ~45 bytes): a fifth of the shuffle. Every suspect pair's hash is among
    them (its group holds at least its own rows); a hash can also come from two different
    pairs that collide, which :func:`suspect_keys` over the pairs of these hashes drops.
    """
    tagged = _tagged(keys, known).withColumn(_HASH, F.xxhash64(*_PAIR))
    return _repeated(tagged, [_HASH]).select(_HASH)


def with_hash_in(df: DataFrame, hashes: DataFrame) -> DataFrame:
    """The rows of ``df`` (cluster, dedup_key, ...) whose pair hashes to one of ``hashes``."""
    return (
        df.withColumn(_HASH, F.xxhash64(*_PAIR)).join(hashes, on=_HASH, how="left_semi").drop(_HASH)
    )


def parquet_rows(folder: Path) -> int:
    """Rows in the Parquet files Spark wrote to ``folder``, from their footers (no job)."""
    return sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(folder.glob("*.parquet")))


def losing_rows(keys: DataFrame, suspects: DataFrame, order: DataFrame) -> DataFrame:
    """The staged rows (``_file``, evidence_sha256, line_no) whose key another copy holds.

    ``keys``: the staged events' (cluster, dedup_key, evidence_sha256, line_no, ``_file``);
    ``suspects``: :func:`suspect_keys`; ``order``: (evidence_sha256, file_order). Only the
    suspects' rows are ranked.
    """
    pair = _PAIR
    rank = Window.partitionBy(*pair).orderBy("file_order", "evidence_sha256", "line_no")
    ranked = (
        keys.join(suspects, on=pair)
        .join(F.broadcast(order), on="evidence_sha256")
        .withColumn("_rn", F.row_number().over(rank))
    )
    return ranked.where(F.col("_known") | (F.col("_rn") > 1)).select(
        _FILE, "evidence_sha256", "line_no"
    )


def _local(file_uri: str) -> Path:
    path = Path(unquote(urlparse(file_uri).path))
    if not path.is_file():
        raise IngestError(f"staged file {file_uri} not found: refusing to commit")
    return path


def move_duplicates(
    spark: SparkSession,
    layout: Layout,
    staged: Path,
    schema: StructType,
    framed: Sequence[Framed],
    clusters: Iterable[str],
) -> int:
    """Rank the staged events' repeated keys; rewrite the files holding losers. Returns files.

    ``schema``: the staged rows' schema (partition columns included), so that nothing is
    re-inferred from folder names.
    """
    if not (staged / "bucket=event").is_dir():
        return 0
    keys = _staged_keys(spark, staged, schema)
    order = literal_frame(spark, [(f.sha256, i) for i, f in enumerate(framed)], _ORDER_SCHEMA)
    known = known_keys(spark, layout, clusters, lake_days(staged_days(staged)))
    # written, then read: the suspects are usually none or few, and a join planned with
    # the aggregation sorted all the staged keys even when it found no suspect. First over
    # the pairs' hashes (narrow); the pairs themselves only for the hashes found.
    hashes_path = staged.parent / "suspect_hashes"
    suspect_hashes(keys, known).write.mode("overwrite").parquet(str(hashes_path))
    if parquet_rows(hashes_path) == 0:
        return 0
    hashes = spark.read.parquet(str(hashes_path))
    keys = with_hash_in(keys, hashes)
    known = with_hash_in(known, hashes) if known is not None else None
    suspects_path = staged.parent / "suspects"
    suspect_keys(keys, known).write.mode("overwrite").parquet(str(suspects_path))
    if parquet_rows(suspects_path) == 0:
        return 0
    suspects = spark.read.parquet(str(suspects_path))
    losers_path = staged.parent / "losers"
    # read twice (which files, then which rows): written once, narrow
    losing_rows(keys, suspects, order).write.mode("overwrite").parquet(str(losers_path))
    losers = spark.read.parquet(str(losers_path))
    files = sorted(r[0] for r in losers.select(_FILE).distinct().collect())
    if not files:
        return 0
    local = [_local(f) for f in files]
    lost = losers.select("evidence_sha256", "line_no", F.lit(True).alias("_lost"))
    affected = (
        spark.read.schema(schema)
        .option("basePath", str(staged))
        .parquet(*[str(p) for p in local])
        .join(lost, on=["evidence_sha256", "line_no"], how="left")
    )
    rebucketed = affected.withColumn(
        "bucket", F.when(F.col("_lost"), F.lit("duplicate")).otherwise(F.col("bucket"))
    ).drop("_lost")
    out = rebucketed.select(*keep_for(rebucketed, F.col("bucket") == "event"))
    out.select(*schema.fieldNames()).write.mode("append").options(**PLAIN_ENCODED).partitionBy(
        *PARTITIONS
    ).parquet(str(staged))
    for path in local:
        path.unlink()
    return len(local)
