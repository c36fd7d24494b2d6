from __future__ import annotations

import datetime as dt
import gzip
import ipaddress
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import parse_qsl, unquote

import pytest

from jobs import synth

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


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def _ordered_files(master_dir: Path) -> list[Path]:
    backups = sorted(
        (p for p in master_dir.iterdir() if BACKUP_RE.match(p.name)),
        key=lambda p: BACKUP_RE.match(p.name).group(1),
    )
    return [*backups, master_dir / "kubernetes.audit"]


def _events(root: Path) -> list[tuple[str, dict]]:
    out = []
    for master_dir in sorted(root.iterdir()):
        for f in _ordered_files(master_dir):
            for line in _read(f).decode().splitlines():
                out.append((master_dir.name, json.loads(line)))
    return out


def _ts(s: str) -> dt.datetime:
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


def _name_ts(name: str) -> dt.datetime:
    ts = BACKUP_RE.match(name).group(1)
    return dt.datetime.strptime(ts, "%Y-%m-%dT%H-%M-%S.%f").replace(tzinfo=dt.UTC)


def _code(e: dict) -> int:
    return e.get("responseStatus", {}).get("code", 0)


def _username(e: dict) -> str:
    return e["user"].get("username", "")


def _is_human(e: dict) -> bool:
    u = _username(e)
    return bool(u) and not u.startswith("system:")


def _oref(e: dict) -> dict:
    return e.get("objectRef") or {}


def _is_longrunning(e: dict) -> bool:
    return e["verb"] in ("watch", "proxy") or _oref(e).get("subresource") in LONG_SUBS


def _public(ip: str) -> bool:
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


def _ack_level(e: dict) -> str:
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


def _exec_cmd(e: dict) -> list[str]:
    query = e["requestURI"].split("?", 1)[1] if "?" in e["requestURI"] else ""
    return [v for k, v in parse_qsl(query) if k == "command"]


def _pod_specs(obj: dict | None) -> list[dict]:
    if not isinstance(obj, dict):
        return []
    spec = obj.get("spec") or {}
    if obj.get("kind") == "Pod":
        return [spec]
    if obj.get("kind") == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    tmpl = spec.get("template", {}).get("spec")
    return [tmpl] if tmpl else []


def _is_success(e: dict) -> bool:
    return 200 <= _code(e) < 400


def _detect(events: list[tuple[str, dict]]) -> dict[str, dict[str, dict]]:
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
        o, verb, code = _oref(e), e["verb"], _code(e)
        res, sub, grp = o.get("resource"), o.get("subresource"), o.get("apiGroup", "")
        ann = e.get("annotations", {})
        body = e.get("requestObject")
        user = _username(e)
        ip = e["sourceIPs"][-1]
        per_ip[ip].append(e)
        if res == "pods" and sub in ("exec", "attach", "portforward") and verb in ("create", "get"):
            hit(sub, e)
            if sub == "exec":
                cmd = " ".join(_exec_cmd(e))
                if any(s in cmd for s in SUSPICIOUS) or (
                    _exec_cmd(e)[:1] and _exec_cmd(e)[0] in SHELLS and "-c" in _exec_cmd(e)
                ):
                    hit("exec-suspicious-command", e)
        if sub == "ephemeralcontainers" and verb in WRITE_VERBS:
            hit("ephemeral-container", e)
        if res == "nodes" and sub == "proxy":
            hit("node-proxy", e)
        if res == "secrets" and grp == "":
            if verb in ("get", "list", "watch") and _is_success(e) and _is_human(e):
                hit("secret-read", e)
            if verb in ("get", "list", "watch") and code in (401, 403) and _is_human(e):
                hit("secret-read-denied", e)
            if verb in ("get", "list", "watch") and _is_success(e):
                day = (_ts(e["requestReceivedTimestamp"]) + dt.timedelta(hours=8)).date()
                secret_reads[user, day.isoformat()].append(e)
            if verb in WRITE_VERBS and _is_human(e):
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
            and _is_human(e)
        ):
            hit("permission-enumeration", e)
        if code == 403 and user:
            denied[user].append(e)
        if any(
            s in e.get("userAgent", "")
            for s in ("kube-hunter", "trufflehog", "azurehound", "access_matrix")
        ):
            hit("scanner-user-agent", e)
        if user.startswith("system:") and user != "system:anonymous" and _public(ip):
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
        if res == "namespaces" and verb == "delete" and not sub and _is_human(e):
            hit("namespace-deleted", e)
        if verb == "delete" and _is_human(e):
            hit("resource-deletion", e)
        if verb == "create" and not sub:
            for spec in _pod_specs(body):
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
                and _is_human(e)
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
            t0 = _ts(first["requestReceivedTimestamp"])
            window = [
                x
                for x in evs[i:]
                if _ts(x["requestReceivedTimestamp"]) - t0 <= dt.timedelta(minutes=5)
            ]
            if len({x["requestURI"] for x in window}) > 10:
                for x in window:
                    hit("denied-burst", x)
    for ip, evs in per_ip.items():
        if _public(ip) and len(evs) > 10 and sum(_code(x) >= 400 for x in evs) * 2 > len(evs):
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


