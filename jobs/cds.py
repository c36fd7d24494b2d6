"""Build the class-data-sharing archive of Spark's JVM: ``python -m jobs.cds [DEST]``.

``make install`` runs it once per installation. A JVM started with the archive maps the
classes an earlier JVM loaded (Spark, Parquet, Jackson, Janino, Netty, Arrow) instead of
reading and verifying them from the jars again: on the 2-core machine of bench/RESULTS.md a
session started in 4.1 s instead of 6.2 s and its first query took 2.5 s instead of 4.3 s.

The archive is what HotSpot dumps (``-XX:ArchiveClassesAtExit``) when a JVM that ran a small
workload touching the same machinery as ingest and the weekly run exits. It is an
optimisation only: without it, or with one made for other jars or another JVM (which the JVM
then ignores), every command works as before. Exit status 0 also when the JVM could not dump
one (a message says so): nothing depends on it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

from jobs._session import CDS_QUIET, cds_size_file, get_spark
from jobs.settings import SparkSettings, java_command, spark_settings

_LINES = [
    f'{{"kind":"Event","auditID":"a{i}","stage":"ResponseComplete","verb":"get",'
    f'"user":{{"username":"u{i % 7}"}},"sourceIPs":["10.0.0.{i % 250}"],'
    f'"requestReceivedTimestamp":"2026-11-2{i % 7}T10:00:00.000000Z"}}'
    for i in range(2000)
]
_SCHEMA = (
    "kind string, auditID string, stage string, verb string, user struct<username:string>, "
    "sourceIPs array<string>, requestReceivedTimestamp string"
)


def workload(spark: SparkSession, workdir: Path) -> None:
    """Text + JSON parse, partitioned Parquet write and read, shuffles, windows, joins, Arrow."""
    src = workdir / "audit.log"
    src.write_text("\n".join(_LINES) + "\n", encoding="utf-8")
    parsed = (
        spark.read.text(str(src))
        .select(F.from_json("value", _SCHEMA).alias("e"), F.sha2("value", 256).alias("h"))
        .select("e.*", "h")
        .withColumn("ts", F.to_timestamp("requestReceivedTimestamp"))
        .withColumn("date", F.to_date("ts"))
    )
    lake = str(workdir / "lake")
    parsed.write.mode("overwrite").partitionBy("date").parquet(lake)
    events = spark.read.parquet(lake)
    ranked = events.withColumn(
        "rn", F.row_number().over(Window.partitionBy("verb").orderBy(F.col("ts").desc()))
    )
    per_user = events.groupBy(F.col("user.username").alias("u")).agg(
        F.count(F.lit(1)).alias("n"), F.collect_set("verb").alias("verbs")
    )
    ips = spark.createDataFrame(pa.table({"ip": ["10.0.0.1"], "scope": ["private"]}))
    joined = ranked.join(F.broadcast(ips), ranked["sourceIPs"][0] == ips["ip"], "left")
    mart = joined.join(per_user, joined["user.username"] == per_user["u"])
    mart.repartition(1).sortWithinPartitions("ts").write.mode("overwrite").parquet(
        str(workdir / "mart")
    )
    spark.read.parquet(str(workdir / "mart")).toPandas()


def build(dest: Path, settings: SparkSettings | None = None) -> bool:
    """Dump the archive to ``dest`` (atomically); False when the JVM wrote none."""
    settings = settings or spark_settings()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.unlink(missing_ok=True)
    options = f"{settings.java_options} -XX:ArchiveClassesAtExit={tmp} {CDS_QUIET}"
    # these options replace the session's (so no older archive is mapped while dumping)
    spark = get_spark("kaudit-cds", extra_conf={"spark.driver.extraJavaOptions": options})
    jvm = spark.sparkContext._gateway.proc  # type: ignore[union-attr]  # the JVM's Popen
    with tempfile.TemporaryDirectory(prefix="kaudit-cds-") as workdir:
        workload(spark, Path(workdir))
    spark.stop()
    # The JVM exits (and dumps) when its stdin closes, as when the Python driver ends.
    jvm.stdin.close()
    jvm.wait(timeout=600)
    if not tmp.is_file() or not _maps(tmp):
        tmp.unlink(missing_ok=True)
        return False
    size = cds_size_file(dest)
    size.unlink(missing_ok=True)  # no moment where a size matches another archive
    os.replace(tmp, dest)
    size.write_text(f"{dest.stat().st_size}\n", encoding="ascii")
    return True


def _maps(archive: Path) -> bool:
    """A JVM starts with the archive (a damaged one crashes it: never keep such a file)."""
    java = java_command()
    with tempfile.TemporaryDirectory(prefix="kaudit-cds-") as workdir:
        probe = [
            java, f"-XX:SharedArchiveFile={archive}", *CDS_QUIET.split(),
            f"-XX:ErrorFile={workdir}/hs_err.log", "-version",
        ]  # fmt: skip
        done = subprocess.run(probe, cwd=workdir, capture_output=True, check=False, timeout=120)
    return done.returncode == 0


def main(argv: list[str] | None = None) -> int:
    """Build the archive at the path given (default: the settings'); always exit 0."""
    args = sys.argv[1:] if argv is None else argv
    dest = Path(args[0] if args else spark_settings().cds_archive)
    try:
        made = build(dest)
    except Exception as exc:  # an optimisation: say why, and go on without it
        print(f"no class-data-sharing archive made at {dest}: {type(exc).__name__}: {exc}")
        return 0
    if made:
        print(f"Spark class-data-sharing archive: {dest} ({dest.stat().st_size >> 20} MiB)")
    else:
        print(f"no class-data-sharing archive made at {dest} (the JVM wrote none); not needed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
