"""A tiny, consistent week: 3 events (3 requests) of one evidence file, and every mart.

Schemas are the marts' real ones (as written by the weekly job); rows are hand-computed from
the events, so every suite and every cross-dataset check passes on them. Tests break one
thing at a time.
"""

from __future__ import annotations

import datetime as dt

from jobs.schemas import EVENTS

UTC = dt.UTC
SHA = "a" * 64
DAY = "2026-11-16"
T0 = dt.datetime(2026, 11, 16, 10, 0, tzinfo=UTC)

MART_SCHEMAS = {
    "overview": "struct<dimension:string,key:string,requests:bigint,events:bigint,failures:bigint,distinct_users:bigint,distinct_source_ips:bigint>",
    "detections": "struct<detection_id:string,severity:string,section:string,title:string,status:string,basis:string,requests:bigint,findings:bigint,position:int>",
    "important_events": "struct<detection_id:string,severity:string,finding_key:string,request_received_ts:timestamp,day:date,user_name:string,attributed_user:string,user_kind:string,impersonated_user:string,client_ip:string,source_ips:array<string>,user_agent:string,verb:string,api_group:string,resource:string,subresource:string,namespace:string,object_name:string,request_uri:string,response_code:int,audit_id:string,request_key:string,master:string,evidence_sha256:string,line_no:bigint,pod:string,container:string,command:string>",
    "resource_operations": "struct<category:string,api_group:string,resource:string,operation:string,requests:bigint,successes:bigint,success_rate:double>",
    "resource_detail": "struct<category:string,api_group:string,resource:string,facet:string,key:string,requests:bigint,successes:bigint,success_rate:double>",
    "resource_detail_operations": "struct<request_received_ts:timestamp,day:date,category:string,api_group:string,resource:string,namespace:string,object_name:string,verb:string,operation:string,user_name:string,attributed_user:string,user_kind:string,client_ip:string,response_code:int,is_success:boolean,audit_id:string,master:string,evidence_sha256:string,line_no:bigint>",
    "source_ips": "struct<ip:string,requests:bigint,failures:bigint,unauthorized:bigint,forbidden:bigint,failure_rate:double,first_seen:timestamp,last_seen:timestamp,users:array<string>,user_count:int,claimed_chains:array<array<string>>,ip_scope:string,is_public:boolean,country:string,region:string,city:string,asn:bigint,org:string,risk_flags:array<string>>",
    "users": "struct<user:string,accounts:array<string>,user_kind:string,requests:bigint,failures:bigint,unauthorized:bigint,forbidden:bigint,first_seen:timestamp,last_seen:timestamp,source_ips:array<string>,impersonated_users:array<string>,requests_by_verb:map<string,bigint>,requests_by_resource:map<string,bigint>,requests_by_namespace:map<string,bigint>>",
    "impersonation": "struct<user_name:string,attributed_user:string,impersonated_user:string,impersonated_groups:array<string>,requests:bigint,failures:bigint,unauthorized:bigint,forbidden:bigint,first_seen:timestamp,last_seen:timestamp>",
    "crd_operations": "struct<api_group:string,resource:string,verb:string,user:string,requests:bigint,failures:bigint,first_seen:timestamp,last_seen:timestamp>",
    "policy_findings": "struct<cluster:string,master:string,rule:int,check:string,severity:string,events:bigint,requests:bigint,example_events:array<struct<audit_id:string,stage:string,evidence_sha256:string,line_no:bigint,verb:string,resource:string,namespace:string,object_name:string,user_name:string>>>",
    "policy_fit": "struct<cluster:string,master:string,events:bigint,events_matching_level:bigint,share:double,top_mismatches:array<struct<api_group:string,resource:string,expected_level:string,logged_level:string,events:bigint>>>",
}

ALICE, RS = "alice", "system:serviceaccount:kube-system:replicaset-controller"
PUBLIC_IP, PRIVATE_IP = "8.8.8.8", "10.0.0.1"


