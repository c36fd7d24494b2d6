"""Collect the audit logs of every master, ingest them into the lake, alert on what is new.

Schedule: `schedule.collect_ingest` of the first config in `$KAUDIT_CONFIG` (hourly by default).

- **masters**: one collect target per master of each configured cluster.
- **collect** (mapped, one task per master): copies new audit files into the evidence store
  and records custody. One master failing fails only its own task.
- **ingest** (runs once every collect is done, failed or not): every pending evidence file
  into the Parquet lake as one committed run; marks the `kaudit_events` asset updated.
- **alert** (mapped, one task per cluster): the alerting detections (exec, attach, public-IP
  failure rate, anonymous allowed, cluster-admin binding, plus `detections.alert`) on the new
  run's events only; one digest to the webhooks (and e-mail), each alert sent once.

Environment: `KAUDIT_CONFIG` (config files, ':'-separated), `KAUDIT_HOME` (the kaudit home),
`KAUDIT_SPARK_MASTER` (optional Spark master). Task failures notify the configured webhooks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Asset, dag, task

from jobs.settings import dag_settings
from jobs.tasks import notify_failure, schedule

SCHEDULE, START = schedule("collect_ingest")
EVENTS = Asset(name="kaudit_events", uri=f"file://{dag_settings().home}/lake/events")


@dag(
    dag_id="audit_collect_ingest",
    schedule=SCHEDULE,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    tags=["kaudit", "collect", "ingest", "alerts"],
    doc_md=__doc__,
    default_args={
        "retries": 2,
        "retry_delay": dt.timedelta(minutes=2),
        "on_failure_callback": notify_failure,
    },
)
def audit_collect_ingest() -> None:
    @task
    def masters() -> list[dict[str, str]]:
        from jobs import tasks

        home = tasks.configured()["home"]
        return [{**t, "home": home} for t in tasks.masters(tasks.configured()["configs"])]

    @task(map_index_template="{{ target.master }}")
    def collect(target: dict[str, str]) -> dict[str, Any]:
        from jobs import tasks

        return tasks.collect(target["config"], target["home"], target["master"])

    @task(trigger_rule="all_done", outlets=[EVENTS])
    def ingest() -> dict[str, Any]:
        from jobs import tasks

        where = tasks.configured()
        return tasks.ingest(where["configs"][0], where["home"])

    @task
    def clusters() -> list[str]:
        from jobs import tasks

        return list(tasks.configured()["configs"])

    @task
    def alert(config_path: str, ingested: dict[str, Any]) -> dict[str, Any]:
        from jobs import tasks

        return tasks.alert(config_path, tasks.configured()["home"], ingested["run_id"])

    collected = collect.expand(target=masters())
    ingested = ingest()
    collected >> ingested
    alert.partial(ingested=ingested).expand(config_path=clusters())


audit_collect_ingest()
