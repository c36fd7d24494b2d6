"""Segments of the active file and its backup's tail are ingested once, numbered as in the file."""

from __future__ import annotations

import json

from jobs.evidence.custody import collected, read_custody
from jobs.ingest.main import run as ingest
from jobs.lake.ledger import read_ledger
from tests.jobs.evidence.test_incremental import grow_and_rotate


def test_each_line_is_ingested_once_with_its_line_number_in_the_file(spark, tmp_path):
    layout, written, extra, backup, _ = grow_and_rotate(tmp_path, hours=24, per_hour=10)
    result = ingest(spark, layout)
    assert sum(e.lines for e in result.files) == len(written) + len(extra)
    assert sum(e.events for e in result.files) == len(written) + len(extra)
    assert all(e.adds_up for e in result.files)
    events = spark.read.parquet(str(layout.events))
    assert events.count() == events.select("audit_id").distinct().count()
    records = collected(read_custody(layout))
    [tail] = [r for r in records if r["file_name"] == backup.name]
    chain1 = {r["sha256"] for r in records if r.get("chain") == tail["chain"]}
    by_line = {
        r.line_no: r.audit_id
        for r in events.where(events.evidence_sha256.isin(list(chain1))).collect()
    }
    lines = backup.read_bytes().splitlines()
    assert len(by_line) == len(lines) == len(written)
    for n, line in enumerate(lines, start=1):
        assert by_line[n] == json.loads(line)["auditID"]
    offsets = sorted(e.line_offset for e in read_ledger(layout))
    assert offsets[-1] > 0  # segments carry their place in the file
