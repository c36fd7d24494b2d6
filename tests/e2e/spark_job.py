"""Collect, ingest and build the weekly marts of a synth week on one Spark master.

Run as a script (``spark_job.py <master> <logs> <home> <week>``) it starts its own session on
that master; the test also calls :func:`run` with its own local session, for the reference.
"""

import sys
from pathlib import Path

from jobs import synth
from jobs._session import get_spark
from jobs.config import Config
from jobs.evidence.main import run_collect
from jobs.ingest import main as ingest_main
from jobs.settings import Layout, parse_config
from jobs.weekly import main as weekly_main


def config_for(master: str, logs: Path) -> Config:
    """The synth week's one master, collected from ``logs``; Spark on ``master``."""
    return parse_config(
        {
            "cluster": "demo",
            "timezone": synth.LOCAL_TZ_NAME,
            "spark_master": master,
            "masters": [{"name": "master-1", "source": f"file://{logs / 'master-1'}"}],
        },
        logs,
    )


def run(spark, config: Config, home: Path, week: str) -> str:
    """Collect, ingest and the week's marts under ``home``; the ingest run's id."""
    layout = Layout(home)
    assert all(r.failure is None for r in run_collect(config, layout))
    result = ingest_main.run(spark, layout)
    weekly_main.run(spark, config, layout, week)
    return result.run_id


if __name__ == "__main__":
    master, logs, home, week = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    config = config_for(master, logs)
    spark = get_spark(
        "kaudit-e2e",
        config_master=config.spark_master,
        extra_conf={
            "spark.executor.memory": "512m",
            "spark.cores.max": "2",
            "spark.sql.shuffle.partitions": "2",
        },
    )
    print("MASTER", spark.sparkContext.master, flush=True)
    print("RUN", run(spark, config, home, week), flush=True)
    spark.stop()
