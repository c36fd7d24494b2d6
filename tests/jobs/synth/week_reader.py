"""Read a synthetic week with plain Python, and the planted table straight from its YAML.

Independent of jobs.synth's code: events are parsed from the files, the ACK policy and the
detections of docs/detections.md are evaluated on raw fields, and what to expect is read from
jobs/synth/incidents.yaml and actors.yaml with PyYAML only.
"""

from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import re
from collections import defaultdict
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import yaml

SYNTH_DIR = Path(__file__).parents[3] / "jobs" / "synth"
EVENTS = 3000
MAX_MB = 0.2
LIMIT = int(MAX_MB * 1048576)
BACKUP_RE = re.compile(r"^kubernetes-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3})\.audit(\.gz)?$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
WEEK_START = dt.datetime(2026, 11, 15, 16, 0, tzinfo=dt.UTC)  # 2026-W47 Mon 00:00 +08:00
WEEK_END = WEEK_START + dt.timedelta(days=7)
V1_ORDER = [
    "kind",
    "apiVersion",
    "level",
    "auditID",
    "stage",
    "requestURI",
    "verb",
    "user",
    "impersonatedUser",
    "authenticationMetadata",
    "sourceIPs",
    "userAgent",
    "objectRef",
    "responseStatus",
    "requestObject",
    "responseObject",
    "requestReceivedTimestamp",
    "stageTimestamp",
    "annotations",
]
LONG_SUBS = {"exec", "attach", "portforward", "log", "proxy"}
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}
LEVEL_RANK = {"None": 0, "Metadata": 1, "Request": 2, "RequestResponse": 3}


# ---------------------------------------------------------------------------------------------
# helpers: read what synth wrote, with plain Python only
# ---------------------------------------------------------------------------------------------


