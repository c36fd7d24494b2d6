from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.detections.catalogue import DETECTION_IDS
from jobs.geo.reader import GeoReader
from jobs.lake.marts import SUMMARY_FILE
from jobs.lake.runs import write_run
from jobs.settings import Layout, parse_config
from jobs.weekly.main import MART_ORDER, run

pytestmark = pytest.mark.spark

GEO = Path(__file__).resolve().parents[2] / "data" / "geo"
T0 = dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC)
REASON = 'RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "cluster-admin" to User "2712"'
SUMMARY_KEYS = {
    "summary_version",
    "cluster",
    "week",
    "timezone",
    "window",
    "requests_total",
    "events_total",
    "requests_by_verb",
    "requests_by_status_class",
    "requests_by_user_kind",
    "requests_by_day",
    "detections",
    "detections_status",
    "source_ips",
    "users",
    "crd_operations",
    "resource_operations",
    "geoip",
    "policy_findings",
    "policy_fit",
    "coverage",
    "provenance",
}


def _stable(summary):
    """The summary without the time it was generated at (the rest must repeat exactly)."""
    out = json.loads(json.dumps(summary))
    out["provenance"].pop("generated_at")
    return out


def _lake_rows(make_event):
    sweden, office = ["89.160.20.112"], ["10.0.0.7"]
    exec_request = dict(
        audit_id="exec",
        subresource="exec",
        verb="create",
        object_name="web-1",
        source_ips=sweden,
        request_uri="/api/v1/namespaces/prod/pods/web-1/exec?command=id&container=web",
    )
    return [
        make_event(**exec_request, stage="ResponseStarted", response_code=101),
        make_event(**exec_request, stage="ResponseComplete", response_code=200),
        make_event(
            audit_id="cm",
            resource="configmaps",
            verb="create",
            response_code=201,
            user_name="kubernetes-admin",
            authz_reason=REASON,
            source_ips=office,
        ),
        make_event(
            audit_id="dep",
            api_group="apps",
            resource="deployments",
            verb="patch",
            namespace="prod",
            object_name="web",
            source_ips=office,
        ),
        make_event(
            audit_id="dep-fail",
            api_group="apps",
            resource="deployments",
            verb="delete",
            response_code=403,
            source_ips=office,
        ),
        make_event(
            audit_id="crd",
            api_group="crd.projectcalico.org",
            resource="ippools",
            verb="create",
            namespace=None,
            object_name="pool",
            response_code=201,
            source_ips=office,
            user_name="bob",
        ),
        make_event(
            audit_id="imp",
            impersonated_user="system:serviceaccount:prod:deployer",
            user_name="kubernetes-admin",
            authz_reason=REASON,
            source_ips=["6.6.6.6", "10.0.0.7"],
        ),
        make_event(
            audit_id="lease",
            api_group="coordination.k8s.io",
            resource="leases",
            verb="update",
            user_name="system:node:n1",
            source_ips=["10.0.1.21"],
        ),
        make_event(
            audit_id="401",
            user_name=None,
            response_code=401,
            stage="ResponseStarted",
            source_ips=["81.2.69.142"],
            object_ref_present=False,
            api_group=None,
            resource=None,
            request_uri="/api",
        ),
        make_event(audit_id="old", ts=T0 - dt.timedelta(days=7)),  # previous week
        make_event(audit_id="other", cluster="c2"),
    ]


