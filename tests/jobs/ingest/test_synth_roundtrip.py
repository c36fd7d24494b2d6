"""A synthetic week (rotated, gzip-compressed) parses back whole; re-runs add nothing."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs.collect import collect
from jobs.ingest.main import ingest, read_ledger
from jobs.settings import Layout, parse_config
from jobs.synth import synth_week


def test_synth_week_roundtrip(spark, tmp_path):
    src = tmp_path / "masters"
    summary = synth_week(src, week="2026-W47", masters=2, events=4000, seed=5, max_size_mb=0.25,
                         compress=True)
    masters = sorted(p.name for p in src.iterdir())
    files = sorted(p.name for p in (src / masters[0]).iterdir())
    assert any(f.endswith(".audit.gz") for f in files) and "kubernetes.audit" in files
    config = parse_config({"cluster": "demo", "timezone": "Asia/Shanghai", "masters": [
        {"name": m, "source": f"file://{src / m}"} for m in masters]}, tmp_path)
    layout = Layout(tmp_path / "home")
    collect(config, layout)
    result = ingest(spark, layout)
    lines = sum(m["lines"] for m in summary["masters"].values())
    assert sum(e["lines"] for e in result["files"]) == lines
    assert sum(e["events"] for e in result["files"]) == lines  # every line is a new event
    assert all(e["damage"] is None for e in result["files"])
    events = spark.read.parquet(str(layout.events))
    assert events.count() == lines
    assert events.where(F.col("request_received_ts").isNull()).count() == 0
    assert {r.master for r in events.select("master").distinct().collect()} == set(masters)
    # nothing new on a second pass
    assert all(r["collected"] == 0 for r in collect(config, layout))
    assert ingest(spark, layout)["files"] == []
    assert len(read_ledger(layout)) == len(result["files"])
