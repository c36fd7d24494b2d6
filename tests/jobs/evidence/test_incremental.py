"""The active file collected incrementally: segments, chains closed by the backup, each byte once."""

from __future__ import annotations

import itertools
import json
import os

from jobs.evidence.custody import collected, read_custody
from jobs.evidence.main import run_collect
from jobs.evidence.store import evidence_path
from jobs.evidence.verify import verify_home
from jobs.settings import Layout, parse_config


def _ev(i, hour=0):
    return (
        json.dumps(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Metadata",
                "auditID": f"id-{i:06d}",
                "stage": "ResponseComplete",
                "requestURI": "/api/v1/pods",
                "verb": "list",
                "user": {"username": "alice"},
                "sourceIPs": ["10.0.0.1"],
                "requestReceivedTimestamp": f"2026-11-18T{hour:02d}:00:{i % 60:02d}.000000Z",
                "stageTimestamp": f"2026-11-18T{hour:02d}:00:{i % 60:02d}.100000Z",
            }
        )
        + "\n"
    )


def _config(tmp_path, d):
    return parse_config(
        {"cluster": "c1", "timezone": "UTC", "masters": [{"name": "m1", "source": f"file://{d}"}]},
        tmp_path,
    )


def _store_bytes(layout):
    return sum(p.stat().st_size for p in layout.evidence.rglob("*") if p.is_file())


def grow_and_rotate(tmp_path, hours=24, per_hour=40):
    """24 hourly collections of a growing active file (a partial line at each), then rotation."""
    d = tmp_path / "m1"
    d.mkdir()
    active = d / "kubernetes.audit"
    layout = Layout(tmp_path / "home")
    config = _config(tmp_path, d)
    written = []
    n = 0
    for hour in range(hours):
        lines = [_ev(n + k, hour).encode() for k in range(per_hour)]
        n += per_hour
        written += lines
        body = b"".join(lines)
        with open(active, "ab") as fh:
            fh.write(body[:-7])  # the last line is half-written when collect runs
        [r] = run_collect(config, layout)
        assert r.failure is None and r.collected == 1
        with open(active, "ab") as fh:
            fh.write(body[-7:])
    log_size = active.stat().st_size
    backup = d / "kubernetes-2026-11-19T00-00-00.000.audit"
    os.rename(active, backup)
    extra = [_ev(n + k, 23).encode() for k in range(3)]
    active.write_bytes(b"".join(extra))
    run_collect(config, layout)
    return layout, written, extra, backup, log_size


def test_each_byte_is_stored_once_and_the_backup_is_proved(tmp_path):
    layout, _written, extra, backup, log_size = grow_and_rotate(tmp_path)
    records = collected(read_custody(layout))
    segs = [r for r in records if r["file_name"] == "kubernetes.audit"]
    assert len(segs) == 25  # 24 segments of the first chain, one of the new active file
    stored = _store_bytes(layout)
    assert abs(stored - (log_size + len(b"".join(extra)))) <= 0.01 * log_size
    [tail] = [r for r in records if r["file_name"] == backup.name]
    import hashlib

    assert tail["file_sha256"] == hashlib.sha256(backup.read_bytes()).hexdigest()
    assert tail["segments"] == [s["sha256"] for s in segs[:24]]
    assert tail["offset"] + tail["size"] == backup.stat().st_size
    # segments chain: each names the previous, ranges are contiguous, lines continue
    for prev, seg in itertools.pairwise(segs[:24]):
        assert seg["prev_segment"] == prev["sha256"] and seg["chain"] == prev["chain"]
        assert seg["offset"] == prev["offset"] + prev["size"]
        assert seg["line_offset"] == prev["line_offset"] + prev["lines"]
    assert segs[24]["chain"] != segs[0]["chain"] and segs[24]["offset"] == 0
    held = b"".join(evidence_path(layout, s["sha256"]).read_bytes() for s in segs[:24])
    assert held + evidence_path(layout, tail["sha256"]).read_bytes() == backup.read_bytes()
    assert verify_home(layout).ok


def _collected_active_file(tmp_path):
    """A master whose active file holds two events, collected once: (file, layout, config)."""
    d = tmp_path / "m1"
    d.mkdir()
    active = d / "kubernetes.audit"
    active.write_text(_ev(1) + _ev(2))
    layout = Layout(tmp_path / "home")
    config = _config(tmp_path, d)
    run_collect(config, layout)
    return active, layout, config


def test_a_shrunk_active_file_starts_a_new_chain_recorded(tmp_path):
    active, layout, config = _collected_active_file(tmp_path)
    with open(active, "r+") as fh:  # truncated in place (copytruncate), then written again
        fh.truncate(0)
        fh.write(_ev(3))
    run_collect(config, layout)
    restarts = [r for r in read_custody(layout) if r["record_type"] == "chain_restarted"]
    assert len(restarts) == 1 and "shrank" in restarts[0]["reason"]
    segs = collected(read_custody(layout))
    assert segs[1]["offset"] == 0 and segs[1]["chain"] != segs[0]["chain"]
    assert verify_home(layout).ok


def test_a_rewritten_prefix_of_the_same_size_or_larger_starts_a_new_chain(tmp_path):
    active, layout, config = _collected_active_file(tmp_path)
    with open(active, "r+") as fh:
        fh.write(_ev(7))  # same length, other bytes, same inode
        fh.seek(0, os.SEEK_END)
        fh.write(_ev(8))
    run_collect(config, layout)
    [restart] = [r for r in read_custody(layout) if r["record_type"] == "chain_restarted"]
    assert "differ" in restart["reason"]


def test_a_gzip_twin_of_a_held_backup_is_linked_not_stored(tmp_path):
    import gzip

    d = tmp_path / "m1"
    d.mkdir()
    plain = d / "kubernetes-2026-11-19T00-00-00.000.audit"
    plain.write_text(_ev(1) + _ev(2))
    layout = Layout(tmp_path / "home")
    config = _config(tmp_path, d)
    run_collect(config, layout)
    gz = d / (plain.name + ".gz")
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    before = _store_bytes(layout)
    [r] = run_collect(config, layout)
    assert r.collected == 0
    [twin] = [x for x in read_custody(layout) if x["record_type"] == "compressed_twin"]
    import hashlib

    assert twin["uncompressed_sha256"] == hashlib.sha256((_ev(1) + _ev(2)).encode()).hexdigest()
    assert twin["sha256"] == hashlib.sha256(gz.read_bytes()).hexdigest()
    assert _store_bytes(layout) == before and verify_home(layout).ok
    [again] = run_collect(config, layout)
    assert again.unchanged == 1 and len(read_custody(layout)) == 2
