from __future__ import annotations

import datetime as dt
import itertools

import pytest

from jobs.schemas import EVENT_COLUMNS, EVENTS

# 2026-W47 is Mon 2026-11-16 .. Sun 2026-11-22; 10:00 UTC is 18:00 in Asia/Shanghai.
T0 = dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC)
_LINES = itertools.count(1)


def _event(**kw):
    """One EVENTS row as a dict, with the defaults of a successful get by a human."""
    line = next(_LINES)
    ts = kw.pop("ts", T0)
    stage = kw.get("stage", "ResponseComplete")
    audit_id = kw.get("audit_id", f"a-{line}")
    row = {
        "audit_id": audit_id,
        "stage": stage,
        "level": "Metadata",
        "verb": "get",
        "request_uri": None,
        "user_name": "alice",
        "user_uid": None,
        "user_groups": ["system:authenticated"],
        "user_extra": None,
        "impersonated_user": None,
        "impersonated_groups": None,
        "source_ips": ["10.0.0.1"],
        "user_agent": "kubectl/v1.30.2",
        "object_ref_present": True,
        "api_group": "",
        "api_version": "v1",
        "resource": "pods",
        "subresource": None,
        "namespace": "default",
        "object_name": "p1",
        "object_uid": None,
        "response_code": 200,
        "response_status": None,
        "response_reason": None,
        "response_message": None,
        "request_received_ts": ts,
        "stage_ts": ts + dt.timedelta(milliseconds=5),
        "authz_decision": "allow",
        "authz_reason": "",
        "annotations": {},
        "request_object": None,
        "response_object": None,
        "source_api_version": "audit.k8s.io/v1",
        "event_shape": "v1",
        "dedup_key": None,
        "master": "master-1",
        "evidence_sha256": "e" * 64,
        "line_no": line,
        "cluster": "c1",
        "event_date": None,
    }
    row.update(kw)
    if row["request_uri"] is None and row["object_ref_present"]:
        group = f"/apis/{row['api_group']}/v1" if row["api_group"] else "/api/v1"
        ns = f"/namespaces/{row['namespace']}" if row["namespace"] else ""
        name = f"/{row['object_name']}" if row["object_name"] else ""
        sub = f"/{row['subresource']}" if row["subresource"] else ""
        row["request_uri"] = f"{group}{ns}/{row['resource']}{name}{sub}"
    row["dedup_key"] = row["dedup_key"] or f"{row['audit_id']}/{row['stage']}"
    row["event_date"] = row["event_date"] or row["request_received_ts"].astimezone(dt.UTC).date()
    return row


@pytest.fixture(scope="session")
def make_event():
    """make_event(**overrides) -> dict row of jobs.schemas.EVENTS."""
    return _event


@pytest.fixture(scope="session")
def events_df(spark):
    """events_df(rows) -> DataFrame with the EVENTS schema."""

    def build(rows):
        return spark.createDataFrame([tuple(r[c] for c in EVENT_COLUMNS) for r in rows], EVENTS)

    return build
