"""Tiny week of marts (same schemas as the demo marts) written with pyarrow, for report tests.

A plain module, not conftest.py: ``from conftest import`` picks whichever conftest pytest
imported first when several test folders run together.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HOSTILE_HTML = '<img src="file:///etc/passwd">'
HOSTILE_FORMULA = '=HYPERLINK("http://x")'
CHINESE = "张伟"
SHA = {"m1": "a1" * 32, "m2": "b2" * 32}
TS = datetime(2026, 11, 17, 3, 0, tzinfo=UTC)
s, i64, i32, f64, b, ts = (
    pa.string(),
    pa.int64(),
    pa.int32(),
    pa.float64(),
    pa.bool_(),
    pa.timestamp("us", tz="UTC"),
)

# Schemas as read from the demo week's marts (2026-W47); nested columns kept where used.
SCHEMAS = {
    "detections": [
        ("detection_id", s),
        ("severity", s),
        ("section", s),
        ("title", s),
        ("status", s),
        ("basis", s),
        ("requests", i64),
        ("findings", i64),
        ("position", i32),
    ],
    "overview": [
        ("dimension", s),
        ("key", s),
        ("requests", i64),
        ("events", i64),
        ("failures", i64),
        ("distinct_users", i64),
        ("distinct_source_ips", i64),
    ],
    "important_events": [
        ("detection_id", s),
        ("severity", s),
        ("finding_key", s),
        ("request_received_ts", ts),
        ("day", pa.date32()),
        ("user_name", s),
        ("attributed_user", s),
        ("user_kind", s),
        ("impersonated_user", s),
        ("client_ip", s),
        ("source_ips", pa.list_(s)),
        ("user_agent", s),
        ("verb", s),
        ("api_group", s),
        ("resource", s),
        ("subresource", s),
        ("namespace", s),
        ("object_name", s),
        ("request_uri", s),
        ("response_code", i32),
        ("audit_id", s),
        ("request_key", s),
        ("master", s),
        ("evidence_sha256", s),
        ("line_no", i64),
        ("pod", s),
        ("container", s),
        ("command", s),
    ],
    "users": [
        ("user", s),
        ("accounts", pa.list_(s)),
        ("user_kind", s),
        ("requests", i64),
        ("failures", i64),
        ("unauthorized", i64),
        ("forbidden", i64),
        ("first_seen", ts),
        ("last_seen", ts),
        ("source_ips", pa.list_(s)),
        ("impersonated_users", pa.list_(s)),
        ("requests_by_verb", pa.map_(s, i64)),
    ],
    "source_ips": [
        ("ip", s),
        ("requests", i64),
        ("failures", i64),
        ("unauthorized", i64),
        ("forbidden", i64),
        ("failure_rate", f64),
        ("first_seen", ts),
        ("last_seen", ts),
        ("users", pa.list_(s)),
        ("user_count", i32),
        ("ip_scope", s),
        ("is_public", b),
        ("country", s),
        ("region", s),
        ("city", s),
        ("asn", i64),
        ("org", s),
        ("risk_flags", pa.list_(s)),
    ],
    "resource_operations": [
        ("category", s),
        ("api_group", s),
        ("resource", s),
        ("operation", s),
        ("requests", i64),
        ("successes", i64),
        ("success_rate", f64),
    ],
    "resource_detail": [
        ("category", s),
        ("api_group", s),
        ("resource", s),
        ("facet", s),
        ("key", s),
        ("requests", i64),
        ("successes", i64),
        ("success_rate", f64),
    ],
    "resource_detail_operations": [
        ("request_received_ts", ts),
        ("day", pa.date32()),
        ("category", s),
        ("api_group", s),
        ("resource", s),
        ("namespace", s),
        ("object_name", s),
        ("verb", s),
        ("operation", s),
        ("user_name", s),
        ("attributed_user", s),
        ("user_kind", s),
        ("client_ip", s),
        ("response_code", i32),
        ("is_success", b),
        ("audit_id", s),
        ("master", s),
        ("evidence_sha256", s),
        ("line_no", i64),
    ],
    "crd_operations": [
        ("api_group", s),
        ("resource", s),
        ("verb", s),
        ("user", s),
        ("requests", i64),
        ("failures", i64),
        ("first_seen", ts),
        ("last_seen", ts),
    ],
    "impersonation": [
        ("user_name", s),
        ("attributed_user", s),
        ("impersonated_user", s),
        ("impersonated_groups", pa.list_(s)),
        ("requests", i64),
        ("failures", i64),
        ("unauthorized", i64),
        ("forbidden", i64),
        ("first_seen", ts),
        ("last_seen", ts),
    ],
    "policy_findings": [
        ("cluster", s),
        ("master", s),
        ("rule", i32),
        ("check", s),
        ("severity", s),
        ("events", i64),
        ("requests", i64),
    ],
    "policy_fit": [
        ("cluster", s),
        ("master", s),
        ("events", i64),
        ("events_matching_level", i64),
        ("share", f64),
    ],
}


def _event(det: str, user: str, **kw):
    row = dict.fromkeys(name for name, _ in SCHEMAS["important_events"])
    row.update(
        detection_id=det,
        severity="high",
        request_received_ts=TS,
        day=date(2026, 11, 17),
        user_name=user,
        attributed_user=user,
        user_kind="human",
        client_ip="45.135.232.19",
        source_ips=["45.135.232.19"],
        verb="create",
        resource="pods",
        subresource="exec",
        namespace="prod",
        object_name="web-1",
        response_code=101,
        audit_id="a1",
        request_key="a1",
        master="m1",
        evidence_sha256=SHA["m1"],
        line_no=7,
        **kw,
    )
    return row


ROWS = {
    "detections": [
        {
            "detection_id": "exec",
            "severity": "high",
            "section": "remote-access",
            "title": "Command executed in a container (pods/exec)",
            "status": "ok",
            "basis": None,
            "requests": 2,
            "findings": 2,
            "position": 0,
        },
        {
            "detection_id": "configmap-credentials",
            "severity": "high",
            "section": "secrets",
            "title": "Credentials written to a ConfigMap",
            "status": "not_observable",
            "basis": "configmaps create: logged at Metadata",
            "requests": None,
            "findings": 0,
            "position": 1,
        },
        {
            "detection_id": "secret-write",
            "severity": "medium",
            "section": "secrets",
            "title": "Secret written",
            "status": "ok",
            "basis": None,
            "requests": 0,
            "findings": 0,
            "position": 2,
        },
    ],
    "overview": [
        {
            "dimension": d,
            "key": k,
            "requests": n,
            "events": n,
            "failures": f,
            "distinct_users": 2,
            "distinct_source_ips": 2,
        }
        for d, k, n, f in [
            ("day", "2026-11-16", 40, 2),
            ("day", "2026-11-17", 30, 20),
            ("hour", "2026-11-16 10", 40, 2),
            ("hour", "2026-11-17 03", 30, 20),
            ("verb", "create", 50, 20),
            ("verb", "get", 20, 2),
            ("user_kind", "human", 70, 22),
            ("status_class", "2xx", 48, 0),
            ("status_class", "4xx", 22, 22),
            ("total", "all", 70, 22),
        ]
    ],
    "important_events": [
        _event("exec", HOSTILE_HTML),
        _event("exec", CHINESE, command=HOSTILE_FORMULA),
    ],
    "users": [
        {
            "user": HOSTILE_HTML,
            "accounts": [HOSTILE_HTML],
            "user_kind": "human",
            "requests": 30,
            "failures": 20,
            "unauthorized": 0,
            "forbidden": 20,
            "first_seen": TS,
            "last_seen": TS,
            "source_ips": ["45.135.232.19"],
            "impersonated_users": [],
            "requests_by_verb": [("create", 30)],
        },
        {
            "user": HOSTILE_FORMULA,
            "accounts": [HOSTILE_FORMULA],
            "user_kind": "human",
            "requests": 20,
            "failures": 0,
            "unauthorized": 0,
            "forbidden": 0,
            "first_seen": TS,
            "last_seen": TS,
            "source_ips": ["10.0.0.1"],
            "impersonated_users": [],
            "requests_by_verb": [("get", 20)],
        },
        {
            "user": CHINESE,
            "accounts": [CHINESE, "kubernetes-admin"],
            "user_kind": "human",
            "requests": 20,
            "failures": None,
            "unauthorized": None,
            "forbidden": None,
            "first_seen": TS,
            "last_seen": TS,
            "source_ips": ["10.0.0.1"],
            "impersonated_users": [],
            "requests_by_verb": None,
        },
    ],
    "source_ips": [
        {
            "ip": "45.135.232.19",
            "requests": 30,
            "failures": 20,
            "unauthorized": 0,
            "forbidden": 20,
            "failure_rate": 0.6667,
            "first_seen": TS,
            "last_seen": TS,
            "users": [HOSTILE_HTML],
            "user_count": 1,
            "ip_scope": "public",
            "is_public": True,
            "country": "DE",
            "region": "Hesse",
            "city": "Frankfurt am Main",
            "asn": 62300,
            "org": "Address Limited",
            "risk_flags": ["public-failure-rate"],
        },
        {
            "ip": "10.0.0.1",
            "requests": 40,
            "failures": 2,
            "unauthorized": 0,
            "forbidden": 0,
            "failure_rate": 0.05,
            "first_seen": TS,
            "last_seen": TS,
            "users": [CHINESE],
            "user_count": 1,
            "ip_scope": "private",
            "is_public": False,
            "country": None,
            "region": None,
            "city": None,
            "asn": None,
            "org": None,
            "risk_flags": [],
        },
    ],
    "resource_operations": [
        {
            "category": "compute",
            "api_group": "",
            "resource": "pods",
            "operation": op,
            "requests": n,
            "successes": n,
            "success_rate": 1.0,
        }
        for op, n in [("create", 2), ("read", 30), ("delete", 1)]
    ],
    "resource_detail": [
        {
            "category": "compute",
            "api_group": "",
            "resource": "pods",
            "facet": f,
            "key": k,
            "requests": n,
            "successes": n,
            "success_rate": 1.0,
        }
        for f, k, n in [
            ("total", "all", 33),
            ("namespace", "prod", 33),
            ("day", "2026-11-16", 20),
            ("day", "2026-11-17", 13),
        ]
    ],
    "resource_detail_operations": [
        {
            "request_received_ts": TS,
            "day": date(2026, 11, 17),
            "category": "compute",
            "api_group": "",
            "resource": "pods",
            "namespace": "prod",
            "object_name": HOSTILE_FORMULA,
            "verb": "delete",
            "operation": "delete",
            "user_name": CHINESE,
            "attributed_user": CHINESE,
            "user_kind": "human",
            "client_ip": "10.0.0.1",
            "response_code": 200,
            "is_success": True,
            "audit_id": "a2",
            "master": "m2",
            "evidence_sha256": SHA["m2"],
            "line_no": 3,
        }
    ],
    "crd_operations": [
        {
            "api_group": "cert-manager.io",
            "resource": "certificates",
            "verb": "get",
            "user": HOSTILE_HTML,
            "requests": 3,
            "failures": 0,
            "first_seen": TS,
            "last_seen": TS,
        }
    ],
    "impersonation": [
        {
            "user_name": "kubernetes-admin",
            "attributed_user": CHINESE,
            "impersonated_user": "system:serviceaccount:prod:deployer",
            "impersonated_groups": ["system:authenticated"],
            "requests": 3,
            "failures": 0,
            "unauthorized": 0,
            "forbidden": 0,
            "first_seen": TS,
            "last_seen": TS,
        }
    ],
    "policy_findings": [
        {
            "cluster": "t",
            "master": "m1",
            "rule": 8,
            "check": "C2_LEVEL_MISMATCH",
            "severity": "high",
            "events": 5,
            "requests": 5,
        }
    ],
    "policy_fit": [
        {"cluster": "t", "master": "m1", "events": 40, "events_matching_level": 40, "share": 1.0},
        {
            "cluster": "t",
            "master": "m2",
            "events": 30,
            "events_matching_level": 29,
            "share": 0.9667,
        },
    ],
}

EVIDENCE = [
    {
        "master": m,
        "file": f"kubernetes-{m}.audit",
        "evidence_sha256": SHA[m],
        "first_event": "2026-11-16T01:00:00Z",
        "last_event": "2026-11-20T01:00:00Z",
        "lines": 40,
        "events": 40,
        "quarantined": 0,
    }
    for m in ("m1", "m2")
]


def _write_marts(week_dir: Path, rows: dict[str, list[dict]]) -> None:
    for name, cols in SCHEMAS.items():
        schema = pa.schema(cols)
        (week_dir / name).mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(rows.get(name, []), schema=schema)
        pq.write_table(table, week_dir / name / "part-00000.parquet")


def write_empty_week(week_dir: Path) -> Path:
    """Every mart with no row, and the summary.json of a week without any event."""
    _write_marts(week_dir, {})
    summary = {
        "cluster": "t",
        "week": "2026-W47",
        "timezone": "Asia/Shanghai",
        "summary_version": 1,
        "window": {"start": "2026-11-16T00:00:00+08:00", "end": "2026-11-23T00:00:00+08:00"},
        "requests_total": 0,
        "events_total": 0,
        "requests_by_status_class": {},
        "detections": {"exec": 0, "configmap-credentials": None},
        "detections_status": {"exec": "ok", "configmap-credentials": "not_observable"},
        "source_ips": [],
        "users": [],
        "coverage": {
            "complete": False,
            "events": 0,
            "hours_in_week": 168,
            "gaps": [
                {
                    "master": m,
                    "start": "2026-11-15T16:00:00+00:00",
                    "end": "2026-11-22T16:00:00+00:00",
                    "hours": 168,
                    "cause": "master never collected",
                }
                for m in ("m1", "m2")
            ],
        },
        "provenance": {"custody_head": None},
    }
    (week_dir / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return week_dir


def write_week(week_dir: Path) -> Path:
    """Write the tiny marts and summary.json into ``week_dir``; returns it."""
    _write_marts(week_dir, ROWS)
    summary = {
        "cluster": "t",
        "week": "2026-W47",
        "timezone": "Asia/Shanghai",
        "summary_version": 1,
        "window": {"start": "2026-11-16T00:00:00+08:00", "end": "2026-11-23T00:00:00+08:00"},
        "requests_total": 70,
        "events_total": 70,
        "requests_by_status_class": {"2xx": 48, "4xx": 22},
        "detections": {"exec": 2, "configmap-credentials": None, "secret-write": 0},
        "detections_status": {
            "exec": "ok",
            "configmap-credentials": "not_observable",
            "secret-write": "ok",
        },
        "source_ips": [{"ip": "45.135.232.19", "requests": 30, "is_public": True}],
        "users": [{"user": CHINESE, "requests": 20}],
        "geoip": {"attribution": "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"},
    }
    (week_dir / "summary.json").write_text(
        json.dumps(summary, ensure_ascii=False), encoding="utf-8"
    )
    return week_dir


def render_kwargs(language: str = "en", **over):
    kw = dict(
        cluster="t",
        week="2026-W47",
        timezone="Asia/Shanghai",
        language=language,
        evidence=EVIDENCE,
        policy={"source": "embedded ACK policy", "sha256": "c3" * 32},
        validation=None,
        previous_summary=None,
        code_version="0.1.0",
        config_sha256="d4" * 32,
        generated_at=datetime(2026, 11, 30, 10, 0, tzinfo=UTC),
    )
    kw.update(over)
    return kw
