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

from jobs.schemas import EVENTS


def read_events(spark: SparkSession, events_path: Path) -> DataFrame:
    """The lake's events dataset with the EVENTS schema (empty when nothing was ingested yet)."""
    if not Path(events_path).is_dir():
        return spark.createDataFrame([], EVENTS)
    return spark.read.schema(EVENTS).parquet(str(events_path))


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
