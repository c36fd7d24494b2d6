"""From events to requests: one row per audit ID, whatever stages it logged.

Every mart counts requests. A request's outcome is the response code of its last stage
(ResponseComplete > Panic > ResponseStarted > RequestReceived, then the latest stage_ts).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.detections.catalogue import BODY_RESOURCES
from jobs.detections.columns import (
    DEFAULT_SYSTEM_PREFIXES,
    SHARED_ACCOUNTS,
    attributed_user_col,
    is_failure_col,
    is_success_col,
    local_day_col,
    stage_rank_col,
    status_class_col,
    user_kind_col,
)
from jobs.geo.ranges import in_networks_col
from jobs.lake.events import read_events_range
from jobs.settings import Layout
from jobs.vocab import BODY_VERBS

# Taken from the request's last stage (all stages share them, except what later stages add:
# response code, impersonation, authorization annotations).
_LAST_STAGE_COLUMNS = (
    "audit_id",
    "stage",
    "level",
    "verb",
    "request_uri",
    "user_name",
    "user_groups",
    "impersonated_user",
    "impersonated_groups",
    "source_ips",
    "user_agent",
    "object_ref_present",
    "api_group",
    "api_version",
    "resource",
    "subresource",
    "namespace",
    "object_name",
    "response_code",
    "response_reason",
    "authz_decision",
    "authz_reason",
    "master",
    "evidence_sha256",
    "line_no",
)

# What a request keeps of all its stages (the rest comes from its last stage).
_ALL_STAGES_COLUMNS = ("events", "stages", "request_received_ts", "request_object")
REQUEST_COLUMNS = (
    "cluster",
    "request_key",
    *_LAST_STAGE_COLUMNS,
    *_ALL_STAGES_COLUMNS,
    "day",
    "client_ip",
    "user_kind",
    "attributed_user",
    "is_success",
    "is_failure",
    "status_class",
    "response_name",
)


def filter_window(
    events_df: DataFrame, cluster: str, start: dt.datetime, end: dt.datetime
) -> DataFrame:
    """Events of ``cluster`` whose request_received_ts is in [start, end) (aware datetimes).

    The event_date bounds only let Spark prune partitions; the timestamp test decides.
    """
    start_utc, end_utc = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    last_day = (end_utc - dt.timedelta(microseconds=1)).date()
    return events_df.filter(
        (F.col("cluster") == cluster)
        & F.col("event_date").between(F.lit(start_utc.date()), F.lit(last_day))
        & (F.col("request_received_ts") >= F.lit(start_utc))  # aware: no local-time guess
        & (F.col("request_received_ts") < F.lit(end_utc))
    )


def read_week(
    spark: SparkSession, layout: Layout, cluster: str, start: dt.datetime, end: dt.datetime
) -> DataFrame:
    """The committed events of ``cluster`` received in [start, end) (aware datetimes).

    Only that cluster's ``event_date`` folders of the range's UTC days are listed and read: a
    lake of many weeks costs the weekly run no more than one week.
    """
    return filter_window(read_events_range(spark, layout, start, end, cluster), cluster, start, end)


def client_ip_col(source_ips: Column, trusted_proxies: Sequence[str] = ()) -> Column:
    """The trustworthy source IP: the last entry of sourceIPs, skipping trusted proxies.

    The last entry is the direct peer of kube-apiserver (earlier ones come from
    X-Forwarded-For and can be forged). When it is a configured trusted proxy (IP or CIDR) the
    entry before it is taken, and so on; if every entry is a trusted proxy, the first one.
    """
    if not trusted_proxies:
        return F.try_element_at(source_ips, F.lit(-1))
    untrusted = F.filter(F.reverse(source_ips), lambda ip: ~in_networks_col(ip, trusted_proxies))
    return F.coalesce(F.get(untrusted, 0), F.get(source_ips, 0))


def request_key_col() -> Column:
    """A request is its audit ID, else its dedup key, else its evidence line (EVENTS columns)."""
    line = F.concat_ws(":", F.lit("line"), F.col("evidence_sha256"), F.col("line_no"))
    return F.coalesce(F.col("audit_id"), F.col("dedup_key"), line)


def _request_key(events_df: DataFrame) -> Column:
    return request_key_col()


def summarise_requests(
    events_df: DataFrame,
    *,
    timezone: str = "UTC",
    system_users: Sequence[str] = (),
    system_prefixes: Sequence[str] = DEFAULT_SYSTEM_PREFIXES,
    trusted_proxies: Sequence[str] = (),
    shared_accounts: Sequence[str] = SHARED_ACCOUNTS,
    body_resources: Sequence[str] = BODY_RESOURCES,
) -> DataFrame:
    """One row per (cluster, request_key) with the request's outcome and identity context.

    Input: EVENTS columns. Output: REQUEST_COLUMNS, among them ``events`` (stages logged),
    ``stages`` (sorted), ``client_ip`` (trusted-proxy aware), ``user_kind``,
    ``attributed_user`` (shared logins resolved), ``is_success``/``is_failure``,
    ``status_class`` and ``day`` (local date of request_received_ts). ``request_object`` is
    kept only for create/update/patch of ``body_resources`` (main resource, no subresource);
    for those, ``response_name`` is the name the response body gives the object (a pod made
    from ``generateName`` has no objectRef name), null otherwise.
    """
    keep_body = (
        F.col("verb").isin(*BODY_VERBS)
        & F.col("resource").isin(*body_resources)
        & F.coalesce(F.col("subresource"), F.lit("")).eqNullSafe("")
    )
    response_name = F.get_json_object("response_object", "$.metadata.name")
    keyed_df = events_df.withColumn("request_key", _request_key(events_df))
    # Most requests log one event. A narrow aggregation over a 64-bit hash of the key finds the
    # keys that repeat; only their events (every event of a repeated key has its hash) are
    # shuffled and sorted by request, the others become requests where they are. A hash shared
    # by two keys sends a lone event the long way, which gives it the same row.
    key_hash = F.xxhash64("request_key", "cluster")
    repeated_df = (
        keyed_df.select(key_hash.alias("_key_hash"))
        .groupBy("_key_hash")
        .count()
        .filter(F.col("count") > 1)
        .select("_key_hash")
    )
    hashed_df = keyed_df.withColumn("_key_hash", key_hash)
    lone_df = hashed_df.join(F.broadcast(repeated_df), "_key_hash", "left_anti").select(
        "cluster",
        "request_key",
        *_LAST_STAGE_COLUMNS,
        F.lit(1).cast("long").alias("events"),
        F.when(F.col("stage").isNull(), F.array().cast("array<string>"))
        .otherwise(F.array("stage"))
        .alias("stages"),
        "request_received_ts",
        F.when(keep_body, F.col("request_object")).alias("request_object"),
        F.when(keep_body, response_name).alias("response_name"),
    )
    # The repeated keys' events: one shuffle by request and one sort; the request's last stage
    # (the highest stage rank, then the latest stage_ts; evidence pointer to break ties) is
    # row 1. (A groupBy with max_by over a struct of these columns aggregated the same,
    # through a sort-based map-side aggregation that spilled 1 GB at 1.5 M events.)
    # request_key first: the sort's prefix (its first 8 bytes) then tells most rows apart; with
    # the cluster first (one value per run) every comparison read both strings in full.
    per_request = Window.partitionBy("request_key", "cluster")
    last_first = per_request.orderBy(
        stage_rank_col(F.col("stage")).desc(),
        F.col("stage_ts").desc(),
        F.col("evidence_sha256").desc(),
        F.col("line_no").desc(),
    )
    ranked_df = hashed_df.join(F.broadcast(repeated_df), "_key_hash", "left_semi").select(
        "cluster",
        "request_key",
        *_LAST_STAGE_COLUMNS,
        F.row_number().over(last_first).alias("_rank"),
        F.count(F.lit(1)).over(per_request).alias("events"),
        F.sort_array(F.collect_set("stage").over(per_request)).alias("stages"),
        F.min("request_received_ts").over(per_request).alias("request_received_ts"),
        F.max(F.when(keep_body, F.col("request_object"))).over(per_request).alias("request_object"),
        F.max(F.when(keep_body, response_name)).over(per_request).alias("response_name"),
    )
    flat_df = ranked_df.filter(F.col("_rank") == 1).drop("_rank").unionByName(lone_df)
    user = F.col("user_name")
    return flat_df.select(
        *flat_df.columns,
        local_day_col(F.col("request_received_ts"), timezone).alias("day"),
        client_ip_col(F.col("source_ips"), trusted_proxies).alias("client_ip"),
        user_kind_col(user, system_users, system_prefixes).alias("user_kind"),
        attributed_user_col(user, F.col("authz_reason"), shared_accounts).alias("attributed_user"),
        is_success_col(F.col("response_code")).alias("is_success"),
        is_failure_col(F.col("response_code")).alias("is_failure"),
        status_class_col(F.col("response_code")).alias("status_class"),
    ).select(*REQUEST_COLUMNS)
