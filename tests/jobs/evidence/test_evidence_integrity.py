"""Evidence integrity: custody heads, verify's coverage of the store, lossless names, refusals."""

from __future__ import annotations

import base64
import json
import os

import pytest
from click.testing import CliRunner

from jobs.errors import EXIT_FINDINGS, EXIT_PARTIAL_COLLECTION, EXIT_USAGE
from jobs.evidence.custody import append_custody, collected, head_path, read_custody, read_head
from jobs.evidence.main import run_collect, run_verify
from jobs.evidence.names import os_name, raw_name
from jobs.evidence.store import evidence_path
from jobs.lake.runs import commit_run
from jobs.settings import HomeError, Layout, parse_config

BACKUPS = [f"kubernetes-2026-11-2{k}T00-00-00.000.audit" for k in range(3)]


def _line(i):
    return json.dumps({"kind": "Event", "auditID": f"id-{i}", "stage": "ResponseComplete"}) + "\n"


def _config(tmp_path, d):
    return parse_config(
        {"cluster": "c1", "timezone": "UTC", "masters": [{"name": "m1", "source": f"file://{d}"}]},
        tmp_path,
    )


@pytest.fixture
def master(tmp_path):
    d = tmp_path / "m1"
    d.mkdir()
    for k, name in enumerate(BACKUPS):
        (d / name).write_text(_line(k))
    return d


def _collected_home(tmp_path, master):
    layout = Layout(tmp_path / "home")
    [result] = run_collect(_config(tmp_path, master), layout)
    assert result.collected == len(BACKUPS) and result.complete
    return layout


def _drop_last_record(layout):
    lines = layout.custody.read_bytes().splitlines(keepends=True)
    layout.custody.write_bytes(b"".join(lines[:-1]))


def test_every_append_writes_the_head_atomically_beside_the_log(tmp_path, master):
    layout = _collected_home(tmp_path, master)
    head = read_head(layout)
    records = read_custody(layout)
    assert head is not None
    assert head["count"] == len(records) == 3
    assert head["last_record_sha256"] == records[-1]["record_sha256"]
    assert head_path(layout) == layout.home / "custody" / "head.json"
    # no temp file left behind
    assert {p.name for p in head_path(layout).parent.iterdir()} == {"records.jsonl", "head.json"}
    result = run_verify(layout)
    assert result.ok and (result.records, result.files, result.heads) == (3, 3, 1)
    assert result.bytes == sum(len(_line(k)) for k in range(3))


def test_a_cut_tail_disagrees_with_every_head_and_a_new_collect_does_not_hide_it(tmp_path, master):
    layout = _collected_home(tmp_path, master)
    commit_run(
        layout, "before-cut", [], custody_head=read_head(layout)
    )  # a ledger commit carries the head of its moment
    ledger_file = layout.ledger / "before-cut.json"
    assert json.loads(ledger_file.read_text())["custody_head"] == read_head(layout)
    manifest = layout.reports("c1", "2026-W47") / "manifest.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"pdf": "x", "custody_head": read_head(layout)}))
    last = read_custody(layout)[-1]

    _drop_last_record(layout)
    problems = run_verify(layout).problems
    for path in (head_path(layout), ledger_file, manifest):
        assert any(
            p.startswith(f"{path}: custody head disagrees")
            and "names 3 custody records, the chain has 2 (truncated chain)" in p
            for p in problems
        ), (path, problems)
    # the file the cut record described is now in the store without a record
    assert f"evidence file {evidence_path(layout, last['sha256'])}: no custody record names it" in (
        problems
    )

    [again] = run_collect(_config(tmp_path, master), layout)  # re-records the file: N-1+1
    assert again.collected == 1 and len(read_custody(layout)) == 3
    problems = run_verify(layout).problems
    for path in (head_path(layout), ledger_file, manifest):
        assert any(
            p.startswith(f"{path}: custody head disagrees") and "(rewritten chain)" in p
            for p in problems
        ), (path, problems)
    assert read_head(layout)["last_record_sha256"] == last["record_sha256"]  # kept as it was


def test_a_damaged_head_is_named_and_not_overwritten(tmp_path, master):
    layout = _collected_home(tmp_path, master)
    head_path(layout).write_text('{"count": 3')
    assert run_verify(layout).problems == (
        f"{head_path(layout)}: not readable JSON (truncated or damaged)",
    )
    (master / "kubernetes-2026-11-25T00-00-00.000.audit").write_text(_line(9))
    run_collect(_config(tmp_path, master), layout)
    assert head_path(layout).read_text() == '{"count": 3'


def test_a_home_made_before_heads_still_verifies(tmp_path, master):
    layout = _collected_home(tmp_path, master)
    head_path(layout).unlink()
    result = run_verify(layout)
    assert result.ok and result.heads == 0 and result.records == 3


def test_unrecorded_and_missing_evidence_files_are_named(tmp_path, master):
    layout = _collected_home(tmp_path, master)
    stray = layout.evidence / "ab" / ("ab" + "0" * 62)
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"not recorded")
    misplaced = layout.evidence / "notes.txt"
    misplaced.write_bytes(b"x")
    (layout.evidence / ".incoming").mkdir(exist_ok=True)
    (layout.evidence / ".incoming" / "copy-in-progress").write_bytes(b"partial")
    gone = read_custody(layout)[0]["sha256"]
    evidence_path(layout, gone).unlink()
    assert set(run_verify(layout).problems) == {
        f"evidence file {stray}: no custody record names it",
        f"evidence file {misplaced}: no custody record names it",
        f"custody record 1: evidence file {evidence_path(layout, gone)} missing",
    }


