from __future__ import annotations

from pyspark.sql.types import ArrayType, BinaryType, BooleanType, IntegerType, LongType, StringType

from jobs.frames import literal_frame, struct_type

SCHEMA = struct_type(
    name=StringType(), count=LongType(), order=IntegerType(), flag=BooleanType(),
    groups=ArrayType(StringType()), raw=BinaryType(),
)  # fmt: skip


def test_literal_frame_keeps_values_and_types(spark):
    rows = [
        ("a'\"<x>", 1 << 40, 3, True, ["system:masters", "dev"], b"\x00\xff"),
        (None, None, None, None, None, None),
    ]
    df = literal_frame(spark, rows, SCHEMA)
    assert df.schema.simpleString() == SCHEMA.simpleString()
    assert [tuple(r) for r in df.collect()] == [
        ("a'\"<x>", 1 << 40, 3, True, ["system:masters", "dev"], bytearray(b"\x00\xff")),
        (None, None, None, None, None, None),
    ]


def test_literal_frame_casts_a_value_of_another_type_as_spark_does(spark):
    # a hand-edited ledger: counts written as text (Arrow refuses them; Spark casts them)
    schema = struct_type(name=StringType(), count=LongType())
    df = literal_frame(spark, [("x", "12"), ("y", 7)], schema)
    assert df.schema.simpleString() == schema.simpleString()
    assert [tuple(r) for r in df.collect()] == [("x", 12), ("y", 7)]


def test_literal_frame_of_no_rows_has_the_schema(spark):
    df = literal_frame(spark, [], SCHEMA)
    assert df.schema.simpleString() == SCHEMA.simpleString()
    assert df.count() == 0