def _expected(det: str) -> list[dict]:
    return [p for p in synth.PLANTED if p["observable"] and (p["id"] == det or det in p["also"])]


# ---------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("week")
    summary = synth.synth_week(root, events=EVENTS, max_size_mb=MAX_MB, seed=5)
    return root, summary


@pytest.fixture(scope="module")
def events(week: tuple[Path, dict]) -> list[tuple[str, dict]]:
    return _events(week[0])


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# ---------------------------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_synth_week_same_arguments_give_identical_bytes(tmp_path: Path, compress: bool) -> None:
    a = synth.synth_week(tmp_path / "a", events=EVENTS, max_size_mb=MAX_MB, compress=compress)
    b = synth.synth_week(tmp_path / "b", events=EVENTS, max_size_mb=MAX_MB, compress=compress)
    ta, tb = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert len(ta) > 3
    assert ta == tb
    assert a == b


def test_synth_week_other_seed_gives_other_bytes_but_same_planted_counts(tmp_path: Path) -> None:
    synth.synth_week(tmp_path / "a", events=EVENTS, max_size_mb=MAX_MB, seed=1)
    synth.synth_week(tmp_path / "b", events=EVENTS * 2, max_size_mb=MAX_MB, seed=2)
    assert _tree(tmp_path / "a") != _tree(tmp_path / "b")
    ha, hb = _detect(_events(tmp_path / "a")), _detect(_events(tmp_path / "b"))
    assert {k: len(v) for k, v in ha.items()} == {k: len(v) for k, v in hb.items()}


def test_synth_week_gzip_backups_are_plain_deterministic_gzip(tmp_path: Path) -> None:
    synth.synth_week(tmp_path, events=EVENTS, max_size_mb=MAX_MB, compress=True)
    for master in ("master-1", "master-2", "master-3"):
        files = sorted(p.name for p in (tmp_path / master).iterdir())
        assert files[-1] == "kubernetes.audit"
        assert files[:-1] and all(f.endswith(".audit.gz") for f in files[:-1])
        for f in files[:-1]:
            raw = (tmp_path / master / f).read_bytes()
            assert raw[:3] == b"\x1f\x8b\x08"
            assert raw[3] & 0x08 == 0  # no stored file name
            assert raw[4:8] == b"\x00\x00\x00\x00"  # mtime 0
            assert gzip.decompress(raw).endswith(b"}\n")


def test_synth_week_file_names_and_rotation_rule(week: tuple[Path, dict]) -> None:
    root, summary = week
    assert sorted(p.name for p in root.iterdir()) == ["master-1", "master-2", "master-3"]
    for master_dir in root.iterdir():
        names = [p.name for p in master_dir.iterdir()]
        assert "kubernetes.audit" in names
        backups = [n for n in names if n != "kubernetes.audit"]
        assert len(backups) >= 2
        assert all(BACKUP_RE.match(n) for n in backups)
        ordered = _ordered_files(master_dir)
        assert [p.name for p in ordered] == summary["masters"][master_dir.name]["files"]
        for cur, nxt in zip(ordered, ordered[1:], strict=False):
            size = cur.stat().st_size
            first_next = nxt.read_bytes().split(b"\n", 1)[0] + b"\n"
            assert size <= LIMIT
            assert size + len(first_next) > LIMIT  # rotated only because the next line did not fit
        assert ordered[-1].stat().st_size <= LIMIT


