"""Who and from where: users, impersonation pairs and source IPs (with geo and risk flags)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType

from jobs.aggregate.columns import KIND_SERVICE_ACCOUNT, KIND_SYSTEM, UNAUTHENTICATED, UNKNOWN
from jobs.aggregate.detections import PUBLIC_IP_MAX_FAILURE_RATE, PUBLIC_IP_MIN_REQUESTS
from jobs.aggregate.rules import SCANNER_AGENTS
from jobs.geo.ranges import SCOPE_INVALID, with_ip_scope

IP_INFO_SCHEMA = StructType([
    StructField("ip", StringType(), False),
    StructField("ip_scope", StringType()),
    StructField("is_public", BooleanType()),
    StructField("country", StringType()),
    StructField("region", StringType()),
    StructField("city", StringType()),
    StructField("asn", LongType()),
    StructField("org", StringType()),
])
NO_RESOURCE = "(non-resource)"
CLUSTER_SCOPE = "(cluster)"


def _counts(failures: bool = True) -> list[Column]:
    code = F.col("response_code")
    cols = [F.count(F.lit(1)).alias("requests")]
    if failures:
        cols += [F.sum(F.col("is_failure").cast("long")).alias("failures"),
                 F.sum((code == 401).cast("long")).alias("unauthorized"),
                 F.sum((code == 403).cast("long")).alias("forbidden")]
    cols += [F.min("request_received_ts").alias("first_seen"),
             F.max("request_received_ts").alias("last_seen")]
    return cols


def select_client_ips(requests_df: DataFrame) -> DataFrame:
    """The distinct trustworthy client IPs (column ``ip``): small, for the driver to classify
    and geo-locate (``jobs.geo.reader.ip_info``) into an IP_INFO_SCHEMA table.
    """
    return (requests_df.select(F.col("client_ip").alias("ip"))
            .filter(F.col("ip").isNotNull()).distinct())


def summarise_client_ips(requests_df: DataFrame) -> DataFrame:
    """Spark-only alternative to the driver step: ip, ip_scope, is_public (no geo)."""
    return with_ip_scope(select_client_ips(requests_df), "ip").select("ip", "ip_scope",
                                                                       "is_public")


def _count_map(df: DataFrame, key: Column, name: str) -> DataFrame:
    per_key = df.groupBy("user", key.alias("k")).agg(F.count(F.lit(1)).alias("n"))
    return per_key.groupBy("user").agg(
        F.map_from_entries(F.sort_array(F.collect_list(F.struct("k", "n")))).alias(name))


def summarise_users(requests_df: DataFrame) -> DataFrame:
    """One row per identity (``user`` = attributed user; shared logins resolved; null = no
    authenticated user): accounts, user_kind, requests, failures, unauthorized, forbidden,
    first_seen, last_seen, source_ips, impersonated_users, and maps requests_by_verb,
    requests_by_resource (``resource[/subresource]``), requests_by_namespace.
    """
    df = requests_df.withColumn("user", F.col("attributed_user"))
    resource = F.when(F.col("resource").isNull(), F.lit(NO_RESOURCE)).otherwise(
        F.concat_ws("/", "resource", F.nullif(F.col("subresource"), F.lit(""))))
    namespace = F.coalesce(F.nullif(F.col("namespace"), F.lit("")), F.lit(CLUSTER_SCOPE))
    base_df = df.groupBy("user").agg(
        F.sort_array(F.collect_set("user_name")).alias("accounts"),
        F.min("user_kind").alias("user_kind"),
        *_counts(),
        F.sort_array(F.collect_set("client_ip")).alias("source_ips"),
        F.sort_array(F.collect_set("impersonated_user")).alias("impersonated_users"),
    )
    out = base_df
    for key, name in ((F.coalesce(F.col("verb"), F.lit(UNKNOWN)), "requests_by_verb"),
                      (resource, "requests_by_resource"), (namespace, "requests_by_namespace")):
        map_df = _count_map(df, key, name).withColumnRenamed("user", "_u")
        out = out.join(map_df, out["user"].eqNullSafe(map_df["_u"]), how="left").drop("_u")
    return out


def summarise_impersonation(requests_df: DataFrame) -> DataFrame:
    """Impersonation pairs: user_name, attributed_user, impersonated_user, impersonated_groups,
    requests, failures, unauthorized, forbidden, first_seen, last_seen.
    """
    return (
        requests_df.filter(F.col("impersonated_user").isNotNull())
        .groupBy("user_name", "attributed_user", "impersonated_user")
        .agg(F.sort_array(F.array_distinct(F.flatten(F.collect_list(F.coalesce(
            F.col("impersonated_groups"), F.array().cast("array<string>")))))
        ).alias("impersonated_groups"), *_counts())
    )


def summarise_source_ips(requests_df: DataFrame, ip_info_df: DataFrame) -> DataFrame:
    """Per trustworthy client IP: requests, failures (>= 400), unauthorized (401), forbidden
    (403), failure_rate, first_seen, last_seen, users (attributed; ``(unauthenticated)`` for
    requests without a user), user_count, claimed_chains (sourceIPs
    lists that differ from ``[ip]``: X-Forwarded-For claims), ip_scope, is_public, country,
    region, city, asn, org, risk_flags. ``ip_info_df`` follows IP_INFO_SCHEMA.
    """
    system = F.col("user_kind").isin(KIND_SYSTEM, KIND_SERVICE_ACCOUNT)
    agent = F.lower(F.coalesce(F.col("user_agent"), F.lit("")))
    scanner = F.lit(False)
    for name in SCANNER_AGENTS:
        scanner = scanner | agent.contains(name)
    chain = F.when(F.coalesce(F.size("source_ips"), F.lit(0)) > 1, F.col("source_ips"))
    per_ip_df = (
        requests_df.filter(F.col("client_ip").isNotNull())
        .groupBy(F.col("client_ip").alias("ip"))
        .agg(*_counts(),
             F.sort_array(F.collect_set(F.coalesce("attributed_user", F.lit(UNAUTHENTICATED)))
                          ).alias("users"),
             F.sort_array(F.collect_set(chain)).alias("claimed_chains"),
             F.max(system.cast("int")).alias("_system"), F.max(scanner.cast("int")).alias("_scan"))
    )
    joined_df = per_ip_df.join(F.broadcast(ip_info_df), on="ip", how="left")
    n, failures = F.col("requests"), F.col("failures")
    public = F.coalesce(F.col("is_public"), F.lit(False))
    flags = F.array(
        F.when(public & (n > PUBLIC_IP_MIN_REQUESTS) & (failures > n * PUBLIC_IP_MAX_FAILURE_RATE),
               F.lit("public-failure-rate")),
        F.when(F.col("unauthorized") > 0, F.lit("unauthorized")),
        F.when(F.col("forbidden") > 0, F.lit("forbidden")),
        F.when(public & (F.col("_system") == 1), F.lit("system-identity-public")),
        F.when(F.col("_scan") == 1, F.lit("scanner-user-agent")),
        F.when(F.size("claimed_chains") > 0, F.lit("forwarded-chain")),
        F.when(F.col("ip_scope") == SCOPE_INVALID, F.lit("invalid-ip")),
    )
    return joined_df.select(
        "ip", "requests", "failures", "unauthorized", "forbidden",
        F.round(failures / n, 4).alias("failure_rate"), "first_seen", "last_seen", "users",
        F.size("users").alias("user_count"), "claimed_chains", "ip_scope",
        public.alias("is_public"), "country", "region", "city", "asn", "org",
        F.filter(flags, lambda f: f.isNotNull()).alias("risk_flags"),
    )
