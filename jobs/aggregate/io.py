"""Where the weekly job reads and writes: lake/events in, marts/<cluster>/<week>/ out."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.ingest.main import committed_files
from jobs.schemas import EVENTS
from jobs.settings import Layout


def read_events(spark: SparkSession, layout: Layout) -> DataFrame:
    """The lake's committed events with the EVENTS schema (empty when nothing was ingested).

    Only files of committed ingest runs are read: an ingest that is between moving its
    files into the lake and committing them (or was killed there) is not counted.
    """
    files = committed_files(layout, layout.events)
    if not files:
        return spark.createDataFrame([], EVENTS)
    return spark.read.schema(EVENTS).option("basePath", str(layout.events)).parquet(*files)


def _order(spec: str) -> Column:
    return F.col(spec[1:]).desc_nulls_last() if spec.startswith("-") else F.col(spec).asc()


def write_mart(df: DataFrame, path: Path, order_by: Sequence[str]) -> None:
    """One Parquet dataset, overwritten, in one file sorted by ``order_by`` (stable output).

    ``order_by`` holds column names; ``-name`` sorts descending.
    """
    (df.repartition(1).sortWithinPartitions(*[_order(s) for s in order_by])
     .write.mode("overwrite").parquet(str(path)))


def write_json(data: Any, path: Path) -> None:
    """Write ``data`` as sorted, indented JSON, atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, ensure_ascii=False, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
