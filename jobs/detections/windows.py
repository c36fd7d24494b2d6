"""Detections over many requests: rates, bursts, per-day counts, and the scanner match.

Each finder takes the request summary (with ``client_is_public``) and its catalogue entry, whose
``thresholds`` it reads, and returns the requests that make up a finding with ``detection_id``
and ``finding_key``. ``failure_rate_crossed`` and ``scanner_agent_col`` are also what the
source_ips mart flags with, so a flag and its detection cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.config import DetectionsConfig
from jobs.detections.predicates import client_is_public, human, ok, on, reads, sub

if TYPE_CHECKING:
    from jobs.detections.model import Detection

SCANNER_AGENTS = (
    "kube-hunter",
    "trufflehog",
    "azurehound",
    "access_matrix",
    "kubiscan",
    "peirates",
)


def scanner_agent_col() -> Column:
    """The user agent names a known cluster scanner (case-insensitive substring)."""
    agent = F.lower(F.coalesce(F.col("user_agent"), F.lit("")))
    scanner = F.lit(False)
    for name in SCANNER_AGENTS:
        scanner = scanner | agent.contains(name)
    return scanner


def failure_rate_crossed(
    requests: Column, failures: Column, public: Column, thresholds: Mapping[str, float]
) -> Column:
    """A public IP with more than ``min_requests`` requests and more than ...

    ... ``max_failure_rate`` of them failed (the ACK alert's thresholds).
    """
    return (
        public
        & (requests > thresholds["min_requests"])
        & (failures > requests * thresholds["max_failure_rate"])
    )


def found(df: DataFrame, det: Detection, key: Column) -> DataFrame:
    """The rows of a finder's finding, labelled with the detection and their finding key."""
    return df.withColumns({"detection_id": F.lit(det.id), "finding_key": key})


def auth_failure_scope(_config: DetectionsConfig) -> Column:
    """The requests auth_failures reads: the 401s and 403s."""
    return F.col("response_code").isin(401, 403)


def auth_failures(req_df: DataFrame, det: Detection, config: DetectionsConfig) -> DataFrame:
    """Every 401 (keyed by client IP) and 403 (keyed by identity)."""
    code = F.col("response_code")
    key = F.when(
        code == 401, F.concat(F.lit("ip:"), F.coalesce("client_ip", F.lit("-")))
    ).otherwise(F.concat(F.lit("user:"), F.coalesce("attributed_user", F.lit("-"))))
    return found(req_df.filter(auth_failure_scope(config)), det, key)


def public_client_scope(_config: DetectionsConfig) -> Column:
    """The requests public_ip_failure_rate reads: all of the public client IPs."""
    return client_is_public()


def public_ip_failure_rate(
    req_df: DataFrame, det: Detection, config: DetectionsConfig
) -> DataFrame:
    """Every request of a public client IP that crossed the failure-rate thresholds."""
    per_ip = Window.partitionBy("client_ip")
    requests = F.count(F.lit(1)).over(per_ip)
    failures = F.sum(F.col("is_failure").cast("long")).over(per_ip)
    crossed = failure_rate_crossed(F.col("_n"), F.col("_f"), F.lit(True), det.thresholds)
    return found(
        req_df.filter(public_client_scope(config))
        .withColumns({"_n": requests, "_f": failures})
        .filter(crossed)
        .drop("_n", "_f"),
        det,
        F.concat(F.lit("ip:"), F.col("client_ip")),
    )


def denied_scope(_config: DetectionsConfig) -> Column:
    """The requests denied_burst reads: the 403s of a known identity."""
    return (F.col("response_code") == 403) & F.col("attributed_user").isNotNull()


def denied_burst(req_df: DataFrame, det: Detection, config: DetectionsConfig) -> DataFrame:
    """Every 403 of an identity inside a window where it was denied on more than ...

    ... ``distinct_uris`` URIs within ``seconds``: a 403 at t is in a burst when some 403 of
    the same identity at t' in [t, t + seconds] saw more than ``distinct_uris`` distinct URIs
    among the identity's 403s in [t' - seconds, t'].

    No sliding window frame: Spark re-aggregates a sliding range frame for every row (a scan
    of 200,000 denials from one identity took tens of minutes and filled the heap). A URI's
    occurrence at s is "the URI's latest within the span" for t in [s, min(s + span, next
    occurrence - 1)]; the distinct URIs at t are the intervals covering t, a running sum of
    +1 at each start and -1 after each end. The next trigger at or after t is a running min
    in descending time. Both are running frames (one pass), the result the same.
    """
    span = int(det.thresholds["seconds"]) * 1_000_000
    uri, t = F.col("request_uri"), F.col("_t")
    denied_df = req_df.filter(denied_scope(config)).withColumn(
        "_t", F.unix_micros(F.col("request_received_ts"))
    )
    # a URI's interval ends before its next denial (same identity); of denials at the same
    # instant only the last opens one; collect_set skipped null URIs, so do they
    next_t = F.lead("_t").over(Window.partitionBy("attributed_user", "request_uri").orderBy("_t"))
    occ = denied_df.select("attributed_user", "_t", uri, next_t.alias("_next"))
    opens = uri.isNotNull() & (F.col("_next").isNull() | (F.col("_next") > t))
    deltas = occ.select(
        "attributed_user", "_t", F.when(opens, F.lit(1)).otherwise(F.lit(0)).alias("_d")
    ).unionByName(
        occ.filter(opens).select(
            "attributed_user",
            (F.least(t + F.lit(span), F.col("_next") - 1) + 1).alias("_t"),  # least skips null
            F.lit(-1).alias("_d"),
        )
    )
    per_user = Window.partitionBy("attributed_user")
    running = per_user.orderBy("_t").rangeBetween(Window.unboundedPreceding, Window.currentRow)
    distinct_df = (
        deltas.groupBy("attributed_user", "_t")
        .agg(F.sum("_d").alias("_d"))
        .select("attributed_user", "_t", F.sum("_d").over(running).alias("_distinct"))
    )
    # at each instant with a denial: a trigger, and the first trigger at or after it (a
    # running min in descending time)
    at_denials = distinct_df.join(
        denied_df.select("attributed_user", "_t").distinct(), on=["attributed_user", "_t"]
    )
    trigger = F.when(F.col("_distinct") > det.thresholds["distinct_uris"], t)
    later = per_user.orderBy(t.desc()).rangeBetween(Window.unboundedPreceding, Window.currentRow)
    burst_df = at_denials.withColumn("_in", F.min(trigger).over(later) <= t + F.lit(span))
    burst_df = burst_df.filter(F.col("_in"))
    return found(
        denied_df.join(burst_df, on=["attributed_user", "_t"], how="left_semi").drop("_t"),
        det,
        F.concat(F.lit("user:"), F.col("attributed_user")),
    )


def secret_read_scope(_config: DetectionsConfig) -> Column:
    """The requests secret_enumeration reads: a human's successful secret reads."""
    return on("", "secrets") & ok() & human() & reads() & sub(None)


def secret_enumeration(req_df: DataFrame, det: Detection, config: DetectionsConfig) -> DataFrame:
    """Cluster-wide secret lists/watches by a human.

    and all secret reads of a human on a local day when they named at least ``reads_per_day``
    distinct secrets.
    """
    secrets_df = req_df.filter(secret_read_scope(config))
    cluster_wide = F.col("verb").isin("list", "watch") & (
        F.coalesce(F.col("namespace"), F.lit("")) == ""
    )
    day = Window.partitionBy("attributed_user", "day")
    named = F.when(
        F.col("object_name").isNotNull() & (F.col("object_name") != ""),
        F.concat_ws("/", "namespace", "object_name"),
    )
    distinct_read = F.size(F.collect_set(named).over(day))
    flagged = cluster_wide | (distinct_read >= det.thresholds["reads_per_day"])
    user = F.col("attributed_user")
    key = F.when(cluster_wide, F.concat(F.lit("user:"), user, F.lit(" list:all"))).otherwise(
        F.concat(F.lit("user:"), user, F.lit(" day:"), F.col("day").cast("string"))
    )
    return found(secrets_df.withColumn("_flag", flagged).filter("_flag").drop("_flag"), det, key)
