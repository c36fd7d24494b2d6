"""Ingest's classification never runs as generated code that HotSpot leaves interpreted.

HotSpot does not JIT-compile a method over 8,000 bytes of bytecode. The classification's
projection made a whole-stage method of 10.7 kB, interpreted for the whole job (a fifth of
ingest's CPU in a profile). Spark runs such a stage without whole-stage codegen when the
method is over ``spark.sql.codegen.hugeMethodLimit``; the session sets it to HotSpot's bound.
"""

from __future__ import annotations

import json

from pyspark.sql import functions as F

from jobs._session import HOTSPOT_HUGE_METHOD, HUGE_METHOD_LIMIT
from jobs.ingest.transforms import OUTPUT_COLUMNS, classify_unranked
from jobs.lake.runs import PARTITIONS


def _stages(plan):
    """The whole-stage-codegen nodes of a physical plan (py4j objects)."""
    found = [plan] if plan.nodeName().startswith("WholeStageCodegen") else []
    children = plan.children().iterator()
    while children.hasNext():
        found += _stages(children.next())
    return found


def _max_method_bytes(spark, stage) -> int:
    generator = spark._jvm.org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator
    return generator.compile(stage.doCodeGen()._2())._2().maxMethodCodeSize()


def test_no_classification_stage_runs_interpreted(spark):
    line = json.dumps({"kind": "Event", "auditID": "a", "stage": "ResponseComplete"})
    lines = spark.createDataFrame(
        [(line, "f" * 64, 1, "m1", "c1", 0)],
        "value string, evidence_sha256 string, line_no long, master string, cluster string, "
        "file_order int",
    )
    rows = classify_unranked(lines, 1 << 20).withColumn(
        "bucket", F.when(F.col("bucket") == "candidate", "event").otherwise(F.col("bucket"))
    )
    staged = rows.select(*OUTPUT_COLUMNS).sortWithinPartitions(*PARTITIONS)  # as the write
    limit = int(spark.conf.get(HUGE_METHOD_LIMIT))
    assert limit <= HOTSPOT_HUGE_METHOD
    adaptive = spark.conf.get("spark.sql.adaptive.enabled")
    spark.conf.set("spark.sql.adaptive.enabled", "false")  # the stages, not AQE's wrapper
    try:
        stages = _stages(staged._jdf.queryExecution().executedPlan())
        sizes = [_max_method_bytes(spark, s) for s in stages]
    finally:
        spark.conf.set("spark.sql.adaptive.enabled", adaptive)
    assert stages
    # a stage either compiles to methods HotSpot will JIT, or Spark runs it without
    # whole-stage codegen (over the limit)
    assert all(size <= HOTSPOT_HUGE_METHOD or size > limit for size in sizes), sizes
