"""A manual investigation: every event of an identity, IP or object over a time range.

Trigger it with params: `since` and `until` (ISO dates or times; no zone means UTC; `until`
exclusive), and any of `cluster`, `user` (also the impersonated user and the person behind
kubernetes-admin), `ip` (IP or CIDR, matched on the whole sourceIPs chain), `resource`,
`namespace`, `verb`; `out_format` is jsonl (default), csv or pdf. The filters combine with AND.

The result is written to `<home>/investigations/<run id>.<format>` with each event's evidence
file; the task's return value gives the path and the number of events.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import Param, dag, get_current_context, task

from jobs.tasks import notify_failure

_TEXT = ["null", "string"]


@dag(
    dag_id="audit_investigation",
    schedule=None,
    start_date=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
    catchup=False,
    tags=["kaudit", "investigation", "manual"],
    doc_md=__doc__,
    default_args={"retries": 0, "on_failure_callback": notify_failure},
    params={
        "since": Param(type="string", description="start, ISO date or time, inclusive"),
        "until": Param(type="string", description="end, ISO date or time, exclusive"),
        "cluster": Param(None, type=_TEXT),
        "user": Param(None, type=_TEXT),
        "ip": Param(None, type=_TEXT, description="IP or CIDR"),
        "resource": Param(None, type=_TEXT, description="e.g. pods"),
        "namespace": Param(None, type=_TEXT),
        "verb": Param(None, type=_TEXT),
        "out_format": Param("jsonl", enum=["jsonl", "csv", "pdf"]),
    },
)
def audit_investigation() -> None:
    @task
    def investigate() -> dict[str, Any]:
        from jobs import tasks

        context = get_current_context()
        params, run = context["params"], context["dag_run"]
        home = tasks.configured()["home"]
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in run.run_id)
        out = f"{home}/investigations/{name}.{params['out_format']}"
        return tasks.investigate(home, dict(params), out, run.run_after.isoformat())

    investigate()


audit_investigation()
