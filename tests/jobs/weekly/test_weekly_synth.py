from __future__ import annotations

import pytest

from jobs.detections.catalogue import DETECTION_IDS
from jobs.weekly import main as weekly_main

pytestmark = pytest.mark.spark

synth = pytest.importorskip("jobs.synth", reason="jobs/synth.py (synth_week, PLANTED) not there")
ingest_main = pytest.importorskip("jobs.ingest.main", reason="jobs/ingest not there")
WEEK = "2026-W47"
# Every 401 and 403: the planted ones plus the background's, whose number synth_week returns.
AUTH_FAILURES = "auth-failures"


def _expected(det):
    return [p for p in synth.PLANTED if p["observable"] and (p["id"] == det or det in p["also"])]


@pytest.fixture(scope="module")
def synth_week(spark, tmp_path_factory):
    from jobs.evidence.main import run_collect
    from jobs.geo.reader import GeoReader
    from jobs.settings import Layout, parse_config
    from jobs.synth.incidents import detections_config

    tmp = tmp_path_factory.mktemp("synth")
    written = synth.synth_week(
        tmp / "logs", week=WEEK, masters=3, events=3000, seed=11, cluster="demo"
    )
    masters = [
        {"name": f"master-{i}", "source": f"file://{tmp / 'logs' / f'master-{i}'}"}
        for i in (1, 2, 3)
    ]
    # the allow-lists and the threat list the planted counts assume (incidents.yaml `config`)
    assumed = dict(detections_config())
    threat_list = tmp / "threats.txt"
    threat_list.write_text("# planted\n" + "".join(f"{ip}\n" for ip in assumed.pop("threat_list")))
    detections = {**assumed, "threat_lists": [str(threat_list)]}
    config = parse_config(
        {
            "cluster": "demo",
            "timezone": synth.LOCAL_TZ_NAME,
            "masters": masters,
            "detections": detections,
        },
        tmp,
    )
    layout = Layout(tmp / "home")
    assert all(r.failure is None for r in run_collect(config, layout))
    ingest_main.run(spark, layout)
    summary = weekly_main.run(spark, config, layout, WEEK, geo_factory=GeoReader)
    marts = layout.marts("demo", WEEK)
    crd = spark.read.parquet(str(marts / "crd_operations")).collect()
    important = spark.read.parquet(str(marts / "important_events")).collect()
    detections = spark.read.parquet(str(marts / "detections")).collect()
    impersonation = spark.read.parquet(str(marts / "impersonation")).collect()
    return (
        summary,
        [r.asDict() for r in crd],
        {
            "written": written,
            "important": [r.asDict() for r in important],
            "detections": {r["detection_id"]: r.asDict() for r in detections},
            "impersonation": [r.asDict() for r in impersonation],
        },
    )


@pytest.mark.parametrize("det", [d for d in DETECTION_IDS if d != AUTH_FAILURES])
def test_synth_week_each_planted_incident_has_its_count(synth_week, det):
    summary, _, _ = synth_week
    planted = [p for p in synth.PLANTED if p["id"] == det or det in p["also"]]
    want = _expected(det)
    if planted and not want:
        assert summary["detections_status"][det] == "not_observable"
        assert summary["detections"][det] is None
    else:
        assert summary["detections_status"][det] == "ok"
        assert summary["detections"][det] == sum(p["count"] for p in want)


def test_synth_week_auth_failures_are_planted_plus_the_background_synth_reports(synth_week):
    summary, _, marts = synth_week
    planted = sum(p["auth_failures"] for p in synth.PLANTED)
    background = marts["written"]["background_detections"][AUTH_FAILURES]
    assert planted == 40 and background > 0
    assert summary["detections_status"][AUTH_FAILURES] == "ok"
    assert summary["detections"][AUTH_FAILURES] == planted + background


