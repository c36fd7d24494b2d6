"""Spec §9.S: event-shape cases for the §7 checks, the real corpus, and the policy marts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pytest

pytestmark = pytest.mark.spark

ADMIN = {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
KUBE_PROXY = {"username": "system:kube-proxy", "groups": ["system:authenticated"]}
T0 = "2024-03-05T14:07:05.000002Z"
T1 = "2024-03-05T14:07:05.250000Z"
SECRET = {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "s"}, "data": {"k": "djE="}}
POD = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "p", "namespace": "default"}}
MANAGED_POD = {**POD, "metadata": {**POD["metadata"], "managedFields": [{"manager": "kubectl"}]}}


def event(verb, uri, level, *, stage="ResponseComplete", ref=None, user=ADMIN, code=200, **extra):
    """A v1 audit Event line as kube-apiserver writes it (spec §4.2)."""
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": "replaced-per-case",
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": user,
        "sourceIPs": ["10.0.0.1"],
    }
    if ref is not None:
        ev["objectRef"] = {"apiVersion": "v1", **ref}
    if stage != "RequestReceived":
        ev["responseStatus"] = {"metadata": {}, "code": code}
    ev["requestReceivedTimestamp"] = T0
    ev["stageTimestamp"] = T0 if stage == "RequestReceived" else T1
    ev.update(extra)
    return ev


def pod_ref(name=None, sub=None, ns="default", resource="pods"):
    ref = {"resource": resource, "namespace": ns}
    ref.update({k: v for k, v in (("name", name), ("subresource", sub)) if v})
    return ref


V1BETA1_LINE = json.dumps(
    {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1beta1",
        "metadata": {"creationTimestamp": "2019-01-02T03:04:06Z"},
        "level": "Request",
        "timestamp": "2019-01-02T03:04:05Z",
        "auditID": "s13",
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/pods/p",
        "verb": "get",
        "user": ADMIN,
        "objectRef": {"resource": "pods", "namespace": "default", "name": "p", "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": "2019-01-02T03:04:05.987654Z",
        "stageTimestamp": "2019-01-02T03:04:06.012345Z",
    }
)
PATCH_ANNOTATION = {"patch.webhook.admission.k8s.io/round_0_index_0": '{"configuration":"w"}'}

# id, policy ("ack" or an inline body), event, expected {check: severity}
TABLE_S = [
    (
        "S01",
        "ack",
        event(
            "watch",
            "/api/v1/endpoints?watch=true",
            "Metadata",
            user=KUBE_PROXY,
            ref={"resource": "endpoints"},
        ),
        {"C1_LOGGED_BUT_NONE": "high", "C2_LEVEL_MISMATCH": "high"},
    ),
    (
        "S02",
        "ack",
        event(
            "get",
            "/api/v1/namespaces/kube-system/secrets/s",
            "Metadata",
            ref=pod_ref("s", ns="kube-system", resource="secrets"),
            responseObject=SECRET,
        ),
        {"C4_RESPONSE_OBJECT_TOO_LOW": "critical"},
    ),
    (
        "S03",
        "ack",
        event(
            "list",
            "/api/v1/secrets",
            "Metadata",
            ref={"resource": "secrets"},
            requestObject={"kind": "ListOptions"},
        ),
        {"C3_REQUEST_OBJECT_TOO_LOW": "critical"},
    ),
    (
        "S04",
        "ack",
        event(
            "create",
            "/api/v1/namespaces/default/pods",
            "RequestResponse",
            stage="RequestReceived",
            ref=pod_ref(),
        ),
        {"C5_OMITTED_STAGE_PRESENT": "medium"},
    ),
    (
        "S05",
        "ack",
        event(
            "create",
            "/api/v1/namespaces/default/pods",
            "Request",
            ref=pod_ref("p"),
            requestObject=POD,
        ),
        {"C2_LEVEL_MISMATCH": "high"},
    ),
    (
        "S06",
        "ack",
        event(
            "watch",
            "/api/v1/pods?watch=true",
            "Request",
            stage="ResponseStarted",
            ref={"resource": "pods"},
        ),
        {},
    ),
    (
        "S07",
        "ack",
        event(
            "get",
            "/api/v1/namespaces/default/pods/p",
            "Request",
            stage="ResponseStarted",
            ref=pod_ref("p"),
        ),
        {"C8_UNEXPECTED_RESPONSESTARTED": "low"},
    ),
    (
        "S08",
        "ack",
        event(
            "get",
            "/api/v1/namespaces/default/pods/p",
            "Request",
            stage="ResponseStarted",
            ref=pod_ref("p"),
            user={},
            responseStatus={
                "metadata": {},
                "status": "Failure",
                "reason": "Unauthorized",
                "code": 401,
            },
        ),
        {},
    ),
    (
        "S09",
        "ack",
        event("get", "/metrics", "Metadata", responseObject={"text": "x"}),
        {"C6_NONRESOURCE_WITH_OBJECTS": "medium", "C4_RESPONSE_OBJECT_TOO_LOW": "high"},
    ),
    (
        "S10",
        "ack",
        event(
            "create",
            "/api/v1/namespaces/default/configmaps",
            "Metadata",
            ref=pod_ref("c", resource="configmaps"),
            annotations=PATCH_ANNOTATION,
        ),
        {"C10_PATCH_ANNOTATION_TOO_LOW": "medium"},
    ),
    (
        "S11",
        "ack",
        event(
            "get",
            "/api/v1/namespaces/default/pods/p",
            "Request",
            ref=pod_ref("p"),
            stageTimestamp="2024-03-05T14:07:05.000001Z",
        ),
        {"C11_TIMESTAMP_ORDER": "medium"},
    ),
    (
        "S12",
        "ack",
        event(
            "create",
            "/api/v1/namespaces/default/pods",
            "RequestResponse",
            ref=pod_ref("p"),
            annotations={"audit.k8s.io/truncated": "true"},
        ),
        {},
    ),
    ("S13", "ack", V1BETA1_LINE, {}),
    (
        "S14",
        "ack",
        event(
            "watch",
            "/api/v1/endpoints?watch=true",
            "Request",
            ref={"resource": "endpoints"},
            impersonatedUser={"username": "system:kube-proxy", "groups": ["system:authenticated"]},
        ),
        {},
    ),
    (
        "S15",
        "rules: [{level: Metadata}]",
        event(
            "get",
            "/api/v1/namespaces/default/pods/p",
            "Metadata",
            stage="RequestReceived",
            ref=pod_ref("p"),
            stageTimestamp=T1,
        ),
        {"C7_REQUESTRECEIVED_SHAPE": "medium"},
    ),
    # Extras for checks the S table does not reach.
    (
        "X01",
        "ack",
        event(
            "create",
            "/api/v1/namespaces/default/pods",
            "RequestResponse",
            ref=pod_ref("p"),
            responseObject=POD,
        ),
        {"C12_BODY_EXPECTED_MISSING": "info"},
    ),
    (
        "X02",
        "ack",
        event(
            "get",
            "/api/v1/namespaces/default/pods?timeout=abc",
            "Request",
            stage="ResponseStarted",
            ref=pod_ref(),
            code=400,
        ),
        {},
    ),
    (
        "X03",
        "ack",
        event(
            "create",
            "/api/v1/namespaces/default/pods/p/exec?command=sh",
            "RequestResponse",
            stage="ResponseStarted",
            ref=pod_ref("p", sub="exec"),
            code=101,
        ),
        {},
    ),
    (
        "X04",
        "ack",
        event(
            "create",
            "/api/v1/namespaces/default/serviceaccounts/sa/token",
            "Metadata",
            ref=pod_ref("sa", sub="token", resource="serviceaccounts"),
            requestObject={"kind": "TokenRequest"},
        ),
        {"C2_LEVEL_MISMATCH": "high", "C3_REQUEST_OBJECT_TOO_LOW": "critical"},
    ),
    (
        "X05",
        "omitManagedFields: true\nrules: [{level: RequestResponse}]",
        event(
            "update",
            "/api/v1/namespaces/default/pods/p",
            "RequestResponse",
            ref=pod_ref("p"),
            requestObject=MANAGED_POD,
            responseObject=MANAGED_POD,
        ),
        {"C9_MANAGED_FIELDS_NOT_OMITTED": "low"},
    ),
    (
        "X06",
        "omitManagedFields: true\nrules: [{level: RequestResponse}]",
        event(
            "patch",
            "/api/v1/namespaces/default/pods/p",
            "RequestResponse",
            ref=pod_ref("p"),
            requestObject=MANAGED_POD,
            responseObject=POD,
        ),
        {},
    ),
]


@pytest.fixture(scope="module")
def table_s_results(lines_df, ack_policy, inline_policy) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from jobs.policy.checks import with_policy_findings

    # One request per case: ingest would count a repeated (auditID, stage) as a duplicate.
    cases = [
        (cid, ev if isinstance(ev, str) else {**ev, "auditID": cid}) for cid, _, ev, _ in TABLE_S
    ]
    all_df = lines_df(cases).localCheckpoint()  # classify once, not once per policy
    parts = []
    for name in dict.fromkeys(policy for _, policy, _, _ in TABLE_S):
        policy = ack_policy if name == "ack" else inline_policy(name)
        ids = [cid for cid, p, _, _ in TABLE_S if p == name]
        parts.append(with_policy_findings(all_df.where(F.col("case_id").isin(ids)), policy))
    findings_df = parts[0]
    for part in parts[1:]:
        findings_df = findings_df.unionByName(part)
    return {row["case_id"]: row for row in findings_df.collect()}


def test_table_s_is_complete():
    assert [c[0] for c in TABLE_S if c[0].startswith("S")] == [f"S{i:02d}" for i in range(1, 16)]


@pytest.mark.parametrize(
    ("case_id", "expected"), [(c[0], c[3]) for c in TABLE_S], ids=[c[0] for c in TABLE_S]
)
def test_with_policy_findings_table_s(table_s_results, case_id, expected):
    row = table_s_results[case_id]
    assert (row["bucket"], row["reason"]) == ("event", None)
    assert {f["check"]: f["severity"] for f in row["policy_findings"]} == expected


def test_ingest_normalization_v1beta1_timestamp_is_floor_of_received(table_s_results):
    row = table_s_results["S13"]
    line = json.loads(V1BETA1_LINE)
    received = dt.datetime.fromisoformat(line["requestReceivedTimestamp"]).replace(tzinfo=None)
    assert row["request_received_ts"] == received
    assert received.replace(microsecond=0) == dt.datetime.fromisoformat(line["timestamp"]).replace(
        tzinfo=None
    )
    assert row["stage_ts"] > row["request_received_ts"]


def test_with_policy_findings_impersonation_ignored(table_s_results):
    # S14: evaluated on user, not impersonatedUser (which would match ACK rule 0 -> C1).
    row = table_s_results["S14"]
    assert row["impersonated_user"] == "system:kube-proxy"
    assert (row["policy_rule"], row["policy_level"]) == (9, "Request")


@pytest.fixture(scope="module")
def falco_secrets(corpus, spark):
    from jobs.ingest.transforms import classify_lines

    path = corpus / "falco" / "falco_k8s_audit_trace_files_superseded_versions.jsonl"
    raw = path.read_bytes()
    lines = raw.decode("utf-8").splitlines()
    rows = [
        ("cluster-a", "master-1", hashlib.sha256(raw).hexdigest(), 0, n, text)
        for n, text in enumerate(lines, 1)
    ]
    schema = (
        "cluster string, master string, evidence_sha256 string, file_order int, line_no long,"
        " value string"
    )
    classified = classify_lines(spark.createDataFrame(rows, schema), max_line_bytes=1 << 20)
    events_norm_df = classified.where("bucket = 'event'").localCheckpoint()
    return [json.loads(text) for text in lines], events_norm_df


def test_explode_policy_findings_corpus_secret_bodies_are_critical(falco_secrets, ack_policy):
    from jobs.policy.checks import explode_policy_findings

    events, events_norm_df = falco_secrets
    with_body = {
        e["auditID"]
        for e in events
        if e["objectRef"]["resource"] == "secrets"
        and e["level"] == "RequestResponse"
        and ("requestObject" in e or "responseObject" in e)
    }
    assert with_body, "the corpus file should hold RequestResponse secret events"
    findings = explode_policy_findings(events_norm_df, ack_policy).collect()
    critical = {r["audit_id"] for r in findings if r["severity"] == "critical"}
    assert critical == with_body
    for r in findings:
        if r["audit_id"] in with_body:
            assert (r["policy_rule"], r["policy_level"]) == (8, "Metadata")
    checks = {(r["audit_id"], r["check"]) for r in findings}
    assert all((aid, "C2_LEVEL_MISMATCH") in checks for aid in with_body)


def test_summarise_policy_findings_corpus(falco_secrets, ack_policy):
    from jobs.policy.checks import POLICY_FINDINGS_COLUMNS, summarise_policy_findings

    events, events_norm_df = falco_secrets
    mart_df = summarise_policy_findings(events_norm_df, ack_policy)
    assert tuple(mart_df.columns) == POLICY_FINDINGS_COLUMNS
    mart = mart_df.collect()
    received = {e["auditID"]: e["requestReceivedTimestamp"] for e in events}
    c4 = [r for r in mart if r["check"] == "C4_RESPONSE_OBJECT_TOO_LOW"]
    assert [(r["severity"], r["rule"]) for r in c4] == [("critical", 8)]
    expected_ids = {
        e["auditID"]
        for e in events
        if "responseObject" in e and e["objectRef"]["resource"] == "secrets"
    }
    assert c4[0]["events"] == c4[0]["requests"] == len(expected_ids)
    examples = c4[0]["example_events"]
    assert {x["audit_id"] for x in examples} == expected_ids
    assert [received[x["audit_id"]] for x in examples] == sorted(
        received[x["audit_id"]] for x in examples
    )
    assert all(x["evidence_sha256"] and x["line_no"] >= 1 for x in examples)


def _received(second: int | None) -> dt.datetime | None:
    return None if second is None else dt.datetime(2024, 3, 5, 14, 7, second, tzinfo=dt.UTC)


def _received_stage_rows(seconds: Sequence[int | None], requests: int) -> list[dict[str, Any]]:
    """RequestReceived events of one pod get (C5 under ACK): line i at second ``seconds[i]``,
    audit IDs r0..r<requests - 1> in turn."""
    return [
        {
            "cluster": "c", "master": "m", "audit_id": f"r{i % requests}",
            "stage": "RequestReceived", "level": "Request", "verb": "get", "user_name": "u",
            "object_ref_present": True, "api_group": "", "resource": "pods",
            "namespace": "default", "object_name": "p",
            "request_uri": "/api/v1/namespaces/default/pods/p", "request_received_ts": _received(s),
            "stage_ts": _received(s), "evidence_sha256": "e", "line_no": i,
        }
        for i, s in enumerate(seconds)
    ]  # fmt: skip


def test_summarise_policy_findings_examples_top5_ordered(events_df, ack_policy):
    from jobs.policy.checks import summarise_policy_findings

    # RequestReceived under ACK -> C5; seconds deliberately out of order, one null timestamp.
    seconds = [30, 10, None, 50, 20, 40, 5]
    rows = _received_stage_rows(seconds, requests=6)
    rows.append({"cluster": "c", "master": "m", "audit_id": None})  # all-null event
    mart_rows = summarise_policy_findings(events_df(rows), ack_policy).collect()
    assert sorted((r["check"], r["rule"]) for r in mart_rows) == [
        ("C2_LEVEL_MISMATCH", 11),
        ("C5_OMITTED_STAGE_PRESENT", 9),
    ]
    mart = {r["check"]: r for r in mart_rows}
    c5 = mart["C5_OMITTED_STAGE_PRESENT"]
    assert (c5["events"], c5["requests"], c5["rule"]) == (len(seconds), 6, 9)
    by_line = {i: s for i, s in enumerate(seconds)}
    expected_lines = sorted(
        (i for i, s in by_line.items() if s is not None), key=lambda i: by_line[i]
    )[:5]
    assert [x["line_no"] for x in c5["example_events"]] == expected_lines
    # The all-null event is a finding too: no level although the policy gives one.
    null_row = mart["C2_LEVEL_MISMATCH"]
    assert (
        null_row["events"],
        null_row["requests"],
        null_row["example_events"][0]["audit_id"],
    ) == (1, 0, None)


def test_summarise_policy_findings_many_findings_of_one_check(events_df, ack_policy):
    """A key with many findings (a scan): every one counted, the 5 earliest as examples, and
    the examples ranked per task before the shuffle (Spark's WindowGroupLimit), not in one task.
    """
    from jobs.policy.checks import summarise_policy_findings

    seconds = [(17 * i) % 59 for i in range(40)]  # out of order, some seconds twice
    rows = _received_stage_rows(seconds, requests=30)
    rows += [rows[3], rows[3]]  # the same event three times: counted three times
    mart_df = summarise_policy_findings(events_df(rows), ack_policy)
    c5 = {r["check"]: r for r in mart_df.collect()}["C5_OMITTED_STAGE_PRESENT"]
    assert (c5["events"], c5["requests"]) == (len(seconds) + 2, 30)
    ordered = sorted((s, i) for i, s in enumerate(seconds) for _ in range(3 if i == 3 else 1))
    assert [x["line_no"] for x in c5["example_events"]] == [i for _, i in ordered[:5]]
    plan = mart_df._jdf.queryExecution().executedPlan().toString()
    assert "WindowGroupLimit" in plan


def test_summarise_policy_findings_extra_findings_extension(events_df, ack_policy, spark):
    from jobs.policy.checks import FINDING_COLUMNS, summarise_policy_findings

    types = {"rule": "int", "line_no": "long", "request_received_ts": "timestamp"}
    schema = ", ".join(f"{c} {types.get(c, 'string')}" for c in FINDING_COLUMNS)
    gap = {
        "cluster": "c", "master": "m", "check": "GAP_EXAMPLE", "severity": "high",
        "audit_id": "g1", "evidence_sha256": "e", "line_no": 7,
    }  # fmt: skip
    extra = spark.createDataFrame([tuple(gap.get(c) for c in FINDING_COLUMNS)], schema)
    assert tuple(extra.columns) == FINDING_COLUMNS
    consistent = {
        "cluster": "c", "master": "m", "audit_id": "a", "stage": "ResponseComplete",
        "level": "Request", "verb": "get", "object_ref_present": True, "api_group": "",
        "resource": "pods",
        "request_uri": "/api/v1/pods",
    }  # fmt: skip
    mart = summarise_policy_findings(
        events_df([consistent]), ack_policy, extra_findings_df=extra
    ).collect()
    assert [(r["check"], r["events"], r["example_events"][0]["line_no"]) for r in mart] == [
        ("GAP_EXAMPLE", 1, 7)
    ]


def test_summarise_policy_fit_flags_master_with_other_policy(events_df, ack_policy):
    from jobs.policy.checks import POLICY_FIT_COLUMNS, summarise_policy_fit

    def ev(master, verb, resource, level, name="x"):
        return {
            "cluster": "c", "master": master, "verb": verb, "level": level, "user_name": "u",
            "object_ref_present": True, "api_group": "", "resource": resource,
            "namespace": "default", "object_name": name,
            "request_uri": f"/api/v1/namespaces/default/{resource}/{name}",
        }  # fmt: skip

    rows = [
        ev("m1", "get", "pods", "Request"),
        ev("m1", "create", "pods", "RequestResponse"),
        ev("m1", "get", "secrets", "Metadata"),
        ev("m2", "get", "secrets", "RequestResponse"),
        ev("m2", "get", "secrets", "RequestResponse", name="y"),
        ev("m2", "get", "pods", "Request"),
        ev("m2", "get", "pods", None),  # no level at all
    ]
    fit_df = summarise_policy_fit(events_df(rows), ack_policy)
    assert tuple(fit_df.columns) == POLICY_FIT_COLUMNS
    fit = {r["master"]: r for r in fit_df.collect()}
    assert (fit["m1"]["events"], fit["m1"]["events_matching_level"], fit["m1"]["share"]) == (
        3,
        3,
        1.0,
    )
    assert fit["m1"]["top_mismatches"] == []
    assert (fit["m2"]["events"], fit["m2"]["events_matching_level"]) == (4, 1)
    assert fit["m2"]["share"] == pytest.approx(0.25)
    top = [tuple(m.asDict().values()) for m in fit["m2"]["top_mismatches"]]
    assert top == [
        ("", "secrets", "Metadata", "RequestResponse", 2),
        ("", "pods", "Request", None, 1),
    ]
