"""Column predicates behind the §7 checks: sensitive resources, long-running requests, shapes.

All read EVENTS columns only and never return null.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.policy.compile import level_rank, request_path
from jobs.vocab import LEVEL_RANK, LEVEL_REQUEST, STAGE_PANIC, STAGE_RESPONSE_COMPLETE

# Bodies of these (group, resource, subresource; None = any) are sensitive data in the logs.
SENSITIVE_RESOURCES: tuple[tuple[str, str, str | None], ...] = (
    ("", "secrets", None),
    ("", "configmaps", None),
    ("authentication.k8s.io", "tokenreviews", None),
    ("", "serviceaccounts", "token"),
)
# Long-running requests (spec §3.2): the only ones with a normal ResponseStarted stage.
LONG_RUNNING_VERBS = ("watch", "proxy")
LONG_RUNNING_SUBRESOURCES = ("attach", "exec", "proxy", "log", "portforward")
LONG_RUNNING_PATH_PREFIX = "/debug/pprof/"
BODY_VERBS = ("create", "update", "patch")
AUTHZ_ANNOTATION_PREFIX = "authorization.k8s.io/"
PATCH_ANNOTATION_PREFIX = "patch.webhook.admission.k8s.io/"
TRUNCATED_ANNOTATION = "audit.k8s.io/truncated"
MANAGED_FIELDS_KEY = '"managedFields"'
DEADLINE_QUERY = r"[?&]timeout="  # request_deadline.go answers 400 to a bad ?timeout=
UNAUTHORIZED, BAD_REQUEST = 401, 400
STATUS_COLUMNS = ("response_code", "response_status", "response_reason", "response_message")


def flag(condition: Column) -> Column:
    """The condition with null read as False."""
    return F.coalesce(condition, F.lit(False))


def any_of(conditions: Iterable[Column]) -> Column:
    """OR of the conditions; False when there are none."""
    return reduce(lambda a, b: a | b, conditions, F.lit(False))


def annotation_with_prefix(prefix: str) -> Column:
    """True when some annotation key starts with ``prefix``."""
    return flag(F.exists(F.map_keys(F.col("annotations")), lambda key: key.startswith(prefix)))


def is_sensitive_resource() -> Column:
    """True for secrets, configmaps, tokenreviews and serviceaccounts/token (group-qualified)."""
    group, resource = F.coalesce(F.col("api_group"), F.lit("")), F.col("resource")
    return flag(
        F.col("object_ref_present")
        & any_of(
            (group == g)
            & (resource == r)
            & (F.lit(True) if s is None else F.col("subresource") == s)
            for g, r, s in SENSITIVE_RESOURCES
        )
    )


def is_long_running() -> Column:
    """kube-apiserver's long-running test (spec §3.2) on the rebuilt attributes."""
    is_resource = flag(F.col("object_ref_present"))
    path = request_path(F.col("request_uri"))
    return flag(
        F.col("verb").isin(*LONG_RUNNING_VERBS)
        | (is_resource & F.col("subresource").isin(*LONG_RUNNING_SUBRESOURCES))
        | (~is_resource & path.startswith(LONG_RUNNING_PATH_PREFIX))
    )


def request_received_shape() -> Column:
    """Something a RequestReceived event cannot carry (spec §3.2): status, bodies, authz, delay."""
    return (
        any_of(F.col(c).isNotNull() for c in STATUS_COLUMNS)
        | F.col("request_object").isNotNull()
        | F.col("response_object").isNotNull()
        | annotation_with_prefix(AUTHZ_ANNOTATION_PREFIX)
        | flag(F.col("stage_ts") != F.col("request_received_ts"))
    )


def exempt_response_started() -> Column:
    """The lone ResponseStarted of a 401 without user or of a 400 bad-timeout (spec §3.3)."""
    code = F.col("response_code")
    no_user_401 = (code == UNAUTHORIZED) & F.col("user_name").isNull()
    deadline_400 = (code == BAD_REQUEST) & F.col("request_uri").rlike(DEADLINE_QUERY)
    return flag(no_user_401) | flag(deadline_400)


def managed_fields_logged() -> Column:
    """A logged body contains a managedFields key (text probe, no JSON parsing)."""
    # A patch body is logged verbatim, never stripped, so only its response counts.
    in_request = (F.instr(F.col("request_object"), MANAGED_FIELDS_KEY) > 0) & (
        F.col("verb") != "patch"
    )
    in_response = F.instr(F.col("response_object"), MANAGED_FIELDS_KEY) > 0
    return flag(in_request) | flag(in_response)


def body_expected_missing() -> Column:
    """C12: a create/update/patch logged at >= Request that completed without its body."""
    truncated = F.try_element_at(F.col("annotations"), F.lit(TRUNCATED_ANNOTATION)) == "true"
    return (
        (level_rank(F.col("level")) >= LEVEL_RANK[LEVEL_REQUEST])
        & F.col("verb").isin(*BODY_VERBS)
        & F.col("stage").isin(STAGE_RESPONSE_COMPLETE, STAGE_PANIC)
        & F.col("request_object").isNull()
        & ~flag(truncated)
    )
