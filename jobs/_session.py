"""The only place that builds a SparkSession."""

from __future__ import annotations

import os

from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[*]"


def get_spark(
    app_name: str = "kaudit",
    master: str | None = None,
    driver_memory: str | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Return the process's SparkSession, creating it on first use.

    ``master`` defaults to $KAUDIT_SPARK_MASTER, else local mode. Point it at
    ``spark://host:7077`` (or any Spark master URL) to run the same jobs on a cluster.
    """
    master = master or os.environ.get("KAUDIT_SPARK_MASTER") or DEFAULT_MASTER
    # glibc gives each JVM thread its own malloc arena (up to 8 per core): resident memory
    # then swings by GBs from run to run. Two arenas keep it flat (the JVM inherits this).
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    driver_memory = driver_memory or os.environ.get("KAUDIT_SPARK_DRIVER_MEMORY", "2g")
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master)
        .config("spark.driver.memory", driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", os.environ.get("KAUDIT_SHUFFLE_PARTITIONS", "8"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.driver.bindAddress", os.environ.get("KAUDIT_SPARK_BIND", "127.0.0.1"))
        .config("spark.driver.host", os.environ.get("KAUDIT_SPARK_HOST", "127.0.0.1"))
        .config("spark.python.worker.reuse", "true")
        # off-heap (Netty, Parquet codecs) defaults to the heap size: cap it so that the
        # process stays well under 4 GB in local mode
        .config("spark.driver.extraJavaOptions",
                os.environ.get("KAUDIT_SPARK_JAVA_OPTS", "-XX:MaxDirectMemorySize=512m"))
    )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(os.environ.get("KAUDIT_SPARK_LOG_LEVEL", "ERROR"))
    return spark
