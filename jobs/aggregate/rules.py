"""Per-request detection predicates (docs/detections.md), as Spark Column expressions.

Each rule reads one row of the request summary (``requests.summarise_requests``) joined with
``client_is_public``. Identity scopes follow the catalogue: "human" rules need
``user_kind == human``; rules prone to controller noise skip system identities (``system:``
prefix, service accounts and the configured allowlist) but keep unauthenticated callers;
the rest apply to everyone. Writes and reads count only when they succeeded.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.aggregate.catalogue import RBAC, WORKLOADS
from jobs.aggregate.columns import (
    BODY_VERBS,
    KIND_ANONYMOUS,
    KIND_HUMAN,
    KIND_SERVICE_ACCOUNT,
    KIND_SYSTEM,
    READ_VERBS,
    STARTED_OR_COMPLETED,
    WRITE_VERBS,
    query_params_col,
    request_path_col,
)

CONNECT_VERBS = ("create", "get")  # EKS logs exec as get
UNAUTHENTICATED_PATHS = ("/healthz", "/livez", "/readyz", "/version")
SCANNER_AGENTS = ("kube-hunter", "trufflehog", "azurehound", "access_matrix", "kubiscan",
                  "peirates")
KUBE_SYSTEM_NAMESPACES = ("kube-system", "kube-public")
SUSPICIOUS_COMMAND_RE = (
    r"(?i)((^|[\s/])(ba|z|k|da|a)?sh\s+-[a-z]*c(\s|$)"
    r"|(^|[\s/;|&])(curl|wget|nc|ncat)(\s|$)"
    r"|169\.254\.169\.254|/etc/shadow|base64\s+(-d|--decode))"
)
PRIVILEGED_RE = (r'"privileged"\s*:\s*true'
                 r'|"add"\s*:\s*\[[^\]]*"(CAP_)?(SYS_ADMIN|NET_ADMIN|ALL)"')
HOST_NAMESPACES_RE = r'"host(Network|PID|IPC)"\s*:\s*true'
SENSITIVE_HOSTPATH_RE = (
    r'"hostPath"\s*:\s*\{[^}]*"path"\s*:\s*"(/|/etc/?|(/proc|/root|/var/run/docker\.sock'
    r'|/run/containerd|/var/lib/kubelet|/etc/kubernetes)(/[^"]*)?)"'
)
NODEPORT_RE = r'"type"\s*:\s*"NodePort"'
CLUSTER_ADMIN_REF_RE = r'"roleRef"\s*:\s*\{[^}]*"name"\s*:\s*"cluster-admin"'
WILDCARD_RULE_RE = (r'"verbs"\s*:\s*\[[^\]]*"(\*|escalate|bind|impersonate)"'
                    r'|"resources"\s*:\s*\[[^\]]*"(\*|pods/exec|nodes/proxy)"')
CREDENTIAL_WORDS_RE = r"(?i)(password|aws_access_key_id|secret_key|token)"


def exec_command_col() -> Column:
    """The decoded ``command=`` parameters of an exec, joined by spaces (null if none)."""
    args = query_params_col(F.col("request_uri"), "command")
    return F.when(F.size(args) > 0, F.array_join(args, " "))


def exec_container_col() -> Column:
    """The decoded ``container=`` parameter (first one)."""
    return F.get(query_params_col(F.col("request_uri"), "container"), 0)


def _is(group: str, *resources: str) -> Column:
    return (F.col("api_group") == group) & F.col("resource").isin(*resources)


def _workload() -> Column:
    test = F.lit(False)
    for group, resource in WORKLOADS:
        test = test | _is(group, resource)
    return test


def _sub(name: str | None) -> Column:
    sub = F.coalesce(F.col("subresource"), F.lit(""))
    return sub == (name or "")


def _body(pattern: str) -> Column:
    return F.coalesce(F.col("request_object").rlike(pattern), F.lit(False))


def request_rules() -> dict[str, Column]:
    """detection id -> predicate over one request row (null counts as false)."""
    verb, ok, kind = F.col("verb"), F.col("is_success"), F.col("user_kind")
    human = kind == KIND_HUMAN
    non_system = kind.isin(KIND_HUMAN, KIND_ANONYMOUS)
    writes, body_writes = verb.isin(*WRITE_VERBS), verb.isin(*BODY_VERBS)
    code = F.col("response_code")

    def connect(sub: str) -> Column:
        return (_is("", "pods") & _sub(sub) & verb.isin(*CONNECT_VERBS) & ok
                & F.col("stage").isin(*STARTED_OR_COMPLETED))

    secrets_read = _is("", "secrets") & _sub(None) & verb.isin(*READ_VERBS)
    roles, bindings = ("roles", "clusterroles"), ("rolebindings", "clusterrolebindings")
    path = request_path_col(F.col("request_uri"))
    open_path = F.lit(False)
    for p in UNAUTHENTICATED_PATHS:
        open_path = open_path | (path == p) | path.startswith(p + "/")
    agent = F.lower(F.coalesce(F.col("user_agent"), F.lit("")))
    scanner = F.lit(False)
    for name in SCANNER_AGENTS:
        scanner = scanner | agent.contains(name)
    return {
        "exec": connect("exec"),
        "attach": connect("attach"),
        "portforward": connect("portforward"),
        "ephemeral-container": _is("", "pods") & _sub("ephemeralcontainers") & body_writes & ok,
        "node-proxy": _is("", "nodes") & _sub("proxy") & ok & non_system,
        "exec-suspicious-command": connect("exec")
        & F.coalesce(exec_command_col().rlike(SUSPICIOUS_COMMAND_RE), F.lit(False)),
        "secret-read": secrets_read & ok & human,
        "secret-read-denied": secrets_read & code.isin(401, 403) & non_system,
        "secret-write": _is("", "secrets") & _sub(None) & writes & ok & human,
        "token-request": _is("", "serviceaccounts") & _sub("token") & (verb == "create") & ok
        & non_system,
        "csr": _is("certificates.k8s.io", "certificatesigningrequests") & ok & non_system
        & (((verb == "create") & _sub(None))
           | (verb.isin("update", "patch") & _sub("approval"))),
        "configmap-credentials": _is("", "configmaps") & _sub(None) & body_writes & ok
        & _body(CREDENTIAL_WORDS_RE),
        "anonymous-allowed": (F.col("user_name") == "system:anonymous")
        & (F.col("authz_decision") == "allow") & ~open_path,
        "impersonation": F.col("impersonated_user").isNotNull(),
        "permission-enumeration": _is("authorization.k8s.io", "selfsubjectrulesreviews",
                                      "selfsubjectaccessreviews") & (verb == "create") & human,
        "scanner-user-agent": scanner,
        "system-identity-public-ip": kind.isin(KIND_SYSTEM, KIND_SERVICE_ACCOUNT)
        & F.coalesce(F.col("client_is_public"), F.lit(False)),
        "rbac-change": _is(RBAC, *roles, *bindings) & writes & ok & non_system,
        "cluster-admin-binding": _is(RBAC, *bindings) & body_writes & ok
        & (_body(CLUSTER_ADMIN_REF_RE)
           | F.coalesce(F.get_json_object("request_object", "$.roleRef.name") == "cluster-admin",
                        F.lit(False))),
        "wildcard-role": _is(RBAC, *roles) & body_writes & ok & non_system
        & _body(WILDCARD_RULE_RE),
        "system-role-modified": _is(RBAC, "clusterroles", "clusterrolebindings") & writes & ok
        & non_system & F.coalesce(F.col("object_name").startswith("system:"), F.lit(False)),
        "admission-webhook-change": _is("admissionregistration.k8s.io",
                                        "mutatingwebhookconfigurations",
                                        "validatingwebhookconfigurations") & writes & ok
        & non_system,
        "events-deleted": (_is("", "events") | _is("events.k8s.io", "events"))
        & verb.isin("delete", "deletecollection") & ok,
        "namespace-deleted": _is("", "namespaces") & _sub(None) & (verb == "delete") & ok & human,
        "privileged-pod": _workload() & body_writes & ok & non_system & _body(PRIVILEGED_RE),
        "host-namespaces": _workload() & body_writes & ok & non_system
        & _body(HOST_NAMESPACES_RE),
        "sensitive-hostpath": _workload() & body_writes & ok & non_system
        & _body(SENSITIVE_HOSTPATH_RE),
        "kube-system-workload": _workload() & _sub(None) & (verb == "create") & ok & human
        & F.col("namespace").isin(*KUBE_SYSTEM_NAMESPACES),
        "nodeport-service": _is("", "services") & _sub(None) & body_writes & ok & non_system
        & _body(NODEPORT_RE),
        "cronjob-change": _is("batch", "cronjobs") & _sub(None) & writes & ok & non_system,
        "resource-deletion": verb.isin("delete", "deletecollection") & ok & human
        & F.coalesce(F.col("object_ref_present"), F.lit(False)),
    }
