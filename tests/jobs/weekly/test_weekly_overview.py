from __future__ import annotations

import datetime as dt

import pytest

from jobs.weekly.marts import summarise_overview
from jobs.weekly.requests import summarise_requests

pytestmark = pytest.mark.spark

TZ = "Asia/Shanghai"
# 2026-11-16 15:30 UTC is 23:30 on the 16th in Shanghai; 16:10 UTC is 00:10 on the 17th
T_LATE = dt.datetime(2026, 11, 16, 15, 30, tzinfo=dt.UTC)
T_MIDNIGHT = dt.datetime(2026, 11, 16, 16, 10, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def overview(spark, make_event, events_df):
    rows = [
        make_event(audit_id="a", ts=T_LATE),
        make_event(audit_id="b", ts=T_LATE + dt.timedelta(minutes=5), response_code=403),
        make_event(audit_id="c", ts=T_MIDNIGHT, user_name="bob"),
    ]
    requests_df = summarise_requests(events_df(rows), timezone=TZ)
    return [r.asDict() for r in summarise_overview(requests_df, TZ).collect()]


def _rows(overview, dimension):
    return {
        r["key"]: (r["requests"], r["events"], r["failures"], r["distinct_users"])
        for r in overview
        if r["dimension"] == dimension
    }


def test_summarise_overview_hour_rows_are_local_hours(overview):
    assert _rows(overview, "hour") == {
        "2026-11-16 23": (2, 2, 1, 1),
        "2026-11-17 00": (1, 1, 0, 1),
    }


def test_summarise_overview_hours_fall_in_their_local_day(overview):
    days = _rows(overview, "day")
    assert days == {"2026-11-16": (2, 2, 1, 1), "2026-11-17": (1, 1, 0, 1)}
    hours = _rows(overview, "hour")
    for day, (requests, *_) in days.items():
        assert sum(v[0] for k, v in hours.items() if k.startswith(day)) == requests
    assert _rows(overview, "total") == {"all": (3, 3, 1, 2)}
    assert {r["dimension"] for r in overview} == {
        "total",
        "day",
        "hour",
        "verb",
        "status_class",
        "user_kind",
    }


def test_summarise_overview_matches_a_direct_count_per_dimension(spark, make_event, events_df):
    """The overview pre-aggregates by (keys, user, IP) first: every dimension's counts, distinct
    users and distinct IPs must equal a plain group-by of the requests themselves. Users, IPs,
    verbs and codes repeat across hours and status classes (null users and IPs included)."""
    from pyspark.sql import functions as F

    users, ips = ["alice", "bob", "carol", None], ["10.0.0.1", "10.0.0.2", "203.0.113.9"]
    verbs, codes = ["get", "list", "create", "delete"], [200, 201, 403, 404, 500]
    rows = [
        make_event(
            audit_id=f"r{i}",
            ts=T_LATE + dt.timedelta(minutes=20 * (i // 6)),
            user_name=users[(i // 2) % 4],
            source_ips=[ips[(i // 3) % 3]] if (i // 3) % 5 else None,
            verb=verbs[(i // 4) % 4],
            response_code=codes[(i // 5) % 5],
        )
        for i in range(60)
    ]
    rows.append(make_event(audit_id="r0", stage="ResponseStarted", ts=T_LATE))  # two events
    requests_df = summarise_requests(events_df(rows), timezone=TZ)
    # the data repeats (day, verb, status, user, IP): a sum where a count belongs shows
    shared = requests_df.groupBy("day", "verb", "status_class", "user_name", "client_ip").count()
    assert shared.filter("count > 1").count() > 0
    got = {
        (r["dimension"], r["key"]): r.asDict()
        for r in summarise_overview(requests_df, TZ).collect()
    }
    local = F.from_utc_timestamp(F.col("request_received_ts"), TZ)
    keys = {
        "total": F.lit("all"), "day": F.col("day").cast("string"),
        "hour": F.date_format(local, "yyyy-MM-dd HH"), "verb": F.col("verb"),
        "status_class": F.col("status_class"), "user_kind": F.col("user_kind"),
    }  # fmt: skip
    expected = {}
    for dimension, key in keys.items():
        for r in requests_df.groupBy(key.alias("key")).agg(
            F.count(F.lit(1)).alias("requests"), F.sum("events").alias("events"),
            F.sum(F.col("is_failure").cast("long")).alias("failures"),
            F.count_distinct("user_name").alias("distinct_users"),
            F.count_distinct("client_ip").alias("distinct_source_ips"),
        ).collect():  # fmt: skip
            expected[(dimension, r["key"])] = {"dimension": dimension, **r.asDict()}
    assert got == expected
    assert got[("total", "all")]["events"] == 61
    assert got[("total", "all")]["distinct_users"] == 3
    assert got[("total", "all")]["distinct_source_ips"] == 3