def test_verify_of_a_home_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(HomeError, match=f"no kaudit home at {tmp_path / 'typo'}"):
        run_verify(Layout(tmp_path / "typo"))
    assert not (tmp_path / "typo").exists()


def test_undecodable_names_are_stored_losslessly(tmp_path):
    d = tmp_path / "m1"
    d.mkdir()
    raw = b"kubernetes-\xff\xfe.audit"
    with open(os.path.join(os.fsencode(d), raw), "wb") as fh:
        fh.write(_line(1).encode())
    layout = Layout(tmp_path / "home")
    config = _config(tmp_path, d)
    [result] = run_collect(config, layout)
    assert result.collected == 1
    text = layout.custody.read_bytes().decode("utf-8", errors="strict")
    [body] = [json.loads(line) for line in text.splitlines()]
    assert not any(0xD800 <= ord(c) <= 0xDFFF for v in body.values() for c in str(v))
    assert body["file_name"] == "kubernetes-\\xff\\xfe.audit"
    assert base64.b64decode(body["file_name_b64"]) == raw
    [rec] = collected(read_custody(layout))
    assert raw_name(rec) == raw and os_name(rec) == os.fsdecode(raw)
    [again] = run_collect(config, layout)
    assert (again.collected, again.unchanged) == (0, 1)  # the raw name is the key
    assert run_verify(layout).ok


def test_records_written_before_lossless_names_still_read(tmp_path):
    d = tmp_path / "m1"
    d.mkdir()
    raw = b"kubernetes-\xff.audit"
    path = os.path.join(os.fsencode(d), raw)
    with open(path, "wb") as fh:
        fh.write(_line(1).encode())
    layout = Layout(tmp_path / "home")
    run_collect(_config(tmp_path, d), layout)
    [rec] = collected(read_custody(layout))
    old = {k: v for k, v in rec.items() if k not in ("prev", "record_sha256", "file_name_b64")}
    old["file_name"] = os.fsdecode(raw)  # as the old code wrote it: a lone surrogate
    layout.custody.unlink()
    head_path(layout).unlink()
    append_custody(layout, [old])
    [held] = collected(read_custody(layout))
    assert raw_name(held) == raw
    [again] = run_collect(_config(tmp_path, d), layout)
    assert (again.collected, again.unchanged) == (0, 1)


def test_unreadable_files_are_recorded_and_named(tmp_path, master, monkeypatch):
    from jobs.evidence.sources import LocalSource

    real_open = LocalSource.open

    def deny(self, entry):
        if entry.name == BACKUPS[1]:
            raise PermissionError(13, "Permission denied", entry.name)
        return real_open(self, entry)

    monkeypatch.setattr(LocalSource, "open", deny)
    layout = Layout(tmp_path / "home")
    [result] = run_collect(_config(tmp_path, master), layout)
    assert result.collected == 2 and not result.complete
    assert [(s.file, s.reason) for s in result.refused] == [
        (BACKUPS[1], "unreadable: Permission denied")
    ]
    [rec] = [r for r in read_custody(layout) if r["record_type"] == "file_unreadable"]
    assert rec["file_name"] == BACKUPS[1] and rec["error"] == "unreadable: Permission denied"


def test_compression_in_progress_is_not_a_refusal(tmp_path):
    d = tmp_path / "m1"
    d.mkdir()
    (d / BACKUPS[0]).write_text(_line(1))
    (d / (BACKUPS[0] + ".gz")).write_bytes(b"\x1f\x8b partial")
    [result] = run_collect(_config(tmp_path, d), Layout(tmp_path / "home"))
    assert len(result.skipped) == 1 and result.refused == () and result.complete
    assert all(r["record_type"] == "collected" for r in read_custody(Layout(tmp_path / "home")))


def test_cli_collect_exits_3_when_a_master_had_files_it_could_not_take(tmp_path, master):
    from jobs.cli import main

    os.symlink(tmp_path / "elsewhere", master / "kubernetes-2026-11-29T00-00-00.000.audit")
    config = tmp_path / "c.yaml"
    config.write_text(
        f"cluster: c1\ntimezone: UTC\nmasters:\n  - name: m1\n    source: file://{master}\n"
    )
    home = tmp_path / "home"
    out = CliRunner().invoke(main, ["collect", "--config", str(config), "--home", str(home)])
    assert out.exit_code == EXIT_PARTIAL_COLLECTION, out.output
    assert "skipped kubernetes-2026-11-29T00-00-00.000.audit: not a regular file" in out.output
    assert "Traceback" not in out.output


def test_cli_verify_prints_what_it_checked_and_fails_on_problems(tmp_path, master):
    from jobs.cli import main

    layout = _collected_home(tmp_path, master)
    runner = CliRunner()
    out = runner.invoke(main, ["verify", "--home", str(layout.home)])
    assert out.exit_code == 0, out.output
    size = sum(len(_line(k)) for k in range(3))
    assert f"checked 3 custody records, 3 evidence files ({size} bytes), 1 custody heads" in (
        out.output
    )
    _drop_last_record(layout)
    out = runner.invoke(main, ["verify", "--home", str(layout.home)])
    assert out.exit_code == EXIT_FINDINGS
    assert f"{head_path(layout)}: custody head disagrees" in out.output
    out = runner.invoke(main, ["verify", "--home", str(tmp_path / "typo")])
    assert out.exit_code == EXIT_USAGE
    assert f"kaudit: error: no kaudit home at {tmp_path / 'typo'}" in out.output
    assert not (tmp_path / "typo").exists() and "Traceback" not in out.output
