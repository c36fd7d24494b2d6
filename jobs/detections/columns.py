"""Column functions over the request summary, shared by the detections and the weekly marts."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.vocab import KIND_ANONYMOUS, KIND_HUMAN, KIND_SERVICE_ACCOUNT, KIND_SYSTEM, STAGE_RANK

ANONYMOUS_USERS = ("system:anonymous",)
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
DEFAULT_SYSTEM_PREFIXES = ("system:",)
# Shared logins whose real user is named by the RBAC authorizer's reason annotation.
SHARED_ACCOUNTS = ("kubernetes-admin",)
_REASON_USER_RE = r'to User "([^"]+)"'

UNKNOWN = "unknown"
UNAUTHENTICATED = "(unauthenticated)"  # stands for a null user in lists of names

# Groups served by kube-apiserver itself (plus metrics.k8s.io); everything else is a CRD or an
# aggregated API and lands in crd_operations.
BUILTIN_GROUPS = (
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apiregistration.k8s.io",
    "apps",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "events.k8s.io",
    "extensions",
    "flowcontrol.apiserver.k8s.io",
    "internal.apiserver.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "resource.k8s.io",
    "scheduling.k8s.io",
    "settings.k8s.io",
    "storage.k8s.io",
    "storagemigration.k8s.io",
    "admission.k8s.io",
    "imagepolicy.k8s.io",
    "metrics.k8s.io",
)


def user_kind_col(
    user: Column,
    system_users: Sequence[str] = (),
    system_prefixes: Sequence[str] = DEFAULT_SYSTEM_PREFIXES,
) -> Column:
    """human, service_account, system_component or anonymous (null user = anonymous)."""
    is_system = F.lit(False)
    for prefix in system_prefixes:
        is_system = is_system | user.startswith(prefix)
    if system_users:
        is_system = is_system | user.isin(*system_users)
    return (
        F.when(user.isNull() | user.isin(*ANONYMOUS_USERS), F.lit(KIND_ANONYMOUS))
        .when(user.startswith(SERVICE_ACCOUNT_PREFIX), F.lit(KIND_SERVICE_ACCOUNT))
        .when(is_system, F.lit(KIND_SYSTEM))
        .otherwise(F.lit(KIND_HUMAN))
    )


def attributed_user_col(
    user: Column, authz_reason: Column, shared_accounts: Sequence[str] = SHARED_ACCOUNTS
) -> Column:
    """The person behind a shared login (from ``to User "x"`` in the authz reason), else user."""
    named = F.nullif(
        F.regexp_extract(F.coalesce(authz_reason, F.lit("")), _REASON_USER_RE, 1), F.lit("")
    )
    return F.when(user.isin(*shared_accounts), F.coalesce(named, user)).otherwise(user)


def is_success_col(code: Column) -> Column:
    """2xx/3xx, or 101 (an upgraded connection such as exec); false when the code is unknown."""
    return F.coalesce(code.between(200, 399) | (code == 101), F.lit(False))


def is_failure_col(code: Column) -> Column:
    """Code >= 400 (the ACK alert's definition of a failed request)."""
    return F.coalesce(code >= 400, F.lit(False))


def status_class_col(code: Column) -> Column:
    """``1xx`` .. ``5xx``, else ``unknown``."""
    return F.when(
        code.between(100, 599), F.concat(F.floor(code / 100).cast("string"), F.lit("xx"))
    ).otherwise(F.lit(UNKNOWN))


def local_day_col(ts: Column, timezone: str) -> Column:
    """The calendar day of a UTC timestamp in the report's time zone."""
    return F.to_date(F.from_utc_timestamp(ts, timezone))


def stage_rank_col(stage: Column) -> Column:
    """Order of a request's stages; the highest one carries the request's outcome."""
    rank = F.lit(-1)
    expr = None
    for name, value in STAGE_RANK.items():
        expr = (
            F.when(stage == name, F.lit(value))
            if expr is None
            else expr.when(stage == name, F.lit(value))
        )
    return expr.otherwise(rank) if expr is not None else rank


def request_path_col(uri: Column) -> Column:
    """RequestURI without the query string."""
    return F.substring_index(F.coalesce(uri, F.lit("")), "?", 1)


def query_params_col(uri: Column, name: str) -> Column:
    """All url-decoded values of query parameter ``name`` (array, possibly empty)."""
    raw = F.regexp_extract_all(F.coalesce(uri, F.lit("")), F.lit(rf"[?&]{name}=([^&#]*)"), 1)
    return F.transform(raw, lambda v: F.coalesce(F.try_url_decode(v), v))