def test_synth_week_backup_name_is_rotation_time_after_its_events(week: tuple[Path, dict]) -> None:
    root, _ = week
    for master_dir in root.iterdir():
        files = _ordered_files(master_dir)
        for f in files[:-1]:
            stamps = [_ts(json.loads(x)["stageTimestamp"]) for x in f.read_text().splitlines()]
            name_ts = _name_ts(f.name)
            assert stamps[-1] <= name_ts
            assert max(stamps) <= name_ts < max(stamps) + dt.timedelta(seconds=1)
            assert f.stat().st_mtime_ns == int(name_ts.timestamp() * 1000) * 1_000_000
        last = [json.loads(x)["stageTimestamp"] for x in files[-1].read_text().splitlines()]
        assert files[-1].stat().st_mtime_ns // 1000 == int(
            max(_ts(s) for s in last).timestamp() * 1_000_000
        )


def test_synth_week_lines_are_only_roughly_time_ordered(week: tuple[Path, dict]) -> None:
    root, _ = week
    for master_dir in root.iterdir():
        newest = WEEK_START
        for f in _ordered_files(master_dir):
            for raw in f.read_text().splitlines():
                stage = _ts(json.loads(raw)["stageTimestamp"])
                assert newest - stage < dt.timedelta(milliseconds=10)
                newest = max(newest, stage)


def test_synth_week_lines_are_go_json_v1_events_inside_the_week(week: tuple[Path, dict]) -> None:
    root, summary = week
    n = 0
    for f in root.rglob("kubernetes*"):
        data = f.read_bytes()
        assert data.endswith(b"\n")
        for raw in data.split(b"\n")[:-1]:
            n += 1
            assert not re.search(rb"[&<>]", raw)
            e = json.loads(raw)
            assert raw.decode() == json.dumps(e, separators=(",", ":"), ensure_ascii=False).replace(
                "&", "\\u0026"
            ).replace("<", "\\u003c").replace(">", "\\u003e")
            keys = list(e)
            assert keys == [k for k in V1_ORDER if k in e]
            assert e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1"
            assert e["level"] in ("Metadata", "Request", "RequestResponse")
            assert TS_RE.match(e["requestReceivedTimestamp"]) and TS_RE.match(e["stageTimestamp"])
            assert (
                WEEK_START
                <= _ts(e["requestReceivedTimestamp"])
                <= _ts(e["stageTimestamp"])
                < WEEK_END
            )
            assert e["responseStatus"]["metadata"] == {}
            if "annotations" in e:
                assert list(e["annotations"]) == sorted(e["annotations"])
    assert n == summary["events"]
    assert abs(n - EVENTS) / EVENTS < 0.05


def test_synth_week_stages_follow_ack_omit_and_longrunning_rules(events: list) -> None:
    stages: dict[str, list[str]] = defaultdict(list)
    for _, e in events:
        assert e["stage"] != "RequestReceived"
        stages[e["auditID"]].append(e["stage"])
        if e["stage"] == "ResponseStarted":
            assert _is_longrunning(e) or _code(e) == 401
        if _code(e) == 401:
            assert e["user"] == {} and e["stage"] == "ResponseStarted" and "annotations" not in e
            assert e["responseStatus"]["reason"] == "Unauthorized"
        else:
            assert e["user"]["username"]
            assert e["annotations"]["authorization.k8s.io/decision"] in ("allow", "forbid")
            assert "authorization.k8s.io/reason" in e["annotations"]
            assert (e["annotations"]["authorization.k8s.io/decision"] == "forbid") == (
                _code(e) == 403
            )
    for _, e in events:
        got = sorted(stages[e["auditID"]])
        if _code(e) == 401:
            assert got == ["ResponseStarted"]
        elif _is_longrunning(e):
            assert got == ["ResponseComplete", "ResponseStarted"]
        else:
            assert got == ["ResponseComplete"]
    codes = Counter(_code(e) for _, e in events)
    assert codes[101] and codes[201] and codes[401] and codes[403] and codes[404] and codes[409]


