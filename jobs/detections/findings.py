"""Important events and the detections mart, over the week's request summary.

``find_important_events`` returns one row per (detection, request) with the evidence pointer
(evidence_sha256, line_no) of the request's last stage; ``summarise_detections`` gives one
row per catalogue entry with its count and observability status.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.config import DetectionsConfig
from jobs.detections.catalogue import CATALOGUE
from jobs.detections.model import (
    STATUS_NOT_CONFIGURED,
    STATUS_NOT_OBSERVABLE,
    STATUS_OK,
    Detection,
)
from jobs.detections.predicates import exec_command_col, exec_container_col
from jobs.detections.workloads import (
    pod_name_col,
    with_workload_key,
    workload_objects,
    workload_write_scope,
)

IMPORTANT_EVENT_COLUMNS = (
    "detection_id", "severity", "finding_key", "request_received_ts", "day", "user_name",
    "attributed_user", "user_kind", "impersonated_user", "client_ip", "source_ips",
    "user_agent", "verb", "api_group", "resource", "subresource", "namespace", "object_name",
    "request_uri", "response_code", "audit_id", "request_key", "master", "evidence_sha256",
    "line_no", "pod", "container", "command", "workload", "written_by",
)  # fmt: skip
# Why a detection did not run, by id (the config key it needs).
_NOT_CONFIGURED_BASIS = {
    "disallowed-user": "detections.allowed_users not set",
    "disallowed-image": "detections.allowed_registries not set",
    "disallowed-namespace": "detections.allowed_namespaces not set",
    "risky-source-ip": "no detections.threat_lists and detections.hosting_asns is off",
}


def with_client_scope(requests_df: DataFrame, ip_info_df: DataFrame) -> DataFrame:
    """Add ``client_is_public`` from a distinct-IP table (ip, is_public) by a broadcast join.

    Also ``client_risk_reasons`` when the table has ``risk_reasons`` (``risk.with_ip_risk``).
    """
    cols = [F.col("ip").alias("_ip"), F.col("is_public").alias("client_is_public")]
    if "risk_reasons" in ip_info_df.columns:
        cols.append(F.col("risk_reasons").alias("client_risk_reasons"))
    scope_df = ip_info_df.select(*cols)
    return requests_df.join(
        F.broadcast(scope_df), requests_df["client_ip"] == scope_df["_ip"], how="left"
    ).drop("_ip")


def active_detections(config: DetectionsConfig) -> list[Detection]:
    """The catalogue entries ``config`` lets run (the rest are "not configured")."""
    return [d for d in CATALOGUE if d.is_configured(config)]


def detection_statuses(
    observability: tuple[dict[str, str], dict[str, str]], config: DetectionsConfig
) -> tuple[dict[str, str], dict[str, str]]:
    """(status, basis) per detection id: "not configured" wins over the policy's verdict."""
    statuses, bases = dict(observability[0]), dict(observability[1])
    for det in CATALOGUE:
        if not det.is_configured(config):
            statuses[det.id] = STATUS_NOT_CONFIGURED
            bases[det.id] = _NOT_CONFIGURED_BASIS.get(det.id, "not configured")
    return statuses, bases


def request_predicates(config: DetectionsConfig | None = None) -> dict[str, Column]:
    """Detection id -> predicate over one request row, for every configured per-request one."""
    config = config or DetectionsConfig()
    return {d.id: d.predicate(config) for d in active_detections(config) if d.predicate}


def _per_request(req_df: DataFrame, predicates: Mapping[str, Column]) -> DataFrame:
    """One row per (request, hit) of the per-request ``predicates`` (id -> predicate)."""
    hits = F.array(*[F.when(pred, F.lit(i)) for i, pred in predicates.items()])
    # the filter first: the OR stops at a row's first hit, and the array of hits is built only
    # for the few rows that have one (not for every request of the week)
    any_hit = reduce(lambda a, b: a | b, predicates.values(), F.lit(False))
    return (
        req_df.filter(any_hit)
        .select("*", F.explode(F.filter(hits, lambda h: h.isNotNull())).alias("detection_id"))
        .withColumn("finding_key", F.lit(None).cast("string"))
    )


def _hits(req_df: DataFrame, detections: list[Detection], config: DetectionsConfig) -> DataFrame:
    """The hits of ``detections``: the per-request ones in one pass, then each windowed one."""
    predicates = {d.id: d.predicate(config) for d in detections if d.predicate}
    windowed = [d.finder(req_df, d, config) for d in detections if d.finder is not None]
    return reduce(DataFrame.unionByName, windowed, _per_request(req_df, predicates))


def _severity() -> Column:
    expr = None
    for d in CATALOGUE:
        hit = F.col("detection_id") == d.id
        expr = F.when(hit, F.lit(d.severity)) if expr is None else expr.when(hit, d.severity)
    return expr if expr is not None else F.lit(None)


def find_important_events(
    requests_df: DataFrame, ip_info_df: DataFrame, config: DetectionsConfig | None = None
) -> DataFrame:
    """Every configured catalogue detection over the request summary; IMPORTANT_EVENT_COLUMNS.

    ``ip_info_df`` needs (ip, is_public) for the distinct client IPs, and ``risk_reasons`` for
    risky-source-ip. ``finding_key`` groups the rows of windowed detections (per IP, per
    identity, per identity-day) and of per-workload ones (``workload:<ns>/<Kind>/<name>``,
    a workload with the pods, ReplicaSets and Jobs made from it; ``written_by`` names the
    person who wrote its template, ``pod`` the pod a pod creation made).
    """
    config = config or DetectionsConfig()
    return important_events_from(detection_requests(requests_df, ip_info_df, config), config)


