from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from jobs.detections.columns import attributed_user_col, user_kind_col
from jobs.lake.events import read_events
from jobs.lake.runs import write_run
from jobs.settings import Layout
from jobs.weekly.requests import client_ip_col, filter_window, read_week, summarise_requests
from jobs.weekly.summary import WeekError, iso_week_window

pytestmark = pytest.mark.spark

T0 = dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC)
REASON = (
    'RBAC: allowed by ClusterRoleBinding "x" of ClusterRole "cluster-admin" '
    'to User "27123456789012345"'
)
TRUSTED = ("10.0.2.5", "172.16.0.0/12", "fd00::/8")


@pytest.fixture(scope="module")
def requests(spark, make_event, events_df):
    sec = dt.timedelta(seconds=1)
    rows = [
        # one exec: ResponseStarted 101 then ResponseComplete 200 -> one request, outcome 200
        make_event(audit_id="two", stage="ResponseStarted", response_code=101, subresource="exec"),
        make_event(
            audit_id="two",
            stage="ResponseComplete",
            response_code=200,
            subresource="exec",
            stage_ts=T0 + 5 * sec,
            line_no=900,
        ),
        # the last stage wins even if its stage_ts is earlier; Panic beats ResponseStarted
        make_event(
            audit_id="panic", stage="ResponseStarted", response_code=200, stage_ts=T0 + 9 * sec
        ),
        make_event(audit_id="panic", stage="Panic", response_code=500, stage_ts=T0 + sec),
        make_event(audit_id="rr", stage="RequestReceived", response_code=None),
        make_event(
            audit_id="rr", stage="ResponseComplete", response_code=403, impersonated_user="bob"
        ),
        # no audit ID: each line is its own request
        make_event(audit_id=None, dedup_key="sha256:1", response_code=401, user_name=None),
        make_event(audit_id=None, dedup_key="sha256:2", response_code=401, user_name=None),
        make_event(
            audit_id="admin",
            user_name="kubernetes-admin",
            authz_reason=REASON,
            source_ips=["1.2.3.4", "10.0.2.5"],
        ),
        make_event(
            audit_id="admin-group",
            user_name="kubernetes-admin",
            authz_reason='RBAC: allowed by ClusterRoleBinding "y" of ClusterRole "z" '
            'to Group "system:masters"',
            source_ips=[],
        ),
        make_event(audit_id="late", ts=T0 + dt.timedelta(days=6, hours=13, minutes=59)),
    ]
    return {
        r.request_key: r.asDict()
        for r in summarise_requests(
            events_df(rows), timezone="Asia/Shanghai", trusted_proxies=TRUSTED
        ).collect()
    }


def test_summarise_requests_counts_requests_not_events(requests):
    assert len(requests) == 8
    two = requests["two"]
    assert (two["events"], two["stages"]) == (2, ["ResponseComplete", "ResponseStarted"])
    assert (two["response_code"], two["is_success"], two["line_no"]) == (200, True, 900)


@pytest.mark.parametrize(
    ("key", "code", "status_class", "failure"),
    [
        ("two", 200, "2xx", False),
        ("panic", 500, "5xx", True),
        ("rr", 403, "4xx", True),
        ("sha256:1", 401, "4xx", True),
    ],
)
def test_summarise_requests_outcome_is_the_last_stage(requests, key, code, status_class, failure):
    row = requests[key]
    assert (row["response_code"], row["status_class"], row["is_failure"]) == (
        code,
        status_class,
        failure,
    )


def test_summarise_requests_keeps_later_stage_context(requests):
    assert requests["rr"]["impersonated_user"] == "bob"
    assert requests["sha256:1"]["user_kind"] == "anonymous"


def test_summarise_requests_attributes_the_shared_admin(requests):
    assert requests["admin"]["attributed_user"] == "27123456789012345"
    assert requests["admin"]["user_name"] == "kubernetes-admin"
    assert requests["admin-group"]["attributed_user"] == "kubernetes-admin"
    assert requests["two"]["attributed_user"] == "alice"


