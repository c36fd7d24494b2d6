"""Spec §9.G: generic matching edge cases, each with its own inline policy (plus X extras)."""

from __future__ import annotations

from functools import partial
from typing import Any

import policy_requests
import pytest

pytestmark = pytest.mark.spark

ADMIN = {"user_name": "kubernetes-admin", "user_groups": ["system:masters", "system:authenticated"]}
ANONYMOUS = {"user_name": "system:anonymous", "user_groups": ["system:unauthenticated"]}
NO_USER = {"user_name": None, "user_groups": None}


# every request of this table is made by ADMIN unless it says otherwise
res = partial(policy_requests.res, user=ADMIN)
nonres = partial(policy_requests.nonres, user=ADMIN)


STAR_A = (
    'rules: [{level: Metadata, resources: [{group: "", resources: ["*"], resourceNames: [a]}]}]'
)
NS_EMPTY = 'rules: [{level: Metadata, namespaces: [""]}]'
OMF = """omitManagedFields: true
rules:
- {level: Metadata, users: [a], omitManagedFields: false}
- {level: Request}
"""
UPDATE_SCALE = res("update", "deployments", group="apps", ns="default", name="d", sub="scale")
GET_POD = res("get", "pods", ns="default", name="p")
USER_A = {"user_name": "a", "user_groups": ["system:authenticated"]}

# id, policy body, request, expected (rule index or None, level, effective omitStages)
TABLE_G = [
    (
        "G01",
        'rules: [{level: Request, resources: [{group: "", resources: ["pods/*"]}]}]',
        GET_POD,
        (0, "Request", []),
    ),
    (
        "G02",
        'rules: [{level: Request, resources: [{group: "", resources: ["pods/log"]}]}]',
        GET_POD,
        (None, "None", []),
    ),
    (
        "G03",
        'rules: [{level: Request, resources: [{group: "", resources: ["*/scale"]}]}]',
        UPDATE_SCALE,
        (None, "None", []),
    ),
    (
        "G04",
        "rules: [{level: Request, resources: [{group: apps, resources: ['*/scale']}]}]",
        UPDATE_SCALE,
        (0, "Request", []),
    ),
    ("G05", STAR_A, res("list", "configmaps", ns="default"), (None, "None", [])),
    (
        "G06",
        STAR_A,
        res("list", "configmaps", ns="default", name="a", query="fieldSelector=metadata.name%3Da"),
        (0, "Metadata", []),
    ),
    (
        "G07",
        "rules: [{level: Metadata, resources: [{resources: [configmaps], resourceNames: [a]}]}]",
        res("create", "configmaps", ns="default", name="a"),
        (None, "None", []),
    ),
    ("G08", NS_EMPTY, res("get", "namespaces", ns="foo", name="foo"), (None, "None", [])),
    ("G09", NS_EMPTY, res("list", "pods"), (0, "Metadata", [])),
    (
        "G10",
        "rules: [{level: Metadata, namespaces: [default]}]",
        nonres("get", "/healthz"),
        (None, "None", []),
    ),
    ("G11", "rules: [{level: Metadata, nonResourceURLs: ['*']}]", GET_POD, (None, "None", [])),
    (
        "G12",
        "rules: [{level: Metadata, nonResourceURLs: ['/api/*']}]",
        nonres("get", "/api"),
        (None, "None", []),
    ),
    ("G13", "rules: [{level: Metadata, verbs: ['*']}]", GET_POD, (None, "None", [])),
    (
        "G14",
        "rules: [{level: Metadata, userGroups: ['system:unauthenticated']}]",
        res("get", "pods", ns="default", name="p", user=NO_USER),
        (None, "None", []),
    ),
    (
        "G15",
        "omitStages: [RequestReceived]\nrules: [{level: Request, omitStages: [ResponseStarted]}]",
        res("watch", "pods", ns="default"),
        (0, "Request", ["RequestReceived", "ResponseStarted"]),
    ),
    (
        "G16",
        "omitStages: [Panic]\nrules: [{level: Request, users: [nobody]}]",
        res("watch", "pods"),
        (None, "None", ["Panic"]),
    ),
    (
        "G17",
        "rules: [{level: RequestResponse, resources: [{group: '*', resources: ['*/status']}]}]",
        res("update", "clusterroles", group="rbac.authorization.k8s.io", name="r", sub="status"),
        (0, "RequestResponse", []),
    ),
    (
        "G18",
        'rules: [{level: Metadata, resources: [{group: "", resources: [pods]}]}]',
        res("get", "pods", ns="default", name="p", sub="status"),
        (None, "None", []),
    ),
    (
        "G19",
        'rules: [{level: Metadata, resources: [{group: ""}]}]',
        res("create", "serviceaccounts", ns="default", name="sa", sub="token"),
        (0, "Metadata", []),
    ),
    # Extras: the anonymous counterpart of G14, and the §1.5 attribute rebuild.
    (
        "X01",
        "rules: [{level: Metadata, userGroups: ['system:unauthenticated']}]",
        res("get", "pods", ns="default", name="p", user=ANONYMOUS),
        (0, "Metadata", []),
    ),
    (
        "X02",
        "rules: [{level: Metadata, nonResourceURLs: ['/a+b']}]",
        nonres("get", "/a+b"),
        (0, "Metadata", []),
    ),
    (
        "X03",
        "rules: [{level: Metadata, nonResourceURLs: ['/a b/c']}]",
        nonres("get", "/a%20b%2Fc?x=%2F"),
        (0, "Metadata", []),
    ),
    (
        "X04",
        "rules: [{level: Request, resources: [{group: apps, resources: ['*/scale']}]}]",
        res("get", "deployments", group="apps", ns="default", name="d"),
        (None, "None", []),
    ),
    (
        "X05",
        "rules: [{level: Metadata, resources: [{resources: [pods], resourceNames: [p]}]}]",
        res("get", "pods", ns="default", name="p", sub="log"),
        (None, "None", []),
    ),
]

