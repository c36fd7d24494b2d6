"""Building blocks of the per-request predicates (docs/detections.md), as Spark Columns.

Each reads one row of the request summary (``jobs.weekly.requests.summarise_requests``) joined
with ``client_is_public``. Identity scopes follow the catalogue: "human" rules need
``user_kind == human``; rules prone to controller noise skip system identities (``system:``
prefix, service accounts and the configured allowlist) but keep unauthenticated callers; the
rest apply to everyone. Writes and reads count only when they succeeded.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.detections.columns import query_params_col, request_path_col
from jobs.vocab import (
    BODY_VERBS,
    KIND_ANONYMOUS,
    KIND_HUMAN,
    KIND_SERVICE_ACCOUNT,
    KIND_SYSTEM,
    READ_VERBS,
    STARTED_OR_COMPLETED,
    WRITE_VERBS,
)

RBAC = "rbac.authorization.k8s.io"
WORKLOADS: tuple[tuple[str, str], ...] = (
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
)
ROLES = ("roles", "clusterroles")
BINDINGS = ("rolebindings", "clusterrolebindings")
CONNECT_VERBS = ("create", "get")  # EKS logs exec as get
UNAUTHENTICATED_PATHS = ("/healthz", "/livez", "/readyz", "/version")
KUBE_SYSTEM_NAMESPACES = ("kube-system", "kube-public")
KUBE_NAMESPACES = (*KUBE_SYSTEM_NAMESPACES, "kube-node-lease")
# The built-in controllers run as these service accounts; their updates only propagate templates.
BUILTIN_CONTROLLER_PREFIX = "system:serviceaccount:kube-system:"
SUSPICIOUS_COMMAND_RE = (
    r"(?i)((^|[\s/])(ba|z|k|da|a)?sh\s+-[a-z]*c(\s|$)"
    r"|(^|[\s/;|&])(curl|wget|nc|ncat)(\s|$)"
    r"|169\.254\.169\.254|/etc/shadow|base64\s+(-d|--decode))"
)
# Each also matches the JSON-patch form (``{"op":"add","path":".../privileged","value":true}``).
_PATCH_TRUE = r'"path"\s*:\s*"[^"]*/{}"\s*,\s*"value"\s*:\s*true'
PRIVILEGED_RE = (
    r'"privileged"\s*:\s*true|"add"\s*:\s*\[[^\]]*"(CAP_)?(SYS_ADMIN|NET_ADMIN|ALL)"|'
    + _PATCH_TRUE.format("privileged")
)
HOST_NAMESPACES_RE = r'"host(Network|PID|IPC)"\s*:\s*true|' + _PATCH_TRUE.format(
    "host(Network|PID|IPC)"
)
SENSITIVE_HOSTPATH_RE = (
    r'"hostPath"\s*:\s*\{[^}]*"path"\s*:\s*"(/|/etc/?|(/proc|/root|/var/run/docker\.sock'
    r'|/run/containerd|/var/lib/kubelet|/etc/kubernetes)(/[^"]*)?)"'
)
NODEPORT_RE = r'"type"\s*:\s*"NodePort"'
CLUSTER_ADMIN_REF_RE = r'"roleRef"\s*:\s*\{[^}]*"name"\s*:\s*"cluster-admin"'
WILDCARD_RULE_RE = (
    r'"verbs"\s*:\s*\[[^\]]*"(\*|escalate|bind|impersonate)"'
    r'|"resources"\s*:\s*\[[^\]]*"(\*|pods/exec|nodes/proxy)"'
)
WRITE_GRANT_VERBS = ("create", "update", "patch", "delete", "deletecollection", "*")
ESCALATION_VERBS = ("escalate", "bind", "impersonate")
_CORE_SENSITIVE = ("secrets", "pods/exec", "pods/attach", "pods/*", "*")
_RBAC_SENSITIVE = ("roles", "clusterroles", "rolebindings", "clusterrolebindings", "*")
_RULES = "array<struct<apiGroups:array<string>,resources:array<string>,verbs:array<string>>>"


def _any_in(values: Column, wanted: tuple[str, ...]) -> Column:
    return F.exists(F.coalesce(values, F.array().cast("array<string>")), lambda v: v.isin(*wanted))


def _sensitive_rule(rule: Column) -> Column:
    groups = F.coalesce(rule["apiGroups"], F.array(F.lit("")))
    core = F.exists(groups, lambda g: g.isin("", "*"))
    rbac = F.exists(groups, lambda g: g.isin(RBAC, "*"))
    resources = rule["resources"]
    writes_sensitive = _any_in(rule["verbs"], WRITE_GRANT_VERBS) & (
        (core & _any_in(resources, _CORE_SENSITIVE)) | (rbac & _any_in(resources, _RBAC_SENSITIVE))
    )
    return writes_sensitive | _any_in(rule["verbs"], ESCALATION_VERBS)


def grants_write_privileges() -> Column:
    """The (cluster)role body's rules grant writes on sensitive resources, or escalation.

    Write verbs on secrets, pods/exec, pods/attach, RBAC objects or ``*`` (apiGroups-aware),
    or escalate/bind/impersonate; JSON functions over ``rules``; false when no body.
    """
    rules = F.from_json(F.get_json_object("request_object", "$.rules"), _RULES)
    return F.coalesce(F.exists(rules, _sensitive_rule), F.lit(False))


def builtin_controller() -> Column:
    """A control-plane component or one of kube-system's controller service accounts."""
    return (F.col("user_kind") == KIND_SYSTEM) | F.coalesce(
        F.col("user_name").startswith(BUILTIN_CONTROLLER_PREFIX), F.lit(False)
    )


