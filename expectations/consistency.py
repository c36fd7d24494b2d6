"""Cross-dataset checks of a week: totals that must agree between marts, and with the lake.

:func:`consistency_frame` computes every check with Spark joins and aggregations into ONE
row of numbers (differences and counts of mismatching keys, which must be 0, and the
geo-resolution rate); :func:`build_consistency_suite` validates that row with GX, so these
checks appear in the same results as the per-dataset suites.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import reduce

import great_expectations as gx
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from expectations._checks import at_least, zero
from expectations.marts import OVERVIEW_DIMENSIONS
from jobs.weekly.requests import request_key_col

SUITE_NAME = "consistency_suite"
# Share of public client IPs that must resolve to a country. A current MaxMind/DB-IP
# country database covers all routed public IPv4/IPv6 space (country coverage is near
# complete; the accuracy caveats are about cities), so misses are newly allocated or
# anycast blocks: a handful among dozens. 0.9 tolerates those and still fails a missing,
# empty or stale database, which would leave the report's geo columns silently blank.
GEO_MIN_COUNTRY_RATE = 0.9
# every overview dimension but the total adds up to the total
BREAKDOWNS = tuple(d for d in OVERVIEW_DIMENSIONS if d != "total")
DETAIL_FACETS = ("namespace", "day", "operation")
RESOURCE_KEY = ("category", "api_group", "resource")
LAKE_POINTER = ("evidence_sha256", "line_no")

# column -> what must hold (the description shown in the results)
ZERO_CHECKS: dict[str, str] = {
    **{
        f"overview_{d}_requests_minus_total": f"overview: requests by {d} add up to the total"
        for d in BREAKDOWNS
    },
    "overview_requests_minus_lake": "overview total requests = distinct requests in the lake",
    "overview_events_minus_lake": "overview total events = events in the lake",
    "users_requests_minus_total": "users: requests add up to the overview total",
    "users_by_verb_mismatches": "users: requests_by_verb adds up to requests, per user",
    "resource_operation_mismatches": (
        "resource_operations of a resource type add up to its resource_detail total"
    ),
    "resource_detail_facet_mismatches": (
        "resource_detail: namespace, day and operation facets add up to the total"
    ),
    "source_ip_requests_minus_lake": (
        "source_ips: per-IP requests add up to the lake's requests that carry an IP"
    ),
    "source_ips_minus_overview_distinct": ("source_ips rows = overview distinct_source_ips"),
    "detection_request_mismatches": (
        "detections: requests = distinct requests of the detection in important_events"
    ),
    "important_events_missing_in_lake": (
        "important_events rows point at an event in the lake (evidence_sha256, line_no)"
    ),
    "resource_detail_operations_missing_in_lake": (
        "resource_detail_operations rows point at an event in the lake"
    ),
    "policy_fit_events_minus_lake": "policy_fit: events add up to the lake's events",
}
GEO_RATE = "public_ip_country_rate"


def build_consistency_suite(
    geo_min_country_rate: float = GEO_MIN_COUNTRY_RATE,
) -> gx.ExpectationSuite:
    """Every cross-dataset check; validate the one row of :func:`consistency_frame`."""
    expectations = [zero(column, text) for column, text in ZERO_CHECKS.items()]
    expectations.append(
        at_least(
            GEO_RATE,
            geo_min_country_rate,
            f"public client IPs resolved to a country: at least {geo_min_country_rate}",
        )
    )
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations)


def _one(df: DataFrame, **cols: Column) -> DataFrame:
    return df.agg(*[c.alias(n) for n, c in cols.items()])


def _n(col: Column) -> Column:
    return F.coalesce(col, F.lit(0))


def _overview(overview: DataFrame, lake: DataFrame) -> DataFrame:
    total = F.col("dimension") == "total"
    sums = {
        f"_{d}": _n(F.sum(F.when(F.col("dimension") == d, F.col("requests")))) for d in BREAKDOWNS
    }
    ov = _one(
        overview,
        _total=_n(F.sum(F.when(total, F.col("requests")))),
        _events=_n(F.sum(F.when(total, F.col("events")))),
        _ips=_n(F.sum(F.when(total, F.col("distinct_source_ips")))),
        **sums,
    )
    return ov.crossJoin(lake).select(
        "_total",
        "_ips",
        *[
            (F.col(f"_{d}") - F.col("_total")).alias(f"overview_{d}_requests_minus_total")
            for d in BREAKDOWNS
        ],
        (F.col("_total") - F.col("_lake_requests")).alias("overview_requests_minus_lake"),
        (F.col("_events") - F.col("_lake_events")).alias("overview_events_minus_lake"),
    )


def _users(users: DataFrame) -> DataFrame:
    by_verb = F.aggregate(
        F.map_values("requests_by_verb"), F.lit(0).cast("long"), lambda acc, v: acc + v
    )
    return _one(
        users,
        _users_requests=_n(F.sum("requests")),
        users_by_verb_mismatches=F.count(
            F.when(~_n(by_verb).eqNullSafe(F.col("requests")), F.lit(1))
        ),
    )


def _resources(operations: DataFrame, detail: DataFrame) -> DataFrame:
    ops = operations.groupBy(*RESOURCE_KEY).agg(F.sum("requests").alias("_ops"))
    totals = detail.filter(F.col("facet") == "total").select(
        *RESOURCE_KEY, F.col("requests").alias("_total")
    )
    joined = ops.join(totals, on=[ops[k].eqNullSafe(totals[k]) for k in RESOURCE_KEY], how="full")
    op_mismatch = _one(
        joined,
        resource_operation_mismatches=F.count(
            F.when(~_n(F.col("_ops")).eqNullSafe(_n(F.col("_total"))), F.lit(1))
        ),
    )
    facets = (
        detail.filter(F.col("facet").isin(*DETAIL_FACETS))
        .groupBy(*RESOURCE_KEY, "facet")
        .agg(F.sum("requests").alias("_sum"))
    )
    f_joined = facets.join(
        totals, on=[facets[k].eqNullSafe(totals[k]) for k in RESOURCE_KEY], how="left"
    )
    facet_mismatch = _one(
        f_joined,
        resource_detail_facet_mismatches=F.count(
            F.when(~_n(F.col("_sum")).eqNullSafe(_n(F.col("_total"))), F.lit(1))
        ),
    )
    return op_mismatch.crossJoin(facet_mismatch)


def _source_ips(source_ips: DataFrame) -> DataFrame:
    public = F.coalesce(F.col("is_public"), F.lit(False))
    resolved = public & F.col("country").isNotNull() & (F.col("country") != "")
    n_public = F.count(F.when(public, F.lit(1)))
    return _one(
        source_ips,
        _ip_requests=_n(F.sum("requests")),
        _ip_rows=F.count(F.lit(1)),
        **{
            GEO_RATE: F.when(
                n_public > 0, F.count(F.when(resolved, F.lit(1))) / n_public
            ).otherwise(F.lit(1.0))
        },
    )


def _detections(detections: DataFrame, important: DataFrame) -> DataFrame:
    found = important.groupBy("detection_id").agg(F.count_distinct("request_key").alias("_found"))
    joined = detections.select("detection_id", "requests").join(found, "detection_id", "full")
    return _one(
        joined,
        detection_request_mismatches=F.count(
            F.when(~_n(F.col("requests")).eqNullSafe(_n(F.col("_found"))), F.lit(1))
        ),
    )


def _missing_in_lake(df: DataFrame, pointers: DataFrame, name: str) -> DataFrame:
    missing = df.select(*LAKE_POINTER).join(pointers, on=list(LAKE_POINTER), how="left_anti")
    return _one(missing, **{name: F.count(F.lit(1))})


def consistency_frame(events_df: DataFrame, marts: Mapping[str, DataFrame]) -> pd.DataFrame:
    """ONE row: every check column of ZERO_CHECKS, and GEO_RATE.

    ``events_df`` holds the events the marts were computed from (the week's window of the
    lake, EVENTS columns); ``marts`` every weekly mart by name. Computed once and handed to
    GX as a one-row pandas frame, so GX's several passes do not recompute the joins.
    """
    # one narrow aggregation per request (two count_distincts made Spark expand every event
    # twice and shuffle both copies)
    requests = events_df.groupBy("cluster", request_key_col().alias("_key")).agg(
        F.count(F.lit(1)).alias("_events"),
        F.max(F.coalesce(F.size("source_ips"), F.lit(0)) > 0).alias("_has_ip"),
    )
    lake = _one(
        requests,
        _lake_events=_n(F.sum("_events")),
        _lake_requests=F.count(F.lit(1)),
        _lake_ip_requests=F.count(F.when(F.col("_has_ip"), F.lit(1))),
    )
    # an anti join needs no distinct right side
    pointers = events_df.select(*LAKE_POINTER)
    parts = [
        _overview(marts["overview"], lake),
        lake,
        _users(marts["users"]),
        _resources(marts["resource_operations"], marts["resource_detail"]),
        _source_ips(marts["source_ips"]),
        _detections(marts["detections"], marts["important_events"]),
        _missing_in_lake(marts["important_events"], pointers, "important_events_missing_in_lake"),
        _missing_in_lake(
            marts["resource_detail_operations"],
            pointers,
            "resource_detail_operations_missing_in_lake",
        ),
        _one(marts["policy_fit"], _fit_events=_n(F.sum("events"))),
    ]
    row_df = reduce(DataFrame.crossJoin, parts).select(
        *[
            c
            for c in ZERO_CHECKS
            if not c.startswith(("users_requests", "source_ip_", "source_ips_", "policy_fit"))
        ],
        (F.col("_users_requests") - F.col("_total")).alias("users_requests_minus_total"),
        (F.col("_ip_requests") - F.col("_lake_ip_requests")).alias("source_ip_requests_minus_lake"),
        (F.col("_ip_rows") - F.col("_ips")).alias("source_ips_minus_overview_distinct"),
        (F.col("_fit_events") - F.col("_lake_events")).alias("policy_fit_events_minus_lake"),
        GEO_RATE,
    )
    return row_df.select(*ZERO_CHECKS, GEO_RATE).toPandas()
