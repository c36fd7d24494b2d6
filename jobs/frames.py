"""DataFrames from driver-side rows, with no Python worker.

``spark.createDataFrame`` of Python rows pickles them through a Python RDD: the first one in
a process starts a ``pyspark.daemon`` worker (a second interpreter, its memory and start-up)
just to hand a few rows to the JVM. :func:`arrow_frame` hands rows (one per evidence file,
per distinct client IP, per threat-list network) to the JVM as an Arrow table, which the JVM
decodes; :func:`literal_frame` does the same and, for a value Arrow will not take as the
schema's type (a count written as text in a hand-edited ledger), falls back to literals
that Spark casts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import DataType, StructField, StructType


def literal_frame(
    spark: SparkSession, rows: Sequence[Sequence[Any]], schema: StructType
) -> DataFrame:
    """``rows`` (tuples in ``schema``'s field order) as a DataFrame with ``schema``'s types.

    Values of another type than their field's are cast by Spark (ANSI casts: a value that
    does not convert fails the query that reads it).
    """
    fields = schema.fields
    if not rows:
        return spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in fields])
    try:
        # one Arrow table: a literal per value cost ~3 py4j calls and made a plan that took
        # seconds to compile (68 rows of 10 fields: 2.9 s, through Arrow 0.03 s)
        return arrow_frame(spark, rows, schema)
    except (pa.ArrowException, TypeError, ValueError):
        pass
    structs = [
        F.struct(
            *[F.lit(v).cast(f.dataType).alias(f.name) for v, f in zip(row, fields, strict=True)]
        )
        for row in rows
    ]
    return spark.range(1).select(F.inline(F.array(*structs)))


def arrow_frame(
    spark: SparkSession, rows: Sequence[Sequence[Any]], schema: StructType
) -> DataFrame:
    """``rows`` (tuples in ``schema``'s field order) as a DataFrame, through Arrow."""
    names = schema.names
    table = pa.Table.from_pylist(
        [dict(zip(names, row, strict=True)) for row in rows], schema=to_arrow_schema(schema)
    )
    return spark.createDataFrame(table)


def struct_type(**fields: DataType) -> StructType:
    """A StructType of nullable fields, in keyword order."""
    return StructType([StructField(name, kind) for name, kind in fields.items()])