def template_written() -> Column:
    """A pod or template body written successfully.

    Every creation, whoever the caller (the controllers create most pods), and updates/patches
    except the built-in controllers' (they only copy a template a person wrote).
    """
    return (
        workload()
        & sub(None)
        & ok()
        & (verb("create") | (verb("update", "patch") & ~builtin_controller()))
    )


def exec_command_col() -> Column:
    """The decoded ``command=`` parameters of an exec, joined by spaces (null if none)."""
    args = query_params_col(F.col("request_uri"), "command")
    return F.when(F.size(args) > 0, F.array_join(args, " "))


def exec_container_col() -> Column:
    """The decoded ``container=`` parameter (first one)."""
    return F.get(query_params_col(F.col("request_uri"), "container"), 0)


def on(group: str, *resources: str) -> Column:
    """The request's object is one of ``resources`` in API ``group``."""
    return (F.col("api_group") == group) & F.col("resource").isin(*resources)


def workload() -> Column:
    """The object is a pod or a pod template owner (WORKLOADS)."""
    test = F.lit(False)
    for group, resource in WORKLOADS:
        test = test | on(group, resource)
    return test


def sub(name: str | None) -> Column:
    """The subresource is ``name`` (None: the main resource)."""
    return F.coalesce(F.col("subresource"), F.lit("")) == (name or "")


def body(pattern: str) -> Column:
    """The logged request body matches ``pattern`` (false when no body was logged)."""
    return F.coalesce(F.col("request_object").rlike(pattern), F.lit(False))


def verb(*verbs: str) -> Column:
    """The request's verb is one of ``verbs``."""
    return F.col("verb").isin(*verbs)


def ok() -> Column:
    """The request succeeded."""
    return F.col("is_success")


def code(*codes: int) -> Column:
    """The request's response code is one of ``codes``."""
    return F.col("response_code").isin(*codes)


def human() -> Column:
    """The (attributed) identity is a person."""
    return F.col("user_kind") == KIND_HUMAN


def non_system() -> Column:
    """A person or an unauthenticated caller: not a controller, node or service account."""
    return F.col("user_kind").isin(KIND_HUMAN, KIND_ANONYMOUS)


def system() -> Column:
    """A system component or a service account."""
    return F.col("user_kind").isin(KIND_SYSTEM, KIND_SERVICE_ACCOUNT)


def writes() -> Column:
    """Any write verb."""
    return verb(*WRITE_VERBS)


def body_writes() -> Column:
    """A write that carries an object body."""
    return verb(*BODY_VERBS)


def reads() -> Column:
    """Any read verb."""
    return verb(*READ_VERBS)


def client_is_public() -> Column:
    """The trustworthy client IP is public (false when unknown)."""
    return F.coalesce(F.col("client_is_public"), F.lit(False))


def connect(subresource: str) -> Column:
    """A successful exec/attach/portforward that got at least its response started."""
    return (
        on("", "pods")
        & sub(subresource)
        & verb(*CONNECT_VERBS)
        & ok()
        & F.col("stage").isin(*STARTED_OR_COMPLETED)
    )


def secrets_read() -> Column:
    """A read of secrets themselves (no subresource)."""
    return on("", "secrets") & sub(None) & reads()


def open_path() -> Column:
    """Paths every cluster serves to anonymous callers on purpose."""
    path = request_path_col(F.col("request_uri"))
    test = F.lit(False)
    for p in UNAUTHENTICATED_PATHS:
        test = test | (path == p) | path.startswith(p + "/")
    return test


def suspicious_command() -> Column:
    """The decoded exec command looks like exploitation."""
    return F.coalesce(exec_command_col().rlike(SUSPICIOUS_COMMAND_RE), F.lit(False))


def binds_cluster_admin() -> Column:
    """The binding's body names cluster-admin as its role."""
    by_path = F.get_json_object("request_object", "$.roleRef.name") == "cluster-admin"
    return body(CLUSTER_ADMIN_REF_RE) | F.coalesce(by_path, F.lit(False))


def object_name_is_system() -> Column:
    """The object's name starts with ``system:`` (a built-in role or binding)."""
    return F.coalesce(F.col("object_name").startswith("system:"), F.lit(False))
