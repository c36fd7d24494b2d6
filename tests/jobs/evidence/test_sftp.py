"""sftp:// collection against a real OpenSSH server: host keys, failures, faults, hostile names."""

from __future__ import annotations

import json
import os

import pytest

from jobs.evidence.collect import select_entries
from jobs.evidence.custody import collected, read_custody
from jobs.evidence.main import run_collect
from jobs.evidence.sources import Entry
from jobs.evidence.store import INCOMING
from jobs.evidence.verify import verify_home
from jobs.settings import Layout, parse_config
from tests.jobs.evidence.conftest import free_port

BACKUP = "kubernetes-2026-11-20T01-02-03.456.audit"


def _line(i):
    return json.dumps({"kind": "Event", "auditID": f"id-{i}", "stage": "ResponseComplete"}) + "\n"


def _config(tmp_path, masters):
    return parse_config({"cluster": "c1", "timezone": "UTC", "masters": masters}, tmp_path)


def _dir(tmp_path, name, lines=(1, 2)):
    d = tmp_path / name
    d.mkdir()
    (d / BACKUP).write_text("".join(_line(i) for i in lines))
    (d / "kubernetes.audit").write_text(_line(99) + '{"partial')
    return d


def _store_files(layout):
    return sorted(p for p in layout.evidence.rglob("*") if p.is_file() and INCOMING not in p.parts)


def test_collect_from_two_sftp_masters(tmp_path, sshd):
    a, b = sshd(), sshd()
    d1, d2 = _dir(tmp_path, "m1"), _dir(tmp_path, "m2", lines=(3, 4))
    layout = Layout(tmp_path / "home")
    config = _config(tmp_path, [a.master("m1", d1), b.master("m2", d2)])
    results = run_collect(config, layout)
    assert [(r.master, r.collected, r.failure) for r in results] == [
        ("m1", 2, None),
        ("m2", 2, None),
    ]
    recs = {(r["master"], r["file_name"]): r for r in collected(read_custody(layout))}
    assert recs[("m2", BACKUP)]["size"] == len(_line(3) + _line(4))
    assert recs[("m1", "kubernetes.audit")]["dropped_partial_bytes"] == len('{"partial')
    assert recs[("m1", BACKUP)]["source_uri"].startswith("sftp://")
    assert verify_home(layout).ok
    again = run_collect(config, layout)
    assert [r.unchanged for r in again] == [2, 2] and [r.collected for r in again] == [0, 0]


def test_unknown_host_key_is_refused_with_host_and_fingerprint(tmp_path, sshd):
    server = sshd()
    server.known_hosts.write_text("")
    layout = Layout(tmp_path / "home")
    [r] = run_collect(_config(tmp_path, [server.master("m1", _dir(tmp_path, "m1"))]), layout)
    assert r.failure and f"[127.0.0.1]:{server.port}" in r.failure
    assert "ssh-ed25519 SHA256:" in r.failure and "not in" in r.failure
    assert _store_files(layout) == []
    [failure] = read_custody(layout)
    assert failure["record_type"] == "collection_failure" and failure["error"] == r.failure


def test_changed_host_key_is_refused(tmp_path, sshd):
    server, other = sshd(), sshd()
    server.known_hosts.write_text(f"[127.0.0.1]:{server.port} {other.host_pub}\n")
    layout = Layout(tmp_path / "home")
    [r] = run_collect(_config(tmp_path, [server.master("m1", _dir(tmp_path, "m1"))]), layout)
    assert r.failure and "changed" in r.failure and r.failure.count("SHA256:") == 2
    assert _store_files(layout) == []