@pytest.fixture(scope="module")
def weekly(spark, make_event, events_df, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("weekly")
    layout = Layout(tmp / "home")
    write_run(layout, "testrun", events_df(_lake_rows(make_event)))
    config = parse_config(
        {
            "cluster": "c1",
            "timezone": "Asia/Shanghai",
            "masters": [{"name": "master-1", "source": "file:///nonexistent"}],
        },
        tmp,
    )

    def geo():
        return GeoReader(GEO / "GeoIP2-City-Test.mmdb", GEO / "GeoLite2-ASN-Test.mmdb")

    summary = run(spark, config, layout, "2026-W47", geo_factory=geo)
    out = layout.marts("c1", "2026-W47")
    marts = {
        name: [r.asDict(recursive=True) for r in spark.read.parquet(str(out / name)).collect()]
        for name in MART_ORDER
    }
    return summary, marts, out, (spark, config, layout, geo)


def test_run_weekly_summary_has_the_stable_keys(weekly):
    summary, _, out, _ = weekly
    assert set(summary) == SUMMARY_KEYS
    assert json.loads((out / SUMMARY_FILE).read_text()) == json.loads(json.dumps(summary))
    assert summary["window"] == {
        "start": "2026-11-16T00:00:00+08:00",
        "end": "2026-11-23T00:00:00+08:00",
    }
    assert (summary["requests_total"], summary["events_total"]) == (8, 9)
    assert summary["requests_by_status_class"] == {"2xx": 6, "4xx": 2}
    assert summary["requests_by_user_kind"] == {"anonymous": 1, "human": 6, "system_component": 1}
    assert list(summary["detections"]) == list(DETECTION_IDS)
    assert summary["geoip"]["database"] == "GeoIP2-City + GeoLite2-ASN"


def test_run_weekly_detections_and_observability(weekly):
    summary = weekly[0]
    assert summary["detections"]["exec"] == 1
    assert summary["detections"]["impersonation"] == 1
    assert summary["detections"]["auth-failures"] == 2  # the 401 and the 403
    # configmaps are logged at Metadata this week: no bodies, so no count at all
    assert summary["detections_status"]["configmap-credentials"] == "not_observable"
    assert summary["detections"]["configmap-credentials"] is None
    # no service writes this week: the embedded ACK policy logs them with bodies
    assert summary["detections_status"]["nodeport-service"] == "ok"
    assert summary["detections"]["nodeport-service"] == 0


def test_run_weekly_source_ips_users_and_crds(weekly):
    summary, marts, _, _ = weekly
    ips = {r["ip"]: r for r in summary["source_ips"]}
    assert ips["89.160.20.112"] == {
        "ip": "89.160.20.112",
        "requests": 1,
        "failures": 0,
        "forbidden": 0,
        "is_public": True,
        "country": "SE",
        "region": "Östergötland County",
        "city": "Linköping",
        "asn": 29518,
        "org": "Bredband2 AB",
    }
    assert ips["10.0.0.7"]["is_public"] is False and ips["10.0.0.7"]["country"] is None
    assert "6.6.6.6" not in ips  # only a claim in X-Forwarded-For
    mart = {r["ip"]: r for r in marts["source_ips"]}
    assert mart["10.0.0.7"]["claimed_chains"] == [["6.6.6.6", "10.0.0.7"]]
    assert "forwarded-chain" in mart["10.0.0.7"]["risk_flags"]
    assert (mart["81.2.69.142"]["unauthorized"], mart["81.2.69.142"]["users"]) == (
        1,
        ["(unauthenticated)"],
    )
    assert "unauthorized" in mart["81.2.69.142"]["risk_flags"]
    users = {u["user"]: u for u in marts["users"]}
    assert users["2712"]["accounts"] == ["kubernetes-admin"]
    assert users["2712"]["requests_by_resource"] == {"configmaps": 1, "pods": 1}
    assert users["2712"]["impersonated_users"] == ["system:serviceaccount:prod:deployer"]
    assert users[None]["user_kind"] == "anonymous"
    assert {"user": "2712", "kind": "human", "requests": 2} in summary["users"]
    assert summary["crd_operations"] == [
        {"group": "crd.projectcalico.org", "resource": "ippools", "verb": "create", "requests": 1}
    ]
    assert marts["impersonation"][0]["attributed_user"] == "2712"


def test_run_weekly_resource_operations_and_detail(weekly):
    summary, marts, _, _ = weekly
    compute = summary["resource_operations"]["compute"]
    assert compute["deployments"] == {"create": 0, "update": 1, "delete": 1, "read": 0}
    assert compute["pods"] == {"create": 0, "update": 0, "delete": 0, "read": 1}  # exec is not
    assert summary["resource_operations"]["storage"]["configmaps"]["create"] == 1
    assert set(summary["resource_operations"]) == {"compute", "network", "storage"}
    ops = {(r["resource"], r["operation"]): r for r in marts["resource_operations"]}
    assert ops["deployments", "delete"]["success_rate"] == 0.0
    assert ops["leases", "update"]["category"] == "other"
    detail = {
        (r["resource"], r["facet"], r["key"]): r["requests"] for r in marts["resource_detail"]
    }
    assert detail["deployments", "namespace", "prod"] == 1
    assert detail["deployments", "day", "2026-11-17"] == 2
    assert detail["ippools", "namespace", "(cluster)"] == 1
    listed = [(r["resource"], r["verb"]) for r in marts["resource_detail_operations"]]
    assert sorted(listed) == [
        ("configmaps", "create"),
        ("deployments", "delete"),
        ("deployments", "patch"),
    ]


def test_run_weekly_important_events_carry_evidence(weekly):
    _, marts, _, _ = weekly
    exec_row = next(r for r in marts["important_events"] if r["detection_id"] == "exec")
    assert (exec_row["pod"], exec_row["container"], exec_row["command"]) == ("web-1", "web", "id")
    assert exec_row["client_ip"] == "89.160.20.112" and exec_row["evidence_sha256"] == "e" * 64
    det = {r["detection_id"]: r for r in marts["detections"]}
    assert det["configmap-credentials"]["basis"].startswith("configmaps create: logged at Metadata")
    assert sorted(r["position"] for r in marts["detections"]) == list(range(len(DETECTION_IDS)))


def test_run_weekly_is_deterministic(weekly):
    summary, marts, out, (spark, config, layout, geo) = weekly
    again = run(spark, config, layout, "2026-W47", geo_factory=geo)
    assert _stable(again) == _stable(summary)
    for name in ("important_events", "users", "source_ips"):
        rows = [r.asDict(recursive=True) for r in spark.read.parquet(str(out / name)).collect()]
        assert rows == marts[name], name


def _falco_requests(spark, corpus):
    """The requests of the Falco corpus file, and their client IPs (none public)."""
    from jobs.schemas import RAW_EVENT
    from jobs.weekly.identities import select_client_ips
    from jobs.weekly.requests import summarise_requests

    path = corpus / "falco" / "falco_k8s_audit_trace_files.jsonl"
    lines_df = (
        spark.read.text(str(path))
        .withColumn("line_no", F.monotonically_increasing_id() + 1)
        .withColumns(
            {
                "j": F.from_json("value", RAW_EVENT),
                "cluster": F.lit("falco"),
                "master": F.lit("m"),
                "evidence_sha256": F.lit("f" * 64),
            }
        )
    )
    requests_df = summarise_requests(_normalize(lines_df))
    return requests_df, select_client_ips(requests_df).withColumn("is_public", F.lit(False))


def test_corpus_falco_exec_and_attach_are_found(spark, corpus):
    from jobs.detections.findings import find_important_events

    requests_df, ips_df = _falco_requests(spark, corpus)
    hits = {
        (r.detection_id, r.audit_id): r
        for r in find_important_events(requests_df, ips_df)
        .filter(F.col("detection_id").isin("exec", "attach"))
        .collect()
    }
    exec_row = hits["exec", "ca1ed9f4-7bf4-4c85-81a8-1b11253d1ba6"]
    assert (exec_row.pod, exec_row.container, exec_row.command, exec_row.response_code) == (
        "nginx-deployment-7998647bdf-phvq7",
        "nginx1",
        "bash",
        101,
    )
    attach_row = hits["attach", "14933b4e-7b09-4964-af09-b7987367e1ba"]
    assert (attach_row.user_name, attach_row.client_ip) == ("minikube-user", "192.168.99.1")
    assert {d for d, _ in hits} == {"exec", "attach"} and len(hits) == 2


def test_important_events_are_cached_in_few_partitions_with_the_same_rows(spark, corpus):
    # each task reading the cache deserialises the whole lineage: the union of a dozen
    # detection passes had a partition per pass and per scan split, most of them empty
    from jobs.config import DetectionsConfig
    from jobs.detections.findings import detection_requests, important_events_from
    from jobs.weekly.main import IMPORTANT_PARTITIONS_PER_CORE, in_few_partitions

    requests_df, ips_df = _falco_requests(spark, corpus)
    config = DetectionsConfig()
    # cached, as the weekly run caches it (the dozen passes then read it, not the JSON)
    scoped_df = detection_requests(requests_df, ips_df, config).persist()
    try:
        every_df = important_events_from(scoped_df, config)
        parts = every_df.rdd.getNumPartitions()
        assert parts > 2  # a partition per pass (1.5 M week: 68)
        rows = sorted(map(repr, every_df.collect()))
        assert rows  # exec and attach
        few_df = in_few_partitions(every_df, partitions=2)
        assert few_df.rdd.getNumPartitions() == 2
        assert sorted(map(repr, few_df.collect())) == rows
        limit = IMPORTANT_PARTITIONS_PER_CORE * spark.sparkContext.defaultParallelism
        assert in_few_partitions(every_df).rdd.getNumPartitions() == min(parts, limit)
    finally:
        scoped_df.unpersist()


def _normalize(lines_df):
    try:
        from jobs.ingest.transforms import normalize_events
    except ImportError:  # the lake normalizer is not there: the few fields the test needs
        normalize_events = None
    if normalize_events is not None:
        return normalize_events(lines_df)
    j, ref = F.col("j"), F.col("j.objectRef")
    received = F.coalesce(j["requestReceivedTimestamp"], j["timestamp"]).try_cast("timestamp")
    return lines_df.select(
        j["auditID"].alias("audit_id"),
        j["stage"].alias("stage"),
        j["level"].alias("level"),
        j["verb"].alias("verb"),
        j["requestURI"].alias("request_uri"),
        j["user"]["username"].alias("user_name"),
        j["user"]["groups"].alias("user_groups"),
        j["impersonatedUser"]["username"].alias("impersonated_user"),
        j["impersonatedUser"]["groups"].alias("impersonated_groups"),
        j["sourceIPs"].alias("source_ips"),
        j["userAgent"].alias("user_agent"),
        ref.isNotNull().alias("object_ref_present"),
        F.when(ref.isNotNull(), F.coalesce(ref["apiGroup"], F.lit(""))).alias("api_group"),
        ref["apiVersion"].alias("api_version"),
        ref["resource"].alias("resource"),
        ref["subresource"].alias("subresource"),
        ref["namespace"].alias("namespace"),
        ref["name"].alias("object_name"),
        j["responseStatus"]["code"].try_cast("int").alias("response_code"),
        j["responseStatus"]["reason"].alias("response_reason"),
        received.alias("request_received_ts"),
        j["stageTimestamp"].try_cast("timestamp").alias("stage_ts"),
        j["annotations"]["authorization.k8s.io/decision"].alias("authz_decision"),
        j["annotations"]["authorization.k8s.io/reason"].alias("authz_reason"),
        j["requestObject"].alias("request_object"),
        F.lit(None).cast("string").alias("dedup_key"),
        "master",
        "evidence_sha256",
        "line_no",
        "cluster",
    )


def test_report_cli_rejects_a_bad_week_before_starting_spark(tmp_path):
    from click.testing import CliRunner

    from jobs.cli import main

    config = tmp_path / "c.yaml"
    config.write_text("cluster: c1\ntimezone: UTC\nmasters: [{name: m, source: 'file:///x'}]\n")
    result = CliRunner().invoke(main, ["report", "--config", str(config), "--week", "2026-47"])
    assert result.exit_code == 2 and "YYYY-Www" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: c1\nbogus: 1\n")
    result = CliRunner().invoke(main, ["report", "--config", str(bad), "--week", "2026-W47"])
    assert result.exit_code == 2 and "bogus" in result.output  # a bad config is bad usage


def test_marts_read_back_without_spark_equal_what_spark_reads(weekly):
    from jobs.lake.marts import read_mart_rows, read_summary

    summary, marts, out, _ = weekly
    assert _stable(read_summary(out)) == _stable(summary)
    rows = read_mart_rows(out, "important_events")
    assert [r["audit_id"] for r in rows] == [r["audit_id"] for r in marts["important_events"]]
    exec_row = next(r for r in rows if r["detection_id"] == "exec")
    assert exec_row["request_received_ts"] == T0  # aware UTC, the same instant
    with pytest.raises(FileNotFoundError):
        read_mart_rows(out, "no_such_mart")


def test_run_weekly_overview_has_hour_rows_that_add_up(weekly):
    overview = weekly[1]["overview"]
    total = next(r for r in overview if r["dimension"] == "total")
    hours = [r for r in overview if r["dimension"] == "hour"]
    assert hours and all(len(r["key"]) == len("2026-11-17 18") for r in hours)
    for column in ("requests", "events", "failures"):
        assert sum(r[column] for r in hours) == total[column], column
    days = {r["key"] for r in overview if r["dimension"] == "day"}
    assert {r["key"][:10] for r in hours} <= days