def test_synth_week_levels_and_bodies_match_ack_policy_except_planted_drift(events: list) -> None:
    drift = [p for p in synth.PLANTED if p["id"] == "policy-drift-sensitive-body"]
    assert len(drift) == 1
    mismatches = []
    for master, e in events:
        level = _ack_level(e)
        if level != e["level"]:
            mismatches.append((master, e))
            continue
        verb, sub = e["verb"], _oref(e).get("subresource")
        if "requestObject" in e:
            assert verb in ("create", "update", "patch", "delete")
            assert LEVEL_RANK[e["level"]] >= LEVEL_RANK["Request"]
        if "responseObject" in e:
            assert e["level"] == "RequestResponse"
            assert verb in ("get", "list", "create", "update", "patch", "delete")
            assert sub not in LONG_SUBS
        if (
            e["level"] == "RequestResponse"
            and verb in ("create", "update", "patch")
            and sub not in LONG_SUBS
            and _code(e) < 400
            and e["stage"] == "ResponseComplete"
        ):
            assert "requestObject" in e and "responseObject" in e
    assert len(mismatches) == drift[0]["count"] == 5
    for master, e in mismatches:
        assert master == drift[0]["master"]
        assert e["objectRef"]["resource"] == "secrets" and e["level"] == "RequestResponse"
        assert e["responseObject"]["kind"] == "Secret" and e["responseObject"]["data"]
        assert _ack_level(e) == "Metadata"


def test_synth_week_detections_find_exactly_the_planted_incidents(events: list) -> None:
    hits = _detect(events)
    for det in DETECTION_IDS:
        want = _expected(det)
        got = hits.get(det, {})
        assert len(got) == sum(p["count"] for p in want), det
        # 401s carry no user at all; the scanner's identified requests are system:anonymous
        assert {_username(e) for e in got.values()} - {""} == {p["username"] for p in want}, det
    assert set(hits) <= set(DETECTION_IDS)
    assert len(hits) >= 25


def test_synth_week_planted_details_are_visible_in_the_events(events: list) -> None:
    hits = _detect(events)
    execs = hits["exec"].values()
    assert {e["verb"] for e in execs} == {"create", "get"}
    shadow = [e for e in execs if "/etc/shadow" in " ".join(_exec_cmd(e))]
    assert [e["requestURI"] for e in shadow] == [
        "/api/v1/namespaces/prod/pods/web-7d9f/exec?command=sh&command=-c&command=cat%20%2Fetc"
        "%2Fshadow&container=web&stdin=true&stdout=true&tty=true"
    ]
    assert any("169.254.169.254" in " ".join(_exec_cmd(e)) for e in execs)
    for e in execs:
        if _username(e) == "kubernetes-admin":
            person = next(p["attributed_to"] for p in synth.PLANTED if p["key"] == "exec-imds")
            assert e["annotations"]["authorization.k8s.io/reason"].endswith(f'to User "{person}"')
            assert e["user"]["groups"] == ["system:masters", "system:authenticated"]
    imp = list(hits["impersonation"].values())
    assert {e["impersonatedUser"]["username"] for e in imp} == {
        "system:serviceaccount:prod:deployer"
    }
    assert {_username(e) for e in imp} == {"kubernetes-admin"}
    token = next(iter(hits["token-request"].values()))
    assert token["level"] == "RequestResponse" and token["responseObject"]["status"]["token"]
    scanner = [p for p in synth.PLANTED if p["id"] == "public-ip-failure-rate"][0]
    mine = [e for _, e in events if e["sourceIPs"][-1] == scanner["source_ip"]]
    assert len({e["auditID"] for e in mine}) == scanner["count"] == 30
    assert sum(_code(e) >= 400 for e in mine) == scanner["failures"] == 25
    assert Counter(_code(e) for e in mine) == {401: 15, 403: 10, 200: 5}
    anon = hits["anonymous-allowed"].values()
    assert {e["requestURI"].split("?")[0] for e in anon} == {"/api/v1/namespaces/default/pods"}
    assert all(e["user"]["groups"] == ["system:unauthenticated"] for e in anon)
    burst = [p for p in synth.PLANTED if p["id"] == "denied-burst"][0]
    assert len({e["requestURI"] for e in hits["denied-burst"].values()}) == burst["count"]
    enum = [p for p in synth.PLANTED if p["key"] == "secret-day"][0]
    assert (
        len(
            {
                e["objectRef"]["name"]
                for e in hits["secret-enumeration"].values()
                if e["verb"] == "get"
            }
        )
        == enum["distinct_secrets"]
        == 3
    )
    crd = [
        e
        for _, e in events
        if _oref(e).get("apiGroup") == "crd.projectcalico.org"
        and _is_human(e)
        and e["verb"] in ("create", "delete")
    ]
    assert sorted(e["verb"] for e in crd) == ["create", "delete"]
    # configmap-credentials is planted but not observable: the ACK policy logs configmaps at
    # Metadata, so the request exists without its body
    cm = [
        e
        for _, e in events
        if _oref(e).get("resource") == "configmaps"
        and e["verb"] == "create"
        and _oref(e).get("name") == "app-env"
    ]
    assert len(cm) == 1 and cm[0]["level"] == "Metadata" and "requestObject" not in cm[0]


