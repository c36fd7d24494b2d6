"""The only place that builds a SparkSession."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from py4j.protocol import Py4JError
from pyspark import SparkConf, SparkContext
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from jobs.settings import SparkSettings, spark_settings

MIN_PARTITIONS = "spark.sql.files.minPartitionNum"
HUGE_METHOD_LIMIT = "spark.sql.codegen.hugeMethodLimit"
CACHE_COMPRESSED = "spark.sql.inMemoryColumnarStorage.compressed"
DATAFRAME_DEBUGGING = "spark.python.sql.dataFrameDebugging.enabled"
JIT_DIRECTIVES_ADDED = "kaudit.jit.directives"
HOTSPOT_HUGE_METHOD = 8000  # bytes of bytecode: HotSpot's -XX:+DontCompileHugeMethods bound
# Spark's log: to a file, never the terminal (see log4j2.properties)
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
_SPARK_LOG: list[Path] = []
# the archive's own messages (one made for other jars is ignored) stay off the terminal
CDS_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
# What the JVM prints at start because Spark's launcher always adds this module: not for users.
JVM_NOISE = frozenset({b"WARNING: Using incubator modules: jdk.incubator.vector\n"})


def java_options(settings: SparkSettings) -> str:
    """The driver JVM's options: the settings', and the class-data-sharing archive if built.

    The archive (``jobs.cds``) holds Spark's classes as an earlier JVM loaded them: a session
    starts about 3.5 s sooner. ``-Xshare:auto`` (the default) ignores an archive made for
    other jars or another JVM.
    """
    archive = settings.cds_archive
    if not archive or not cds_intact(Path(archive)):
        return settings.java_options
    return f"{settings.java_options} -XX:SharedArchiveFile={archive} {CDS_QUIET}"


def spark_log_path() -> Path:
    """Where this process's Spark log goes: ``$TMPDIR/kaudit-spark-<UTC time>-<pid>.log``.

    The file exists only once Spark logged something (errors by default).
    """
    if not _SPARK_LOG:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        _SPARK_LOG.append(Path(tempfile.gettempdir()) / f"kaudit-spark-{stamp}-{os.getpid()}.log")
    return _SPARK_LOG[0]


def logging_options(level: str = "ERROR") -> str:
    """The driver JVM's log4j options: kaudit's config, this process's log file, its level."""
    return (
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG} -Dkaudit.spark.log={spark_log_path()}"
        f" -Dkaudit.spark.log.level={level}"
    )


def diagnostic_command(spark: SparkSession, command: str, *args: str) -> str:
    """Run one of the driver JVM's diagnostic commands (``jcmd``'s, in camel case); its output.

    ``compilerDirectivesAdd`` is ``jcmd <pid> Compiler.directives_add``. Called through the
    MBean server's public interface: py4j does not reach the JDK's own implementation class.
    """
    jvm, gateway = spark._jvm, spark.sparkContext._gateway
    assert jvm is not None and gateway is not None

    def array(cls: Any, items: Sequence[Any]) -> Any:
        made = gateway.new_array(cls, len(items))
        for i, item in enumerate(items):
            made[i] = item
        return made

    klass, string, obj = jvm.java.lang.Class, jvm.java.lang.String, jvm.java.lang.Object
    types = ("javax.management.ObjectName", "java.lang.String")
    invoke = klass.forName("javax.management.MBeanServerConnection").getMethod(
        "invoke",
        array(
            klass,
            [klass.forName(t) for t in (*types, "[Ljava.lang.Object;", "[Ljava.lang.String;")],
        ),
    )
    server = jvm.java.lang.management.ManagementFactory.getPlatformMBeanServer()
    name = jvm.javax.management.ObjectName("com.sun.management:type=DiagnosticCommand")
    params = array(obj, [array(string, list(args))])
    return str(
        invoke.invoke(
            server, array(obj, [name, command, params, array(string, ["[Ljava.lang.String;"])])
        )
    )


def add_jit_directives(spark: SparkSession, directives: str) -> bool:
    """Give the driver JVM's JIT compilers ``directives`` (a HotSpot directives file), once.

    Added as ``jcmd Compiler.directives_add`` would, not with ``-XX:CompilerDirectivesFile``,
    which prints to the JVM's stdout. Nothing happens with "" or a missing file, on a JVM
    without the command, or when already added. On a cluster the executors' JVMs keep their
    defaults.
    """
    if not directives or not Path(directives).is_file():
        return False
    if spark.conf.get(JIT_DIRECTIVES_ADDED, None) == directives:
        return False
    try:
        added = diagnostic_command(spark, "compilerDirectivesAdd", directives)
    except Py4JError:
        return False  # not HotSpot: the directives only save CPU
    if "directives added" not in added:
        return False
    spark.conf.set(JIT_DIRECTIVES_ADDED, directives)
    return True


