"""Read a synthetic week with plain Python, and the planted table straight from its YAML.

Independent of jobs.synth's code: events are parsed from the files, the ACK policy and the
detections of docs/detections.md are evaluated on raw fields, and what to expect (and the
allow-lists the counts assume) is read from jobs/synth/incidents.yaml and actors.yaml with
PyYAML only.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
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
AUTH_FAILURES = "auth-failures"  # every 401 and 403: the background has some on purpose


def _yaml(name: str) -> dict:
    return yaml.safe_load((SYNTH_DIR / name).read_text())


INCIDENTS = _yaml("incidents.yaml")
ACTORS = _yaml("actors.yaml")
CONFIG = INCIDENTS["config"]

# ---------------------------------------------------------------------------------------------
# what synth wrote, with plain Python only
# ---------------------------------------------------------------------------------------------


def read_file(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def ordered_files(master_dir: Path) -> list[Path]:
    backups = sorted(p for p in master_dir.iterdir() if BACKUP_RE.match(p.name))
    return [*backups, master_dir / "kubernetes.audit"]  # the UTC stamp sorts as text


def events_of(root: Path) -> list[tuple[str, dict]]:
    return [
        (d.name, json.loads(line))
        for d in sorted(root.iterdir())
        for f in ordered_files(d)
        for line in read_file(f).decode().splitlines()
    ]


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

ACK_POLICY = yaml.safe_load((SYNTH_DIR.parent / "policy" / "ack-policy.yaml").read_text())


def _resource_matches(rule: dict, o: dict) -> bool:
    sub, res = o.get("subresource"), o.get("resource", "")
    full = f"{res}/{sub}" if sub else res
    return any(
        g.get("group", "") == o.get("apiGroup", "")
        and (not g.get("resources") or full in g["resources"])
        for g in rule["resources"]
    )


def ack_level(e: dict) -> str:
    """The level of the first ACK policy rule that matches the event (audit.k8s.io semantics)."""
    name, groups = e["user"].get("username"), set(e["user"].get("groups", []))
    o = e.get("objectRef")
    path = unquote(e["requestURI"].split("?")[0])
    for r in ACK_POLICY["rules"]:
        if "users" in r and name not in r["users"]:
            continue
        if "userGroups" in r and (name is None or not groups & set(r["userGroups"])):
            continue
        if "verbs" in r and e["verb"] not in r["verbs"]:
            continue
        if ("resources" in r or "namespaces" in r) and (
            o is None
            or ("namespaces" in r and o.get("namespace", "") not in r["namespaces"])
            or ("resources" in r and not _resource_matches(r, o))
        ):
            continue
        if "nonResourceURLs" in r and (
            o is not None or not any(fnmatch.fnmatchcase(path, u) for u in r["nonResourceURLs"])
        ):
            continue
        return r["level"]
    return "None"


# ---------------------------------------------------------------------------------------------
# the detections of docs/detections.md (and issue 11), written directly on the raw events
# ---------------------------------------------------------------------------------------------

SUSPICIOUS = ("/etc/shadow", "169.254.169.254", "curl", "wget", "base64 -d", "nc ", "ncat")
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "ash", "zsh"}
SENSITIVE_DIRS = ("/proc", "/root", "/var/run/docker.sock", "/run/containerd", "/var/lib/kubelet")
SENSITIVE_DIRS += ("/etc/kubernetes",)
WORKLOAD_RES = {"pods", "replicationcontrollers", "deployments", "statefulsets", "daemonsets"}
WORKLOAD_RES |= {"replicasets", "jobs", "cronjobs"}
RBAC_RES = {"roles", "clusterroles", "rolebindings", "clusterrolebindings"}
KUBE_NAMESPACES = {"kube-system", "kube-public", "kube-node-lease"}
SCANNERS = ("kube-hunter", "trufflehog", "azurehound", "access_matrix")


def exec_cmd(e: dict) -> list[str]:
    query = e["requestURI"].split("?", 1)[1] if "?" in e["requestURI"] else ""
    return [v for k, v in parse_qsl(query) if k == "command"]


def pod_specs(obj: dict | None) -> list[dict]:
    """The pod spec of a Pod, or the template's of a workload (CronJob: its job's)."""
    if not isinstance(obj, dict):
        return []
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return [spec]
    spec = (spec.get("jobTemplate") or {}).get("spec", spec)
    tmpl = spec.get("template", {}).get("spec")
    return [tmpl] if tmpl else []


def sensitive_path(path: str) -> bool:
    return path in ("/", "/etc", "/etc/") or any(
        path == d or path.startswith(d + "/") for d in SENSITIVE_DIRS
    )


def image_allowed(image: str) -> bool:
    first = image.split("/", 1)[0]
    if "/" not in image or not ("." in first or ":" in first or first == "localhost"):
        image = "docker.io/" + ("" if "/" in image else "library/") + image
    return any(image.startswith(r.rstrip("/") + "/") for r in CONFIG["allowed_registries"])


def person(e: dict) -> str:
    """The person behind a shared login, as the RBAC reason names them."""
    reason = e.get("annotations", {}).get("authorization.k8s.io/reason", "")
    found = re.search(r'to User "([^"]+)"', reason)
    return found.group(1) if found else user_name(e)


def grants_writes(rules: list) -> bool:
    for r in rules:
        verbs, groups = set(r.get("verbs", [])), set(r.get("apiGroups") or [""])
        res = set(r.get("resources", []))
        core = groups & {"", "*"} and res & {"secrets", "pods/exec", "pods/attach", "pods/*", "*"}
        rbac = groups & {"rbac.authorization.k8s.io", "*"} and res & (RBAC_RES | {"*"})
        if verbs & {"escalate", "bind", "impersonate"} or (
            verbs & (WRITE_VERBS | {"*"}) and (core or rbac)
        ):
            return True
    return False


def _facts(e: dict) -> dict:
    o, user = object_ref(e), user_name(e)
    body = e.get("requestObject")
    controller = (user.startswith("system:") and not user.startswith("system:serviceaccount:")) or (
        user.startswith("system:serviceaccount:kube-system:")
    )
    return {
        "e": e,
        "res": o.get("resource"),
        "sub": o.get("subresource"),
        "grp": o.get("apiGroup", ""),
        "ns": o.get("namespace", ""),
        "verb": e["verb"],
        "code": status_code(e),
        "ok": 200 <= status_code(e) < 400 or status_code(e) == 101,
        "user": user,
        "human": is_human(e),
        "controller": controller and user != "system:anonymous",
        "system": user.startswith("system:") and user != "system:anonymous",
        "allowed": e.get("annotations", {}).get("authorization.k8s.io/decision") == "allow",
        "name": o.get("name", ""),
        "body": body if isinstance(body, dict) else {},
        "rules": body.get("rules", []) if isinstance(body, dict) else [],
        "specs": pod_specs(body),
        "volumes": [v for s in pod_specs(body) for v in s.get("volumes", [])],
        "cmd": exec_cmd(e),
        "ip": e["sourceIPs"][-1],
    }


def _template_write(f: dict) -> bool:
    return (
        f["res"] in WORKLOAD_RES
        and not f["sub"]
        and f["ok"]
        and (f["verb"] == "create" or (f["verb"] in ("update", "patch") and not f["controller"]))
    )


def _containers(f: dict) -> list[dict]:
    return [c for s in f["specs"] for c in s.get("containers", []) + s.get("initContainers", [])]


def _privileged(c: dict) -> bool:
    sc = c.get("securityContext") or {}
    return bool(sc.get("privileged")) or bool(
        set((sc.get("capabilities") or {}).get("add", [])) & {"SYS_ADMIN", "NET_ADMIN", "ALL"}
    )


def _connect(sub: str):
    return lambda f: f["res"] == "pods" and f["sub"] == sub and f["verb"] in ("create", "get")


def _namespace_name(f: dict) -> str:
    return (f["body"].get("metadata") or {}).get("name") or object_ref(f["e"]).get("name", "")


READS = ("get", "list", "watch")
BODY_VERBS = ("create", "update", "patch")
ROLES, BINDINGS = {"roles", "clusterroles"}, {"rolebindings", "clusterrolebindings"}
WILDCARD = {"*", "escalate", "bind", "impersonate", "pods/exec", "nodes/proxy"}
OPEN_PATHS = ("/healthz", "/livez", "/readyz", "/version")


def on(f: dict, resources: set | tuple, verbs: set | tuple) -> bool:
    return f["res"] in resources and f["verb"] in verbs


def _allowed_namespace(f: dict) -> bool:
    return any(fnmatch.fnmatchcase(_namespace_name(f), p) for p in CONFIG["allowed_namespaces"])


def _suspicious(cmd: list[str]) -> bool:
    shell_c = cmd[:1] and cmd[0] in SHELLS and "-c" in cmd
    return bool(shell_c) or any(s in " ".join(cmd) for s in SUSPICIOUS)


RULES = {  # detection id -> test on one request's facts
    **{s: _connect(s) for s in ("exec", "attach", "portforward")},
    "exec-suspicious-command": lambda f: _connect("exec")(f) and _suspicious(f["cmd"]),
    "ephemeral-container": lambda f: f["sub"] == "ephemeralcontainers" and f["verb"] in WRITE_VERBS,
    "node-proxy": lambda f: f["res"] == "nodes" and f["sub"] == "proxy",
    "secret-read": lambda f: on(f, {"secrets"}, READS) and f["ok"] and f["human"],
    "secret-read-denied": lambda f: on(f, {"secrets"}, READS) and f["code"] in (401, 403)
    and f["human"],
    "secret-write": lambda f: on(f, {"secrets"}, WRITE_VERBS) and f["human"],
    "token-request": lambda f: on(f, {"serviceaccounts"}, {"create"}) and f["sub"] == "token",
    "csr": lambda f: f["res"] == "certificatesigningrequests"
    and ((f["verb"] == "create" and not f["sub"]) or f["sub"] == "approval"),
    "configmap-credentials": lambda f: f["res"] == "configmaps"
    and re.search(r"(?i)password|secret.?access.?key|access.?key.?id|token", json.dumps(f["body"]))
    is not None,
    "anonymous-allowed": lambda f: f["user"] == "system:anonymous" and f["allowed"]
    and f["e"]["requestURI"].split("?")[0] not in OPEN_PATHS,
    AUTH_FAILURES: lambda f: f["code"] in (401, 403),
    "impersonation": lambda f: "impersonatedUser" in f["e"],
    "permission-enumeration": lambda f: f["human"]
    and on(f, {"selfsubjectrulesreviews", "selfsubjectaccessreviews"}, {"create"}),
    "scanner-user-agent": lambda f: any(s in f["e"].get("userAgent", "") for s in SCANNERS),
    "system-identity-public-ip": lambda f: f["system"] and is_public(f["ip"]),
    "risky-source-ip": lambda f: f["ip"] in CONFIG["threat_list"],
    "rbac-change": lambda f: on(f, RBAC_RES, WRITE_VERBS),
    "system-role-modified": lambda f: on(f, {"clusterroles", "clusterrolebindings"}, WRITE_VERBS)
    and f["name"].startswith("system:"),
    "cluster-admin-binding": lambda f: on(f, BINDINGS, {"create", "update"})
    and f["body"].get("roleRef", {}).get("name") == "cluster-admin",
    "wildcard-role": lambda f: on(f, ROLES, {"create", "update"})
    and any((set(r.get("verbs", [])) | set(r.get("resources", []))) & WILDCARD for r in f["rules"]),
    "role-write-privileges": lambda f: on(f, ROLES, BODY_VERBS) and f["ok"]
    and not f["controller"] and grants_writes(f["rules"]),
    "serviceaccount-kube-namespace": lambda f: on(f, {"serviceaccounts"}, {"create"})
    and not f["sub"] and f["ok"] and f["ns"] in KUBE_NAMESPACES and not f["controller"],
    "admission-webhook-change": lambda f: f["verb"] in WRITE_VERBS
    and f["res"] in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"),
    "events-deleted": lambda f: on(f, {"events"}, {"delete"}),
    "namespace-deleted": lambda f: on(f, {"namespaces"}, {"delete"}) and not f["sub"]
    and f["human"],
    "resource-deletion": lambda f: f["verb"] == "delete" and f["human"],
    "privileged-pod": lambda f: _template_write(f) and any(map(_privileged, _containers(f))),
    "host-namespaces": lambda f: _template_write(f)
    and any(s.get(k) for s in f["specs"] for k in ("hostNetwork", "hostPID", "hostIPC")),
    "sensitive-hostpath": lambda f: _template_write(f)
    and any(sensitive_path((v.get("hostPath") or {}).get("path", "-")) for v in f["volumes"]),
    "kube-system-workload": lambda f: on(f, WORKLOAD_RES, {"create"}) and f["human"]
    and f["ns"] in ("kube-system", "kube-public"),
    "nodeport-service": lambda f: on(f, {"services"}, {"create"})
    and f["body"].get("spec", {}).get("type") == "NodePort",
    "cronjob-change": lambda f: on(f, {"cronjobs"}, WRITE_VERBS),
    "disallowed-user": lambda f: f["human"]
    and not {f["user"], person(f["e"])} & set(CONFIG["allowed_users"]),
    "disallowed-image": lambda f: _template_write(f)
    and not all(image_allowed(c["image"]) for c in _containers(f) if "image" in c),
    "disallowed-namespace": lambda f: on(f, {"namespaces"}, {"create"}) and f["ok"]
    and not f["controller"] and not _allowed_namespace(f),
}  # fmt: skip
WINDOWED = ("secret-enumeration", "denied-burst", "public-ip-failure-rate")
DETECTION_IDS = [*RULES, *WINDOWED]


def detect(events: list[tuple[str, dict]]) -> dict[str, dict[str, dict]]:
    """detection id -> auditID -> one event of that request."""
    hits: dict[str, dict[str, dict]] = defaultdict(dict)
    by_id: dict[str, dict] = {}
    for _, e in events:
        if e["stage"] == "ResponseComplete" or e["auditID"] not in by_id:
            by_id[e["auditID"]] = e
    secret_reads: dict[tuple, list[dict]] = defaultdict(list)
    denied: dict[str, list[dict]] = defaultdict(list)
    per_ip: dict[str, list[dict]] = defaultdict(list)
    for e in by_id.values():
        f = _facts(e)
        for det, rule in RULES.items():
            if rule(f):
                hits[det][e["auditID"]] = e
        per_ip[f["ip"]].append(e)
        if f["res"] == "secrets" and f["verb"] in READS and f["ok"] and f["human"]:
            day = (parse_ts(e["requestReceivedTimestamp"]) + dt.timedelta(hours=8)).date()
            secret_reads[f["user"], day].append(e)
        if f["code"] == 403 and f["user"]:
            denied[f["user"]].append(e)

    def hit(det: str, found: list[dict]) -> None:
        hits[det].update((x["auditID"], x) for x in found)

    for reads in secret_reads.values():
        everywhere = [
            r for r in reads if r["verb"] == "list" and not object_ref(r).get("namespace")
        ]
        hit("secret-enumeration", everywhere)
        if len({object_ref(r).get("name") for r in reads} - {None}) >= 3:
            hit("secret-enumeration", reads)
    for evs in denied.values():
        times = sorted((parse_ts(x["requestReceivedTimestamp"]), x) for x in evs)
        for i, (t0, _) in enumerate(times):
            window = [x for t, x in times[i:] if t - t0 <= dt.timedelta(minutes=5)]
            if len({x["requestURI"] for x in window}) > 10:
                hit("denied-burst", window)
    for ip, evs in per_ip.items():
        failed = sum(status_code(x) >= 400 for x in evs)
        if is_public(ip) and len(evs) > 10 and failed * 2 > len(evs):
            hit("public-ip-failure-rate", evs)
    return hits


def _username(actor_key: str) -> str:
    actor = ACTORS["planted"][actor_key]
    if "identity" in actor:
        return ACTORS["humans"][actor["identity"]]["username"]
    if "controller" in actor:
        return f"system:serviceaccount:kube-system:{actor['controller']}"
    if "service_account" in actor:
        sa = actor["service_account"]
        return f"system:serviceaccount:{sa['namespace']}:{sa['name']}"
    return actor["user"]["username"]


def planted_rows() -> list[dict]:
    """One row per incident of incidents.yaml: ids, count, codes and the actors' usernames."""
    rows = []
    for inc in INCIDENTS["incidents"]:
        reqs = inc["requests"]
        actor = ACTORS["planted"][reqs[0]["actor"]]
        codes = [r.get("code", 200) for r in reqs]
        rows.append(
            {
                "id": inc["detection"],
                "key": inc["key"],
                "also": inc.get("also", []),
                "observable": inc.get("observable", True),
                "count": len(reqs),
                "codes": codes,
                "auth_failures": sum(c in (401, 403) for c in codes),
                "username": _username(reqs[0]["actor"]),
                "usernames": {_username(r["actor"]) for r in reqs},
                "source_ip": actor["source_ips"][-1],
                "person": ACTORS["humans"].get(actor.get("identity"), {}).get("person", ""),
                "master": next((r["master"] for r in reqs if "master" in r), None),
            }
        )
    return rows


PLANTED_ROWS = planted_rows()


def expected(det: str) -> list[dict]:
    """The observable planted rows a detection must find."""
    return [p for p in PLANTED_ROWS if p["observable"] and (p["id"] == det or det in p["also"])]
