"""The only place that builds a SparkSession."""

from __future__ import annotations

from pyspark.sql import SparkSession

from jobs.settings import spark_settings


def get_spark(
    app_name: str = "kaudit",
    master: str | None = None,
    driver_memory: str | None = None,
    extra_conf: dict[str, str] | None = None,
    config_master: str | None = None,
) -> SparkSession:
    """Return the process's SparkSession, creating it on first use.

    ``master`` (tests, benchmarks) wins; otherwise ``$KAUDIT_SPARK_MASTER``, then the config's
    ``spark_master`` (``config_master``), then local mode. Point it at ``spark://host:7077``
    (or any Spark master URL) to run the same jobs on a cluster.
    """
    settings = spark_settings(config_master)
    builder = (
        SparkSession.builder.appName(app_name)
        .master(master or settings.master)
        .config("spark.driver.memory", driver_memory or settings.driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", settings.shuffle_partitions)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.driver.bindAddress", settings.bind_address)
        .config("spark.driver.host", settings.driver_host)
        .config("spark.python.worker.reuse", "true")
        # off-heap (Netty, Parquet codecs) defaults to the heap size: cap it so that the
        # process stays well under 4 GB in local mode
        .config("spark.driver.extraJavaOptions", settings.java_options)
    )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.log_level)
    return spark
