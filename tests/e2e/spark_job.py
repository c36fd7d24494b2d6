"""Collect, ingest and build the weekly marts of a synth week on one Spark master (argv)."""

import sys
from pathlib import Path

from jobs import synth
from jobs._session import get_spark
from jobs.evidence.main import run_collect
from jobs.ingest import main as ingest_main
from jobs.settings import Layout, parse_config
from jobs.weekly import main as weekly_main

master, logs, home = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
config = parse_config(
    {
        "cluster": "demo",
        "timezone": synth.LOCAL_TZ_NAME,
        "spark_master": master,
        "masters": [{"name": "master-1", "source": f"file://{logs / 'master-1'}"}],
    },
    logs,
)
layout = Layout(home)
assert all(r.failure is None for r in run_collect(config, layout))
spark = get_spark(
    "kaudit-e2e",
    config_master=config.spark_master,
    extra_conf={
        "spark.executor.memory": "512m",
        "spark.cores.max": "1",
        "spark.sql.shuffle.partitions": "2",
    },
)
print("MASTER", spark.sparkContext.master, flush=True)
result = ingest_main.run(spark, layout)
weekly_main.run(spark, config, layout, sys.argv[4])
print("RUN", result.run_id, flush=True)
spark.stop()