def detection_requests(
    requests_df: DataFrame, ip_info_df: DataFrame, config: DetectionsConfig | None = None
) -> DataFrame:
    """The requests, with the client's scope, that some configured detection reads.

    A row is kept when it passes a detection's scope (else its per-request predicate), or
    (with per-workload detections) the test of the workload writes they look templates up in.
    Every detection reads only such rows, so :func:`important_events_from` finds the same
    over this frame as over all requests: about a tenth of a week's requests, which the
    weekly run caches for the dozen passes of the detections.
    """
    config = config or DetectionsConfig()
    req_df = with_client_scope(requests_df, ip_info_df)
    if "client_risk_reasons" not in req_df.columns:
        req_df = req_df.withColumn("client_risk_reasons", F.lit(None).cast("array<string>"))
    active = active_detections(config)
    tests = [d.scope or d.predicate for d in active]
    if not active or any(test is None for test in tests):
        return req_df  # a finder that reads everything
    kept = [test(config) for test in tests if test is not None]
    if any(d.per_workload for d in active):
        kept.append(workload_write_scope())
    return req_df.filter(reduce(lambda a, b: a | b, kept))


def important_events_from(req_df: DataFrame, config: DetectionsConfig) -> DataFrame:
    """find_important_events over :func:`detection_requests`' frame."""
    active = active_detections(config)
    # Two sets of hits, each computed once: the per-workload detections' (keyed by workload)
    # and the others'. (Split after the union, the union's per-request pass ran twice.)
    hits_df = _hits(req_df, [d for d in active if not d.per_workload], config).withColumns(
        {"workload": F.lit(None).cast("string"), "written_by": F.lit(None).cast("string")}
    )
    per_workload = [d for d in active if d.per_workload]
    if per_workload:
        grouped_df = with_workload_key(
            _hits(req_df, per_workload, config), workload_objects(req_df)
        )
        hits_df = hits_df.unionByName(grouped_df)
    is_connect = F.col("subresource").isin("exec", "attach")
    derived = ("severity", "pod", "container", "command")
    return hits_df.select(
        *[c for c in IMPORTANT_EVENT_COLUMNS if c not in derived],
        _severity().alias("severity"),
        F.when(is_connect, F.col("object_name"))
        .when(F.col("workload").isNotNull(), pod_name_col())
        .alias("pod"),
        F.when(is_connect, exec_container_col()).alias("container"),
        F.when(F.col("subresource") == "exec", exec_command_col()).alias("command"),
    ).select(*IMPORTANT_EVENT_COLUMNS)


def _distinct_count(important_df: DataFrame, key: Column, name: str) -> DataFrame:
    """Per detection_id, the distinct non-null values of ``key`` (``count_distinct``)."""
    return (
        important_df.select("detection_id", key.alias("_key"))
        .distinct()
        .groupBy("detection_id")
        .agg(F.count("_key").alias(name))
    )


def summarise_detections(
    important_df: DataFrame,
    statuses: Mapping[str, str] | None = None,
    bases: Mapping[str, str] | None = None,
) -> DataFrame:
    """One row per catalogue entry.

    detection_id, severity, section, title, status, basis, requests (distinct requests; null when
    not observable and nothing matched, or not configured), findings (distinct finding keys:
    IPs, identities, identity-days, workloads; else requests), position (catalogue order).
    """
    statuses, bases = statuses or {}, bases or {}
    catalogue = F.array(
        *[
            F.struct(
                F.lit(d.id).alias("detection_id"),
                F.lit(d.severity).alias("severity"),
                F.lit(d.section).alias("section"),
                F.lit(d.title).alias("title"),
                F.lit(statuses.get(d.id, STATUS_OK)).alias("status"),
                F.lit(bases.get(d.id)).cast("string").alias("basis"),
                F.lit(i).alias("position"),
            )
            for i, d in enumerate(CATALOGUE)
        ]
    )
    catalogue_df = important_df.sparkSession.range(1).select(F.inline(catalogue))
    # two narrow distinct-then-count aggregations: two count_distincts in one aggregation
    # expand every row twice and keep both hash maps in memory at once (a week under attack,
    # 2.2 M important events: out of memory for aggregation)
    counts_df = _distinct_count(important_df, F.col("request_key"), "n").join(
        _distinct_count(important_df, F.coalesce("finding_key", "request_key"), "findings"),
        on="detection_id",
        how="full",
    )
    joined_df = catalogue_df.join(counts_df, on="detection_id", how="left")
    n = F.coalesce(F.col("n"), F.lit(0))
    unknown = ((F.col("status") == STATUS_NOT_OBSERVABLE) & (n == 0)) | (
        F.col("status") == STATUS_NOT_CONFIGURED
    )
    requests = F.when(unknown, F.lit(None).cast("long")).otherwise(n)
    return joined_df.select(
        "detection_id", "severity", "section", "title", "status", "basis",
        requests.alias("requests"),
        F.coalesce(F.col("findings"), F.lit(0)).alias("findings"),
        "position",
    )  # fmt: skip
