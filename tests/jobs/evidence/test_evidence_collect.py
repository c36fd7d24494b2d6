from __future__ import annotations

import gzip
import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from jobs.evidence.collect import Skipped, rotation_time
from jobs.evidence.custody import collected, read_custody
from jobs.evidence.main import run_collect as collect
from jobs.evidence.store import evidence_path
from jobs.evidence.verify import verify_home
from jobs.settings import Layout, parse_config


def _config(tmp_path, dirs):
    data = {
        "cluster": "c1",
        "timezone": "UTC",
        "masters": [{"name": n, "source": f"file://{d}"} for n, d in dirs.items()],
    }
    return parse_config(data, tmp_path)


def _line(i):
    return json.dumps({"kind": "Event", "auditID": f"id-{i}", "stage": "ResponseComplete"}) + "\n"


@pytest.fixture
def master(tmp_path):
    d = tmp_path / "m1"
    d.mkdir()
    (d / "kubernetes-2026-11-20T01-02-03.456.audit").write_text(_line(1) + _line(2))
    (d / "kubernetes-2026-11-21T01-02-03.456.audit.gz").write_bytes(
        gzip.compress(_line(3).encode(), mtime=0)
    )
    (d / "kubernetes.audit").write_text(_line(4) + '{"kind":"Event","audi')  # partial last line
    (d / "notes.txt").write_text("not audit")
    return d


def test_rotation_time_parses_lumberjack_names():
    assert (
        rotation_time("kubernetes-2024-03-05T14-07-09.123.audit").isoformat()
        == "2024-03-05T14:07:09.123000+00:00"
    )
    assert rotation_time("kubernetes-2024-03-05T14-07-09.123.audit.gz") is not None
    assert rotation_time("kubernetes.audit") is None
    assert rotation_time("kubernetes-old.audit") is None  # F04: not a backup


def test_collect_stores_read_only_content_addressed_copies(tmp_path, master):
    layout = Layout(tmp_path / "home")
    [result] = collect(_config(tmp_path, {"m1": master}), layout)
    assert result.collected == 3 and result.failure is None
    recs = {r["file_name"]: r for r in read_custody(layout)}
    assert set(recs) == {
        "kubernetes-2026-11-20T01-02-03.456.audit",
        "kubernetes-2026-11-21T01-02-03.456.audit.gz",
        "kubernetes.audit",
    }
    active = recs["kubernetes.audit"]
    assert active["active"] is True and active["dropped_partial_bytes"] == len(
        '{"kind":"Event","audi'
    )
    stored = evidence_path(layout, active["sha256"])
    assert stored.read_text() == _line(4)  # up to the last complete line only
    assert stat.S_IMODE(stored.stat().st_mode) == 0o444
    gz = recs["kubernetes-2026-11-21T01-02-03.456.audit.gz"]
    assert (
        evidence_path(layout, gz["sha256"]).read_bytes()
        == (master / "kubernetes-2026-11-21T01-02-03.456.audit.gz").read_bytes()
    )
    for key in ("cluster", "master", "source_uri", "size", "mtime", "sha256", "collected_at"):
        assert active[key] not in (None, "")
    assert verify_home(layout).problems == ()


def test_recollect_adds_nothing_and_a_grown_active_file_is_new(tmp_path, master):
    layout = Layout(tmp_path / "home")
    config = _config(tmp_path, {"m1": master})
    collect(config, layout)
    before = len(read_custody(layout))
    [again] = collect(config, layout)
    assert again.collected == 0 and again.unchanged == 3
    assert len(read_custody(layout)) == before
    with open(master / "kubernetes.audit", "a") as fh:
        fh.write('ID":"x"}\n')
    [grown] = collect(config, layout)
    assert grown.collected == 1


def test_symlinks_and_escaping_names_are_never_followed(tmp_path, master):
    secret = tmp_path / "outside.audit"
    secret.write_text(_line(9))
    os.symlink(secret, master / "kubernetes-2026-11-22T00-00-00.000.audit")
    os.symlink("/etc", master / "kubernetes-dir.audit")
    layout = Layout(tmp_path / "home")
    [result] = collect(_config(tmp_path, {"m1": master}), layout)
    skipped = {s.file: s.reason for s in result.skipped}
    assert "kubernetes-2026-11-22T00-00-00.000.audit" in skipped
    assert "symlink" in skipped["kubernetes-dir.audit"]
    assert all(r["file_name"] not in skipped for r in collected(read_custody(layout)))
    # each refusal is recorded in custody with its reason, and the master is not complete
    recorded = {
        r["file_name"]: r["reason"]
        for r in read_custody(layout)
        if r["record_type"] == "file_skipped"
    }
    assert recorded == skipped
    assert result.refused == result.skipped and not result.complete


