"""The lake API: a run counts only once committed; rollback removes what never committed."""

from __future__ import annotations

import datetime as dt
import json

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from jobs.lake.events import committed_files, known_keys, read_events
from jobs.lake.ledger import LedgerEntry, read_ledger
from jobs.lake.runs import (
    commit_run,
    lake_lock,
    move_staged,
    rollback_uncommitted,
    stage,
    write_run,
)
from jobs.schemas import EVENT_COLUMNS, EVENTS
from jobs.settings import Layout

DAY = dt.date(2026, 11, 18)


def _events(spark, *ids, cluster="c1"):
    """EVENTS rows (only the key columns set) in the ``event`` bucket."""
    rows = [
        {c: None for c in EVENT_COLUMNS}
        | {
            "audit_id": i,
            "dedup_key": f"{i}/RC",
            "cluster": cluster,
            "event_date": DAY,
            "evidence_sha256": "e" * 64,
            "line_no": n,
        }
        for n, i in enumerate(ids, start=1)
    ]
    return spark.createDataFrame(rows, EVENTS).withColumn("bucket", F.lit("event"))


def _entry(run_id, **kw):
    base = dict(
        evidence_sha256="e" * 64,
        cluster="c1",
        master="m1",
        file="kubernetes.audit",
        compressed=False,
        damage=None,
        first_event="2026-11-18T01:02:03.000000Z",
        last_event="2026-11-18T01:02:04.000000Z",
        lines=3,
        events=2,
        duplicates=0,
        quarantined=0,
        blank=1,
        run_id=run_id,
    )
    return LedgerEntry(**(base | kw))


def test_a_committed_run_is_read_and_ledgered(spark, tmp_path):
    layout = Layout(tmp_path / "home")
    rows = _events(spark, "a", "b").drop("bucket")  # rows without a bucket are events
    assert write_run(layout, "r1", rows, [_entry("r1")]) == len(
        committed_files(layout, layout.events)
    )
    assertDataFrameEqual(
        read_events(spark, layout).select("audit_id", "cluster", "event_date"),
        rows.select("audit_id", "cluster", "event_date"),
    )
    assert read_ledger(layout) == [_entry("r1")]
    assert not (layout.staging / "r1").exists()  # committing drops the run's staging
    assert sorted(r.dedup_key for r in known_keys(spark, layout, {"c1"}).collect()) == [
        "a/RC",
        "b/RC",
    ]
    assert known_keys(spark, layout, {"other"}).count() == 0


def test_an_uncommitted_run_is_invisible_and_rolled_back(spark, tmp_path):
    layout = Layout(tmp_path / "home")
    write_run(layout, "kept", _events(spark, "a"))
    kept = committed_files(layout, layout.events)
    with lake_lock(layout):
        stage(_events(spark, "b", "c"), layout, "killed")
        moved = move_staged(layout, "killed")  # ... and killed before commit_run
    assert moved > 0
    assert len(list(layout.events.rglob("run-*.parquet"))) == len(kept) + moved
    assert committed_files(layout, layout.events) == kept
    assert [r.audit_id for r in read_events(spark, layout).collect()] == ["a"]
    with lake_lock(layout):
        assert rollback_uncommitted(layout) == moved
        assert rollback_uncommitted(layout) == 0
    assert sorted(str(p) for p in layout.events.rglob("run-*.parquet")) == kept
    assert not layout.staging.exists()


def test_an_empty_lake_reads_as_no_events(spark, tmp_path):
    layout = Layout(tmp_path / "home")
    assert committed_files(layout, layout.events) == []
    assert read_events(spark, layout).schema == EVENTS
    assert read_events(spark, layout).count() == 0
    assert known_keys(spark, layout, {"c1"}) is None
    assert read_ledger(layout) == []


def test_the_ledger_file_keeps_its_json(tmp_path):
    layout = Layout(tmp_path / "home")
    commit_run(layout, "r2", [_entry("r2", damage="gzip stream truncated", first_event=None)])
    body = json.loads((layout.ledger / "r2.json").read_text())
    assert set(body) == {"run_id", "committed_at", "files"} and body["run_id"] == "r2"
    assert body["files"] == [
        {
            "evidence_sha256": "e" * 64,
            "cluster": "c1",
            "master": "m1",
            "file": "kubernetes.audit",
            "compressed": False,
            "damage": "gzip stream truncated",
            "first_event": None,
            "last_event": "2026-11-18T01:02:04.000000Z",
            "lines": 3,
            "events": 2,
            "duplicates": 0,
            "quarantined": 0,
            "blank": 1,
        }
    ]
    [entry] = read_ledger(layout)
    assert entry.run_id == "r2" and entry.adds_up
    assert not _entry("x", blank=0).adds_up


def test_runs_are_read_in_commit_order(tmp_path):
    layout = Layout(tmp_path / "home")
    commit_run(layout, "zz-first", [_entry("zz-first", file="a")])
    commit_run(layout, "aa-second", [_entry("aa-second", file="b")])
    assert [e.file for e in read_ledger(layout)] == ["a", "b"]


def test_a_commit_carries_the_custody_head_and_a_raw_name(tmp_path):
    from jobs.evidence.custody import append_custody, read_head

    layout = Layout(tmp_path / "home")
    append_custody(
        layout,
        [
            {
                "record_type": "collection_failure",
                "cluster": "c1",
                "master": "m1",
                "source_uri": "file:///nowhere",
                "error": "cannot list /nowhere: No such file or directory",
                "at": "2026-11-18T00:00:00.000000+00:00",
            }
        ],
    )
    raw_b64 = "a3ViZXJuZXRlcy3/LmF1ZGl0"  # b"kubernetes-\xff.audit"
    commit_run(
        layout,
        "r1",
        [_entry("r1", file="kubernetes-\\xff.audit", file_b64=raw_b64)],
        custody_head=read_head(layout),
    )
    body = json.loads((layout.ledger / "r1.json").read_bytes().decode("utf-8", "strict"))
    assert body["custody_head"] == read_head(layout)
    assert body["custody_head"]["count"] == 1
    assert body["files"][0]["file_b64"] == raw_b64
    [entry] = read_ledger(layout)
    assert entry.file_b64 == raw_b64 and entry.file == "kubernetes-\\xff.audit"
