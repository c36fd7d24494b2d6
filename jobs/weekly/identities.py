"""Who and from where: users, impersonation pairs and source IPs (with geo and risk flags)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType

from jobs.detections.catalogue import BY_ID
from jobs.detections.columns import UNAUTHENTICATED, UNKNOWN
from jobs.detections.predicates import system
from jobs.detections.windows import failure_rate_crossed, scanner_agent_col
from jobs.frames import arrow_frame
from jobs.geo.ranges import SCOPE_INVALID, with_ip_scope
from jobs.geo.reader import IP_INFO_FIELDS, GeoReader, ip_info
from jobs.vocab import CLUSTER_SCOPE

IP_INFO_SCHEMA = StructType(
    [
        StructField("ip", StringType(), False),
        StructField("ip_scope", StringType()),
        StructField("is_public", BooleanType()),
        StructField("country", StringType()),
        StructField("region", StringType()),
        StructField("city", StringType()),
        StructField("asn", LongType()),
        StructField("org", StringType()),
    ]
)
NO_RESOURCE = "(non-resource)"
# The flag and the detection share their thresholds: a flagged IP is a detected one.
_FAILURE_RATE = BY_ID["public-ip-failure-rate"].thresholds


def _counts(failures: bool = True) -> list[Column]:
    code = F.col("response_code")
    cols = [F.count(F.lit(1)).alias("requests")]
    if failures:
        cols += [
            F.sum(F.col("is_failure").cast("long")).alias("failures"),
            F.sum((code == 401).cast("long")).alias("unauthorized"),
            F.sum((code == 403).cast("long")).alias("forbidden"),
        ]
    cols += [
        F.min("request_received_ts").alias("first_seen"),
        F.max("request_received_ts").alias("last_seen"),
    ]
    return cols


def select_client_ips(requests_df: DataFrame) -> DataFrame:
    """The distinct trustworthy client IPs (column ``ip``).

    Small: for the driver to classify and geo-locate (``jobs.geo.reader.ip_info``) into an
    IP_INFO_SCHEMA table.
    """
    return (
        requests_df.select(F.col("client_ip").alias("ip"))
        .filter(F.col("ip").isNotNull())
        .distinct()
    )


def build_ip_info(
    spark: SparkSession, requests_df: DataFrame, geo: GeoReader | None = None
) -> DataFrame:
    """The distinct-IP table (IP_INFO_SCHEMA), classified and geo-located on the driver.

    Without ``geo`` only the scope (public, private, ...) is filled in.
    """
    ips = [r["ip"] for r in select_client_ips(requests_df).collect()]
    rows = [tuple(info[f] for f in IP_INFO_FIELDS) for info in ip_info(ips, geo)]
    return arrow_frame(spark, rows, IP_INFO_SCHEMA)  # no Python worker


def summarise_client_ips(requests_df: DataFrame) -> DataFrame:
    """Spark-only alternative to the driver step: ip, ip_scope, is_public (no geo)."""
    return with_ip_scope(select_client_ips(requests_df), "ip").select("ip", "ip_scope", "is_public")


def _count_map(df: DataFrame, key: Column, name: str) -> DataFrame:
    per_key = df.groupBy("user", key.alias("k")).agg(F.count(F.lit(1)).alias("n"))
    return per_key.groupBy("user").agg(
        F.map_from_entries(F.sort_array(F.collect_list(F.struct("k", "n")))).alias(name)
    )


def summarise_users(requests_df: DataFrame) -> DataFrame:
    """One row per identity.

    ``user`` is the attributed user (shared logins resolved; null = no authenticated user).
    Columns: accounts, user_kind, requests, failures,
    unauthorized, forbidden, first_seen, last_seen, source_ips, impersonated_users, and maps
    requests_by_verb, requests_by_resource (``resource[/subresource]``), requests_by_namespace.
    """
    df = requests_df.withColumn("user", F.col("attributed_user"))
    resource = F.when(F.col("resource").isNull(), F.lit(NO_RESOURCE)).otherwise(
        F.concat_ws("/", "resource", F.nullif(F.col("subresource"), F.lit("")))
    )
    namespace = F.coalesce(F.nullif(F.col("namespace"), F.lit("")), F.lit(CLUSTER_SCOPE))
    base_df = df.groupBy("user").agg(
        F.sort_array(F.collect_set("user_name")).alias("accounts"),
        F.min("user_kind").alias("user_kind"),
        *_counts(),
        F.sort_array(F.collect_set("client_ip")).alias("source_ips"),
        F.sort_array(F.collect_set("impersonated_user")).alias("impersonated_users"),
    )
    out = base_df
    for key, name in (
        (F.coalesce(F.col("verb"), F.lit(UNKNOWN)), "requests_by_verb"),
        (resource, "requests_by_resource"),
        (namespace, "requests_by_namespace"),
    ):
        map_df = _count_map(df, key, name).withColumnRenamed("user", "_u")
        out = out.join(map_df, out["user"].eqNullSafe(map_df["_u"]), how="left").drop("_u")
    return out


def summarise_impersonation(requests_df: DataFrame) -> DataFrame:
    """Impersonation pairs.

    Columns: user_name, attributed_user, impersonated_user, impersonated_groups, requests, failures,
    unauthorized, forbidden, first_seen, last_seen.
    """
    return (
        requests_df.filter(F.col("impersonated_user").isNotNull())
        .groupBy("user_name", "attributed_user", "impersonated_user")
        .agg(
            F.sort_array(
                F.array_distinct(
                    F.flatten(
                        F.collect_list(
                            F.coalesce(
                                F.col("impersonated_groups"), F.array().cast("array<string>")
                            )
                        )
                    )
                )
            ).alias("impersonated_groups"),
            *_counts(),
        )
    )


def summarise_source_ips(requests_df: DataFrame, ip_info_df: DataFrame) -> DataFrame:
    """Per trustworthy client IP.

    Columns: requests, failures (>= 400), unauthorized (401), forbidden (403), failure_rate,
    first_seen, last_seen, users (attributed; ``(unauthenticated)`` for requests without a user),
    user_count, claimed_chains (sourceIPs lists that differ from ``[ip]``: X-Forwarded-For claims),
    ip_scope, is_public, country, region, city, asn, org, risk_flags, risk_reasons.
    ``ip_info_df`` follows IP_INFO_SCHEMA, plus ``risk_reasons`` when
    ``jobs.detections.risk.with_ip_risk`` added it: why risky-source-ip flags the IP
    (``threat-list:<file>``, ``hosting-asn:AS<n> <provider>``; empty: not risky; null: the
    detection is not configured, or the table has no reasons).
    """
    chain = F.when(F.coalesce(F.size("source_ips"), F.lit(0)) > 1, F.col("source_ips"))
    per_ip_df = (
        requests_df.filter(F.col("client_ip").isNotNull())
        .groupBy(F.col("client_ip").alias("ip"))
        .agg(
            *_counts(),
            F.sort_array(
                F.collect_set(F.coalesce("attributed_user", F.lit(UNAUTHENTICATED)))
            ).alias("users"),
            F.sort_array(F.collect_set(chain)).alias("claimed_chains"),
            F.max(system().cast("int")).alias("_system"),
            F.max(scanner_agent_col().cast("int")).alias("_scan"),
        )
    )
    if "risk_reasons" not in ip_info_df.columns:
        ip_info_df = ip_info_df.withColumn("risk_reasons", F.lit(None).cast("array<string>"))
    joined_df = per_ip_df.join(F.broadcast(ip_info_df), on="ip", how="left")
    n, failures = F.col("requests"), F.col("failures")
    public = F.coalesce(F.col("is_public"), F.lit(False))
    flags = F.array(
        F.when(
            failure_rate_crossed(n, failures, public, _FAILURE_RATE), F.lit("public-failure-rate")
        ),
        F.when(F.col("unauthorized") > 0, F.lit("unauthorized")),
        F.when(F.col("forbidden") > 0, F.lit("forbidden")),
        F.when(public & (F.col("_system") == 1), F.lit("system-identity-public")),
        F.when(F.col("_scan") == 1, F.lit("scanner-user-agent")),
        F.when(F.size("claimed_chains") > 0, F.lit("forwarded-chain")),
        F.when(F.col("ip_scope") == SCOPE_INVALID, F.lit("invalid-ip")),
    )
    return joined_df.select(
        "ip",
        "requests",
        "failures",
        "unauthorized",
        "forbidden",
        F.round(failures / n, 4).alias("failure_rate"),
        "first_seen",
        "last_seen",
        "users",
        F.size("users").alias("user_count"),
        "claimed_chains",
        "ip_scope",
        public.alias("is_public"),
        "country",
        "region",
        "city",
        "asn",
        "org",
        F.filter(flags, lambda f: f.isNotNull()).alias("risk_flags"),
        "risk_reasons",
    )
