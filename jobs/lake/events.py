"""Reading the lake: only files of committed ingest runs are ever read.

An ingest between moving its files into the lake and committing them (or killed there)
must not be counted, so readers list files through :func:`committed_files`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.lake.ledger import committed_runs
from jobs.lake.runs import run_of
from jobs.schemas import EVENTS
from jobs.settings import Layout


def committed_files(layout: Layout, root: Path) -> list[str]:
    """Parquet files under ``root`` (a lake folder) written by committed ingest runs."""
    committed = committed_runs(layout)
    return sorted(str(p) for p in root.rglob("run-*.parquet") if run_of(p) in committed)


def _committed_events(spark: SparkSession, layout: Layout) -> DataFrame | None:
    files = committed_files(layout, layout.events)
    return _read(spark, layout, files) if files else None


def _read(spark: SparkSession, layout: Layout, files: list[str]) -> DataFrame:
    return spark.read.schema(EVENTS).option("basePath", str(layout.events)).parquet(*files)


def read_events(spark: SparkSession, layout: Layout) -> DataFrame:
    """The lake's committed events with the EVENTS schema (empty when nothing was ingested)."""
    events = _committed_events(spark, layout)
    return events if events is not None else spark.createDataFrame([], EVENTS)


def known_keys(
    spark: SparkSession,
    layout: Layout,
    clusters: Iterable[str],
    days: Collection[dt.date] | None = None,
) -> DataFrame | None:
    """(cluster, dedup_key) of the committed events of ``clusters``; None when there are none.

    With ``days``, only the ``event_date`` partitions of those UTC days are listed and read:
    an hourly ingest into a lake of many weeks reads the keys of a day or two, not all.
    """
    if days is None:
        events = _committed_events(spark, layout)
    else:
        files = sorted({f for day in set(days) for f in event_files(layout, day, day)})
        events = _read(spark, layout, files) if files else None
    if events is None:
        return None
    return events.where(F.col("cluster").isin(sorted(clusters))).select("cluster", "dedup_key")


def _partition_value(path: Path, name: str) -> str | None:
    prefix = f"{name}="
    return path.name[len(prefix) :] if path.name.startswith(prefix) else None


def event_files(
    layout: Layout, first_day: dt.date, last_day: dt.date, cluster: str | None = None
) -> list[str]:
    """Committed event files of the UTC days ``first_day``..``last_day`` (and of ``cluster``).

    Only the ``cluster=``/``event_date=`` folders in range are listed, so neither this listing
    nor Spark touches the partitions outside the range.
    """
    if not layout.events.is_dir():
        return []
    committed = committed_runs(layout)
    low, high = first_day.isoformat(), last_day.isoformat()
    chosen = []
    for cluster_dir in sorted(layout.events.iterdir()):
        name = _partition_value(cluster_dir, "cluster")
        if name is None or (cluster is not None and name != cluster):
            continue
        for day_dir in sorted(cluster_dir.iterdir()):
            day = _partition_value(day_dir, "event_date")
            if day is None or not low <= day <= high:
                continue
            chosen += [str(p) for p in day_dir.glob("run-*.parquet") if run_of(p) in committed]
    return sorted(chosen)


def utc_days(since: dt.datetime, until: dt.datetime) -> tuple[dt.date, dt.date]:
    """First and last UTC ``event_date`` of the aware range [since, until)."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    last = until.astimezone(dt.UTC) - dt.timedelta(microseconds=1)
    return since.astimezone(dt.UTC).date(), last.date()


def read_events_range(
    spark: SparkSession,
    layout: Layout,
    since: dt.datetime,
    until: dt.datetime,
    cluster: str | None = None,
) -> DataFrame:
    """Committed events whose UTC ``event_date`` can hold a time in [since, until) (aware).

    Only the partitions of those days (and of ``cluster``) are read; the caller still filters
    on ``request_received_ts``. The partition filter repeats the folder choice so the plan
    shows it (``PartitionFilters``) and a file placed oddly cannot widen the range.
    """
    first_day, last_day = utc_days(since, until)
    files = event_files(layout, first_day, last_day, cluster)
    if not files:
        return spark.createDataFrame([], EVENTS)
    events = _read(spark, layout, files)
    in_range = F.col("event_date").between(F.lit(first_day), F.lit(last_day))
    if cluster is not None:
        in_range = in_range & (F.col("cluster") == cluster)
    return events.where(in_range)
