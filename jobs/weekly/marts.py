"""Weekly marts over the request summary: overview, resource operations and detail, CRDs.

Every function takes the output of ``requests.summarise_requests`` (one row per request) and
returns a small DataFrame; counts are requests, never events (``events`` is summed apart).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, GroupedData
from pyspark.sql import functions as F

from jobs.detections.columns import BUILTIN_GROUPS, UNKNOWN
from jobs.vocab import CLUSTER_SCOPE

RESOURCE_CATEGORIES: dict[str, tuple[tuple[str, str], ...]] = {
    "compute": (
        ("apps", "deployments"),
        ("extensions", "deployments"),
        ("apps", "statefulsets"),
        ("batch", "cronjobs"),
        ("apps", "daemonsets"),
        ("extensions", "daemonsets"),
        ("batch", "jobs"),
        ("", "pods"),
    ),
    "network": (("", "services"), ("networking.k8s.io", "ingresses"), ("extensions", "ingresses")),
    "storage": (("", "configmaps"), ("", "secrets"), ("", "persistentvolumeclaims")),
}
CATEGORY_OTHER = "other"
OPERATIONS = {
    "create": ("create",),
    "update": ("update", "patch"),
    "delete": ("delete", "deletecollection"),
    "read": ("get", "list", "watch"),
}
OPERATION_OTHER = "other"


def category_col() -> Column:
    """Compute / network / storage for the tracked built-in resources, else ``other``."""
    expr = None
    for category, pairs in RESOURCE_CATEGORIES.items():
        hit = F.lit(False)
        for group, resource in pairs:
            hit = hit | ((F.col("api_group") == group) & (F.col("resource") == resource))
        expr = F.when(hit, F.lit(category)) if expr is None else expr.when(hit, F.lit(category))
    assert expr is not None
    return expr.otherwise(F.lit(CATEGORY_OTHER))


def operation_col() -> Column:
    """Create / update (update+patch) / delete / read (get+list+watch) / other."""
    expr = None
    for name, verbs in OPERATIONS.items():
        hit = F.col("verb").isin(*verbs)
        expr = F.when(hit, F.lit(name)) if expr is None else expr.when(hit, F.lit(name))
    assert expr is not None
    return expr.otherwise(F.lit(OPERATION_OTHER))


def _rate(successes: Column, total: Column) -> Column:
    return F.when(total > 0, F.round(successes / total, 4))


def _facets(
    df: DataFrame, base: list[str], keys: dict[str, Column], name: str
) -> tuple[GroupedData, Column, Column]:
    """One aggregation over grouping sets.

    ``base`` alone (facet ``total``, key ``all``) and ``base`` + each key. Adds ``name`` (the facet)
    and ``key``; keys are never null.
    """
    key_df = df.withColumns({f"_k_{k}": F.coalesce(c, F.lit(UNKNOWN)) for k, c in keys.items()})
    key_cols = [f"_k_{k}" for k in keys]
    sets = [base] + [[*base, c] for c in key_cols]
    facet = F.lit("total")
    for k in reversed(list(keys)):
        facet = F.when(F.grouping(f"_k_{k}") == 0, F.lit(k)).otherwise(facet)
    return (
        key_df.groupingSets(sets, *base, *key_cols),
        facet.alias(name),
        F.coalesce(*[F.col(c) for c in key_cols], F.lit("all")).alias("key"),
    )


def summarise_overview(requests_df: DataFrame, timezone: str = "UTC") -> DataFrame:
    """Long table: dimension, key, requests, events, failures, distinct_users, distinct_source_ips.

    Dimensions: total (key ``all``), day (local date), hour (local ``YYYY-MM-DD HH``), verb,
    status_class, user_kind. ``timezone`` must be the one ``summarise_requests`` used for
    ``day``, so that an hour's date is the day it is counted in. Distinct users count
    user_name (the account that authenticated).
    """
    local_ts = F.from_utc_timestamp(F.col("request_received_ts"), timezone)
    keys = {
        "day": F.col("day").cast("string"),
        "hour": F.date_format(local_ts, "yyyy-MM-dd HH"),
        "verb": F.col("verb"),
        "status_class": F.col("status_class"),
        "user_kind": F.col("user_kind"),
    }
    # First one row per distinct (keys, user, IP): a week's requests collapse ~60-fold, and
    # the grouping sets (six rows per input row, twice over for the two distinct counts) then
    # expand thousands of rows, not millions. The distinct counts are the same: user and IP
    # are among the pre-aggregation's keys.
    pre_df = requests_df.groupBy(
        *[c.alias(f"_pre_{k}") for k, c in keys.items()], "user_name", "client_ip"
    ).agg(
        F.count(F.lit(1)).alias("_requests"),
        F.sum("events").alias("_events"),
        F.sum(F.col("is_failure").cast("long")).alias("_failures"),
    )
    pre_keys = {k: F.col(f"_pre_{k}") for k in keys}
    grouped, dimension, key = _facets(pre_df, [], pre_keys, "dimension")
    return grouped.agg(
        F.coalesce(F.sum("_requests"), F.lit(0)).alias("requests"),  # non-null, as a count
        F.sum("_events").alias("events"),
        F.sum("_failures").alias("failures"),
        F.count_distinct("user_name").alias("distinct_users"),
        F.count_distinct("client_ip").alias("distinct_source_ips"),
        dimension,
        key,
    ).select(
        "dimension",
        "key",
        "requests",
        "events",
        "failures",
        "distinct_users",
        "distinct_source_ips",
    )


def _resource_requests(requests_df: DataFrame) -> DataFrame:
    return requests_df.filter(
        F.coalesce(F.col("object_ref_present"), F.lit(False))
        & F.col("resource").isNotNull()
        & (F.coalesce(F.col("subresource"), F.lit("")) == "")
    ).withColumns({"category": category_col(), "operation": operation_col()})


def summarise_resource_operations(requests_df: DataFrame) -> DataFrame:
    """category, api_group, resource, operation, requests, successes, success_rate.

    Main resources only (subresources such as pods/exec or */status are not operations on the
    resource). Unlisted types (CRDs by plural) have category ``other``.
    """
    return (
        _resource_requests(requests_df)
        .groupBy("category", "api_group", "resource", "operation")
        .agg(
            F.count(F.lit(1)).alias("requests"),
            F.sum(F.col("is_success").cast("long")).alias("successes"),
        )
        .withColumn("success_rate", _rate(F.col("successes"), F.col("requests")))
    )


def summarise_resource_detail(requests_df: DataFrame) -> DataFrame:
    """Per resource type, long format.

    Columns: category, api_group, resource, facet, key, requests, successes, success_rate. Facets:
    total (``all``), namespace (``(cluster)`` when cluster-scoped), day, operation.
    """
    keys = {
        "namespace": F.coalesce(F.nullif(F.col("namespace"), F.lit("")), F.lit(CLUSTER_SCOPE)),
        "day": F.col("day").cast("string"),
        "operation": F.col("operation"),
    }
    base = ["category", "api_group", "resource"]
    grouped, facet, key = _facets(_resource_requests(requests_df), base, keys, "facet")
    return grouped.agg(
        F.count(F.lit(1)).alias("requests"),
        F.sum(F.col("is_success").cast("long")).alias("successes"),
        facet,
        key,
    ).select(
        *base,
        "facet",
        "key",
        "requests",
        "successes",
        _rate(F.col("successes"), F.col("requests")).alias("success_rate"),
    )


def select_resource_operation_list(requests_df: DataFrame) -> DataFrame:
    """The operation list of the tracked resource types: every create/update/delete request."""
    return (
        _resource_requests(requests_df)
        .filter(
            (F.col("category") != CATEGORY_OTHER)
            & F.col("operation").isin("create", "update", "delete")
        )
        .select(
            "request_received_ts",
            "day",
            "category",
            "api_group",
            "resource",
            "namespace",
            "object_name",
            "verb",
            "operation",
            "user_name",
            "attributed_user",
            "user_kind",
            "client_ip",
            "response_code",
            "is_success",
            "audit_id",
            "master",
            "evidence_sha256",
            "line_no",
        )
    )


def summarise_crd_operations(requests_df: DataFrame) -> DataFrame:
    """Requests on non-built-in API groups.

    Columns: api_group, resource, verb, user, requests, failures, first_seen, last_seen.
    ``resource`` is the plural, with ``/subresource`` when there is one; ``user`` is the attributed
    user.
    """
    resource = F.when(
        F.coalesce(F.col("subresource"), F.lit("")) == "", F.col("resource")
    ).otherwise(F.concat_ws("/", "resource", "subresource"))
    return (
        requests_df.filter(
            F.coalesce(F.col("object_ref_present"), F.lit(False))
            & F.col("api_group").isNotNull()
            & ~F.col("api_group").isin(*BUILTIN_GROUPS)
        )
        .groupBy(
            "api_group",
            resource.alias("resource"),
            F.coalesce(F.col("verb"), F.lit(UNKNOWN)).alias("verb"),
            F.col("attributed_user").alias("user"),
        )
        .agg(
            F.count(F.lit(1)).alias("requests"),
            F.sum(F.col("is_failure").cast("long")).alias("failures"),
            F.min("request_received_ts").alias("first_seen"),
            F.max("request_received_ts").alias("last_seen"),
        )
    )
