from __future__ import annotations

import pytest

from jobs.detections.catalogue import DETECTION_IDS
from jobs.weekly import main as weekly_main

pytestmark = pytest.mark.spark

synth = pytest.importorskip("jobs.synth", reason="jobs/synth.py (synth_week, PLANTED) not there")
ingest_main = pytest.importorskip("jobs.ingest.main", reason="jobs/ingest not there")
WEEK = "2026-W47"
# Not planted by the synth as incidents: the background has failed logins and denials.
NOT_PLANTED = {"auth-failures"}


def _expected(det):
    return [p for p in synth.PLANTED if p["observable"] and (p["id"] == det or det in p["also"])]


@pytest.fixture(scope="module")
def synth_week(spark, tmp_path_factory):
    from jobs.evidence.main import run_collect
    from jobs.geo.reader import GeoReader
    from jobs.settings import Layout, parse_config

    tmp = tmp_path_factory.mktemp("synth")
    synth.synth_week(tmp / "logs", week=WEEK, masters=3, events=3000, seed=11, cluster="demo")
    masters = [
        {"name": f"master-{i}", "source": f"file://{tmp / 'logs' / f'master-{i}'}"}
        for i in (1, 2, 3)
    ]
    config = parse_config(
        {"cluster": "demo", "timezone": synth.LOCAL_TZ_NAME, "masters": masters}, tmp
    )
    layout = Layout(tmp / "home")
    assert all(r.failure is None for r in run_collect(config, layout))
    ingest_main.run(spark, layout)
    summary = weekly_main.run(spark, config, layout, WEEK, geo_factory=GeoReader)
    crd = spark.read.parquet(str(layout.marts("demo", WEEK) / "crd_operations")).collect()
    return summary, [r.asDict() for r in crd]


@pytest.mark.parametrize("det", [d for d in DETECTION_IDS if d not in NOT_PLANTED])
def test_synth_week_each_planted_incident_has_its_count(synth_week, det):
    summary, _ = synth_week
    planted = [p for p in synth.PLANTED if p["id"] == det or det in p["also"]]
    want = _expected(det)
    if planted and not want:
        assert summary["detections_status"][det] == "not_observable"
        assert summary["detections"][det] is None
    else:
        assert summary["detections_status"][det] == "ok"
        assert summary["detections"][det] == sum(p["count"] for p in want)


def test_synth_week_crd_operations_and_attribution(synth_week):
    summary, crd = synth_week
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
    summary, _ = synth_week
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