def test_compression_in_progress_takes_the_uncompressed_twin(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "kubernetes-2026-11-20T01-02-03.456.audit").write_text(_line(1))
    (d / "kubernetes-2026-11-20T01-02-03.456.audit.gz").write_bytes(b"\x1f\x8b partial")
    layout = Layout(tmp_path / "home")
    [result] = collect(_config(tmp_path, {"m": d}), layout)
    assert result.collected == 1 and result.complete  # taken later: not a refusal
    assert result.skipped == (
        Skipped(
            "kubernetes-2026-11-20T01-02-03.456.audit.gz",
            "compression in progress (uncompressed twin present)",
        ),
    )


def test_unreadable_master_is_a_recorded_failure_and_others_are_collected(tmp_path, master):
    layout = Layout(tmp_path / "home")
    results = collect(_config(tmp_path, {"gone": tmp_path / "nope", "m1": master}), layout)
    by = {r.master: r for r in results}
    # the failure names the directory it could not list, not a Python class
    assert by["gone"].failure == f"cannot list {tmp_path / 'nope'}: No such file or directory"
    assert "Error" not in by["gone"].failure
    assert not by["gone"].complete and by["m1"].complete
    assert by["m1"].collected == 3
    failures = [r for r in read_custody(layout) if r["record_type"] == "collection_failure"]
    assert [f["master"] for f in failures] == ["gone"]


def test_parallel_collection_keeps_the_custody_chain_intact(tmp_path):
    dirs = {}
    for m in range(6):
        d = tmp_path / f"m{m}"
        d.mkdir()
        for k in range(5):
            (d / f"kubernetes-2026-11-2{k}T00-00-00.00{m}.audit").write_text(_line(m * 10 + k))
        dirs[f"m{m}"] = d
    layout = Layout(tmp_path / "home")
    config = _config(tmp_path, dirs)
    # two whole collections racing, each itself parallel over masters
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda _: collect(config, layout, parallel=6), range(2)))
    recs = read_custody(layout)
    assert verify_home(layout).problems == ()
    assert len(recs) == 30  # each file recorded once, although both collections copied it
    assert len({(r["master"], r["file_name"]) for r in recs}) == 30


def test_tampering_is_detected(tmp_path, master):
    layout = Layout(tmp_path / "home")
    collect(_config(tmp_path, {"m1": master}), layout)
    lines = layout.custody.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["size"] += 1
    lines[0] = json.dumps(rec, sort_keys=True, separators=(",", ":"))
    layout.custody.write_text("\n".join(lines) + "\n")
    assert any("altered" in p for p in verify_home(layout).problems)


def test_logrotate_gzip_backup_is_copied_whole(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    blob = gzip.compress((_line(1) + _line(2)).encode(), mtime=0)
    (d / "kubernetes.audit.1.gz").write_bytes(blob)
    layout = Layout(tmp_path / "home")
    collect(_config(tmp_path, {"m": d}), layout)
    [rec] = read_custody(layout)
    assert rec["active"] is False and rec["dropped_partial_bytes"] == 0
    assert evidence_path(layout, rec["sha256"]).read_bytes() == blob


def test_a_file_replaced_between_listing_and_opening_is_refused(tmp_path, master):
    from jobs.evidence.sources import LocalSource

    src = LocalSource(master, f"file://{master}")
    entries = {e.name: e for e in src.list()}
    target = master / "kubernetes-2026-11-20T01-02-03.456.audit"
    other = master / "new-file"
    other.write_text(_line(7))  # created while the listed file still holds its inode
    os.replace(other, target)  # a new file under the listed name, as a rotation would
    with pytest.raises(ValueError, match="replaced"):
        src.open(entries[target.name])
    target.unlink()
    os.symlink(tmp_path / "elsewhere", target)
    with pytest.raises(OSError):  # O_NOFOLLOW: a symlink swapped in is never opened
        src.open(entries[target.name])
    src.close()


def test_a_torn_custody_tail_does_not_block_later_collections(tmp_path, master):
    layout = Layout(tmp_path / "home")
    config = _config(tmp_path, {"m1": master})
    collect(config, layout)
    with open(layout.custody, "ab") as fh:
        fh.write(b'{"record_type":"collected","clus')  # a crash in the middle of an append
    assert len(read_custody(layout)) == 3
    (master / "kubernetes-2026-11-22T00-00-00.000.audit").write_text(_line(5))
    [result] = collect(config, layout)
    assert result.collected == 1
    assert len(read_custody(layout)) == 4
    problems = verify_home(layout).problems
    assert len(problems) == 1 and "torn record" in problems[0]
