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
