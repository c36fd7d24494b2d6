"""Settings of the session get_spark builds that change how the driver plans queries."""

from __future__ import annotations

import pyspark.errors.utils as pyspark_errors
from pyspark.sql import functions as F

from jobs._session import DATAFRAME_DEBUGGING


def test_column_functions_do_not_record_their_python_call_site(spark, monkeypatch):
    # PySpark 4 inspects the stack and makes ~5 py4j calls per column function to record its
    # call site; get_spark switches that off (the weekly run's planning: 43,619 -> 15,129 calls)
    captured: list[int] = []
    monkeypatch.setattr(pyspark_errors, "_capture_call_site", lambda depth: captured.append(depth))
    df = spark.range(3).select(
        F.when(F.col("id") > F.lit(1), F.concat(F.lit("x"), F.col("id").cast("string"))).alias("a")
    )
    assert captured == []
    assert spark.conf.get(DATAFRAME_DEBUGGING) == "false"
    assert [r.a for r in df.collect()] == [None, None, "x2"]
