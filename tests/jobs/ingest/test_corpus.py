"""Real audit events from public projects: every one ingests, none is double counted."""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F

from jobs.ingest.main import run as ingest
from jobs.lake.ledger import read_ledger

REAL = ("audit2rbac", "falco", "openshift-clo")


@pytest.fixture(scope="module")
def corpus_lake(spark, corpus, tmp_path_factory):
    from jobs.evidence.main import run_collect
    from jobs.settings import Layout, parse_config

    tmp = tmp_path_factory.mktemp("corpus")
    masters = [{"name": n, "source": f"file://{corpus / n}", "pattern": "*.jsonl"} for n in REAL]
    masters.append(
        {
            "name": "falco-bad",
            "source": f"file://{corpus / 'falco' / '_not_events'}",
            "pattern": "*.json",
        }
    )
    config = parse_config({"cluster": "corpus", "timezone": "UTC", "masters": masters}, tmp)
    layout = Layout(tmp / "home")
    run_collect(config, layout)
    first = ingest(spark, layout)
    return layout, config, first


def _distinct_keys(corpus):
    keys = set()
    lines = 0
    for name in REAL:
        for path in sorted((corpus / name).glob("*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    ev = json.loads(line)
                    keys.add((ev["auditID"], ev.get("stage")))
                    lines += 1
    return keys, lines


def test_every_real_event_ingests_once(spark, corpus, corpus_lake):
    layout, _, first = corpus_lake
    keys, lines = _distinct_keys(corpus)
    events = spark.read.parquet(str(layout.events))
    lake_keys = {(r.audit_id, r.stage) for r in events.select("audit_id", "stage").collect()}
    assert events.count() == len(keys) == len(lake_keys)
    assert lake_keys == keys
    entries = [e for e in first.files if e.master != "falco-bad"]
    assert sum(e.lines for e in entries) == lines
    assert sum(e.quarantined for e in entries) == 0
    assert sum(e.events + e.duplicates for e in entries) == lines


def test_not_an_event_is_quarantined_with_reason(spark, corpus_lake):
    layout, _, _ = corpus_lake
    [bad] = [e for e in read_ledger(layout) if e.master == "falco-bad"]
    assert (bad.lines, bad.quarantined, bad.events) == (1, 1, 0)
    [q] = spark.read.parquet(str(layout.quarantine)).collect()
    assert q.reason == "kind_not_event" and q.line_no == 1
    assert q.evidence_sha256 == bad.evidence_sha256
    assert bytes(q.raw).strip() == b'{"kind": 0}'


def test_ledger_adds_up_and_reingest_adds_nothing(spark, corpus_lake):
    layout, config, _ = corpus_lake
    for e in read_ledger(layout):
        assert e.lines == e.events + e.duplicates + e.quarantined + e.blank, e
    before = spark.read.parquet(str(layout.events)).count()
    from jobs.evidence.main import run_collect

    assert all(r.collected == 0 for r in run_collect(config, layout))
    assert ingest(spark, layout).files == ()
    assert spark.read.parquet(str(layout.events)).count() == before


def test_v1beta1_shapes_are_normalized(spark, corpus_lake):
    layout, _, _ = corpus_lake
    ev = spark.read.parquet(str(layout.events))
    # demo_v1.jsonl: v1beta1 shape under an audit.k8s.io/v1 apiVersion
    v1beta1 = ev.where(F.col("event_shape") == "v1beta1")
    assert v1beta1.where(F.col("request_received_ts").isNull()).count() == 0
    assert v1beta1.where(F.col("source_api_version") == "audit.k8s.io/v1").count() > 0
    # falco: 38 lines have no apiVersion at all and still ingest
    assert ev.where(F.col("source_api_version").isNull()).count() >= 30
    # microseconds survive
    row = ev.where(F.col("audit_id") == "ba8076fa-6f45-4392-bceb-7de0e9eaafe5").first()
    assert row is not None and row.request_received_ts.microsecond == 365713
