"""The same ingest and weekly job on a real Spark standalone cluster equal local mode's results.

A master and one worker are started from the installed PySpark on 127.0.0.1; the job runs in a
subprocess against the cluster, and in the test session's own local SparkSession for the
reference, over the same small synth week. Both daemons are always stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[2]
JOB = Path(__file__).with_name("spark_job.py")
WEEK = "2026-W47"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    spark_class = Path(__import__("pyspark").__file__).parent / "bin" / "spark-class"
    return subprocess.Popen(
        [str(spark_class), *args],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _run_job(master: str, logs: Path, home: Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, str(JOB), master, str(logs), str(home), WEEK],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout


def _rows(path: Path, drop: tuple[str, ...] = ()) -> list[str]:
    """Every row of a Parquet folder as canonical JSON, sorted (file names and runs aside)."""
    table = pq.read_table(path) if path.is_file() else pq.ParquetDataset(path).read()
    keep = [c for c in table.column_names if c not in drop]
    return sorted(
        json.dumps(r, sort_keys=True, default=str) for r in table.select(keep).to_pylist()
    )


@pytest.mark.slow
def test_ingest_and_weekly_on_a_standalone_cluster_equal_local_mode(spark, tmp_path):
    from jobs import synth
    from tests.e2e import spark_job

    synth.synth_week(tmp_path / "logs", week=WEEK, masters=1, events=2000, seed=5)
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": str(ROOT),
        "SPARK_NO_DAEMONIZE": "1",
        "TZ": "UTC",
    }
    env.pop("KAUDIT_SPARK_MASTER", None)
    port, ui, worker_ui = _free_port(), _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    started = time.monotonic()
    master = _start(
        [
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui),
        ],
        tmp_path / "master.log",
        env,
    )
    worker = None
    try:
        _wait_port(port)
        worker = _start(
            [
                "org.apache.spark.deploy.worker.Worker",
                url,
                "--host",
                "127.0.0.1",
                "--cores",
                "2",
                "--memory",
                "1g",
                "--webui-port",
                str(worker_ui),
                "--work-dir",
                str(tmp_path / "work"),
            ],
            tmp_path / "worker.log",
            env,
        )
        # the reference, in this session's local mode, while the worker starts
        spark_job.run(
            spark,
            spark_job.config_for(spark.sparkContext.master, tmp_path / "logs"),
            tmp_path / "local",
            WEEK,
        )
        _wait_port(worker_ui)
        cluster_out = _run_job(url, tmp_path / "logs", tmp_path / "cluster", env)
    finally:
        for proc in (worker, master):
            if proc is not None:
                _stop(proc)
    assert f"MASTER {url}" in cluster_out
    assert "registered" in (tmp_path / "master.log").read_text().lower()
    assert spark.sparkContext.master.startswith("local")
    print(f"local + cluster runs: {time.monotonic() - started:.0f} s")

    lake = ("ingest_run_id", "run_id")
    for sub in ("events", "quarantine"):
        a, b = tmp_path / "cluster" / "lake" / sub, tmp_path / "local" / "lake" / sub
        if a.exists() or b.exists():
            assert _rows(a, lake) == _rows(b, lake), sub
    marts_a = tmp_path / "cluster" / "marts" / "demo" / WEEK
    marts_b = tmp_path / "local" / "marts" / "demo" / WEEK
    names = sorted(p.name for p in marts_a.iterdir() if p.is_dir())
    assert names == sorted(p.name for p in marts_b.iterdir() if p.is_dir()) and names
    for name in names:
        assert _rows(marts_a / name) == _rows(marts_b / name), name
    summary_a, summary_b = (
        json.loads((m / "summary.json").read_text()) for m in (marts_a, marts_b)
    )
    for s in (summary_a, summary_b):
        s.pop("provenance", None)
    assert summary_a == summary_b
