"""Deduplication over the staged keys: move the staged events that lose to ``duplicate``.

Ingest stages every candidate as an event first (the JSON is parsed once, in that write).
Most lines are unique, so ranking every row (a window over full rows, the old way) shuffled
the whole batch to move a handful. Here a narrow aggregation over the staged key columns
alone finds the (cluster, dedup_key) pairs that repeat within the run or are already in the
lake (read only in the days the run's events fall on, one day either side); only those keys
are ranked, with the rule of :func:`jobs.ingest.transforms.with_bucket` (the first copy in
evidence order wins, a key already in the lake always loses). The staged files that hold a
losing row are rewritten (their other rows unchanged, the losers as duplicates); no other
file is touched, and a run without duplicates rewrites nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession, Window
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


def suspect_keys(keys: DataFrame, known: DataFrame | None) -> DataFrame:
    """The (cluster, dedup_key, ``_known``) pairs staged twice or more, or already in the lake.

    ``keys``: the staged events' (cluster, dedup_key, ...); ``known``: (cluster, dedup_key)
    already in the lake, or None. One aggregation over the keys (and the lake's).
    """
    tagged = keys.select(*_PAIR, F.lit(1).alias("_n"), F.lit(False).alias("_known"))
    if known is not None:
        tagged = tagged.unionByName(
            known.select(*_PAIR, F.lit(0).alias("_n"), F.lit(True).alias("_known"))
        )
    return (
        tagged.groupBy(*_PAIR)
        .agg(F.sum("_n").alias("_n"), F.max("_known").alias("_known"))
        .where((F.col("_n") > 1) | (F.col("_known") & (F.col("_n") > 0)))
        .select(*_PAIR, "_known")
    )


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
    # the aggregation sorted all the staged keys even when it found no suspect
    suspects_path = staged.parent / "suspects"
    suspect_keys(keys, known).write.mode("overwrite").parquet(str(suspects_path))
    suspects = spark.read.parquet(str(suspects_path))
    if suspects.isEmpty():
        return 0
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
