"""Important events: every detection of the catalogue, over the week's requests.

``find_important_events`` returns one row per (detection, request) with the evidence pointer
(evidence_sha256, line_no) of the request's last stage; ``summarise_detections`` gives one
row per catalogue entry with its count and observability status.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.aggregate.catalogue import CATALOGUE
from jobs.aggregate.columns import KIND_HUMAN, READ_VERBS
from jobs.aggregate.rules import exec_command_col, exec_container_col, request_rules

PUBLIC_IP_MIN_REQUESTS = 10  # strictly more than this many requests ...
PUBLIC_IP_MAX_FAILURE_RATE = 0.5  # ... and strictly more than this share of failures
DENIED_BURST_URIS = 10  # strictly more distinct URIs ...
DENIED_BURST_SECONDS = 300  # ... within this window
SECRET_READS_PER_DAY = 3
STATUS_OK = "ok"
STATUS_NOT_OBSERVABLE = "not_observable"

IMPORTANT_EVENT_COLUMNS = (
    "detection_id", "severity", "finding_key", "request_received_ts", "day", "user_name",
    "attributed_user", "user_kind", "impersonated_user", "client_ip", "source_ips",
    "user_agent", "verb", "api_group", "resource", "subresource", "namespace", "object_name",
    "request_uri", "response_code", "audit_id", "request_key", "master", "evidence_sha256",
    "line_no", "pod", "container", "command",
)


def with_client_scope(requests_df: DataFrame, ip_info_df: DataFrame) -> DataFrame:
    """Add ``client_is_public`` from a distinct-IP table (ip, is_public) by a broadcast join."""
    scope_df = ip_info_df.select(F.col("ip").alias("_ip"),
                                 F.col("is_public").alias("client_is_public"))
    return (requests_df.join(F.broadcast(scope_df), requests_df["client_ip"] == scope_df["_ip"],
                             how="left")
            .drop("_ip"))


def _per_request(req_df: DataFrame) -> DataFrame:
    hits = F.array(*[F.when(pred, F.lit(i)) for i, pred in request_rules().items()])
    return (req_df.select("*", F.explode(F.filter(hits, lambda h: h.isNotNull()))
                          .alias("detection_id"))
            .withColumn("finding_key", F.lit(None).cast("string")))


def _auth_failures(req_df: DataFrame) -> DataFrame:
    code = F.col("response_code")
    key = (F.when(code == 401, F.concat(F.lit("ip:"), F.coalesce("client_ip", F.lit("-"))))
           .otherwise(F.concat(F.lit("user:"), F.coalesce("attributed_user", F.lit("-")))))
    return (req_df.filter(code.isin(401, 403))
            .withColumns({"detection_id": F.lit("auth-failures"), "finding_key": key}))


def _public_ip_failure_rate(req_df: DataFrame) -> DataFrame:
    """Every request of a public client IP that crossed the ACK alert's thresholds."""
    per_ip = Window.partitionBy("client_ip")
    requests, failures = F.count(F.lit(1)).over(per_ip), F.sum(
        F.col("is_failure").cast("long")).over(per_ip)
    return (
        req_df.filter(F.coalesce(F.col("client_is_public"), F.lit(False)))
        .withColumns({"_n": requests, "_f": failures})
        .filter((F.col("_n") > PUBLIC_IP_MIN_REQUESTS)
                & (F.col("_f") > F.col("_n") * PUBLIC_IP_MAX_FAILURE_RATE))
        .drop("_n", "_f")
        .withColumns({"detection_id": F.lit("public-ip-failure-rate"),
                      "finding_key": F.concat(F.lit("ip:"), F.col("client_ip"))})
    )


def _denied_burst(req_df: DataFrame) -> DataFrame:
    t = F.unix_micros(F.col("request_received_ts"))
    span = DENIED_BURST_SECONDS * 1_000_000
    by_user = Window.partitionBy("attributed_user").orderBy(t)
    trailing = F.size(F.collect_set("request_uri").over(by_user.rangeBetween(-span, 0)))
    denied_df = (req_df.filter((F.col("response_code") == 403)
                               & F.col("attributed_user").isNotNull())
                 .withColumn("_trigger", (trailing > DENIED_BURST_URIS).cast("int")))
    in_burst = F.max("_trigger").over(by_user.rangeBetween(0, span))
    return (denied_df.withColumn("_in", in_burst).filter(F.col("_in") == 1).drop("_trigger", "_in")
            .withColumns({"detection_id": F.lit("denied-burst"),
                          "finding_key": F.concat(F.lit("user:"), F.col("attributed_user"))}))


