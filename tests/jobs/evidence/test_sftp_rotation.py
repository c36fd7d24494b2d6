"""Over sftp://: the active file grows and rotates between collections; the lake has every line once."""

from __future__ import annotations

import os

import pytest

from jobs.evidence.custody import read_custody
from jobs.evidence.main import run_collect
from jobs.evidence.verify import verify_home
from jobs.ingest.main import run as ingest
from jobs.settings import Layout, parse_config
from tests.jobs.evidence.test_incremental import _ev

pytestmark = pytest.mark.slow


def test_growing_and_rotating_active_file_loses_and_duplicates_nothing(spark, tmp_path, sshd):
    server = sshd()
    d = tmp_path / "m1"
    d.mkdir()
    active = d / "kubernetes.audit"
    layout = Layout(tmp_path / "home")
    config = parse_config(
        {"cluster": "c1", "timezone": "UTC", "masters": [server.master("m1", d)]}, tmp_path
    )
    written: list[str] = []

    def append(n: int, hour: int, partial: bool = False) -> None:
        lines = [_ev(len(written) + k, hour) for k in range(n)]
        written.extend(lines)
        body = "".join(lines)
        with open(active, "a") as fh:
            fh.write(body[:-5] if partial else body)
        if partial:
            finish.append(body[-5:])

    finish: list[str] = []
    append(30, 1, partial=True)
    run_collect(config, layout)
    with open(active, "a") as fh:
        fh.write(finish.pop())
    append(20, 2)
    run_collect(config, layout)
    ingest(spark, layout)
    append(25, 3)  # appended after the last collection, then rotated away with the backup
    os.rename(active, d / "kubernetes-2026-11-18T04-00-00.000.audit")
    append(10, 4)
    [r] = run_collect(config, layout)
    assert r.failure is None and r.collected == 2
    result = ingest(spark, layout)
    assert all(e.adds_up for e in result.files)
    events = spark.read.parquet(str(layout.events))
    ids = [row.audit_id for row in events.select("audit_id").collect()]
    import json

    assert sorted(ids) == sorted(json.loads(x)["auditID"] for x in written)
    assert len(ids) == len(set(ids))
    records = read_custody(layout)
    [tail] = [x for x in records if x.get("file_sha256")]
    assert tail["offset"] > 0 and len(tail["segments"]) == 2
    assert verify_home(layout).ok