def test_closed_port_is_a_recorded_failure_and_the_other_master_is_collected(
    tmp_path, sshd, monkeypatch
):
    from click.testing import CliRunner

    from jobs import cli

    server = sshd()
    closed = dict(server.master("down", _dir(tmp_path, "down")))
    closed["source"] = closed["source"].replace(f":{server.port}/", f":{free_port()}/")
    closed["retries"] = 2
    cfg = {
        "cluster": "c1",
        "timezone": "UTC",
        "masters": [closed, server.master("up", _dir(tmp_path, "up"))],
    }
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(cfg))
    home = tmp_path / "home"
    out = CliRunner().invoke(cli.main, ["collect", "--config", str(path), "--home", str(home)])
    assert out.exit_code == 3, out.output
    assert (
        "partial collection of down" in out.output and "unreachable after 2 attempts" in out.output
    )
    records = read_custody(Layout(home))
    assert [r["master"] for r in records if r["record_type"] == "collection_failure"] == ["down"]
    assert {r["master"] for r in collected(records)} == {"up"}


def test_a_transfer_killed_midway_leaves_nothing_in_the_store(tmp_path, sshd, monkeypatch):
    from jobs.evidence import sources_sftp

    server = sshd()
    d = _dir(tmp_path, "m1")
    (d / BACKUP).write_bytes(b"".join(_line(i).encode() for i in range(40000)))  # > 1 MiB
    opened = sources_sftp.SftpSource.open

    class Dies:
        def __init__(self, fh):
            self.fh, self.reads = fh, 0

        def read(self, n):
            self.reads += 1
            if self.reads > 1:
                raise OSError("connection reset mid-transfer")
            return self.fh.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def __getattr__(self, name):
            return getattr(self.fh, name)

    monkeypatch.setattr(
        sources_sftp.SftpSource,
        "open",
        lambda self, e: Dies(opened(self, e)) if e.name == BACKUP else opened(self, e),
    )
    layout = Layout(tmp_path / "home")
    [r] = run_collect(_config(tmp_path, [server.master("m1", d)]), layout)
    assert [s.file for s in r.skipped] == [BACKUP] and "reset" in r.skipped[0].reason
    assert [x["file_name"] for x in collected(read_custody(layout))] == ["kubernetes.audit"]
    assert len(_store_files(layout)) == 1  # the active file only
    assert list((layout.evidence / INCOMING).iterdir()) == []
    assert verify_home(layout).ok


def test_hostile_remote_names_are_refused_and_recorded(tmp_path, sshd):
    server = sshd()
    d = _dir(tmp_path, "m1")
    (d / "kubernetes-\x1b[31mred.audit").write_text(_line(5))
    (d / "kubernetes-a\nb.audit").write_text(_line(6))
    os.symlink("/etc/passwd", d / "kubernetes-2026-11-21T00-00-00.000.audit")
    layout = Layout(tmp_path / "home")
    [r] = run_collect(_config(tmp_path, [server.master("m1", d)]), layout)
    skipped = {s.file: s.reason for s in r.skipped}
    assert "control characters" in skipped["kubernetes-\x1b[31mred.audit"]
    assert "control characters" in skipped["kubernetes-a\nb.audit"]
    assert "symlink" in skipped["kubernetes-2026-11-21T00-00-00.000.audit"]
    recorded = {x["file_name"] for x in read_custody(layout) if x["record_type"] == "file_skipped"}
    assert recorded == set(skipped)
    assert {x["file_name"] for x in collected(read_custody(layout))} == {BACKUP, "kubernetes.audit"}
    assert all(p.parent.parent == layout.evidence for p in _store_files(layout))


@pytest.mark.parametrize("name", ["../kubernetes.audit", "kubernetes/../x.audit", "..", "a\\b"])
def test_names_a_hostile_server_could_list_are_refused(name):
    from jobs.evidence.sources_sftp import SftpSource, SftpTarget

    [(_, why)] = list(select_entries([Entry(name, 1, 0, True)], "*"))
    assert why and why.startswith("unsafe name")
    target = SftpTarget("h", 22, "u", "/logs", None, None, "x", None, 1.0, 1)
    with pytest.raises(ValueError, match="refusing remote file name"):
        SftpSource(target, None, None, "sftp://h/logs")._path(name)  # type: ignore[arg-type]
