"""The marts store's one owner: ``<home>/marts/<cluster>/<week>/<mart>/`` and ``summary.json``.

The weekly job writes here (Spark); the report and validation read here without Spark
(pyarrow), so a PDF can be built on a machine that only has the marts.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jobs.settings import Layout

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

SUMMARY_FILE = "summary.json"


def mart_dir(layout: Layout, cluster: str, week: str) -> Path:
    """The folder holding one cluster's marts for one ISO week."""
    return layout.marts(cluster, week)


def _order(spec: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(spec[1:]).desc_nulls_last() if spec.startswith("-") else F.col(spec).asc()


def write_mart(df: DataFrame, path: Path, order_by: Sequence[str]) -> None:
    """One Parquet dataset, overwritten, in one file sorted by ``order_by`` (stable output).

    ``order_by`` holds column names; ``-name`` sorts descending.
    """
    (
        df.repartition(1)
        .sortWithinPartitions(*[_order(s) for s in order_by])
        .write.mode("overwrite")
        .parquet(str(path))
    )


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


def _utc(table: pa.Table) -> pa.Table:
    # Spark stores instants without a zone; saying UTC here makes the rows aware datetimes.
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is None:
            column = table.column(i).cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
            table = table.set_column(i, field.name, column)
    return table


def read_mart_rows(week_dir: Path, name: str) -> list[dict[str, Any]]:
    """The rows of mart ``name`` in ``week_dir``, in file order (the order it was written in).

    Timestamps come back as UTC-aware datetimes. Raises FileNotFoundError when the mart is
    missing.
    """
    path = week_dir / name
    if not path.is_dir():
        raise FileNotFoundError(f"mart {name!r} not found in {week_dir}")
    table = pq.read_table(path, coerce_int96_timestamp_unit="us")
    rows: list[dict[str, Any]] = _utc(table).to_pylist()
    return rows


def read_mart_where(week_dir: Path, name: str, column: str, value: Any) -> pa.Table | None:
    """Rows of mart ``name`` where ``column`` is ``value`` (Arrow, file order); None if missing.

    A batch at a time: the mart can be large (important_events in a week under attack), and
    Python dicts of a million rows take gigabytes.
    """
    path = week_dir / name
    if not path.is_dir():
        return None
    files = sorted(path.glob("*.parquet"))
    if not files:
        return None
    parts = [b.filter(pc.equal(b.column(column), value)) for b in _batches(path)]
    return _utc(pa.Table.from_batches(parts) if parts else pq.read_schema(files[0]).empty_table())


def _batches(path: Path, size: int = 65_536) -> Iterator[pa.RecordBatch]:
    """The rows of the Parquet files under ``path``, in order, ``size`` rows at a time.

    ParquetFile.iter_batches decodes a batch at a time (a dataset scan read whole row groups
    ahead: 1.8 GB for a 225 MB important_events).
    """
    for file in sorted(path.glob("*.parquet")):
        yield from pq.ParquetFile(file).iter_batches(batch_size=size, use_threads=False)


def read_mart_heads(week_dir: Path, name: str, column: str, limit: int) -> dict[Any, pa.Table]:
    """The first ``limit`` rows of mart ``name`` for each value of ``column``, in file order.

    One pass over the mart a batch at a time, keeping at most ``limit`` rows per value: a
    week under attack's important_events (millions of rows, a few row groups, so filtering
    per value would read the whole file once per value) is never loaded whole.
    """
    path = week_dir / name
    if not path.is_dir():
        return {}
    parts: dict[Any, list[pa.RecordBatch]] = {}
    taken: dict[Any, int] = {}
    for batch in _batches(path):
        values = batch.column(column)
        for value in pc.unique(values).to_pylist():
            room = limit - taken.get(value, 0)
            if room <= 0:
                continue
            rows = batch.filter(pc.equal(values, value)).slice(0, room)
            parts.setdefault(value, []).append(rows)
            taken[value] = taken.get(value, 0) + rows.num_rows
    return {value: _utc(pa.Table.from_batches(b)) for value, b in parts.items()}


def mart_value_counts(week_dir: Path, name: str, column: str) -> dict[Any, int]:
    """How many rows of mart ``name`` have each value of ``column`` (that column read alone)."""
    path = week_dir / name
    if not path.is_dir():
        return {}
    counts = pc.value_counts(pq.read_table(path, columns=[column])[column]).to_pylist()
    return {c["values"]: c["counts"] for c in counts}


def read_small_mart(week_dir: Path, name: str, max_rows: int) -> pd.DataFrame | None:
    """Mart ``name`` as a pandas frame (UTC-aware timestamps), or None above ``max_rows`` rows.

    The row count comes from the Parquet footers: a large mart is never loaded here.
    """
    path = week_dir / name
    files = sorted(path.glob("*.parquet"))
    if sum(pq.ParquetFile(f).metadata.num_rows for f in files) > max_rows:
        return None
    frame: pd.DataFrame = _utc(pq.read_table(path, coerce_int96_timestamp_unit="us")).to_pandas()
    return frame


def read_summary(week_dir: Path) -> dict[str, Any]:
    """``summary.json`` of one week's marts."""
    data: dict[str, Any] = json.loads((week_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    return data