def test_synth_week_mix_is_mostly_system_identities(events: list) -> None:
    users = Counter(_username(e) for _, e in events)
    system = sum(n for u, n in users.items() if u.startswith("system:"))
    assert system / len(events) > 0.80
    humans = {u for u in users if u and not u.startswith("system:")}
    assert "kubernetes-admin" in humans
    assert sum(bool(re.fullmatch(r"27\d{16}", u)) for u in humans) >= 4
    assert any(u.startswith("system:node:") for u in users)
    assert any(u.startswith("system:serviceaccount:kube-system:") for u in users)
    ips = {ip for _, e in events for ip in e["sourceIPs"]}
    assert any(":" in ip and _public(ip) for ip in ips)  # public IPv6
    assert any(ipaddress.ip_address(ip).is_private for ip in ips)
    assert any(len(e["sourceIPs"]) == 2 for _, e in events)
    groups = {_oref(e).get("apiGroup") for _, e in events}
    assert {
        "crd.projectcalico.org",
        "monitoring.coreos.com",
        "cert-manager.io",
        "coordination.k8s.io",
    } <= groups


def test_synth_week_humans_follow_office_hours(events: list) -> None:
    by_hour: Counter[int] = Counter()
    for _, e in events:
        if _is_human(e):
            by_hour[(_ts(e["requestReceivedTimestamp"]) + dt.timedelta(hours=8)).hour] += 1
    day = sum(by_hour[h] for h in (9, 10, 11, 14, 15, 16))
    night = sum(by_hour[h] for h in (1, 2, 3, 4, 5, 6))
    assert day > 10 * max(night, 1)


def test_synth_week_refuses_a_non_empty_master_dir(tmp_path: Path) -> None:
    (tmp_path / "master-1").mkdir()
    (tmp_path / "master-1" / "kubernetes.audit").write_text("x\n")
    with pytest.raises(FileExistsError):
        synth.synth_week(tmp_path, events=100, max_size_mb=MAX_MB)


def test_synth_week_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        synth.synth_week(tmp_path / "a", week="2026-47")
    with pytest.raises(ValueError):
        synth.synth_week(tmp_path / "b", max_size_mb=0.01)


def test_planted_table_is_consistent_and_rendered() -> None:
    md = synth.planted_markdown()
    table = [r for r in md.splitlines() if r.startswith("|")]
    assert len(table) == len(synth.PLANTED) + 2
    for p in synth.PLANTED:
        assert p["count"] >= 1 and p["lines"] >= p["count"]
        assert f"| {p['id']} | {p['count']} |" in md
    ids = {p["id"] for p in synth.PLANTED}
    assert ids - set(DETECTION_IDS) == {"crd-operations", "policy-drift-sensitive-body"}
