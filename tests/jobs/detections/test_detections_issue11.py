"""Issue 11: pod security per workload, configmap credentials, the new detections, allow-lists
and risky source IPs; fire cases and near misses on raw v1 / v1beta1 kube-apiserver lines
(shaped like the corpus: falco v1beta1 pod creates, openshift-clo v1 RequestResponse)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import textwrap

import pytest
from pyspark.sql import functions as F

from jobs.config import DetectionsConfig
from jobs.detections.credentials import configmap_has_credentials
from jobs.detections.findings import (
    active_detections,
    detection_statuses,
    find_important_events,
    summarise_detections,
)
from jobs.detections.risk import load_hosting_asns, parse_threat_list, with_ip_risk
from jobs.geo.reader import IP_INFO_FIELDS, ip_info
from jobs.ingest.transforms import normalize_events
from jobs.schemas import RAW_EVENT
from jobs.weekly.identities import IP_INFO_SCHEMA, select_client_ips, summarise_source_ips
from jobs.weekly.requests import summarise_requests

pytestmark = pytest.mark.spark

T0 = dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC)
RBAC = "rbac.authorization.k8s.io"
RS_CTRL = "system:serviceaccount:kube-system:replicaset-controller"
DEP_CTRL = "system:serviceaccount:kube-system:deployment-controller"
DS_CTRL = "system:serviceaccount:kube-system:daemonset-controller"
JOB_CTRL = "system:serviceaccount:kube-system:job-controller"
CJ_CTRL = "system:serviceaccount:kube-system:cronjob-controller"
PRIV = {"securityContext": {"privileged": True}}
ACME = "registry-vpc.cn-shanghai.aliyuncs.com/acme"
_SEQ = iter(range(1, 10_000))


def line(
    audit_id, verb, resource, *, ns="default", name=None, group="", user="alice", groups=None,
    req=None, resp=None, code=None, ip="10.0.0.1", shape="v1", level="RequestResponse",
):  # fmt: skip
    """One raw audit line as kube-apiserver writes it (v1, or v1beta1 with timestamp)."""
    ts = (T0 + dt.timedelta(seconds=next(_SEQ))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    prefix = f"/apis/{group}/v1" if group else "/api/v1"
    uri = f"{prefix}{f'/namespaces/{ns}' if ns else ''}/{resource}"
    if name and verb != "create":
        uri += f"/{name}"
    ref = {"resource": resource, "namespace": ns, "name": name, "apiGroup": group or None}
    event = {
        "kind": "Event", "apiVersion": f"audit.k8s.io/{shape}", "level": level,
        "auditID": audit_id, "stage": "ResponseComplete", "requestURI": uri, "verb": verb,
        "user": {"username": user, "groups": groups or ["system:authenticated"]},
        "sourceIPs": [ip], "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/abc",
        "objectRef": {k: v for k, v in ref.items() if v is not None},
        "responseStatus": {"metadata": {}, "code": code or (201 if verb == "create" else 200)},
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }  # fmt: skip
    if req is not None and level != "Metadata":
        event["requestObject"] = req
    if resp is not None and level == "RequestResponse":
        event["responseObject"] = resp
    if shape == "v1beta1":
        event["metadata"] = {"creationTimestamp": ts[:19] + "Z"}
        event["timestamp"] = ts[:19] + "Z"
    else:
        event["requestReceivedTimestamp"] = ts
        event["stageTimestamp"] = ts
    return json.dumps(event)


def _pod_spec(**extra):
    return {"containers": [{"name": "c", "image": "nginx:1.27", **extra.pop("c", {})}], **extra}


def _template(kind, spec):
    tpl = {"metadata": {"labels": {"app": "x"}}, "spec": spec}
    if kind == "CronJob":
        return {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": tpl}}}
    return {"selector": {"matchLabels": {"app": "x"}}, "template": tpl}


def _owned_pod(owner_kind, owner, spec, generated):
    meta = {
        "generateName": owner + "-",
        "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": owner_kind, "name": owner, "controller": True}
        ],
    }
    return (
        {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec},
        {"kind": "Pod", "metadata": {"name": generated, **meta}},
    )


def _owned(kind, name, owner_kind, owner, body):
    ref = {"apiVersion": "apps/v1", "kind": owner_kind, "name": owner, "controller": True}
    return {"kind": kind, "metadata": {"name": name, "ownerReferences": [ref]}, "spec": body}


def _workload_lines():
    bad = _pod_spec(c=PRIV)
    web_pod = _owned_pod("ReplicaSet", "web-5d9f8b7c4", bad, "web-5d9f8b7c4-x2x7q")
    web_pod2 = _owned_pod("ReplicaSet", "web-5d9f8b7c4", bad, "web-5d9f8b7c4-9kz4p")
    api_pod = _owned_pod("ReplicaSet", "api-6b8f7", bad, "api-6b8f7-qq1rs")
    ds_pod = _owned_pod("DaemonSet", "node-agent", _pod_spec(hostNetwork=True), "node-agent-7hx2c")
    job_pod = _owned_pod(
        "Job", "backup-29371200", _pod_spec(volumes=[{"name": "r", "hostPath": {"path": "/"}}]),
        "backup-29371200-5xw2d",
    )  # fmt: skip
    root = _pod_spec(volumes=[{"name": "r", "hostPath": {"path": "/"}}])
    patch = [{"op": "add", "path": "/spec/template/spec/containers/0/securityContext/privileged",
              "value": True}]  # fmt: skip
    return [
        # Deployment web by alice -> RS by the deployment controller -> 2 pods (v1 and v1beta1)
        line("w-dep", "create", "deployments", group="apps", name="web",
             req={"kind": "Deployment", "metadata": {"name": "web"},
                  "spec": _template("Deployment", bad)}),
        line("w-rs", "create", "replicasets", group="apps", name="web-5d9f8b7c4", user=DEP_CTRL,
             req=_owned("ReplicaSet", "web-5d9f8b7c4", "Deployment", "web",
                        _template("ReplicaSet", bad))),
        line("w-pod1", "create", "pods", user=RS_CTRL, req=web_pod[0], resp=web_pod[1]),
        line("w-pod2", "create", "pods", user=RS_CTRL, req=web_pod2[0], resp=web_pod2[1],
             shape="v1beta1"),
        # near miss: the deployment controller's update of the RS only copies the template
        line("m-rs-update", "update", "replicasets", group="apps", name="web-5d9f8b7c4",
             user=DEP_CTRL, req=_owned("ReplicaSet", "web-5d9f8b7c4", "Deployment", "web",
                                       _template("ReplicaSet", bad))),
        # Deployment api patched by bob (JSON patch); its RS is not in the lake: name prefix
        line("a-patch", "patch", "deployments", group="apps", name="api", user="bob", req=patch),
        line("a-pod", "create", "pods", user=RS_CTRL, req=api_pod[0], resp=api_pod[1],
             shape="v1beta1"),
        # a DaemonSet pod whose template write is not in the week
        line("d-pod", "create", "pods", ns="kube-system", user=DS_CTRL, req=ds_pod[0],
             resp=ds_pod[1]),
        # CronJob by carol -> Job by the cronjob controller -> pod by the job controller
        line("c-cj", "create", "cronjobs", group="batch", name="backup", user="carol",
             req={"kind": "CronJob", "metadata": {"name": "backup"},
                  "spec": _template("CronJob", root)}, shape="v1beta1"),
        line("c-job", "create", "jobs", group="batch", name="backup-29371200", user=CJ_CTRL,
             req=_owned("Job", "backup-29371200", "CronJob", "backup", {"template": {"spec": root}})),
        line("c-pod", "create", "pods", user=JOB_CTRL, req=job_pod[0], resp=job_pod[1]),
        # near misses: an ordinary template, a privileged: false pod, a denied privileged pod
        line("m-dep", "create", "deployments", group="apps", name="plain",
             req={"metadata": {"name": "plain"}, "spec": _template("Deployment", _pod_spec())}),
        line("m-pod", "create", "pods", name="calm",
             req={"metadata": {"name": "calm"},
                  "spec": _pod_spec(c={"securityContext": {"privileged": False}})}),
        line("m-denied", "create", "pods", name="nope", code=403,
             req={"metadata": {"name": "nope"}, "spec": bad}),
    ]  # fmt: skip


def _requests(spark, lines):
    df = spark.createDataFrame([(v,) for v in lines], "value string").withColumns(
        {
            "j": F.from_json("value", RAW_EVENT),
            "line_no": F.monotonically_increasing_id() + 1,
            "cluster": F.lit("c1"),
            "master": F.lit("master-1"),
            "evidence_sha256": F.lit("e" * 64),
        }
    )
    return summarise_requests(normalize_events(df), timezone="Asia/Shanghai")


def _ip_df(spark, requests_df, asn=None):
    rows = []
    for info in ip_info([r.ip for r in select_client_ips(requests_df).collect()]):
        info["asn"] = (asn or {}).get(info["ip"], info["asn"])
        rows.append(tuple(info[f] for f in IP_INFO_FIELDS))
    return spark.createDataFrame(rows, IP_INFO_SCHEMA)


def _hits(spark, lines, config=None, asn=None):
    requests_df = _requests(spark, lines)
    ip_df = _ip_df(spark, requests_df, asn)
    if config is not None:
        ip_df = with_ip_risk(spark, ip_df, config)
    return [r.asDict() for r in find_important_events(requests_df, ip_df, config).collect()]


ALLOW = DetectionsConfig(
    allowed_users=("alice", "bob", "carol", "minikube-user", "group:platform-ops"),
    allowed_registries=(ACME, "docker.io/library/busybox", "docker.io/library/nginx"),
    allowed_namespaces=("default", "team-*"),
    hosting_asns=True,
)
ASN = {"3.5.140.2": 16509, "8.8.8.8": 15169}


@pytest.fixture(scope="module")
def all_hits(spark, tmp_path_factory):
    """One run over every case of this file (a run costs seconds: share it)."""
    tor = tmp_path_factory.mktemp("lists") / "tor-exits.txt"
    tor.write_text(TOR_LIST)
    config = dataclasses.replace(ALLOW, threat_lists=(tor,))
    lines = _workload_lines() + _credential_lines() + _rbac_lines() + _allow_lines() + _risk_lines()
    return _hits(spark, lines, config, ASN), config, lines


@pytest.fixture(scope="module")
def workload_hits(all_hits):
    return all_hits[0]


def _by(hits, det):
    return {h["audit_id"]: h for h in hits if h["detection_id"] == det}


def test_pod_security_groups_a_workload_with_its_pods_and_names_the_writer(workload_hits):
    priv = _by(workload_hits, "privileged-pod")
    assert set(priv) == {"w-dep", "w-rs", "w-pod1", "w-pod2", "a-patch", "a-pod"}
    keys = {a: (h["finding_key"], h["written_by"]) for a, h in priv.items()}
    web = ("workload:default/Deployment/web", "alice")
    api = ("workload:default/Deployment/api", "bob")
    assert keys == {"w-dep": web, "w-rs": web, "w-pod1": web, "w-pod2": web,
                    "a-patch": api, "a-pod": api}  # fmt: skip
    assert {priv[a]["pod"] for a in ("w-pod1", "w-pod2", "a-pod")} == {
        "web-5d9f8b7c4-x2x7q", "web-5d9f8b7c4-9kz4p", "api-6b8f7-qq1rs",
    }  # fmt: skip
    assert priv["w-dep"]["pod"] is None and priv["w-dep"]["workload"] == "default/Deployment/web"


def test_pod_security_finds_controller_pods_and_cronjob_templates(workload_hits):
    host = _by(workload_hits, "host-namespaces")
    assert set(host) == {"d-pod"}
    assert host["d-pod"]["finding_key"] == "workload:kube-system/DaemonSet/node-agent"
    assert host["d-pod"]["written_by"] is None  # the template's write is not in the lake
    path = _by(workload_hits, "sensitive-hostpath")
    assert set(path) == {"c-cj", "c-job", "c-pod"}
    assert {h["finding_key"] for h in path.values()} == {"workload:default/CronJob/backup"}
    assert {h["written_by"] for h in path.values()} == {"carol"}


def test_pod_security_near_misses_are_silent(workload_hits):
    pod_security = {"privileged-pod", "host-namespaces", "sensitive-hostpath"}
    fired = {h["audit_id"] for h in workload_hits if h["detection_id"] in pod_security}
    assert not {a for a in fired if a.startswith("m-")}
    assert "m-denied" in {h["audit_id"] for h in workload_hits}  # it is in the run (a 403)


def test_summary_counts_one_finding_per_workload(spark, workload_hits):
    df = spark.createDataFrame(
        [(h["detection_id"], h["request_key"], h["finding_key"]) for h in workload_hits],
        "detection_id string, request_key string, finding_key string",
    )
    rows = {r.detection_id: r for r in summarise_detections(df).collect()}
    assert (rows["host-namespaces"].requests, rows["host-namespaces"].findings) == (1, 1)
    assert (rows["privileged-pod"].requests, rows["privileged-pod"].findings) == (6, 2)
    assert (rows["sensitive-hostpath"].requests, rows["sensitive-hostpath"].findings) == (3, 1)


CREDENTIAL_BODIES = {
    "fire": [
        {"data": {"DB_PASSWORD": "hunter2"}},
        {"data": {"db-password": "hunter2"}},
        {"data": {"dbPassword": "hunter2"}},
        {"data": {"aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
        {"data": {"aws-s3-secret-key": "x9"}},
        {"data": {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"}},
        {"data": {"ssh.passphrase": "correct horse"}},
        {"data": {"api-token": "t0k"}},
        {"data": {"accessKeySecret": "abc123"}},
        {"data": {"ak": "LTAI5tAbCdEfGh1234567890"}},
        {"data": {"conn": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zm9vYmFyYmF6cXV4cXV1eA=="}},
        {"data": {"DATABASE_URL": "postgres://app:s3cr3t@db.internal:5432/app"}},
        {"data": {"key.json": json.dumps({"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"})}},
        {"data": {"id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----"}},
        {"data": {"application.properties": "spring.datasource.url=jdbc:x\nspring.datasource.password=hunter2\n"}},
        [{"op": "add", "path": "/data/REDIS_PASS", "value": "hunter2"}],
    ],
    "miss": [
        {"data": {"password_policy": "strict"}},
        {"data": {"passwordless": "true"}},
        {"data": {"tokenizer": "bert-base"}},
        {"data": {"keyboard": "us"}},
        {"data": {"DB_PASSWORD": ""}},
        {"data": {"enable_token": "false"}},
        {"data": {"DB_PASSWORD": "${DB_PASSWORD}"}},
        {"data": {"secretName": "tls-cert"}},
        {"data": {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"}},
        {"data": {"URL": "https://example.com:8443/login"}},
        {"data": {"DATABASE_URL": "postgres://app@db.internal:5432/app"}},
        {"data": {"color": "blue", "token_ttl": "3600"}},
        [{"op": "add", "path": "/data/color", "value": "blue"}],
    ],
}  # fmt: skip


@pytest.mark.parametrize("label", ["fire", "miss"])
def test_configmap_credentials_keys_values_and_near_misses(spark, label):
    bodies = [json.dumps(b) for b in CREDENTIAL_BODIES[label]]
    df = spark.createDataFrame([(b,) for b in bodies], "request_object string")
    got = [
        r.hit
        for r in df.select(
            configmap_has_credentials(F.col("request_object")).alias("hit")
        ).collect()
    ]
    wrong = [b for b, hit in zip(bodies, got, strict=True) if hit != (label == "fire")]
    assert not wrong


def _credential_lines():
    cm = {"kind": "ConfigMap", "metadata": {"name": "app"}, "data": {"aws-secret-key": "x9y8"}}
    return [
        line("cm-v1", "create", "configmaps", name="app", req=cm, level="Request"),
        line("cm-b1", "update", "configmaps", name="app", req=cm, shape="v1beta1"),
        line("cm-meta", "create", "configmaps", name="app", req=cm, level="Metadata"),  # ACK
        line("cm-ok", "create", "configmaps", name="b", req={"data": {"color": "blue"}}),
    ]


def test_configmap_credentials_fires_where_the_policy_logs_configmap_bodies(all_hits):
    assert set(_by(all_hits[0], "configmap-credentials")) == {"cm-v1", "cm-b1"}


def _role(rules):
    return {"kind": "Role", "metadata": {"name": "r"}, "rules": rules}


def _rbac_lines():
    rule = lambda g, r, v: {"apiGroups": g, "resources": r, "verbs": v}  # noqa: E731
    return [
        line("rw-secrets", "create", "roles", group=RBAC, name="r",
             req=_role([rule([""], ["secrets"], ["get", "create"])])),
        line("rw-bind", "update", "clusterroles", group=RBAC, ns=None, name="r", shape="v1beta1",
             req=_role([rule([RBAC], ["clusterroles"], ["bind"])])),
        line("rw-exec", "create", "clusterroles", group=RBAC, ns=None, name="x",
             req=_role([rule([""], ["pods/exec"], ["create"])])),
        line("rw-star", "patch", "roles", group=RBAC, name="r",
             req={"rules": [rule(["*"], ["*"], ["*"])]}),
        line("rw-m-read", "create", "roles", group=RBAC, name="r",
             req=_role([rule([""], ["secrets"], ["get", "list", "watch"])])),
        line("rw-m-cm", "create", "roles", group=RBAC, name="r",
             req=_role([rule([""], ["configmaps"], ["create", "delete"])])),
        line("rw-m-group", "create", "roles", group=RBAC, name="r",
             req=_role([rule([""], ["roles"], ["create"])])),
        line("rw-m-ctrl", "create", "clusterroles", group=RBAC, ns=None, name="r",
             user="system:kube-controller-manager",
             req=_role([rule([""], ["secrets"], ["create"])])),
        # falco's trace: minikube-user creates SA myacct in kube-system (v1beta1, Request)
        line("sa-kube", "create", "serviceaccounts", ns="kube-system", name="myacct",
             user="minikube-user", level="Request", shape="v1beta1",
             req={"kind": "ServiceAccount", "metadata": {"name": "myacct"}}),
        line("sa-lease", "create", "serviceaccounts", ns="kube-node-lease", name="x",
             user="system:serviceaccount:ci:deployer", level="Metadata"),
        line("sa-m-default", "create", "serviceaccounts", ns="default", name="myacct"),
        line("sa-m-ctrl", "create", "serviceaccounts", ns="kube-system", name="attachdetach",
             user="system:kube-controller-manager"),
        line("sa-m-get", "get", "serviceaccounts", ns="kube-public", name="default"),
    ]  # fmt: skip


def test_role_write_privileges_and_serviceaccount_kube_namespace(all_hits):
    hits = all_hits[0]
    assert set(_by(hits, "role-write-privileges")) == {
        "rw-secrets",
        "rw-bind",
        "rw-exec",
        "rw-star",
    }
    assert set(_by(hits, "serviceaccount-kube-namespace")) == {"sa-kube", "sa-lease"}
    assert set(_by(hits, "rbac-change")) >= {"rw-secrets", "rw-m-read"}  # still its own detection


def _allow_lines():
    pod = lambda img: {"metadata": {"name": "p"}, "spec": {"containers": [{"image": img}]}}  # noqa: E731
    ns = lambda n: {"kind": "Namespace", "metadata": {"name": n}}  # noqa: E731
    return [
        line("u-mallory", "get", "pods", name="p", user="mallory"),
        line("u-mallory2", "list", "pods", user="mallory", shape="v1beta1"),
        line("u-m-alice", "get", "pods", name="p"),
        line("u-m-ops", "get", "pods", name="p", user="dave", groups=["platform-ops"]),
        line("u-m-sa", "get", "pods", name="p", user="system:serviceaccount:ci:deployer"),
        line("i-hub", "create", "pods", name="a", req=pod("redis:7")),
        line("i-evil", "create", "pods", name="b", req=pod(f"{ACME}-evil/app:1"), shape="v1beta1"),
        line("i-m-acme", "create", "pods", name="c", req=pod(f"{ACME}/app:1")),
        line("i-m-busybox", "create", "pods", name="d", req=pod("busybox")),
        line("n-scratch", "create", "namespaces", ns=None, name="scratch", req=ns("scratch")),
        line("n-m-team", "create", "namespaces", ns=None, name="team-a", req=ns("team-a"),
             shape="v1beta1"),
        line("n-m-sys", "create", "namespaces", ns=None, name="kube-node-lease",
             user="system:apiserver"),
    ]  # fmt: skip


def test_allow_lists_fire_outside_the_list_and_not_inside(all_hits):
    hits = all_hits[0]
    users = _by(hits, "disallowed-user")
    assert set(users) == {"u-mallory", "u-mallory2"}
    assert {h["finding_key"] for h in users.values()} == {"user:mallory"}
    images = _by(hits, "disallowed-image")
    assert set(images) == {"i-hub", "i-evil"}
    assert images["i-hub"]["finding_key"] == "workload:default/Pod/a"
    assert set(_by(hits, "disallowed-namespace")) == {"n-scratch"}


def test_allow_lists_left_out_are_not_configured_never_zero(spark):
    ids = {"disallowed-user", "disallowed-image", "disallowed-namespace", "risky-source-ip"}
    assert not {d.id for d in active_detections(DetectionsConfig(hosting_asns=False))} & ids
    assert ids <= {d.id for d in active_detections(ALLOW)}
    statuses = detection_statuses(({}, {}), DetectionsConfig(hosting_asns=False))
    df = spark.createDataFrame([], "detection_id string, request_key string, finding_key string")
    rows = {r.detection_id: r for r in summarise_detections(df, *statuses).collect()}
    for det in ids:
        assert (rows[det].status, rows[det].requests) == ("not_configured", None), det
    assert rows["disallowed-user"].basis == "detections.allowed_users not set"
    assert rows["exec"].status == "ok" and rows["exec"].requests == 0


TOR_LIST = textwrap.dedent("""\
    # Tor exit list export
    ExitAddress header junk
    45.135.232.0/24
    185.220.101.7   # single exit
    2001:db8:dead::/48
    """)


def _risk_lines():
    return [
        line("r-tor", "get", "pods", name="p", ip="45.135.232.19"),
        line("r-tor6", "get", "pods", name="p", ip="2001:db8:dead:1::5", shape="v1beta1"),
        line("r-aws", "get", "pods", name="p", ip="3.5.140.2"),
        line("r-m-lan", "get", "pods", name="p", ip="10.0.0.1"),
        line("r-m-near", "get", "pods", name="p", ip="45.135.233.1"),
        line("r-m-google", "get", "pods", name="p", ip="8.8.8.8"),
    ]


def test_risky_source_ip_threat_list_and_hosting_asn(spark, all_hits):
    found, config, _ = all_hits
    hits = _by(found, "risky-source-ip")
    assert set(hits) == {"r-tor", "r-tor6", "r-aws"}
    assert hits["r-tor"]["finding_key"] == "ip:45.135.232.19"
    requests_df = _requests(spark, _risk_lines())
    ip_df = with_ip_risk(spark, _ip_df(spark, requests_df, ASN), config)
    mart = summarise_source_ips(requests_df, ip_df)
    assert mart.columns[-1] == "risk_reasons"
    reasons = {r.ip: r.risk_reasons for r in mart.collect()}
    assert reasons["45.135.232.19"] == ["threat-list:tor-exits.txt"]
    assert reasons["3.5.140.2"] == ["hosting-asn:AS16509 Amazon Web Services"]
    assert reasons["8.8.8.8"] == [] and reasons["10.0.0.1"] == []
    off = with_ip_risk(spark, ip_df.drop("risk_reasons"), DetectionsConfig(hosting_asns=False))
    assert {r.risk_reasons for r in off.collect()} == {None}  # not configured, not "clean"


def test_threat_list_parsing_is_bounded_and_skips_junk(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("# c\n1.2.3.4\nnot-an-ip\n10.0.0.0/8 extra\n\n")
    assert parse_threat_list(path) == ["4:00000001000000100000001100000100", "4:00001010"]
    from jobs.errors import UsageError

    with pytest.raises(UsageError, match="cannot read"):
        parse_threat_list(tmp_path / "missing.txt")


def test_hosting_asn_list_names_each_entrys_source():
    asns = load_hosting_asns()
    assert len({a.asn for a in asns}) == len(asns) >= 20
    assert all(a.owner and a.provider and a.why for a in asns)
    assert {16509, 14618, 396982, 8075, 45102, 37963, 132203, 14061, 16276, 24940} <= {
        a.asn for a in asns
    }
    assert 15169 not in {a.asn for a in asns}  # Google's own services, not customer VMs
