"""The detection catalogue (docs/detections.md): one entry per detection, in report order.

Adding a detection is adding one entry here: its id, severity, section, title and why, how it
is found (a per-request ``predicate`` built from ``predicates``, or a ``finder`` from
``windows``), the request bodies it reads (``body_needs``, which decide whether the policy in
force makes it observable) and its thresholds. Marts, summary.json and the observability
check all iterate this tuple.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.detections import allowlists, risk, windows
from jobs.detections.credentials import configmap_has_credentials
from jobs.detections.model import CRITICAL, HIGH, LOW, MEDIUM, BodyNeed, Detection
from jobs.detections.predicates import (
    BINDINGS,
    HOST_NAMESPACES_RE,
    KUBE_NAMESPACES,
    KUBE_SYSTEM_NAMESPACES,
    NODEPORT_RE,
    PRIVILEGED_RE,
    RBAC,
    ROLES,
    SENSITIVE_HOSTPATH_RE,
    WILDCARD_RULE_RE,
    WORKLOADS,
    binds_cluster_admin,
    body,
    body_writes,
    builtin_controller,
    client_is_public,
    code,
    connect,
    grants_write_privileges,
    human,
    non_system,
    object_name_is_system,
    ok,
    on,
    open_path,
    secrets_read,
    sub,
    suspicious_command,
    system,
    template_written,
    verb,
    workload,
    writes,
)

_RA, _SC, _IA, _RB, _WL = ("remote-access", "secrets", "identity", "rbac", "workloads")
_AL = "allow-lists"
PUBLIC_IP_FAILURE_RATE = {"min_requests": 10, "max_failure_rate": 0.5}
DENIED_BURST = {"distinct_uris": 10, "seconds": 300}
SECRET_ENUMERATION = {"reads_per_day": 3}


def _needs(*pairs: tuple[str, str]) -> tuple[BodyNeed, ...]:
    return tuple(BodyNeed(g, r) for g, r in pairs)


def _col(name: str) -> Column:
    return F.col(name)


def _template(pattern: str) -> Column:
    return template_written() & body(pattern)


# Pod-security detections (issue 11): every pod creation whoever the caller, and the workloads
# carrying the template, one finding per workload (``per_workload``), naming who wrote it.
_POD_SECURITY = (
    "; refined (issue 11): any caller's pod creation and Deployment/DaemonSet/StatefulSet/"
    "ReplicaSet/Job/CronJob create/update/patch, one finding per workload naming who wrote it"
)


CATALOGUE: tuple[Detection, ...] = (
    # remote access into workloads
    Detection(
        "exec", HIGH, _RA, "Command executed in a container (pods/exec)",
        why="a person ran a command in a container",
        predicate=lambda _: connect("exec"),
    ),
    Detection(
        "attach", HIGH, _RA, "Attached to a running container (pods/attach)",
        why="interactive attach",
        predicate=lambda _: connect("attach"),
    ),
    Detection(
        "portforward", MEDIUM, _RA, "Port forwarded into a pod (pods/portforward)",
        why="tunnel into the cluster",
        predicate=lambda _: connect("portforward"),
    ),
    Detection(
        "ephemeral-container", HIGH, _RA, "Ephemeral debug container injected",
        why="debug container injected",
        predicate=lambda _: on("", "pods") & sub("ephemeralcontainers") & body_writes() & ok(),
    ),
    Detection(
        "node-proxy", HIGH, _RA, "Direct kubelet access through nodes/proxy",
        why="direct kubelet access bypasses pod-level audit",
        predicate=lambda _: on("", "nodes") & sub("proxy") & ok() & non_system(),
    ),
    Detection(
        "exec-suspicious-command", CRITICAL, _RA,
        "Exec with a shell -c, downloader, metadata endpoint, /etc/shadow, base64 -d or nc",
        why="likely exploitation",
        predicate=lambda _: connect("exec") & suspicious_command(),
        scope=lambda _: connect("exec"),
    ),
    # secrets and credentials
    Detection(
        "secret-read", MEDIUM, _SC, "Secret read by a human identity",
        why="secret access",
        predicate=lambda _: secrets_read() & ok() & human(),
    ),
    Detection(
        "secret-read-denied", MEDIUM, _SC, "Secret read denied (401/403)",
        why="probing for secrets",
        predicate=lambda _: secrets_read() & code(401, 403) & non_system(),
    ),
    Detection(
        "secret-enumeration", HIGH, _SC,
        "Secrets listed cluster-wide, or >= "
        f"{SECRET_ENUMERATION['reads_per_day']} distinct secrets read in a day",
        why="credential harvesting",
        finder=windows.secret_enumeration,
        scope=windows.secret_read_scope,
        thresholds=SECRET_ENUMERATION,
    ),
    Detection(
        "secret-write", MEDIUM, _SC, "Secret created, changed or deleted by a human",
        why="credential tampering",
        predicate=lambda _: on("", "secrets") & sub(None) & writes() & ok() & human(),
    ),
    Detection(
        "token-request", MEDIUM, _SC, "Service account token minted (serviceaccounts/token)",
        why="minted credentials",
        predicate=lambda _: on("", "serviceaccounts") & sub("token") & verb("create") & ok()
        & non_system(),
    ),
    Detection(
        "csr", MEDIUM, _SC, "Certificate signing request created or approved",
        why="new client certificate",
        predicate=lambda _: on("certificates.k8s.io", "certificatesigningrequests") & ok()
        & non_system()
        & ((verb("create") & sub(None)) | (verb("update", "patch") & sub("approval"))),
    ),
    Detection(
        "configmap-credentials", HIGH, _SC, "Credentials stored in a ConfigMap",
        why="credentials stored in clear text; refined (issue 11): keys normalised (case, -/_/., "
        "camelCase) and matched by their last words (password, passphrase, token, secret, AWS/"
        "Alibaba/Azure keys...), values by shape (AKIA/LTAI ids, AccountKey=, db URLs with a "
        "password, PEM private keys, service account JSON, JWT); see jobs.detections.credentials",
        predicate=lambda _: on("", "configmaps") & sub(None) & body_writes() & ok()
        & configmap_has_credentials(_col("request_object")),
        scope=lambda _: on("", "configmaps") & sub(None) & body_writes() & ok(),
        body_needs=_needs(("", "configmaps")),
    ),
    # identity and access
    Detection(
        "anonymous-allowed", HIGH, _IA, "Anonymous request allowed",
        why="anonymous access is open",
        predicate=lambda _: (_col("user_name") == "system:anonymous")
        & (_col("authz_decision") == "allow") & ~open_path(),
    ),
    Detection(
        "auth-failures", MEDIUM, _IA, "401 per source IP and 403 per identity",
        why="brute force / scanning",
        finder=windows.auth_failures,
        scope=windows.auth_failure_scope,
    ),
    Detection(
        "public-ip-failure-rate", HIGH, _IA,
        f"Public source IP with > {PUBLIC_IP_FAILURE_RATE['min_requests']} requests and > "
        f"{PUBLIC_IP_FAILURE_RATE['max_failure_rate']:.0%} failures",
        why="attack from the internet",
        finder=windows.public_ip_failure_rate,
        scope=windows.public_client_scope,
        thresholds=PUBLIC_IP_FAILURE_RATE,
    ),
    Detection(
        "impersonation", MEDIUM, _IA, "Request made through impersonation",
        why="who acted as whom",
        predicate=lambda _: _col("impersonated_user").isNotNull(),
    ),
    Detection(
        "permission-enumeration", LOW, _IA, "Self subject rules/access review by a human",
        why="discovery",
        predicate=lambda _: on("authorization.k8s.io", "selfsubjectrulesreviews",
                             "selfsubjectaccessreviews") & verb("create") & human(),
    ),
    Detection(
        "denied-burst", HIGH, _IA,
        f"403 on > {DENIED_BURST['distinct_uris']} distinct URIs within "
        f"{DENIED_BURST['seconds'] // 60} minutes",
        why="discovery",
        finder=windows.denied_burst,
        scope=windows.denied_scope,
        thresholds=DENIED_BURST,
    ),
    Detection(
        "scanner-user-agent", HIGH, _IA, "Known scanner user agent",
        why="tooling",
        predicate=lambda _: windows.scanner_agent_col(),
    ),
    Detection(
        "system-identity-public-ip", CRITICAL, _IA, "System identity calling from a public IP",
        why="stolen node/controller credential",
        predicate=lambda _: system() & client_is_public(),
    ),
    Detection(
        "risky-source-ip", HIGH, _IA, "Source IP in a threat list or on a hosting/VPN ASN",
        why="the ACK report's high-risk IP; added (issue 11): configured threat lists (IPs/CIDRs) "
        "and the curated jobs/detections/hosting_asns.yaml; reasons per IP in source_ips",
        finder=risk.risky_source_ip,
        scope=risk.risky_client_scope,
        configured=risk.risky_ip_configured,
    ),
    # RBAC and control plane
    Detection(
        "rbac-change", MEDIUM, _RB, "Role or binding written",
        why="privilege change",
        predicate=lambda _: on(RBAC, *ROLES, *BINDINGS) & writes() & ok() & non_system(),
    ),
    Detection(
        "cluster-admin-binding", CRITICAL, _RB, "Binding to cluster-admin created or updated",
        why="full takeover",
        predicate=lambda _: on(RBAC, *BINDINGS) & body_writes() & ok() & binds_cluster_admin(),
        body_needs=_needs((RBAC, "clusterrolebindings"), (RBAC, "rolebindings")),
    ),
    Detection(
        "wildcard-role", HIGH, _RB,
        "Role with '*' or escalate/bind/impersonate/pods/exec/nodes/proxy",
        why="dangerous grant",
        predicate=lambda _: on(RBAC, *ROLES) & body_writes() & ok() & non_system()
        & body(WILDCARD_RULE_RE),
        body_needs=_needs((RBAC, "clusterroles"), (RBAC, "roles")),
    ),
    Detection(
        "system-role-modified", HIGH, _RB, "Built-in system: role or binding written",
        why="tampering with built-ins",
        predicate=lambda _: on(RBAC, "clusterroles", "clusterrolebindings") & writes() & ok()
        & non_system() & object_name_is_system(),
    ),
    Detection(
        "role-write-privileges", HIGH, _RB,
        "Role granting writes on secrets, exec/attach, RBAC or '*', or escalate/bind/impersonate",
        why="a grant that lets its holder take more; added (issue 11), apart from rbac-change and "
        "wildcard-role: JSON functions over the role's rules (apiGroups-aware)",
        predicate=lambda _: on(RBAC, *ROLES) & sub(None) & body_writes() & ok() & non_system()
        & grants_write_privileges(),
        scope=lambda _: on(RBAC, *ROLES) & sub(None) & body_writes() & ok() & non_system(),
        body_needs=_needs((RBAC, "clusterroles"), (RBAC, "roles")),
    ),
    Detection(
        "serviceaccount-kube-namespace", HIGH, _RB,
        "ServiceAccount created in kube-system, kube-public or kube-node-lease",
        why="persistence in a trusted namespace; added (issue 11): any caller but the control "
        "plane (system: components and kube-system's controller service accounts)",
        predicate=lambda _: on("", "serviceaccounts") & sub(None) & verb("create") & ok()
        & _col("namespace").isin(*KUBE_NAMESPACES) & ~builtin_controller(),
    ),
    Detection(
        "admission-webhook-change", HIGH, _RB, "Admission webhook configuration written",
        why="can intercept every object",
        predicate=lambda _: on("admissionregistration.k8s.io", "mutatingwebhookconfigurations",
                             "validatingwebhookconfigurations") & writes() & ok() & non_system(),
    ),
    Detection(
        "events-deleted", HIGH, _RB, "Events deleted",
        why="covering tracks",
        predicate=lambda _: (on("", "events") | on("events.k8s.io", "events"))
        & verb("delete", "deletecollection") & ok(),
    ),
    Detection(
        "namespace-deleted", HIGH, _RB, "Namespace deleted by a human",
        why="destroys everything in it",
        predicate=lambda _: on("", "namespaces") & sub(None) & verb("delete") & ok() & human(),
    ),
    # workloads
    Detection(
        "privileged-pod", CRITICAL, _WL, "Privileged container or dangerous capabilities",
        why="container escape" + _POD_SECURITY,
        predicate=lambda _: _template(PRIVILEGED_RE),
        body_needs=_needs(*WORKLOADS),
        per_workload=True,
    ),
    Detection(
        "host-namespaces", HIGH, _WL, "hostNetwork, hostPID or hostIPC",
        why="container escape" + _POD_SECURITY,
        predicate=lambda _: _template(HOST_NAMESPACES_RE),
        body_needs=_needs(*WORKLOADS),
        per_workload=True,
    ),
    Detection(
        "sensitive-hostpath", HIGH, _WL, "hostPath volume on a sensitive host path",
        why="host takeover through the file system" + _POD_SECURITY,
        predicate=lambda _: _template(SENSITIVE_HOSTPATH_RE),
        body_needs=_needs(*WORKLOADS),
        per_workload=True,
    ),
    Detection(
        "kube-system-workload", HIGH, _WL, "Workload created in kube-system/kube-public",
        why="persistence next to the control plane",
        predicate=lambda _: workload() & sub(None) & verb("create") & ok() & human()
        & _col("namespace").isin(*KUBE_SYSTEM_NAMESPACES),
    ),
    Detection(
        "nodeport-service", MEDIUM, _WL, "NodePort service created",
        why="exposure",
        predicate=lambda _: on("", "services") & sub(None) & body_writes() & ok() & non_system()
        & body(NODEPORT_RE),
        body_needs=_needs(("", "services")),
    ),
    Detection(
        "cronjob-change", MEDIUM, _WL, "CronJob written",
        why="persistence",
        predicate=lambda _: on("batch", "cronjobs") & sub(None) & writes() & ok() & non_system(),
    ),
    Detection(
        "resource-deletion", LOW, _WL, "Resource deleted by a human",
        why="destruction",
        predicate=lambda _: verb("delete", "deletecollection") & ok() & human()
        & F.coalesce(_col("object_ref_present"), F.lit(False)),
    ),
    # the cluster's own allow-lists (added, issue 11): "not configured" without the list
    Detection(
        "disallowed-user", HIGH, _AL, "Person acting who is not in detections.allowed_users",
        why="an account nobody expected; one finding per identity",
        finder=allowlists.disallowed_users,
        scope=allowlists.disallowed_user,
        configured=allowlists.users_configured,
    ),
    Detection(
        "disallowed-image", MEDIUM, _AL,
        "Pod or template image outside detections.allowed_registries",
        why="untrusted code; one finding per workload, like the pod-security detections",
        predicate=lambda c: template_written() & allowlists.disallowed_image(c),
        scope=lambda _: template_written(),
        body_needs=_needs(*WORKLOADS),
        configured=allowlists.registries_configured,
        per_workload=True,
    ),
    Detection(
        "disallowed-namespace", LOW, _AL,
        "Namespace created outside detections.allowed_namespaces",
        why="sprawl, hiding places",
        predicate=allowlists.disallowed_namespace,
        configured=allowlists.namespaces_configured,
    ),
)  # fmt: skip
DETECTION_IDS: tuple[str, ...] = tuple(d.id for d in CATALOGUE)
BY_ID: dict[str, Detection] = {d.id: d for d in CATALOGUE}
# Resources whose create/update/patch bodies the request summary keeps (nothing else is kept).
BODY_RESOURCES: tuple[str, ...] = tuple(
    sorted({n.resource for d in CATALOGUE for n in d.body_needs})
)
