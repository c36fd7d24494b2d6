from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import functions as F

from jobs.config import DetectionsConfig
from jobs.detections.catalogue import BODY_RESOURCES, CATALOGUE, DETECTION_IDS
from jobs.detections.findings import (
    active_detections,
    detection_requests,
    find_important_events,
    important_events_from,
    request_predicates,
    summarise_detections,
    with_client_scope,
)
from jobs.detections.model import HIGH, Detection
from jobs.detections.windows import auth_failures
from jobs.geo.reader import IP_INFO_FIELDS, ip_info
from jobs.weekly.identities import IP_INFO_SCHEMA, select_client_ips
from jobs.weekly.requests import summarise_requests

pytestmark = pytest.mark.spark

T0 = dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC)
RBAC = "rbac.authorization.k8s.io"
SA = "system:serviceaccount:kube-system:generic-controller"
EXEC_URI = "/api/v1/namespaces/default/pods/web-1/exec?command={}&container=web&stdin=true"


def _connect(sub, verb="create", **kw):
    base = dict(
        resource="pods",
        subresource=sub,
        verb=verb,
        stage="ResponseStarted",
        response_code=101,
        object_name="web-1",
        level="Request",
    )
    return {**base, **kw}


def _exec(command_query, **kw):
    return _connect("exec", request_uri=EXEC_URI.format(command_query), **kw)


def _body(obj, **kw):
    base = dict(
        verb="create", response_code=201, level="RequestResponse", request_object=json.dumps(obj)
    )
    return {**base, **kw}


def _pod(spec):
    return {"kind": "Pod", "metadata": {"name": "x"}, "spec": spec}


def _deployment(spec):
    return {"kind": "Deployment", "spec": {"template": {"spec": spec}}}


def _secret(verb="get", name="s1", **kw):
    return {**dict(resource="secrets", verb=verb, object_name=name), **kw}


def _minutes(n):
    return T0 + dt.timedelta(minutes=n)


def _many(n, **kw):
    return [dict(kw) for _ in range(n)]


def _denied(user, minutes_apart, n=11):
    return [
        dict(user_name=user, response_code=403, object_name=f"p{i}", ts=_minutes(i * minutes_apart))
        for i in range(n)
    ]


