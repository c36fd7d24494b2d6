"""Spark's JVM out of memory, stopped, or refused: one line naming KAUDIT_SPARK_DRIVER_MEMORY.

The cases use real parts: py4j talking to a port where no JVM listens (what py4j meets once
a local-mode JVM has exited on an OutOfMemoryError), the shared session's JVM for a Java
exception, and a real ``kaudit`` process whose JVM is given too little memory to start.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from py4j.clientserver import ClientServer, JavaParameters, PythonParameters
from py4j.protocol import Py4JJavaError

from jobs.console import jvm_failure
from jobs.errors import EXIT_CODES, EXIT_RESOURCES, EXIT_USAGE

ROOT = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_py4j_without_its_jvm_is_a_stopped_jvm_exit_71():
    client = ClientServer(
        JavaParameters(address="127.0.0.1", port=_closed_port()), PythonParameters(port=0)
    )
    try:
        with pytest.raises(Exception) as caught:
            client.jvm.java.lang.System.currentTimeMillis()
    finally:
        client.shutdown()
    message, code = jvm_failure(caught.value) or ("", 0)
    assert code == EXIT_RESOURCES and EXIT_RESOURCES in EXIT_CODES
    assert message.startswith("Spark's JVM stopped during the run")
    assert "KAUDIT_SPARK_DRIVER_MEMORY (now " in message


def test_an_out_of_memory_error_in_a_spark_error_exit_71():
    # the text PySpark gives of a job whose task ran out of heap
    exc = RuntimeError(
        "An error occurred while calling o123.save.\n: org.apache.spark.SparkException: Job "
        "aborted due to stage failure: ... java.lang.OutOfMemoryError: Java heap space"
    )
    message, code = jvm_failure(exc) or ("", 0)
    assert code == EXIT_RESOURCES
    assert message.startswith("Spark ran out of memory (java.lang.OutOfMemoryError): raise ")


def test_other_errors_stay_what_they_are():
    with pytest.raises(ConnectionRefusedError) as refused:  # not py4j's: a store's, say
        socket.create_connection(("127.0.0.1", _closed_port()), timeout=5)
    assert jvm_failure(refused.value) is None
    assert jvm_failure(ValueError("bad value")) is None


@pytest.mark.spark
def test_a_java_exception_saying_connection_refused_is_not_a_stopped_jvm(spark):
    jvm = spark.sparkContext._jvm
    with pytest.raises(Py4JJavaError) as caught:
        jvm.java.net.Socket("127.0.0.1", _closed_port())
    assert "Connection refused" in str(caught.value)
    assert jvm_failure(caught.value) is None


def test_too_little_driver_memory_is_one_line_exit_2(tmp_path):
    events = tmp_path / "one.jsonl"
    events.write_text('{"kind": "Event"}\n', encoding="utf-8")
    env = dict(os.environ, KAUDIT_SPARK_DRIVER_MEMORY="300m", TMPDIR=str(tmp_path))
    kaudit = Path(sys.executable).with_name("kaudit")
    proc = subprocess.run(
        [str(kaudit), "policy", "match", str(events)],
        capture_output=True, text=True, check=False, cwd=ROOT, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == EXIT_USAGE, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("kaudit: error:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith(
        "kaudit: error: Spark cannot start with so little driver memory: raise "
        "KAUDIT_SPARK_DRIVER_MEMORY (now 300m); details in "
    )
    # no Java or Python stack trace on the terminal; Spark's own log names the cause
    assert "Traceback" not in proc.stderr and "\tat " not in proc.stderr, proc.stderr
    spark_logs = list(tmp_path.glob("kaudit-spark-*.log"))
    assert len(spark_logs) == 1 and str(spark_logs[0]) in errors[0]
    assert "INVALID_DRIVER_MEMORY" in spark_logs[0].read_text(encoding="utf-8")


def test_an_out_of_memory_error_in_the_spark_log_names_the_cause(tmp_path, monkeypatch):
    # a local-mode JVM shutting down on an OutOfMemoryError: Python sees only what failed
    # after (a NullPointerException of the stopped context); the Spark log says why
    log = tmp_path / "kaudit-spark.log"
    log.write_text(
        "2026-12-02 11:49:22 ERROR Executor: Exception in task 11.0 in stage 6.0 (TID 62)\n"
        "java.lang.OutOfMemoryError: Java heap space\n",
        encoding="utf-8",
    )
    monkeypatch.setattr("jobs._session.spark_log_path", lambda: log)
    after = RuntimeError('java.lang.NullPointerException: Cannot invoke "...dagScheduler()"')
    message, code = jvm_failure(after) or ("", 0)
    assert code == EXIT_RESOURCES
    assert message.startswith("Spark ran out of memory (java.lang.OutOfMemoryError)")
    log.write_text("2026-12-02 11:49:22 ERROR Executor: Exception in task 1.0\n", encoding="utf-8")
    assert jvm_failure(after) is None
