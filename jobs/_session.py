"""The only place that builds a SparkSession."""

from __future__ import annotations

from pyspark.sql import SparkSession

from jobs.settings import spark_settings

MIN_PARTITIONS = "spark.sql.files.minPartitionNum"


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
    if spark.conf.get(MIN_PARTITIONS, None) is None:
        # Parquet scans (the lake, the marts) split into ~4 tasks per core: by default Spark
        # aims at one split per core, and a week of 2-4 lake files per day then ran as 3 tasks
        # on 2 cores (one core idle a third of the time; 1.5 M events: 21 s -> 12 s to
        # summarise requests). Ingest pins its own split size (one file per partition).
        spark.conf.set(MIN_PARTITIONS, str(4 * spark.sparkContext.defaultParallelism))
    return spark