# detection id -> (rows that must fire it, near-miss twins that must not)
SCENARIOS = {
    "exec": ([_exec("ls")], [_exec("ls", stage="RequestReceived", response_code=None)]),
    "attach": (
        [_connect("attach")],
        [_connect("attach", stage="ResponseComplete", response_code=403)],
    ),
    "portforward": (
        [_connect("portforward", verb="get")],
        [_connect("portforward", verb="delete")],
    ),
    "ephemeral-container": (
        [dict(subresource="ephemeralcontainers", verb="patch")],
        [dict(subresource="ephemeralcontainers", verb="get")],
    ),
    "node-proxy": (
        [dict(resource="nodes", subresource="proxy", namespace=None)],
        [
            dict(
                resource="nodes",
                subresource="proxy",
                namespace=None,
                user_name="system:serviceaccount:monitoring:prometheus",
            )
        ],
    ),
    "exec-suspicious-command": (
        [
            _exec("sh&command=-c&command=cat%20%2Fetc%2Fshadow"),
            _exec("curl&command=http%3A%2F%2F169.254.169.254%2F", verb="get"),
        ],
        [_exec("ls&command=-la&command=%2Fapp")],
    ),
    "secret-read": ([_secret()], [_secret(user_name="system:kube-controller-manager")]),
    "secret-read-denied": ([_secret(response_code=403)], [_secret(response_code=404)]),
    "secret-enumeration": (
        [_secret("list", namespace=None, object_name=None, user_name="harvester")]
        + [_secret(name=n, user_name="reader", namespace="prod") for n in ("a", "b", "c", "a")],
        # 3 distinct secrets, but over two local days (Asia/Shanghai): 2026-11-17 and -18
        [
            _secret(name="a", user_name="reader2"),
            _secret(name="b", user_name="reader2"),
            _secret(name="c", user_name="reader2", ts=T0 + dt.timedelta(hours=7)),
        ],
    ),
    "secret-write": ([_secret("create", response_code=201)], [_secret("create", user_name=SA)]),
    "token-request": (
        [dict(resource="serviceaccounts", subresource="token", verb="create")],
        [
            dict(
                resource="serviceaccounts",
                subresource="token",
                verb="create",
                user_name="system:node:n1",
            )
        ],
    ),
    "csr": (
        [
            dict(
                api_group="certificates.k8s.io",
                resource="certificatesigningrequests",
                verb="create",
                namespace=None,
            )
        ],
        [
            dict(
                api_group="certificates.k8s.io",
                resource="certificatesigningrequests",
                verb="get",
                namespace=None,
            )
        ],
    ),
    "configmap-credentials": (
        [_body({"data": {"DB_PASSWORD": "hunter2"}}, resource="configmaps")],
        [_body({"data": {"color": "blue"}}, resource="configmaps")],
    ),
    "anonymous-allowed": (
        [dict(user_name="system:anonymous")],
        [
            dict(
                user_name="system:anonymous",
                object_ref_present=False,
                request_uri="/healthz",
                resource=None,
                api_group=None,
            )
        ],
    ),
    "auth-failures": (
        [dict(user_name=None, response_code=401, stage="ResponseStarted", source_ips=["1.2.3.4"])],
        [dict(response_code=404)],
    ),
    "public-ip-failure-rate": (
        _many(6, source_ips=["45.135.232.19"], response_code=401, user_name=None)
        + _many(5, source_ips=["45.135.232.19"]),
        _many(5, source_ips=["45.135.232.20"], response_code=403)
        + _many(6, source_ips=["45.135.232.20"])
        + _many(11, source_ips=["10.9.9.9"], response_code=401, user_name=None),
    ),
    "impersonation": ([dict(impersonated_user="bob")], [dict()]),
    "permission-enumeration": (
        [
            dict(
                api_group="authorization.k8s.io",
                resource="selfsubjectrulesreviews",
                verb="create",
                namespace=None,
                object_name=None,
            )
        ],
        [
            dict(
                api_group="authorization.k8s.io",
                resource="selfsubjectaccessreviews",
                verb="create",
                namespace=None,
                object_name=None,
                user_name=SA,
            )
        ],
    ),
    "denied-burst": (_denied("burst-user", 0.2), _denied("slow-user", 1.0)),
    "scanner-user-agent": (
        [dict(user_agent="kube-hunter/0.6.8 python-requests")],
        [dict(user_agent="kubectl/v1.30.2 (linux/amd64)")],
    ),
    "system-identity-public-ip": (
        [dict(user_name="system:node:n1", source_ips=["47.243.117.52"])],
        [
            dict(user_name="system:node:n1", source_ips=["10.0.1.21"]),
            dict(user_name="system:anonymous", source_ips=["47.243.117.53"]),
        ],
    ),
    "rbac-change": (
        [dict(api_group=RBAC, resource="rolebindings", verb="create")],
        [
            dict(
                api_group=RBAC,
                resource="clusterroles",
                verb="update",
                namespace=None,
                user_name="system:kube-controller-manager",
            )
        ],
    ),
    "cluster-admin-binding": (
        [
            _body(
                {
                    "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                    "subjects": [{"kind": "User", "name": "x"}],
                },
                api_group=RBAC,
                resource="clusterrolebindings",
                namespace=None,
            )
        ],
        [
            _body(
                {"roleRef": {"kind": "ClusterRole", "name": "view"}},
                api_group=RBAC,
                resource="clusterrolebindings",
                namespace=None,
            )
        ],
    ),
    "wildcard-role": (
        [
            _body(
                {"rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["*"]}]},
                api_group=RBAC,
                resource="roles",
            ),
            _body(
                {"rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]}]},
                api_group=RBAC,
                resource="clusterroles",
                namespace=None,
            ),
        ],
        [
            _body(
                {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]},
                api_group=RBAC,
                resource="roles",
            )
        ],
    ),
    "system-role-modified": (
        [
            dict(
                api_group=RBAC,
                resource="clusterroles",
                verb="patch",
                namespace=None,
                object_name="system:node",
            )
        ],
        [
            dict(
                api_group=RBAC,
                resource="clusterroles",
                verb="patch",
                namespace=None,
                object_name="my-role",
            )
        ],
    ),
    "admission-webhook-change": (
        [
            dict(
                api_group="admissionregistration.k8s.io",
                resource="mutatingwebhookconfigurations",
                verb="create",
                namespace=None,
            )
        ],
        [
            dict(
                api_group="admissionregistration.k8s.io",
                resource="mutatingwebhookconfigurations",
                verb="create",
                namespace=None,
                response_code=403,
            )
        ],
    ),
    "events-deleted": (
        [dict(api_group="events.k8s.io", resource="events", verb="delete")],
        [dict(api_group="events.k8s.io", resource="events", verb="get")],
    ),
    "namespace-deleted": (
        [dict(resource="namespaces", verb="delete", namespace=None)],
        [
            dict(
                resource="namespaces",
                verb="delete",
                namespace=None,
                user_name="system:serviceaccount:kube-system:namespace-controller",
            )
        ],
    ),
    "privileged-pod": (
        [
            _body(_pod({"containers": [{"name": "c", "securityContext": {"privileged": True}}]})),
            _body(
                _pod(
                    {
                        "containers": [
                            {
                                "name": "c",
                                "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
                            }
                        ]
                    }
                )
            ),
        ],
        [_body(_pod({"containers": [{"name": "c", "securityContext": {"privileged": False}}]}))],
    ),
    "host-namespaces": (
        [_body(_deployment({"hostNetwork": True}), api_group="apps", resource="deployments")],
        [_body(_deployment({"hostNetwork": False}), api_group="apps", resource="deployments")],
    ),
    "sensitive-hostpath": (
        [_body(_pod({"volumes": [{"name": "r", "hostPath": {"path": "/", "type": ""}}]}))],
        [_body(_pod({"volumes": [{"name": "r", "hostPath": {"path": "/data"}}]}))],
    ),
    "kube-system-workload": (
        [dict(api_group="apps", resource="daemonsets", verb="create", namespace="kube-system")],
        [dict(api_group="apps", resource="daemonsets", verb="create")],
    ),
    "nodeport-service": (
        [_body({"spec": {"type": "NodePort"}}, resource="services")],
        [_body({"spec": {"type": "ClusterIP"}}, resource="services")],
    ),
    "cronjob-change": (
        [dict(api_group="batch", resource="cronjobs", verb="create")],
        [
            dict(
                api_group="batch",
                resource="cronjobs",
                subresource="status",
                verb="update",
                user_name=SA,
            )
        ],
    ),
    "resource-deletion": (
        [dict(resource="configmaps", verb="delete")],
        [dict(resource="configmaps", verb="delete", response_code=404)],
    ),
}


def _rows(make_event):
    rows = []
    for det, (fires, misses) in SCENARIOS.items():
        for label, specs in (("fire", fires), ("miss", misses)):
            for i, spec in enumerate(specs):
                rows.append(make_event(audit_id=f"{label}:{det}:{i}", **spec))
    return rows


def _ip_df(spark, requests_df):
    ips = [r.ip for r in select_client_ips(requests_df).collect()]
    return spark.createDataFrame(
        [tuple(i[f] for f in IP_INFO_FIELDS) for i in ip_info(ips)], IP_INFO_SCHEMA
    )


@pytest.fixture(scope="module")
def hits(spark, make_event, events_df):
    requests_df = summarise_requests(events_df(_rows(make_event)), timezone="Asia/Shanghai").cache()
    ip_df = _ip_df(spark, requests_df)
    try:
        return [r.asDict() for r in find_important_events(requests_df, ip_df).collect()]
    finally:
        requests_df.unpersist()


# Added by issue 11; their fire / near-miss cases (config-dependent, per-workload, real
# v1/v1beta1 lines) are in test_detections_issue11.py.
ISSUE_11 = {
    "role-write-privileges",
    "serviceaccount-kube-namespace",
    "risky-source-ip",
    "disallowed-user",
    "disallowed-image",
    "disallowed-namespace",
}


def test_catalogue_rules_and_scenarios_cover_every_detection():
    assert set(SCENARIOS) | ISSUE_11 == set(DETECTION_IDS)
    assert not set(SCENARIOS) & ISSUE_11
    assert len(DETECTION_IDS) == len(set(DETECTION_IDS)) == 41
    assert {d.id for d in CATALOGUE if d.finder is not None} == {
        "auth-failures",
        "public-ip-failure-rate",
        "denied-burst",
        "secret-enumeration",
        "risky-source-ip",
        "disallowed-user",
    }
    assert "configmaps" in BODY_RESOURCES and "pods" in BODY_RESOURCES


def test_request_predicates_and_windowed_finders_are_the_catalogue(spark):
    windowed = {d.id for d in CATALOGUE if d.finder is not None}
    every_list = DetectionsConfig(allowed_users=(), allowed_registries=(), allowed_namespaces=())
    assert set(request_predicates(every_list)) | windowed == {d.id for d in CATALOGUE}
    assert not set(request_predicates(every_list)) & windowed
    unconfigured = {"disallowed-image", "disallowed-namespace"}
    assert not set(request_predicates()) & unconfigured  # no list: never evaluated


def test_a_detection_is_found_in_exactly_one_way():
    with pytest.raises(ValueError, match="exactly one"):
        Detection("both", HIGH, "x", "t", predicate=lambda: None, finder=auth_failures)
    with pytest.raises(ValueError, match="exactly one"):
        Detection("neither", HIGH, "x", "t")
    with pytest.raises(ValueError, match="severity"):
        Detection("odd", "urgent", "x", "t", finder=auth_failures)


def found_by(det, req_df, config):
    assert det.finder is not None
    rows = det.finder(req_df, det, config).select("request_key", "finding_key").collect()
    return sorted(map(tuple, rows), key=repr)


def test_the_requests_detections_read_give_what_all_requests_give(spark, make_event, events_df):
    # find_important_events reads only detection_requests' rows (the weekly run caches them):
    # a scope narrower than what its detection reads would lose or change findings here
    requests_df = summarise_requests(events_df(_rows(make_event)), timezone="Asia/Shanghai").cache()
    try:
        ip_df = _ip_df(spark, requests_df)
        config = DetectionsConfig()
        every_df = with_client_scope(requests_df, ip_df).withColumn(
            "client_risk_reasons", F.lit(None).cast("array<string>")
        )
        scoped_df = detection_requests(requests_df, ip_df, config)
        assert 0 < scoped_df.count() < every_df.count()  # the near misses of some are out

        def found(df):
            return sorted(map(tuple, important_events_from(df, config).collect()), key=repr)

        assert found(scoped_df) == found(every_df)
        # each scope on its own (the union can hide one that is too narrow): a finder finds the
        # same in its scope as everywhere; no row passes a predicate and not its scope
        for det in active_detections(config):
            if det.scope is None:
                continue
            if det.finder is not None:
                in_scope = every_df.filter(det.scope(config))
                assert found_by(det, in_scope, config) == found_by(det, every_df, config), det.id
                assert found_by(det, every_df, config), det.id  # the scenario fires it
            else:
                assert det.predicate is not None
                outside = det.predicate(config) & ~F.coalesce(det.scope(config), F.lit(False))
                assert every_df.filter(outside).count() == 0, det.id
    finally:
        requests_df.unpersist()


@pytest.mark.parametrize("det", list(SCENARIOS))
def test_find_important_events_fires_on_the_crafted_event(hits, det):
    got = {h["audit_id"] for h in hits if h["detection_id"] == det}
    fired = {f"fire:{det}:{i}" for i in range(len(SCENARIOS[det][0]))}
    assert fired <= got


@pytest.mark.parametrize("det", list(SCENARIOS))
def test_find_important_events_is_silent_on_the_near_miss_twin(hits, det):
    got = {h["audit_id"] for h in hits if h["detection_id"] == det}
    assert not {a for a in got if a.startswith(f"miss:{det}:")}


def test_find_important_events_exec_shows_pod_container_and_decoded_command(hits):
    row = next(
        h
        for h in hits
        if h["detection_id"] == "exec-suspicious-command"
        and h["audit_id"] == "fire:exec-suspicious-command:0"
    )
    assert (row["pod"], row["container"], row["command"]) == (
        "web-1",
        "web",
        "sh -c cat /etc/shadow",
    )
    assert row["severity"] == "critical" and row["evidence_sha256"] == "e" * 64
    assert row["line_no"] > 0 and row["request_received_ts"] is not None


def test_find_important_events_aggregate_findings_are_keyed(hits):
    keys = {h["finding_key"] for h in hits if h["detection_id"] == "public-ip-failure-rate"}
    assert keys == {"ip:45.135.232.19"}
    assert len([h for h in hits if h["detection_id"] == "public-ip-failure-rate"]) == 11
    enum = {h["finding_key"] for h in hits if h["detection_id"] == "secret-enumeration"}
    assert enum == {"user:harvester list:all", "user:reader day:2026-11-17"}
    auth = {h["finding_key"] for h in hits if h["audit_id"] == "fire:auth-failures:0"}
    assert auth == {"ip:1.2.3.4"}


def test_summarise_detections_counts_and_not_observable(spark, hits):
    important_df = spark.createDataFrame(
        [(h["detection_id"], h["request_key"], h["finding_key"]) for h in hits],
        "detection_id string, request_key string, finding_key string",
    )
    status = {"configmap-credentials": "not_observable", "nodeport-service": "not_observable"}
    rows = {
        r.detection_id: r
        for r in summarise_detections(
            important_df.filter("detection_id != 'nodeport-service'"), status
        ).collect()
    }
    assert sorted(r.position for r in rows.values()) == list(range(len(CATALOGUE)))
    assert rows["nodeport-service"].requests is None  # not 0: the policy could not show it
    assert rows["nodeport-service"].status == "not_observable"
    assert rows["configmap-credentials"].requests == 1  # observed anyway: keep the count
    rate = rows["public-ip-failure-rate"]
    assert (rate.requests, rate.findings) == (11, 1)
    assert rows["exec"].status == "ok"


def test_summarise_detections_counts_as_count_distinct(spark):
    """Repeated rows, null finding keys and a null request key count as count_distinct does."""
    rows = [
        ("exec", "r1", None),
        ("exec", "r1", None),  # the same request twice
        ("exec", "r2", "w1"),
        ("exec", "r3", "w1"),
        ("exec", None, None),  # counted in neither
        ("secret-read", None, "u1"),  # a finding without a request key
        ("secret-read", "r4", "u1"),
    ]
    df = spark.createDataFrame(rows, "detection_id string, request_key string, finding_key string")
    got = {r.detection_id: (r.requests, r.findings) for r in summarise_detections(df).collect()}
    expected = {
        r.detection_id: (r.n, r.f)
        for r in df.groupBy("detection_id")
        .agg(
            F.count_distinct("request_key").alias("n"),
            F.count_distinct(F.coalesce("finding_key", "request_key")).alias("f"),
        )
        .collect()
    }
    assert expected == {"exec": (3, 2), "secret-read": (1, 1)}
    assert {k: got[k] for k in expected} == expected