def test_summarise_requests_client_ip_skips_trusted_proxy_and_day_is_local(requests):
    assert requests["admin"]["client_ip"] == "1.2.3.4"
    assert requests["admin"]["source_ips"] == ["1.2.3.4", "10.0.2.5"]  # the claimed chain
    assert requests["admin-group"]["client_ip"] is None
    assert str(requests["two"]["day"]) == "2026-11-17"
    assert str(requests["late"]["day"]) == "2026-11-24"  # 2026-11-23 23:59 UTC = 07:59 UTC+8


# sourceIPs -> (client IP without trusted proxies, with TRUSTED)
CHAINS = [
    (["1.2.3.4"], "1.2.3.4", "1.2.3.4"),
    (["6.6.6.6", "1.2.3.4"], "1.2.3.4", "1.2.3.4"),  # X-Forwarded-For is a claim: peer decides
    (["6.6.6.6", "10.0.2.5"], "10.0.2.5", "6.6.6.6"),
    (["6.6.6.6", "172.20.1.1", "10.0.2.5"], "10.0.2.5", "6.6.6.6"),  # proxy chain, CIDR
    (["6.6.6.6", "9.9.9.9", "10.0.2.5"], "10.0.2.5", "9.9.9.9"),  # first untrusted from right
    (["10.0.2.5"], "10.0.2.5", "10.0.2.5"),  # the proxy itself called
    (["2001:db8::1", "fd00::5"], "fd00::5", "2001:db8::1"),
    (["6.6.6.6", "::ffff:10.0.2.5"], "::ffff:10.0.2.5", "6.6.6.6"),  # mapped IPv4 is the proxy
    ([], None, None),
    (None, None, None),
]


def test_client_ip_col_trusted_proxy_table(spark):
    df = spark.createDataFrame([(c,) for c, _, _ in CHAINS], "ips array<string>")
    got = df.select(
        client_ip_col(F.col("ips")).alias("plain"),
        client_ip_col(F.col("ips"), TRUSTED).alias("trusted"),
    ).collect()
    assert [(r.plain, r.trusted) for r in got] == [(p, t) for _, p, t in CHAINS]


def test_user_kind_and_attribution_columns(spark):
    users = [
        ("alice", ""),
        ("system:serviceaccount:ns:sa", ""),
        ("system:node:n1", ""),
        ("system:anonymous", ""),
        (None, ""),
        ("ci-bot", ""),
        ("kubernetes-admin", REASON),
        ("bob", REASON),
    ]
    df = spark.createDataFrame(users, "u string, reason string")
    got = df.select(
        user_kind_col(F.col("u"), system_users=("ci-bot",)).alias("k"),
        attributed_user_col(F.col("u"), F.col("reason")).alias("a"),
    ).collect()
    assert [r.k for r in got] == [
        "human",
        "service_account",
        "system_component",
        "anonymous",
        "anonymous",
        "system_component",
        "human",
        "human",
    ]
    assert [r.a for r in got][-2:] == ["27123456789012345", "bob"]


def test_iso_week_window_is_local_monday_to_monday():
    start, end = iso_week_window("2026-W47", "Asia/Shanghai")
    assert start.isoformat() == "2026-11-16T00:00:00+08:00"
    assert end.isoformat() == "2026-11-23T00:00:00+08:00"
    assert iso_week_window("2020-W53", "UTC")[0].date() == dt.date(2020, 12, 28)
    for bad in ("2026-47", "2026-W54", "2021-W53", "", "2026-W4"):
        with pytest.raises(WeekError):
            iso_week_window(bad, "UTC")


def test_filter_window_uses_request_time_in_the_local_week(spark, make_event, events_df):
    start, end = iso_week_window("2026-W47", "Asia/Shanghai")
    edge = dt.datetime(2026, 11, 15, 16, 0, tzinfo=dt.UTC)  # Monday 00:00 local
    rows = [
        make_event(audit_id="first", ts=edge),
        make_event(audit_id="before", ts=edge - dt.timedelta(microseconds=1)),
        make_event(audit_id="last", ts=edge + dt.timedelta(days=7, microseconds=-1)),
        make_event(audit_id="after", ts=edge + dt.timedelta(days=7)),
        make_event(audit_id="other-cluster", cluster="c2"),
    ]
    kept = filter_window(events_df(rows), "c1", start, end).select("audit_id").collect()
    assert sorted(r.audit_id for r in kept) == ["first", "last"]


