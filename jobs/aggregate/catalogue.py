"""The detection catalogue (docs/detections.md) as data: id, severity, section, title, and the
(group, resource, verbs) whose request bodies a detection reads, which decides observability.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.aggregate.columns import BODY_VERBS

CRITICAL, HIGH, MEDIUM, LOW = "critical", "high", "medium", "low"
RBAC = "rbac.authorization.k8s.io"
WORKLOADS: tuple[tuple[str, str], ...] = (
    ("", "pods"), ("", "replicationcontrollers"), ("apps", "deployments"),
    ("apps", "statefulsets"), ("apps", "daemonsets"), ("apps", "replicasets"),
    ("batch", "jobs"), ("batch", "cronjobs"),
)


@dataclass(frozen=True)
class BodyNeed:
    """Requests whose body a detection inspects."""

    group: str
    resource: str
    verbs: tuple[str, ...] = BODY_VERBS


@dataclass(frozen=True)
class Detection:
    """One catalogue entry."""

    id: str
    severity: str
    section: str
    title: str
    body_needs: tuple[BodyNeed, ...] = ()


def _needs(pairs: tuple[tuple[str, str], ...]) -> tuple[BodyNeed, ...]:
    return tuple(BodyNeed(g, r) for g, r in pairs)


_RA, _SC, _IA, _RB, _WL = ("remote-access", "secrets", "identity", "rbac", "workloads")
CATALOGUE: tuple[Detection, ...] = (
    Detection("exec", HIGH, _RA, "Command executed in a container (pods/exec)"),
    Detection("attach", HIGH, _RA, "Attached to a running container (pods/attach)"),
    Detection("portforward", MEDIUM, _RA, "Port forwarded into a pod (pods/portforward)"),
    Detection("ephemeral-container", HIGH, _RA, "Ephemeral debug container injected"),
    Detection("node-proxy", HIGH, _RA, "Direct kubelet access through nodes/proxy"),
    Detection("exec-suspicious-command", CRITICAL, _RA,
              "Exec with a shell -c, downloader, metadata endpoint, /etc/shadow, base64 -d or nc"),
    Detection("secret-read", MEDIUM, _SC, "Secret read by a human identity"),
    Detection("secret-read-denied", MEDIUM, _SC, "Secret read denied (401/403)"),
    Detection("secret-enumeration", HIGH, _SC,
              "Secrets listed cluster-wide, or >= 3 distinct secrets read in a day"),
    Detection("secret-write", MEDIUM, _SC, "Secret created, changed or deleted by a human"),
    Detection("token-request", MEDIUM, _SC, "Service account token minted (serviceaccounts/token)"),
    Detection("csr", MEDIUM, _SC, "Certificate signing request created or approved"),
    Detection("configmap-credentials", HIGH, _SC, "Credentials stored in a ConfigMap",
              (BodyNeed("", "configmaps"),)),
    Detection("anonymous-allowed", HIGH, _IA, "Anonymous request allowed"),
    Detection("auth-failures", MEDIUM, _IA, "401 per source IP and 403 per identity"),
    Detection("public-ip-failure-rate", HIGH, _IA,
              "Public source IP with > 10 requests and > 50% failures"),
    Detection("impersonation", MEDIUM, _IA, "Request made through impersonation"),
    Detection("permission-enumeration", LOW, _IA, "Self subject rules/access review by a human"),
    Detection("denied-burst", HIGH, _IA, "403 on > 10 distinct URIs within 5 minutes"),
    Detection("scanner-user-agent", HIGH, _IA, "Known scanner user agent"),
    Detection("system-identity-public-ip", CRITICAL, _IA,
              "System identity calling from a public IP"),
    Detection("rbac-change", MEDIUM, _RB, "Role or binding written"),
    Detection("cluster-admin-binding", CRITICAL, _RB, "Binding to cluster-admin created or updated",
              _needs(((RBAC, "clusterrolebindings"), (RBAC, "rolebindings")))),
    Detection("wildcard-role", HIGH, _RB,
              "Role with '*' or escalate/bind/impersonate/pods/exec/nodes/proxy",
              _needs(((RBAC, "clusterroles"), (RBAC, "roles")))),
    Detection("system-role-modified", HIGH, _RB, "Built-in system: role or binding written"),
    Detection("admission-webhook-change", HIGH, _RB, "Admission webhook configuration written"),
    Detection("events-deleted", HIGH, _RB, "Events deleted"),
    Detection("namespace-deleted", HIGH, _RB, "Namespace deleted by a human"),
    Detection("privileged-pod", CRITICAL, _WL, "Privileged container or dangerous capabilities",
              _needs(WORKLOADS)),
    Detection("host-namespaces", HIGH, _WL, "hostNetwork, hostPID or hostIPC", _needs(WORKLOADS)),
    Detection("sensitive-hostpath", HIGH, _WL, "hostPath volume on a sensitive host path",
              _needs(WORKLOADS)),
    Detection("kube-system-workload", HIGH, _WL, "Workload created in kube-system/kube-public"),
    Detection("nodeport-service", MEDIUM, _WL, "NodePort service created",
              (BodyNeed("", "services"),)),
    Detection("cronjob-change", MEDIUM, _WL, "CronJob written"),
    Detection("resource-deletion", LOW, _WL, "Resource deleted by a human"),
)
DETECTION_IDS: tuple[str, ...] = tuple(d.id for d in CATALOGUE)
BY_ID = {d.id: d for d in CATALOGUE}
# Resources whose create/update/patch bodies the request summary keeps (nothing else is kept).
BODY_RESOURCES: tuple[str, ...] = tuple(sorted({n.resource for d in CATALOGUE
                                                for n in d.body_needs}))
