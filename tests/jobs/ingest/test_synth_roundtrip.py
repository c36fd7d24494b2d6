"""A synthetic week (rotated, gzip-compressed) parses back whole; re-runs add nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from pyspark.sql import functions as F

from jobs.evidence.main import run_collect as collect
from jobs.ingest.main import run as ingest
from jobs.lake.ledger import read_ledger
from jobs.settings import Layout, parse_config
from jobs.synth import synth_week


def test_synth_week_roundtrip(spark, tmp_path):
    src = tmp_path / "masters"
    summary = synth_week(
        src, week="2026-W47", masters=2, events=4000, seed=5, max_size_mb=0.25, compress=True
    )
    masters = sorted(p.name for p in src.iterdir())
    files = sorted(p.name for p in (src / masters[0]).iterdir())
    assert any(f.endswith(".audit.gz") for f in files) and "kubernetes.audit" in files
    config = parse_config(
        {
            "cluster": "demo",
            "timezone": "Asia/Shanghai",
            "masters": [{"name": m, "source": f"file://{src / m}"} for m in masters],
        },
        tmp_path,
    )
    layout = Layout(tmp_path / "home")
    collect(config, layout)
    result = ingest(spark, layout)
    lines = sum(m["lines"] for m in summary["masters"].values())
    assert sum(e.lines for e in result.files) == lines
    assert sum(e.events for e in result.files) == lines  # every line is a new event
    assert all(e.damage is None for e in result.files)
    events = spark.read.parquet(str(layout.events))
    assert events.count() == lines
    # line numbers and timestamps match what plain Python reads from the files
    active = src / masters[0] / "kubernetes.audit"
    sample = {
        n: json.loads(line)
        for n, line in enumerate(active.read_text().splitlines(), start=1)
        if n % 97 == 1
    }
    rows = {
        r.line_no: r
        for r in events.where(
            (F.col("master") == masters[0])
            & F.col("line_no").isin(list(sample))
            & (F.col("evidence_sha256") == _sha(active))
        ).collect()
    }
    assert set(rows) == set(sample)
    for n, raw in sample.items():
        assert (rows[n].audit_id, rows[n].stage) == (raw["auditID"], raw["stage"])
        want = dt.datetime.strptime(raw["requestReceivedTimestamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
        assert rows[n].request_received_ts.replace(tzinfo=dt.UTC) == want  # tests run in UTC
    assert {r.master for r in events.select("master").distinct().collect()} == set(masters)
    # nothing new on a second pass
    assert all(r.collected == 0 for r in collect(config, layout))
    assert ingest(spark, layout).files == ()
    assert read_ledger(layout) == list(result.files)
    by_sha = {e.evidence_sha256: e for e in result.files}
    active_entry = by_sha[_sha(active)]
    times = [
        raw["requestReceivedTimestamp"] for raw in map(json.loads, active.read_text().splitlines())
    ]
    assert (active_entry.first_event, active_entry.last_event) == (min(times), max(times))


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()