def test_read_week_reads_only_the_week_s_partitions_of_its_cluster(
    spark, make_event, events_df, tmp_path
):
    start, end = iso_week_window("2026-W47", "Asia/Shanghai")
    edge = dt.datetime(2026, 11, 15, 16, 0, tzinfo=dt.UTC)  # Monday 00:00 local, Sunday UTC
    rows = [
        make_event(audit_id="first", ts=edge),
        make_event(audit_id="before", ts=edge - dt.timedelta(microseconds=1)),
        make_event(audit_id="last", ts=edge + dt.timedelta(days=7, microseconds=-1)),
        make_event(audit_id="after", ts=edge + dt.timedelta(days=7)),
        make_event(audit_id="weeks-before", ts=edge - dt.timedelta(days=20)),
        make_event(audit_id="other-cluster", cluster="c2", ts=edge + dt.timedelta(days=1)),
    ]
    layout = Layout(tmp_path / "home")
    write_run(layout, "r1", events_df(rows))
    week = read_week(spark, layout, "c1", start, end)
    assert sorted(r.audit_id for r in week.select("audit_id").collect()) == ["first", "last"]
    # the same rows as filtering every committed file, but only the range's folders are read
    every = filter_window(read_events(spark, layout), "c1", start, end)
    assert sorted(week.collect()) == sorted(every.collect())
    folders = {tuple(f.split("/")[-3:-1]) for f in week.inputFiles()}
    assert folders == {
        ("cluster=c1", "event_date=2026-11-15"),
        ("cluster=c1", "event_date=2026-11-22"),
    }
    assert len(every.inputFiles()) > len(week.inputFiles())  # listing every file: the old way


def test_a_lone_event_makes_the_same_request_as_a_sorted_group(spark, make_event, events_df):
    """Requests of one event skip the shuffle by request: they must come out as the sorted path
    (repeated keys) makes them. Each pair below differs only in a RequestReceived stage."""
    created = '{"metadata":{"generateName":"web-","name":"web-x1"}}'
    shapes = {
        "create": dict(verb="create", object_name=None, request_object='{"kind":"Pod"}',
                       response_object=created),
        "get": dict(request_object='{"kind":"Pod"}', response_object=created),
        "exec": dict(verb="create", subresource="exec", request_object="{}"),
        "denied": dict(response_code=403, user_name="system:anonymous", source_ips=[]),
    }  # fmt: skip
    rows = []
    for name, shape in shapes.items():
        rows.append(make_event(audit_id=f"lone-{name}", **shape))
        rows.append(make_event(audit_id=f"pair-{name}", stage="RequestReceived", **shape))
        rows.append(make_event(audit_id=f"pair-{name}", **shape))
    rows.append(make_event(audit_id=None, dedup_key="sha256:lone", **shapes["create"]))
    got = {
        r.request_key: r.asDict()
        for r in summarise_requests(events_df(rows), timezone="Asia/Shanghai").collect()
    }
    assert len(got) == 2 * len(shapes) + 1
    differ = {"request_key", "audit_id", "line_no", "events", "stages"}
    for name in shapes:
        lone, pair = got[f"lone-{name}"], got[f"pair-{name}"]
        assert (lone["events"], lone["stages"]) == (1, ["ResponseComplete"])
        assert (pair["events"], pair["stages"]) == (2, ["RequestReceived", "ResponseComplete"])
        assert {k: v for k, v in lone.items() if k not in differ} == {
            k: v for k, v in pair.items() if k not in differ
        }, name
    create, get = got["lone-create"], got["lone-get"]
    assert (create["request_object"], create["response_name"]) == ('{"kind":"Pod"}', "web-x1")
    assert (get["request_object"], get["response_name"]) == (None, None)
    assert got["sha256:lone"]["response_name"] == "web-x1"
    assert got["lone-denied"]["user_kind"] == "anonymous"
