"""dag.test() of the two main DAGs on a small synth week, with real local receivers.

Order matters (module-scoped state): collect/ingest first, then the planted exec alert, then
the weekly report over what was ingested.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import WEEK

MONDAY = dt.datetime(2026, 11, 22, 16, 0, tzinfo=dt.UTC)  # 2026-11-23 00:00 +08:00
HOSTILE = "id [x](http://evil.example) <b>"
PLANTED = {
    "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
    "auditID": "0b1a7c1e-0000-4000-8000-00000000e8ec", "stage": "ResponseStarted",
    "requestURI": "/api/v1/namespaces/prod/pods/web-0/exec?command=sh&command=-c"
                  "&command=id%20%5Bx%5D(http%3A%2F%2Fevil.example)%20%3Cb%3E&container=web",
    "verb": "create", "user": {"username": "mallory", "groups": ["system:authenticated"]},
    "sourceIPs": ["203.0.113.9"], "userAgent": "kubectl/v1.30.2",
    "objectRef": {"resource": "pods", "namespace": "prod", "name": "web-0", "apiVersion": "v1",
                  "subresource": "exec"},
    "responseStatus": {"metadata": {}, "code": 101},
    "requestReceivedTimestamp": "2026-11-22T15:10:00.000000Z",
    "stageTimestamp": "2026-11-22T15:10:00.100000Z",
    "annotations": {"authorization.k8s.io/decision": "allow"},
}  # fmt: skip


def _alert_posts(hook):
    return [r.json() for r in hook.requests if r.json().get("kind") == "kaudit.alerts"]


@pytest.fixture(scope="module")
def collected(spark, airflow_env):
    from jobs.demo import run_dag

    return run_dag("audit_collect_ingest", MONDAY)


@pytest.mark.slow
def test_collect_ingest_runs_every_master_and_ingests(collected, airflow_env):
    from jobs.lake.ledger import read_ledger
    from jobs.settings import Layout

    _, home, _ = airflow_env
    assert collected["state"] == "success", collected["tasks"]
    assert set(collected["tasks"]) == {
        "clusters",
        "masters",
        "collect[0]",
        "collect[1]",
        "ingest",
        "alert[0]",
    }
    assert set(collected["tasks"].values()) == {"success"}
    masters = {collected["results"][f"collect[{i}]"]["master"] for i in (0, 1)}
    assert masters == {"master-1", "master-2"}
    ingested = collected["results"]["ingest"]
    assert ingested["run_id"] and ingested["events"] > 2000
    assert {e.run_id for e in read_ledger(Layout(home))} == {ingested["run_id"]}


@pytest.mark.slow
def test_planted_exec_alerts_once_and_only_once(collected, airflow_env, receivers):
    from jobs import tasks
    from jobs.demo import run_dag

    config_path, home, tmp = airflow_env
    sink, _, hook = receivers
    before = len(_alert_posts(hook))
    # the synth week's own incidents alerted in the first run (its execs among them)
    assert before == 1
    assert any(a["detection_id"] == "exec" for a in _alert_posts(hook)[0]["alerts"])

    planted = tmp / "logs" / "master-1" / "kubernetes.audit.planted"
    planted.write_text(json.dumps(PLANTED) + "\n")
    second = run_dag("audit_collect_ingest", MONDAY + dt.timedelta(hours=1))
    assert second["state"] == "success", second["tasks"]
    run_id = second["results"]["ingest"]["run_id"]
    assert run_id and second["results"]["ingest"]["events"] == 1
    posts = _alert_posts(hook)
    assert len(posts) == before + 1
    digest = posts[-1]
    assert [(a["detection_id"], a["attributed_user"]) for a in digest["alerts"]] == [
        ("exec", "mallory")
    ]
    assert digest["alerts"][0]["command"] == "sh -c " + HOSTILE  # data, as it was
    assert "http://evil" not in digest["text"] and "<b>" not in digest["text"]
    assert "\\[x\\]" in digest["text"]  # markdown made inert
    sent_file = Path(home) / "alerts" / "sent.jsonl"
    # webhook and e-mail each recorded every alert once
    assert len(sent_file.read_text().splitlines()) == 2 * (len(posts[0]["alerts"]) + 1)
    alert_mails = [e for e in sink.envelopes if b"kaudit alert: demo" in e.content]
    assert len(alert_mails) == 2

    again = tasks.alert(str(config_path), str(home), run_id)  # the hour re-run
    assert again["alerts"] == 1 and again["channels"] == []
    third = run_dag("audit_collect_ingest", MONDAY + dt.timedelta(hours=2))  # nothing new
    assert third["results"]["ingest"]["run_id"] is None
    assert len(_alert_posts(hook)) == before + 1


@pytest.mark.slow
def test_weekly_report_ends_with_a_delivered_pdf(collected, airflow_env, receivers):
    from jobs.demo import run_dag

    _, home, _ = airflow_env
    sink, _, hook = receivers
    mails = len(sink.envelopes)
    outcome = run_dag("audit_weekly_report", MONDAY + dt.timedelta(hours=6), {"week": WEEK})
    assert outcome["state"] == "success", outcome["tasks"]
    assert set(outcome["tasks"]) == {
        "clusters",
        "build[0]",
        "validate[0]",
        "render[0]",
        "publish[0]",
    }
    published = outcome["results"]["publish[0]"]
    assert published["week"] == WEEK and published["validation_ok"] is True
    pdf = Path(published["pdf"])
    assert pdf == Path(home) / "reports" / "demo" / WEEK / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")
    assert {c["status"] for c in published["channels"]} == {"sent"}
    assert len(sink.envelopes) == mails + 1
    assert sink.envelopes[-1].rcpt_tos == ["audit@example.com"]
    reports = [r.json() for r in hook.requests if r.json().get("kind") != "kaudit.alerts"]
    assert reports and reports[-1]["title"]
