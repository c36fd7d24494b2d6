"""The session get_spark builds: settings that change how the driver plans, a quiet start."""

from __future__ import annotations

import os
import subprocess
import sys

import pyspark.errors.utils as pyspark_errors
from pyspark.sql import functions as F

from jobs._session import DATAFRAME_DEBUGGING, JVM_NOISE, _pass_stderr


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


def test_a_fresh_session_is_quiet_and_stop_spark_ends_its_jvm(tmp_path):
    # The JVM's incubator-module warning and PySpark's two lines about the shell's log level
    # printed at the start of every kaudit command; a session's start and a job print nothing.
    # kaudit report ends the JVM before the PDF (its memory: ~3 GB after a week under attack):
    # SparkSession.stop alone leaves the JVM process running; a later session starts a new one.
    script = (
        "from pyspark import SparkContext\n"
        "from jobs._session import get_spark, stop_spark\n"
        "spark = get_spark(master='local[1]')\n"
        "jvm = SparkContext._gateway.proc\n"
        "print(spark.range(5).count(), jvm.poll())\n"
        "stop_spark()\n"
        "print(jvm.poll() is not None, SparkContext._gateway)\n"
        "again = get_spark(master='local[1]')\n"
        "print(again.range(3).count(), SparkContext._gateway.proc is not jvm)\n"
        "stop_spark()\n"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env=env, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"5 None\nTrue None\n3 True\n"
    assert done.stderr == b""
    assert list(tmp_path.glob("kaudit-spark-*.log")) == []  # no Spark log without an error


def test_the_jvm_stderr_is_passed_on_but_its_startup_noise(capfd):
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as jvm_stderr:
        jvm_stderr.writelines(
            [*JVM_NOISE, b'Exception in thread "main" java.lang.Error: boom\n', b"last"]
        )
    with os.fdopen(read_end, "rb") as stream:
        _pass_stderr(stream)
    assert capfd.readouterr().err == 'Exception in thread "main" java.lang.Error: boom\nlast'
