"""Ingest re-hashes the evidence it parses: an altered file is refused and recorded, not taken."""

from __future__ import annotations

import base64
import gzip
import json
import os

from jobs.evidence.custody import collected, read_custody, read_head
from jobs.evidence.store import evidence_path
from jobs.ingest.main import run as ingest
from jobs.lake.ledger import read_ledger


def _ev(i, code=200):
    return json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "auditID": f"id-{i}",
            "stage": "ResponseComplete",
            "verb": "get",
            "requestReceivedTimestamp": "2026-11-18T01:02:03.000001Z",
            "responseStatus": {"code": code},
        }
    )


def _flip_byte(path, old: bytes, new: bytes):
    os.chmod(path, 0o644)
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))
    os.chmod(path, 0o444)


def test_an_altered_file_is_refused_recorded_and_the_others_ingested(spark, tmp_path, collect_dirs):
    m = tmp_path / "m"
    m.mkdir()
    good = "kubernetes-2026-11-18T00-00-00.000.audit"
    bad = "kubernetes-2026-11-18T01-00-00.000.audit"
    bad_gz = "kubernetes-2026-11-18T02-00-00.000.audit.gz"
    (m / good).write_text(_ev(1) + "\n")
    (m / bad).write_text(_ev(2) + "\n" + _ev(3) + "\n")
    (m / bad_gz).write_bytes(gzip.compress((_ev(4) + "\n").encode(), mtime=0))
    layout = collect_dirs({"m": m})
    recs = {r["file_name"]: r for r in collected(read_custody(layout))}
    bad_path = evidence_path(layout, recs[bad]["sha256"])
    gz_path = evidence_path(layout, recs[bad_gz]["sha256"])
    _flip_byte(bad_path, b'"code": 200', b'"code": 210')  # the response code the issue saw
    _flip_byte(gz_path, gz_path.read_bytes()[-9:-8], bytes([gz_path.read_bytes()[-9] ^ 1]))

    result = ingest(spark, layout)
    assert [e.file for e in result.files] == [good]
    assert [e.evidence_sha256 for e in read_ledger(layout)] == [recs[good]["sha256"]]
    refused = {r.path: r for r in result.refused}
    assert set(refused) == {bad_path, gz_path}
    for path, name in ((bad_path, bad), (gz_path, bad_gz)):
        r = refused[path]
        assert r.expected_sha256 == recs[name]["sha256"] != r.actual_sha256
        assert len(r.actual_sha256) == 64
        assert str(path) in str(r) and r.expected_sha256 in str(r) and r.actual_sha256 in str(r)
    altered = [x for x in read_custody(layout) if x["record_type"] == "evidence_altered"]
    assert {(a["path"], a["expected_sha256"], a["actual_sha256"]) for a in altered} == {
        (str(p), r.expected_sha256, r.actual_sha256) for p, r in refused.items()
    }
    assert {a["file_name"] for a in altered} == {bad, bad_gz}
    ledger_body = json.loads((layout.ledger / f"{result.run_id}.json").read_text())
    assert ledger_body["custody_head"] == read_head(layout)  # taken at commit, after the refusals

    again = ingest(spark, layout)  # still refused, not recorded twice, nothing committed
    assert again.run_id is None and {r.path for r in again.refused} == {bad_path, gz_path}
    assert len([x for x in read_custody(layout) if x["record_type"] == "evidence_altered"]) == 2
    assert len(read_ledger(layout)) == 1


def test_an_undecodable_name_reaches_the_ledger_losslessly(spark, tmp_path, collect_dirs):
    m = tmp_path / "m"
    m.mkdir()
    raw = b"kubernetes-2026-11-18T00-00-00.000-\xff.audit"
    with open(os.path.join(os.fsencode(m), raw), "wb") as fh:
        fh.write((_ev(1) + "\n").encode())
    layout = collect_dirs({"m": m})
    result = ingest(spark, layout)
    [entry] = result.files
    assert entry.file == "kubernetes-2026-11-18T00-00-00.000-\\xff.audit"
    assert base64.b64decode(entry.file_b64) == raw
    text = (layout.ledger / f"{result.run_id}.json").read_bytes().decode("utf-8", "strict")
    assert json.loads(text)["files"][0]["file_b64"] == entry.file_b64
    [held] = read_ledger(layout)
    assert held == entry