def read_file(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def ordered_files(master_dir: Path) -> list[Path]:
    backups = sorted(
        (p for p in master_dir.iterdir() if BACKUP_RE.match(p.name)),
        key=lambda p: BACKUP_RE.match(p.name).group(1),
    )
    return [*backups, master_dir / "kubernetes.audit"]


def events_of(root: Path) -> list[tuple[str, dict]]:
    out = []
    for master_dir in sorted(root.iterdir()):
        for f in ordered_files(master_dir):
            for line in read_file(f).decode().splitlines():
                out.append((master_dir.name, json.loads(line)))
    return out


def parse_ts(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def name_ts(name: str) -> dt.datetime:
    ts = BACKUP_RE.match(name).group(1)
    return dt.datetime.strptime(ts, "%Y-%m-%dT%H-%M-%S.%f").replace(tzinfo=dt.UTC)


def status_code(e: dict) -> int:
    return e.get("responseStatus", {}).get("code", 0)


def user_name(e: dict) -> str:
    return e["user"].get("username", "")


def is_human(e: dict) -> bool:
    u = user_name(e)
    return bool(u) and not u.startswith("system:")


def object_ref(e: dict) -> dict:
    return e.get("objectRef") or {}


def is_longrunning(e: dict) -> bool:
    return e["verb"] in ("watch", "proxy") or object_ref(e).get("subresource") in LONG_SUBS


def is_public(ip: str) -> bool:
    return ipaddress.ip_address(ip).is_global


# ---------------------------------------------------------------------------------------------
# the ACK audit policy (docs/audit-policy-semantics.md section 6), evaluated per event
# ---------------------------------------------------------------------------------------------

ACK_K = {
    "",
    "admissionregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "extensions",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "settings.k8s.io",
    "storage.k8s.io",
}
ACK_RULES = [
    (
        "None",
        {
            "users": {"system:kube-proxy"},
            "verbs": {"watch"},
            "res": {"": {"endpoints", "services"}},
        },
    ),
    (
        "None",
        {
            "users": {"system:unsecured"},
            "ns": {"kube-system"},
            "verbs": {"get"},
            "res": {"": {"configmaps"}},
        },
    ),
    ("None", {"users": {"kubelet"}, "verbs": {"get"}, "res": {"": {"nodes"}}}),
    ("None", {"groups": {"system:nodes"}, "verbs": {"get"}, "res": {"": {"nodes"}}}),
    (
        "None",
        {
            "users": {
                "system:kube-controller-manager",
                "system:kube-scheduler",
                "system:serviceaccount:kube-system:endpoint-controller",
            },
            "verbs": {"get", "update"},
            "ns": {"kube-system"},
            "res": {"": {"endpoints"}},
        },
    ),
    ("None", {"users": {"system:apiserver"}, "verbs": {"get"}, "res": {"": {"namespaces"}}}),
    ("None", {"nonres": ["/healthz*", "/version", "/swagger*"]}),
    ("None", {"res": {"": {"events"}}}),
    (
        "Metadata",
        {"res": {"": {"secrets", "configmaps"}, "authentication.k8s.io": {"tokenreviews"}}},
    ),
    ("Request", {"verbs": {"get", "list", "watch"}, "res": {g: set() for g in ACK_K}}),
    ("RequestResponse", {"res": {g: set() for g in ACK_K}}),
    ("Metadata", {}),
]


def ack_level(e: dict) -> str:
    user = e["user"]
    name, groups = user.get("username"), set(user.get("groups", []))
    o = e.get("objectRef")
    verb = e["verb"]
    for level, r in ACK_RULES:
        if "users" in r and (name is None or name not in r["users"]):
            continue
        if "groups" in r and (name is None or not groups & r["groups"]):
            continue
        if "verbs" in r and verb not in r["verbs"]:
            continue
        if "res" in r or "ns" in r:
            if o is None:
                continue
            if "ns" in r and o.get("namespace", "") not in r["ns"]:
                continue
            grp, res, sub = o.get("apiGroup", ""), o.get("resource", ""), o.get("subresource")
            allowed = r.get("res")
            if allowed is not None:
                if grp not in allowed:
                    continue
                if allowed[grp] and (f"{res}/{sub}" if sub else res) not in allowed[grp]:
                    continue
            return level
        if "nonres" in r:
            if o is not None:
                continue
            path = unquote(e["requestURI"].split("?")[0])
            if not any(
                path == p or (p.endswith("*") and path.startswith(p.rstrip("*")))
                for p in r["nonres"]
            ):
                continue
            return level
        return level
    return "None"


# ---------------------------------------------------------------------------------------------
# the detections of docs/detections.md, written directly on the raw events
# ---------------------------------------------------------------------------------------------

SUSPICIOUS = ("/etc/shadow", "169.254.169.254", "curl", "wget", "base64 -d", "nc ", "ncat")
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "ash", "zsh"}
SENSITIVE_PATHS = {
    "/",
    "/etc",
    "/proc",
    "/root",
    "/var/run/docker.sock",
    "/run/containerd",
    "/var/lib/kubelet",
    "/etc/kubernetes",
}


def exec_cmd(e: dict) -> list[str]:
    query = e["requestURI"].split("?", 1)[1] if "?" in e["requestURI"] else ""
    return [v for k, v in parse_qsl(query) if k == "command"]


def pod_specs(obj: dict | None) -> list[dict]:
    if not isinstance(obj, dict):
        return []
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return [spec]
    if obj.get("kind") == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    tmpl = spec.get("template", {}).get("spec")
    return [tmpl] if tmpl else []


def is_success(e: dict) -> bool:
    return 200 <= status_code(e) < 400


def detect(events: list[tuple[str, dict]]) -> dict[str, dict[str, dict]]:
    """detection id -> auditID -> one event of that request."""
    hits: dict[str, dict[str, dict]] = defaultdict(dict)
    by_id: dict[str, dict] = {}
    for _, e in events:
        if e["stage"] == "ResponseComplete" or e["auditID"] not in by_id:
            by_id[e["auditID"]] = e
    reqs = list(by_id.values())

    def hit(det: str, e: dict) -> None:
        hits[det][e["auditID"]] = e

    secret_reads: dict[tuple[str, str], list[dict]] = defaultdict(list)
    denied: dict[str, list[dict]] = defaultdict(list)
    per_ip: dict[str, list[dict]] = defaultdict(list)
    for e in reqs:
        o, verb, code = object_ref(e), e["verb"], status_code(e)
        res, sub, grp = o.get("resource"), o.get("subresource"), o.get("apiGroup", "")
        ann = e.get("annotations", {})
        body = e.get("requestObject")
        user = user_name(e)
        ip = e["sourceIPs"][-1]
        per_ip[ip].append(e)
        if res == "pods" and sub in ("exec", "attach", "portforward") and verb in ("create", "get"):
            hit(sub, e)
            if sub == "exec":
                cmd = " ".join(exec_cmd(e))
                if any(s in cmd for s in SUSPICIOUS) or (
                    exec_cmd(e)[:1] and exec_cmd(e)[0] in SHELLS and "-c" in exec_cmd(e)
                ):
                    hit("exec-suspicious-command", e)
        if sub == "ephemeralcontainers" and verb in WRITE_VERBS:
            hit("ephemeral-container", e)
        if res == "nodes" and sub == "proxy":
            hit("node-proxy", e)
        if res == "secrets" and grp == "":
            if verb in ("get", "list", "watch") and is_success(e) and is_human(e):
                hit("secret-read", e)
            if verb in ("get", "list", "watch") and code in (401, 403) and is_human(e):
                hit("secret-read-denied", e)
            if verb in ("get", "list", "watch") and is_success(e):
                day = (parse_ts(e["requestReceivedTimestamp"]) + dt.timedelta(hours=8)).date()
                secret_reads[user, day.isoformat()].append(e)
            if verb in WRITE_VERBS and is_human(e):
                hit("secret-write", e)
        if res == "serviceaccounts" and sub == "token" and verb == "create":
            hit("token-request", e)
        if res == "certificatesigningrequests" and (
            (verb == "create" and not sub) or (verb in ("update", "patch") and sub == "approval")
        ):
            hit("csr", e)
        if (
            res == "configmaps"
            and verb in ("create", "update")
            and body
            and any(
                k in json.dumps(body)
                for k in ("password", "aws_access_key_id", "secret_key", "token")
            )
        ):
            hit("configmap-credentials", e)
        path = e["requestURI"].split("?")[0]
        if (
            user == "system:anonymous"
            and ann.get("authorization.k8s.io/decision") == "allow"
            and path not in ("/healthz", "/livez", "/readyz", "/version")
        ):
            hit("anonymous-allowed", e)
        if "impersonatedUser" in e:
            hit("impersonation", e)
        if (
            res in ("selfsubjectrulesreviews", "selfsubjectaccessreviews")
            and verb == "create"
            and is_human(e)
        ):
            hit("permission-enumeration", e)
        if code == 403 and user:
            denied[user].append(e)
        if any(
            s in e.get("userAgent", "")
            for s in ("kube-hunter", "trufflehog", "azurehound", "access_matrix")
        ):
            hit("scanner-user-agent", e)
        if user.startswith("system:") and user != "system:anonymous" and is_public(ip):
            hit("system-identity-public-ip", e)
        rbac = res in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
        if rbac and verb in WRITE_VERBS:
            hit("rbac-change", e)
            if o.get("name", "").startswith("system:") and res.startswith("cluster"):
                hit("system-role-modified", e)
        if (
            res in ("rolebindings", "clusterrolebindings")
            and verb in ("create", "update")
            and body
            and body.get("roleRef", {}).get("name") == "cluster-admin"
        ):
            hit("cluster-admin-binding", e)
        if res in ("roles", "clusterroles") and verb in ("create", "update") and body:
            for rule in body.get("rules", []):
                granted = set(rule.get("verbs", [])) | set(rule.get("resources", []))
                if granted & {"*", "escalate", "bind", "impersonate", "pods/exec", "nodes/proxy"}:
                    hit("wildcard-role", e)
        if (
            res in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
            and verb in WRITE_VERBS
        ):
            hit("admission-webhook-change", e)
        if res == "events" and verb == "delete":
            hit("events-deleted", e)
        if res == "namespaces" and verb == "delete" and not sub and is_human(e):
            hit("namespace-deleted", e)
        if verb == "delete" and is_human(e):
            hit("resource-deletion", e)
        if verb == "create" and not sub:
            for spec in pod_specs(body):
                ctrs = spec.get("containers", []) + spec.get("initContainers", [])
                for c in ctrs:
                    sc = c.get("securityContext") or {}
                    caps = set((sc.get("capabilities") or {}).get("add", []))
                    if sc.get("privileged") or caps & {"SYS_ADMIN", "NET_ADMIN", "ALL"}:
                        hit("privileged-pod", e)
                if any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")):
                    hit("host-namespaces", e)
                for v in spec.get("volumes", []):
                    if (v.get("hostPath") or {}).get("path") in SENSITIVE_PATHS:
                        hit("sensitive-hostpath", e)
            if (
                res in ("pods", "deployments", "daemonsets")
                and o.get("namespace") in ("kube-system", "kube-public")
                and is_human(e)
            ):
                hit("kube-system-workload", e)
            if res == "services" and body and body.get("spec", {}).get("type") == "NodePort":
                hit("nodeport-service", e)
        if res == "cronjobs" and verb in WRITE_VERBS:
            hit("cronjob-change", e)

    for (_, _day), reads in secret_reads.items():
        names = {r["objectRef"].get("name") for r in reads if r["objectRef"].get("name")}
        cluster_list = [
            r for r in reads if r["verb"] == "list" and not r["objectRef"].get("namespace")
        ]
        for r in cluster_list:
            hit("secret-enumeration", r)
        if len(names) >= 3:
            for r in reads:
                hit("secret-enumeration", r)
    for _, evs in denied.items():
        evs.sort(key=lambda x: x["requestReceivedTimestamp"])
        for i, first in enumerate(evs):
            t0 = parse_ts(first["requestReceivedTimestamp"])
            window = [
                x
                for x in evs[i:]
                if parse_ts(x["requestReceivedTimestamp"]) - t0 <= dt.timedelta(minutes=5)
            ]
            if len({x["requestURI"] for x in window}) > 10:
                for x in window:
                    hit("denied-burst", x)
    for ip, evs in per_ip.items():
        if (
            is_public(ip)
            and len(evs) > 10
            and sum(status_code(x) >= 400 for x in evs) * 2 > len(evs)
        ):
            for x in evs:
                hit("public-ip-failure-rate", x)
    return hits


DETECTION_IDS = [
    "exec",
    "attach",
    "portforward",
    "ephemeral-container",
    "node-proxy",
    "exec-suspicious-command",
    "secret-read",
    "secret-read-denied",
    "secret-enumeration",
    "secret-write",
    "token-request",
    "csr",
    "configmap-credentials",
    "anonymous-allowed",
    "public-ip-failure-rate",
    "impersonation",
    "permission-enumeration",
    "denied-burst",
    "scanner-user-agent",
    "system-identity-public-ip",
    "rbac-change",
    "cluster-admin-binding",
    "wildcard-role",
    "system-role-modified",
    "admission-webhook-change",
    "events-deleted",
    "namespace-deleted",
    "privileged-pod",
    "host-namespaces",
    "sensitive-hostpath",
    "kube-system-workload",
    "nodeport-service",
    "cronjob-change",
    "resource-deletion",
]


def planted_rows() -> list[dict]:
    """One row per incident of incidents.yaml: ids, count and the actor's username."""
    incidents = yaml.safe_load((SYNTH_DIR / "incidents.yaml").read_text())["incidents"]
    actors = yaml.safe_load((SYNTH_DIR / "actors.yaml").read_text())
    rows = []
    for inc in incidents:
        actor = actors["planted"][inc["requests"][0]["actor"]]
        if "identity" in actor:
            username = actors["humans"][actor["identity"]]["username"]
        elif "service_account" in actor:
            sa = actor["service_account"]
            username = f"system:serviceaccount:{sa['namespace']}:{sa['name']}"
        else:
            username = actor["user"]["username"]
        reqs = inc["requests"]
        rows.append(
            {
                "id": inc["detection"],
                "key": inc["key"],
                "also": inc.get("also", []),
                "observable": inc.get("observable", True),
                "count": len(reqs),
                "codes": [r.get("code", 200) for r in reqs],
                "username": username,
                "source_ip": actor["source_ips"][-1],
                "person": actors["humans"].get(actor.get("identity"), {}).get("person", ""),
                "master": next((r["master"] for r in reqs if "master" in r), None),
            }
        )
    return rows


PLANTED_ROWS = planted_rows()


def expected(det: str) -> list[dict]:
    """The observable planted rows a detection must find."""
    return [p for p in PLANTED_ROWS if p["observable"] and (p["id"] == det or det in p["also"])]