def test_synth_week_privileged_deployment_is_one_finding_written_by_its_person(synth_week):
    _, _, marts = synth_week
    row = next(p for p in synth.PLANTED if p["key"] == "privileged-deployment")
    rows = [
        r
        for r in marts["important"]
        if r["detection_id"] == "privileged-pod" and r["workload"] == "prod/Deployment/web-priv"
    ]
    assert len(rows) == row["count"] == 4
    assert {r["finding_key"] for r in rows} == {"workload:prod/Deployment/web-priv"}
    assert {r["written_by"] for r in rows} == {row["username"]}
    assert sorted(r["resource"] for r in rows) == ["deployments", "pods", "pods", "replicasets"]
    assert {r["pod"] for r in rows if r["resource"] == "pods"} == {
        "web-priv-5d7c9b8f6-k8q2w", "web-priv-5d7c9b8f6-zr7tx"
    }  # fmt: skip
    # with the planted debug pod: two privileged workloads
    assert marts["detections"]["privileged-pod"]["findings"] == 2


def test_synth_week_allow_lists_and_threat_list_name_their_findings(synth_week):
    _, _, marts = synth_week
    keys = {}
    for r in marts["important"]:
        keys.setdefault(r["detection_id"], set()).add(r["finding_key"])
    former = next(p for p in synth.PLANTED if p["key"] == "former-user")["username"]
    assert keys["disallowed-user"] == {f"user:{former}", "user:kubernetes-admin"}
    scanner = next(p for p in synth.PLANTED if p["key"] == "scanner")["source_ip"]
    assert keys["risky-source-ip"] == {f"ip:{scanner}"}
    assert {
        r["object_name"] for r in marts["important"] if r["detection_id"] == "disallowed-namespace"
    } == {"tmp-miner"}


def test_synth_week_impersonation_is_attributed_as_the_table_says(synth_week):
    _, _, marts = synth_week
    row = next(p for p in synth.PLANTED if p["key"] == "impersonate")
    assert row["attributed_to"] == ""  # the events name no person: the table claims none
    assert [(r["user_name"], r["attributed_user"], r["impersonated_user"], r["requests"])
            for r in marts["impersonation"]] == [
        (row["username"], row["username"], row["impersonated"], row["count"])
    ]  # fmt: skip


def test_synth_week_crd_operations_and_attribution(synth_week):
    summary, crd, _ = synth_week
    calico = [
        (r["verb"], r["user"])
        for r in crd
        if r["api_group"] == "crd.projectcalico.org"
        and r["verb"] in ("create", "delete")
        and not r["user"].startswith("system:")
    ]
    contractor = next(p for p in synth.PLANTED if p["key"] == "crd-create")["username"]
    assert sorted(calico) == [("create", contractor), ("delete", contractor)]
    admin = next(p for p in synth.PLANTED if p["key"] == "exec-imds")["attributed_to"]
    assert admin in {u["user"] for u in summary["users"]}
    assert summary["requests_total"] > 0 and summary["week"] == WEEK


def test_synth_week_policy_drift_is_found_on_its_master(synth_week):
    summary, _, _ = synth_week
    drift = next(p for p in synth.PLANTED if p["id"] == "policy-drift-sensitive-body")
    sensitive = [
        f
        for f in summary["policy_findings"]
        if f["check"] == "C4_RESPONSE_OBJECT_TOO_LOW" and f["severity"] == "critical"
    ]
    assert [(f["master"], f["events"]) for f in sensitive] == [(drift["master"], drift["count"])]
    mismatch = {
        f["master"]: f["events"]
        for f in summary["policy_findings"]
        if f["check"] == "C2_LEVEL_MISMATCH"
    }
    assert mismatch == {drift["master"]: drift["count"]}
    fit = {f["master"]: f for f in summary["policy_fit"]}
    assert set(fit) == {"master-1", "master-2", "master-3"}
    assert fit["master-1"]["share"] == 1.0 and fit[drift["master"]]["share"] < 1.0
