"""Spec §9.A: the ACK policy (§6) against rebuilt request attributes, through the Spark Columns."""

from __future__ import annotations

from typing import Any

import pytest
from policy_requests import nonres, res

pytestmark = pytest.mark.spark

ADMIN = ("kubernetes-admin", ["system:masters", "system:authenticated"])
NODE = ("system:node:n1", ["system:nodes", "system:authenticated"])
KUBE_PROXY = ("system:kube-proxy", ["system:authenticated"])
UNSECURED = ("system:unsecured", ["system:masters", "system:authenticated"])
KUBELET = ("kubelet", ["system:authenticated"])
SCHEDULER = ("system:kube-scheduler", ["system:authenticated"])
KCM = ("system:kube-controller-manager", ["system:authenticated"])
APISERVER = ("system:apiserver", ["system:masters"])
ANONYMOUS = ("system:anonymous", ["system:unauthenticated"])
NO_USER = (None, None)  # failed authentication: "user": {}


RR = "RequestResponse"
# id, user, request, expected rule index, expected level
TABLE_A = [
    ("A01", KUBE_PROXY, res("watch", "endpoints", query="watch=true"), 0, "None"),
    ("A02", KUBE_PROXY, res("watch", "endpointslices", group="discovery.k8s.io"), 11, "Metadata"),
    ("A03", KUBE_PROXY, res("list", "services"), 9, "Request"),
    ("A04", UNSECURED, res("get", "configmaps", ns="kube-system", name="ingress-uid"), 1, "None"),
    ("A05", UNSECURED, res("get", "configmaps", ns="default", name="x"), 8, "Metadata"),
    ("A06", KUBELET, res("get", "nodes", name="n1"), 2, "None"),
    ("A07", NODE, res("get", "nodes", name="n1"), 3, "None"),
    ("A08", NODE, res("get", "nodes", name="n1", sub="status"), 9, "Request"),
    ("A09", NODE, res("patch", "nodes", name="n1", sub="status"), 10, RR),
    ("A10", NODE, res("list", "nodes"), 9, "Request"),
    (
        "A11",
        SCHEDULER,
        res("update", "endpoints", ns="kube-system", name="kube-scheduler"),
        4,
        "None",
    ),
    ("A12", SCHEDULER, res("update", "endpoints", ns="default", name="foo"), 10, RR),
    ("A13", KCM, res("patch", "endpoints", ns="kube-system", name="x"), 10, RR),
    (
        "A14",
        KCM,
        res("update", "leases", group="coordination.k8s.io", ns="kube-system", name="kcm"),
        11,
        "Metadata",
    ),
    ("A15", APISERVER, res("get", "namespaces", ns="default", name="default"), 5, "None"),
    ("A16", APISERVER, res("list", "namespaces"), 9, "Request"),
    (
        "A17",
        APISERVER,
        res("get", "namespaces", ns="default", name="default", sub="status"),
        9,
        "Request",
    ),
    ("A18", ANONYMOUS, nonres("get", "/healthz"), 6, "None"),
    ("A19", ADMIN, nonres("get", "/healthz/etcd"), 6, "None"),
    ("A20", ADMIN, nonres("get", "/healthzfoo"), 6, "None"),
    ("A21", ADMIN, nonres("get", "/livez"), 11, "Metadata"),
    ("A22", ADMIN, nonres("get", "/version?timeout=32s"), 6, "None"),
    ("A23", ADMIN, nonres("get", "/version/"), 11, "Metadata"),
    ("A24", ADMIN, nonres("get", "/swagger.json"), 6, "None"),
    ("A25", ADMIN, nonres("get", "/openapi/v2"), 11, "Metadata"),
    ("A26", ADMIN, nonres("get", "/api/v1"), 11, "Metadata"),
    ("A27", ADMIN, nonres("post", "/apis"), 11, "Metadata"),
    ("A28", NODE, res("create", "events", ns="default", name="n1.17a"), 7, "None"),
    (
        "A29",
        SCHEDULER,
        res("create", "events", group="events.k8s.io", ns="default"),
        11,
        "Metadata",
    ),
    ("A30", ADMIN, res("list", "secrets"), 8, "Metadata"),
    ("A31", ADMIN, res("watch", "configmaps", ns="kube-system"), 8, "Metadata"),
    ("A32", KCM, res("create", "tokenreviews", group="authentication.k8s.io"), 8, "Metadata"),
    (
        "A33",
        NODE,
        res("create", "serviceaccounts", ns="default", name="default", sub="token"),
        10,
        RR,
    ),
    ("A34", ADMIN, res("create", "subjectaccessreviews", group="authorization.k8s.io"), 10, RR),
    ("A35", ADMIN, res("get", "pods", ns="default", name="p"), 9, "Request"),
    ("A36", ADMIN, res("create", "pods", ns="default", name="p"), 10, RR),
    ("A37", ADMIN, res("get", "pods", ns="default", name="p", sub="log"), 9, "Request"),
    ("A38", ADMIN, res("create", "pods", ns="default", name="p", sub="exec"), 10, RR),
    ("A39", ADMIN, res("get", "pods", ns="default", name="p", sub="exec"), 9, "Request"),
    (
        "A40",
        ADMIN,
        res("delete", "ippools", group="crd.projectcalico.org", name="p1"),
        11,
        "Metadata",
    ),
    (
        "A41",
        ADMIN,
        res("get", "customresourcedefinitions", group="apiextensions.k8s.io", name="x"),
        11,
        "Metadata",
    ),
    ("A42", NO_USER, res("get", "pods", ns="default", name="p"), 9, "Request"),
    ("A43", NO_USER, nonres("get", "/healthz"), 6, "None"),
    (
        "A44",
        ADMIN,
        {**res("watch", "endpoints"), "impersonated_user": "system:kube-proxy"},
        9,
        "Request",
    ),
    ("A45", ADMIN, res("deletecollection", "pods", ns="default"), 10, RR),
    ("A46", ADMIN, res("list", "pods"), 9, "Request"),
    (
        "A47",
        ADMIN,
        res("update", "deployments", group="apps", ns="default", name="d", sub="scale"),
        10,
        RR,
    ),
    ("A48", ADMIN, res("watch", "services"), 9, "Request"),
]


@pytest.fixture(scope="module")
def table_a_results(events_df, ack_policy) -> dict[str, Any]:
    from jobs.policy.compile import with_policy_evaluation

    rows = [
        {"audit_id": cid, "user_name": user[0], "user_groups": user[1], **request}
        for cid, user, request, _, _ in TABLE_A
    ]
    evaluated = with_policy_evaluation(events_df(rows), ack_policy).collect()
    return {row["audit_id"]: row for row in evaluated}


def test_table_a_is_complete():
    assert [case[0] for case in TABLE_A] == [f"A{i:02d}" for i in range(1, 49)]


@pytest.mark.parametrize(
    ("case_id", "rule", "level"),
    [(cid, rule, level) for cid, _, _, rule, level in TABLE_A],
    ids=[case[0] for case in TABLE_A],
)
def test_with_policy_evaluation_ack_table_a(table_a_results, case_id, rule, level):
    row = table_a_results[case_id]
    assert (row["policy_rule"], row["policy_level"]) == (rule, level)
    # ACK sets omitStages policy-wide and no rule adds any (spec §6).
    assert row["policy_omit_stages"] == ["RequestReceived"]
    assert row["policy_omit_managed_fields"] is False