def _t(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def event(audit_id: str, line_no: int, minute: int, **fields):
    """One EVENTS row as a dict (unset columns are null)."""
    row = {f.name: None for f in EVENTS.fields}
    row.update(
        audit_id=audit_id,
        stage="ResponseComplete",
        level="Metadata",
        verb="get",
        object_ref_present=True,
        api_group="",
        resource="pods",
        namespace="default",
        user_name=ALICE,
        source_ips=[PUBLIC_IP],
        response_code=200,
        request_received_ts=_t(minute),
        stage_ts=_t(minute) + dt.timedelta(seconds=1),
        master="master-1",
        evidence_sha256=SHA,
        line_no=line_no,
        cluster="demo",
        event_date=T0.date(),
        dedup_key=f"{audit_id}/ResponseComplete",
    )
    row.update(fields)
    return row


def events_rows():
    return [
        event("a1", 1, 0),
        event("a2", 2, 1, verb="create", user_name=RS, source_ips=[PRIVATE_IP], response_code=201),
        event("a3", 3, 2, resource="secrets", response_code=403),
    ]


def events_df(spark, rows=None):
    rows = events_rows() if rows is None else rows
    return spark.createDataFrame([tuple(r[f.name] for f in EVENTS.fields) for r in rows], EVENTS)


def ledger_entries():
    return [
        {
            "evidence_sha256": SHA,
            "file": "kubernetes.audit",
            "master": "master-1",
            "cluster": "demo",
            "lines": 3,
            "events": 3,
            "duplicates": 0,
            "quarantined": 0,
            "blank": 0,
            "first_event": "2026-11-16T10:00:00Z",
            "last_event": "2026-11-16T10:02:00Z",
        }
    ]


def mart_rows():
    t = _t
    return {
        "overview": [
            ("total", "all", 3, 3, 1, 2, 2),
            ("day", DAY, 3, 3, 1, 2, 2),
            ("hour", f"{DAY} 10", 3, 3, 1, 2, 2),
            ("verb", "get", 2, 2, 1, 1, 1),
            ("verb", "create", 1, 1, 0, 1, 1),
            ("status_class", "2xx", 2, 2, 0, 2, 2),
            ("status_class", "4xx", 1, 1, 1, 1, 1),
            ("user_kind", "human", 2, 2, 1, 1, 1),
            ("user_kind", "service_account", 1, 1, 0, 1, 1),
        ],
        "detections": [
            ("secret-read-denied", "medium", "secrets", "Secret read denied", "ok", None, 1, 1, 0),
            ("exec", "high", "remote-access", "pods/exec", "ok", None, 0, 0, 1),
        ],
        "important_events": [
            (
                "secret-read-denied",
                "medium",
                None,
                t(2),
                T0.date(),
                ALICE,
                ALICE,
                "human",
                None,
                PUBLIC_IP,
                [PUBLIC_IP],
                "kubectl",
                "get",
                "",
                "secrets",
                None,
                "default",
                None,
                "/api/v1/namespaces/default/secrets",
                403,
                "a3",
                "a3",
                "master-1",
                SHA,
                3,
                None,
                None,
                None,
            ),
        ],
        "resource_operations": [
            ("compute", "", "pods", "read", 1, 1, 1.0),
            ("compute", "", "pods", "create", 1, 1, 1.0),
            ("storage", "", "secrets", "read", 1, 0, 0.0),
        ],
        "resource_detail": [
            ("compute", "", "pods", "total", "all", 2, 2, 1.0),
            ("compute", "", "pods", "namespace", "default", 2, 2, 1.0),
            ("compute", "", "pods", "day", DAY, 2, 2, 1.0),
            ("compute", "", "pods", "operation", "read", 1, 1, 1.0),
            ("compute", "", "pods", "operation", "create", 1, 1, 1.0),
            ("storage", "", "secrets", "total", "all", 1, 0, 0.0),
            ("storage", "", "secrets", "namespace", "default", 1, 0, 0.0),
            ("storage", "", "secrets", "day", DAY, 1, 0, 0.0),
            ("storage", "", "secrets", "operation", "read", 1, 0, 0.0),
        ],
        "resource_detail_operations": [
            (
                t(1),
                T0.date(),
                "compute",
                "",
                "pods",
                "default",
                None,
                "create",
                "create",
                RS,
                RS,
                "service_account",
                PRIVATE_IP,
                201,
                True,
                "a2",
                "master-1",
                SHA,
                2,
            ),
        ],
        "source_ips": [
            (
                PUBLIC_IP,
                2,
                1,
                0,
                1,
                0.5,
                t(0),
                t(2),
                [ALICE],
                1,
                [],
                "public",
                True,
                "US",
                None,
                None,
                15169,
                "Google",
                ["forbidden"],
            ),
            (
                PRIVATE_IP,
                1,
                0,
                0,
                0,
                0.0,
                t(1),
                t(1),
                [RS],
                1,
                [],
                "private",
                False,
                None,
                None,
                None,
                None,
                None,
                [],
            ),
        ],
        "users": [
            (
                ALICE,
                [ALICE],
                "human",
                2,
                1,
                0,
                1,
                t(0),
                t(2),
                [PUBLIC_IP],
                [],
                {"get": 2},
                {"pods": 1, "secrets": 1},
                {"default": 2},
            ),
            (
                RS,
                [RS],
                "service_account",
                1,
                0,
                0,
                0,
                t(1),
                t(1),
                [PRIVATE_IP],
                [],
                {"create": 1},
                {"pods": 1},
                {"default": 1},
            ),
        ],
        "impersonation": [],
        "crd_operations": [],
        "policy_findings": [],
        "policy_fit": [("demo", "master-1", 3, 3, 1.0, [])],
    }


def mart_df(spark, name, rows=None):
    return spark.createDataFrame(mart_rows()[name] if rows is None else rows, MART_SCHEMAS[name])


def marts(spark, **replace):
    """Every mart of the tiny week; ``replace`` swaps in other rows for one mart."""
    return {name: mart_df(spark, name, replace.get(name)) for name in MART_SCHEMAS}
