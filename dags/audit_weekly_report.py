"""The weekly report of every configured cluster: build, validate, render, publish.

Schedule: `schedule.weekly_report` of the first config in `$KAUDIT_CONFIG` (Monday 06:00 in
the config's time zone by default), after the last hourly ingest of the week. Each run reports
the ISO week that ended before its logical date, or the week named by the `week` param.
Catch-up is on: past weeks since `$KAUDIT_DAG_START` are backfilled one run at a time
(`airflow backfill create --dag-id audit_weekly_report --from-date ... --to-date ...` also works).

Per cluster (each task mapped over the config files):

- **build**: audit policy check, the weekly marts and summary.json (refuses a week with no
  events unless the `allow_empty` param is set).
- **validate**: the Great Expectations data contracts (validation.json).
- **render**: the PDF report, its CSVs and manifest.
- **publish**: report directory, e-mail to the auditors, webhooks; the validation gate applies.

Task failures notify the configured webhooks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from jobs.tasks import notify_failure, schedule

SCHEDULE, START = schedule("weekly_report")


@dag(
    dag_id="audit_weekly_report",
    schedule=SCHEDULE,
    start_date=START,
    catchup=True,
    max_active_runs=1,
    tags=["kaudit", "report", "weekly"],
    doc_md=__doc__,
    default_args={
        "retries": 1,
        "retry_delay": dt.timedelta(minutes=10),
        "on_failure_callback": notify_failure,
    },
    params={
        "week": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-W\d{2}$",
            description="ISO week to report, e.g. 2026-W47 (default: the week that ended)",
        ),
        "allow_empty": Param(False, type="boolean", description="report a week with no events"),
    },
)
def audit_weekly_report() -> None:
    @task
    def clusters() -> list[str]:
        from jobs import tasks

        return list(tasks.configured()["configs"])

    @task
    def build(config_path: str) -> dict[str, Any]:
        from jobs import tasks

        context = get_current_context()
        params, run = context["params"], context["dag_run"]
        when = context.get("logical_date") or run.run_after
        week = tasks.report_week(config_path, when, params.get("week"))
        home = tasks.configured()["home"]
        return tasks.build(config_path, home, week, bool(params.get("allow_empty")))

    @task
    def validate(step: dict[str, Any]) -> dict[str, Any]:
        from jobs import tasks

        return tasks.validate(step)

    @task
    def render(step: dict[str, Any]) -> dict[str, Any]:
        from jobs import tasks

        return tasks.render(step)

    @task
    def publish(step: dict[str, Any]) -> dict[str, Any]:
        from jobs import tasks

        return tasks.publish(step)

    built = build.expand(config_path=clusters())
    publish.expand(step=render.expand(step=validate.expand(step=built)))


audit_weekly_report()