def cds_size_file(archive: Path) -> Path:
    """Where ``jobs.cds`` records the archive's size in bytes."""
    return archive.with_name(archive.name + ".size")


def cds_intact(archive: Path) -> bool:
    """The archive exists with the size recorded when it was made.

    (HotSpot crashes on a truncated archive instead of ignoring it.)
    """
    try:
        expected = int(cds_size_file(archive).read_text(encoding="ascii").strip())
        return archive.stat().st_size == expected
    except (OSError, ValueError):
        return False


def launch_quiet_jvm(options: dict[str, Any]) -> None:
    """Start the driver JVM as PySpark would, its stderr passed on but for ``JVM_NOISE``.

    PySpark starts the JVM with the terminal as its stderr: Spark's launcher always adds the
    incubator module, and the JVM says so on every kaudit command. Anything else the JVM
    prints there (a crash) still reaches the terminal, line by line.
    """
    conf = SparkConf().setAll([(k, str(v)) for k, v in options.items()])
    gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})  # type: ignore[no-untyped-call]
    stderr = getattr(getattr(gateway, "proc", None), "stderr", None)
    if stderr is not None:  # None: PySpark joined a JVM started by someone else
        threading.Thread(
            target=_pass_stderr, args=(stderr,), name="kaudit-jvm-stderr", daemon=True
        ).start()
    SparkContext._ensure_initialized(gateway=gateway)


def _pass_stderr(stream: Any) -> None:
    """Copy the JVM's stderr to this process's (file descriptor 2), less ``JVM_NOISE``."""
    for line in iter(stream.readline, b""):
        if line not in JVM_NOISE:
            os.write(2, line)


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
        # HotSpot never JIT-compiles a method over 8,000 bytes of bytecode: a whole-stage
        # method larger than that ran interpreted for the whole job (ingest's classification:
        # 10.7 kB). Over this limit Spark runs the stage without whole-stage codegen, with
        # small generated methods, as its documentation advises for HotSpot.
        .config(HUGE_METHOD_LIMIT, str(HOTSPOT_HUGE_METHOD))
        # Scans of the lake read at most 32 MB of Parquet per task (Spark's default: 128 MB).
        # The weekly run caches most requests straight from the scan (those of one event):
        # a cached partition is unrolled whole in the heap, and a week under attack (2.5 M
        # events, 272 MB) made three of ~1 M rows each, which ran out of a 2 GB heap.
        .config("spark.sql.files.maxPartitionBytes", str(32 * 2**20))
        # Cached frames (the week's requests, read by every mart) are stored uncompressed:
        # choosing each column's encoding hashes every value (a tenth of the weekly run's
        # executor samples) to save ~25% of memory (1.5 M events: 218 MiB -> 169 MiB).
        .config(CACHE_COMPRESSED, "false")
        # PySpark 4 records the Python call site of every column function for error messages
        # (inspects the stack, then ~5 py4j calls: active session, a conf, set/clear origin).
        # Planning the weekly run's detection and policy marts made 43,619 py4j calls with it
        # and 15,129 without (20 s -> 13 s of driver time); kaudit's errors are one line anyway.
        .config(DATAFRAME_DEBUGGING, "false")
        # off-heap (Netty, Parquet codecs) defaults to the heap size: cap it so that the
        # process stays well under 4 GB in local mode
        .config(
            "spark.driver.extraJavaOptions",
            f"{java_options(settings)} {logging_options(settings.log_level)}",
        )
    )
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    if SparkContext._gateway is None:
        launch_quiet_jvm(builder._options)  # the options the builder would start it with
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.log_level)
    add_jit_directives(spark, settings.jit_directives)
    if spark.conf.get(MIN_PARTITIONS, None) is None:
        # Parquet scans (the lake, the marts) split into ~4 tasks per core: by default Spark
        # aims at one split per core, and a week of 2-4 lake files per day then ran as 3 tasks
        # on 2 cores (one core idle a third of the time; 1.5 M events: 21 s -> 12 s to
        # summarise requests). Ingest pins its own split size (one file per partition).
        spark.conf.set(MIN_PARTITIONS, str(4 * spark.sparkContext.defaultParallelism))
    return spark


def stop_spark(timeout: float = 30.0) -> None:
    """Stop the process's SparkSession and end its JVM, giving the JVM's memory back.

    ``SparkSession.stop`` leaves the JVM running, its memory held (2.6 GB of PSS after a week
    under attack, to which the PDF step's own ~0.6 GB was added: the run's peak). The JVM
    PySpark started exits when its standard input closes; a later :func:`get_spark` starts a
    new one.
    """
    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    with contextlib.suppress(Py4JError):  # the JVM is gone already
        gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if proc is None:  # a JVM started by someone else (pyspark-shell): not ours to end
        return
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