# Expected omitManagedFields for the policies that set it; False elsewhere.
TABLE_OMF = [
    ("X06", OMF, {**GET_POD, **USER_A}, (0, "Metadata", False)),
    ("X07", OMF, GET_POD, (1, "Request", True)),
]


@pytest.fixture(scope="module")
def table_g_results(events_df, inline_policy) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from jobs.policy.compile import (
        policy_level,
        policy_omit_managed_fields,
        policy_omit_stages,
        policy_rule_index,
    )

    verdict = None
    for cid, body, _, _ in TABLE_G + TABLE_OMF:
        policy = inline_policy(body)
        rule = policy_rule_index(policy)
        this = F.struct(
            rule.alias("rule"),
            policy_level(policy, rule).alias("level"),
            policy_omit_stages(policy, rule).alias("omit_stages"),
            policy_omit_managed_fields(policy, rule).alias("omit_managed_fields"),
        )
        is_case = F.col("audit_id") == cid
        verdict = F.when(is_case, this) if verdict is None else verdict.when(is_case, this)
    rows = [{"audit_id": cid, **request} for cid, _, request, _ in TABLE_G + TABLE_OMF]
    collected = events_df(rows).select("audit_id", verdict.alias("v")).collect()
    return {row["audit_id"]: row["v"] for row in collected}


def test_table_g_is_complete():
    assert [c[0] for c in TABLE_G if c[0].startswith("G")] == [f"G{i:02d}" for i in range(1, 20)]


@pytest.mark.parametrize(
    ("case_id", "expected"), [(c[0], c[3]) for c in TABLE_G], ids=[c[0] for c in TABLE_G]
)
def test_policy_rule_index_table_g(table_g_results, case_id, expected):
    got = table_g_results[case_id]
    assert (got["rule"], got["level"], got["omit_stages"]) == expected
    assert got["omit_managed_fields"] is False


@pytest.mark.parametrize(
    ("case_id", "expected"), [(c[0], c[3]) for c in TABLE_OMF], ids=[c[0] for c in TABLE_OMF]
)
def test_policy_omit_managed_fields_rule_overrides_policy(table_g_results, case_id, expected):
    got = table_g_results[case_id]
    assert (got["rule"], got["level"], got["omit_managed_fields"]) == expected
