"""Deduplication against the lake reads only the days a run's events can repeat."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from jobs.ingest.dedup import lake_days, staged_days
from jobs.lake.events import known_keys
from jobs.lake.runs import write_run
from jobs.schemas import EVENT_COLUMNS, EVENTS
from jobs.settings import Layout

D = dt.date(2026, 11, 18)


def _events(spark, day, *ids):
    rows = [
        {c: None for c in EVENT_COLUMNS}
        | {
            "audit_id": i,
            "dedup_key": f"{i}/RC",
            "cluster": "c1",
            "event_date": day,
            "evidence_sha256": "e" * 64,
            "line_no": n,
        }
        for n, i in enumerate(ids, start=1)
    ]
    return spark.createDataFrame(rows, EVENTS).withColumn("bucket", F.lit("event"))


def test_known_keys_of_given_days_only(spark, tmp_path):
    layout = Layout(tmp_path / "home")
    for n, day in enumerate((D - dt.timedelta(days=9), D - dt.timedelta(days=1), D)):
        write_run(layout, f"r{n}", _events(spark, day, f"k{n}"))
    keys = known_keys(spark, layout, {"c1"}, lake_days({D + dt.timedelta(days=1)}))
    assert keys is not None
    assert sorted(r.dedup_key for r in keys.collect()) == ["k2/RC"]  # D only: D+1 +- 1
    assert sorted(r.dedup_key for r in known_keys(spark, layout, {"c1"}).collect()) == [
        "k0/RC",
        "k1/RC",
        "k2/RC",
    ]
    assert known_keys(spark, layout, {"c1"}, {D + dt.timedelta(days=30)}) is None


def test_staged_days_are_the_event_folders(tmp_path):
    staged = tmp_path / "staged"
    for rel in (
        "bucket=event/cluster=a/event_date=2026-11-18",
        "bucket=event/cluster=b/event_date=2026-11-20",
        "bucket=event/cluster=a/event_date=__HIVE_DEFAULT_PARTITION__",
        "bucket=duplicate/cluster=a/event_date=2026-01-01",
    ):
        (staged / rel).mkdir(parents=True)
    assert staged_days(staged) == {D, dt.date(2026, 11, 20)}
    assert lake_days({D}) == {D - dt.timedelta(days=1), D, D + dt.timedelta(days=1)}
