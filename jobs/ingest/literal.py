"""Small DataFrames built from literals in the JVM, with no Python worker.

``spark.createDataFrame`` of Python rows pickles them through a Python RDD: the first one in
a process starts a ``pyspark.daemon`` worker (a second interpreter, its memory and start-up)
just to hand a few rows to the JVM. The rows here are few (one per evidence file), so
literal expressions do the same in the plan itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StructField, StructType


def literal_frame(
    spark: SparkSession, rows: Sequence[Sequence[Any]], schema: StructType
) -> DataFrame:
    """``rows`` (tuples in ``schema``'s field order) as a DataFrame with ``schema``'s types."""
    fields = schema.fields
    if not rows:
        return spark.range(0).select(*[F.lit(None).cast(f.dataType).alias(f.name) for f in fields])
    structs = [
        F.struct(
            *[F.lit(v).cast(f.dataType).alias(f.name) for v, f in zip(row, fields, strict=True)]
        )
        for row in rows
    ]
    return spark.range(1).select(F.inline(F.array(*structs)))


def struct_type(**fields: DataType) -> StructType:
    """A StructType of nullable fields, in keyword order."""
    return StructType([StructField(name, kind) for name, kind in fields.items()])