def _secret_enumeration(req_df: DataFrame) -> DataFrame:
    """Cluster-wide secret lists/watches by a human; and all secret reads of a human on a local
    day when they named >= SECRET_READS_PER_DAY distinct secrets."""
    secrets_df = req_df.filter(
        (F.col("api_group") == "") & (F.col("resource") == "secrets") & F.col("is_success")
        & (F.col("user_kind") == KIND_HUMAN) & F.col("verb").isin(*READ_VERBS)
        & (F.coalesce(F.col("subresource"), F.lit("")) == ""))
    cluster_wide = F.col("verb").isin("list", "watch") & (
        F.coalesce(F.col("namespace"), F.lit("")) == "")
    day = Window.partitionBy("attributed_user", "day")
    named = F.when(F.col("object_name").isNotNull() & (F.col("object_name") != ""),
                   F.concat_ws("/", "namespace", "object_name"))
    distinct_read = F.size(F.collect_set(named).over(day))
    flagged = cluster_wide | (distinct_read >= SECRET_READS_PER_DAY)
    user = F.col("attributed_user")
    key = F.when(cluster_wide, F.concat(F.lit("user:"), user, F.lit(" list:all")))
    key = key.otherwise(F.concat(F.lit("user:"), user, F.lit(" day:"),
                                 F.col("day").cast("string")))
    return (secrets_df.withColumn("_flag", flagged).filter("_flag").drop("_flag")
            .withColumns({"detection_id": F.lit("secret-enumeration"), "finding_key": key}))


AGGREGATE_RULES = {
    "auth-failures": _auth_failures,
    "public-ip-failure-rate": _public_ip_failure_rate,
    "denied-burst": _denied_burst,
    "secret-enumeration": _secret_enumeration,
}


def _severity() -> Column:
    expr = None
    for d in CATALOGUE:
        hit = F.col("detection_id") == d.id
        expr = F.when(hit, F.lit(d.severity)) if expr is None else expr.when(hit, d.severity)
    return expr if expr is not None else F.lit(None)


def find_important_events(requests_df: DataFrame, ip_info_df: DataFrame) -> DataFrame:
    """Every catalogue detection over the request summary; IMPORTANT_EVENT_COLUMNS.

    ``ip_info_df`` needs (ip, is_public) for the distinct client IPs. ``finding_key`` groups
    the rows of aggregate detections (per IP, per identity, per identity-day).
    """
    req_df = with_client_scope(requests_df, ip_info_df)
    parts = [_per_request(req_df), *[f(req_df) for f in AGGREGATE_RULES.values()]]
    hits_df = parts[0]
    for part in parts[1:]:
        hits_df = hits_df.unionByName(part)
    is_connect = F.col("subresource").isin("exec", "attach")
    return hits_df.select(
        *[c for c in IMPORTANT_EVENT_COLUMNS if c not in
          ("severity", "pod", "container", "command")],
        _severity().alias("severity"),
        F.when(is_connect, F.col("object_name")).alias("pod"),
        F.when(is_connect, exec_container_col()).alias("container"),
        F.when(F.col("subresource") == "exec", exec_command_col()).alias("command"),
    ).select(*IMPORTANT_EVENT_COLUMNS)


def summarise_detections(important_df: DataFrame, statuses: Mapping[str, str] | None = None,
                         bases: Mapping[str, str] | None = None) -> DataFrame:
    """One row per catalogue entry: detection_id, severity, section, title, status, basis,
    requests (distinct requests; null when not observable and nothing matched), findings
    (distinct finding keys: IPs, identities, identity-days; else requests), position
    (catalogue order).
    """
    statuses, bases = statuses or {}, bases or {}
    catalogue = F.array(*[F.struct(
        F.lit(d.id).alias("detection_id"), F.lit(d.severity).alias("severity"),
        F.lit(d.section).alias("section"), F.lit(d.title).alias("title"),
        F.lit(statuses.get(d.id, STATUS_OK)).alias("status"),
        F.lit(bases.get(d.id)).cast("string").alias("basis"),
        F.lit(i).alias("position")) for i, d in enumerate(CATALOGUE)])
    catalogue_df = important_df.sparkSession.range(1).select(F.inline(catalogue))
    counts_df = important_df.groupBy("detection_id").agg(
        F.count_distinct("request_key").alias("n"),
        F.count_distinct(F.coalesce("finding_key", "request_key")).alias("findings"))
    joined_df = catalogue_df.join(counts_df, on="detection_id", how="left")
    n = F.coalesce(F.col("n"), F.lit(0))
    requests = F.when((F.col("status") == STATUS_NOT_OBSERVABLE) & (n == 0),
                      F.lit(None).cast("long")).otherwise(n)
    return joined_df.select(
        "detection_id", "severity", "section", "title", "status", "basis",
        requests.alias("requests"),
        F.coalesce(F.col("findings"), F.lit(0)).alias("findings"), "position",
    )

