"""Reading the lake: only files of committed ingest runs are ever read.

An ingest between moving its files into the lake and committing them (or killed there)
must not be counted, so readers list files through :func:`committed_files`.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    if not files:
        return None
    return spark.read.schema(EVENTS).option("basePath", str(layout.events)).parquet(*files)


def read_events(spark: SparkSession, layout: Layout) -> DataFrame:
    """The lake's committed events with the EVENTS schema (empty when nothing was ingested)."""
    events = _committed_events(spark, layout)
    return events if events is not None else spark.createDataFrame([], EVENTS)


def known_keys(spark: SparkSession, layout: Layout, clusters: Iterable[str]) -> DataFrame | None:
    """(cluster, dedup_key) of the committed events of ``clusters``; None when there are none."""
    events = _committed_events(spark, layout)
    if events is None:
        return None
    return events.where(F.col("cluster").isin(sorted(clusters))).select("cluster", "dedup_key")
