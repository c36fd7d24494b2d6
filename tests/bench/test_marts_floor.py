"""The bench's Spark floor for the weekly run computes the same marts as its DuckDB reference."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench


def _rows(con: duckdb.DuckDBPyConnection, path: str) -> list[tuple]:
    """The mart's rows in a fixed order (a user's verbs as a sorted list: a set either way)."""
    names = [d[0] for d in con.execute(f"SELECT * FROM read_parquet('{path}') LIMIT 0").description]
    cols = ", ".join(f"list_sort({n})" if n == "verbs" else n for n in names)
    return con.execute(f"SELECT {cols} FROM read_parquet('{path}') ORDER BY ALL").fetchall()


def test_spark_floor_marts_equal_duckdb_marts(spark, small_week, tmp_path):
    _, layout, _ = small_week
    events = layout.home / "lake" / "events"
    con = duckdb.connect()
    con.execute(bench.DUCKDB_MARTS.format(events=events, out=tmp_path))
    try:
        spark.sql(bench.SPARK_REQUESTS.format(events=events))
        for name, sql in bench.SPARK_MARTS.items():
            spark.sql(sql).coalesce(1).write.parquet(str(tmp_path / "spark" / name))
        requests = spark.table("requests").count()
    finally:
        spark.sql("UNCACHE TABLE IF EXISTS requests")
        spark.catalog.dropTempView("requests")
    assert requests == con.execute("SELECT count(*) FROM requests").fetchone()[0] > 1000
    for name in bench.SPARK_MARTS:
        duck = _rows(con, str(tmp_path / f"{name}.parquet"))
        floor = _rows(con, str(tmp_path / "spark" / name / "*.parquet"))
        assert floor == duck, name
        assert len(duck) > 3, name
