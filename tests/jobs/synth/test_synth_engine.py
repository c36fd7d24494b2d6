"""The files of a synthetic week: bytes, rotation, Go JSON lines, stages, arguments."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import itertools
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from week_reader import (
    BACKUP_RE,
    EVENTS,
    LIMIT,
    MAX_MB,
    TS_RE,
    V1_ORDER,
    WEEK_END,
    WEEK_START,
    detect,
    events_of,
    is_longrunning,
    name_ts,
    ordered_files,
    parse_ts,
    status_code,
)

from jobs.synth import synth_week

# sha256 over (relative path, NUL, bytes) of every file of a small fixed run. A change here
# changes every synthetic week: say why. Last change (issue 11): new planted incidents (the
# privileged Deployment with its ReplicaSet and pods, a hostPath CronJob, a kube-system
# ServiceAccount, a Role writing secrets, the miner's namespace and pod, the former contractor),
# Go field order for the metadata of created objects, and the controllers' service-account
# uids fixed by name instead of drawn from the run's random source.
RECORDED_SHA256 = "c860a16f883c08b6d4e44cecd684f7d5932143746afd528327271e5e76d49e4b"


def _tree(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_synth_week_byte_stream_equals_the_recorded_one(tmp_path: Path) -> None:
    synth_week(
        tmp_path, week="2026-W47", masters=2, events=1500, seed=3, max_size_mb=0.0625, compress=True
    )
    digest = hashlib.sha256()
    for p in sorted(tmp_path.rglob("*")):
        if p.is_file():
            digest.update(str(p.relative_to(tmp_path)).encode() + b"\0" + p.read_bytes())
    assert digest.hexdigest() == RECORDED_SHA256


@pytest.mark.parametrize("compress", [False, True])
def test_synth_week_same_arguments_give_identical_bytes(tmp_path: Path, compress: bool) -> None:
    a = synth_week(tmp_path / "a", events=EVENTS, max_size_mb=MAX_MB, compress=compress)
    b = synth_week(tmp_path / "b", events=EVENTS, max_size_mb=MAX_MB, compress=compress)
    ta, tb = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert len(ta) > 3
    assert ta == tb
    assert a == b


def test_synth_week_other_seed_gives_other_bytes_but_same_planted_counts(tmp_path: Path) -> None:
    sa = synth_week(tmp_path / "a", events=EVENTS, max_size_mb=MAX_MB, seed=1)
    sb = synth_week(tmp_path / "b", events=EVENTS * 2, max_size_mb=MAX_MB, seed=2)
    assert _tree(tmp_path / "a") != _tree(tmp_path / "b")

    def planted_counts(root: Path, summary: dict) -> dict[str, int]:
        # the background's matches depend on seed and size; synth_week reports them
        background = summary["background_detections"]
        return {k: len(v) - background.get(k, 0) for k, v in detect(events_of(root)).items()}

    assert planted_counts(tmp_path / "a", sa) == planted_counts(tmp_path / "b", sb)


def test_synth_week_gzip_backups_are_plain_deterministic_gzip(tmp_path: Path) -> None:
    synth_week(tmp_path, events=EVENTS, max_size_mb=MAX_MB, compress=True)
    for master in ("master-1", "master-2", "master-3"):
        files = sorted(p.name for p in (tmp_path / master).iterdir())
        assert files[-1] == "kubernetes.audit"
        assert files[:-1] and all(f.endswith(".audit.gz") for f in files[:-1])
        for f in files[:-1]:
            raw = (tmp_path / master / f).read_bytes()
            assert raw[:3] == b"\x1f\x8b\x08"
            assert raw[3] & 0x08 == 0  # no stored file name
            assert raw[4:8] == b"\x00\x00\x00\x00"  # mtime 0
            assert gzip.decompress(raw).endswith(b"}\n")


def test_synth_week_file_names_and_rotation_rule(week: tuple[Path, dict]) -> None:
    root, summary = week
    assert sorted(p.name for p in root.iterdir()) == ["master-1", "master-2", "master-3"]
    for master_dir in root.iterdir():
        names = [p.name for p in master_dir.iterdir()]
        assert "kubernetes.audit" in names
        backups = [n for n in names if n != "kubernetes.audit"]
        assert len(backups) >= 2
        assert all(BACKUP_RE.match(n) for n in backups)
        ordered = ordered_files(master_dir)
        assert [p.name for p in ordered] == summary["masters"][master_dir.name]["files"]
        for cur, nxt in itertools.pairwise(ordered):
            size = cur.stat().st_size
            first_next = nxt.read_bytes().split(b"\n", 1)[0] + b"\n"
            assert size <= LIMIT
            assert size + len(first_next) > LIMIT  # rotated only because the next line did not fit
        assert ordered[-1].stat().st_size <= LIMIT


def test_synth_week_backup_name_is_rotation_time_after_its_events(week: tuple[Path, dict]) -> None:
    root, _ = week
    for master_dir in root.iterdir():
        files = ordered_files(master_dir)
        for f in files[:-1]:
            stamps = [parse_ts(json.loads(x)["stageTimestamp"]) for x in f.read_text().splitlines()]
            rotated_at = name_ts(f.name)
            assert stamps[-1] <= rotated_at
            assert max(stamps) <= rotated_at < max(stamps) + dt.timedelta(seconds=1)
            assert f.stat().st_mtime_ns == int(rotated_at.timestamp() * 1000) * 1_000_000
        last = [json.loads(x)["stageTimestamp"] for x in files[-1].read_text().splitlines()]
        assert files[-1].stat().st_mtime_ns // 1000 == int(
            max(parse_ts(s) for s in last).timestamp() * 1_000_000
        )


def test_synth_week_lines_are_only_roughly_time_ordered(week: tuple[Path, dict]) -> None:
    root, _ = week
    for master_dir in root.iterdir():
        newest = WEEK_START
        for f in ordered_files(master_dir):
            for raw in f.read_text().splitlines():
                stage = parse_ts(json.loads(raw)["stageTimestamp"])
                assert newest - stage < dt.timedelta(milliseconds=10)
                newest = max(newest, stage)


def test_synth_week_lines_are_go_json_v1_events_inside_the_week(week: tuple[Path, dict]) -> None:
    root, summary = week
    n = 0
    for f in root.rglob("kubernetes*"):
        data = f.read_bytes()
        assert data.endswith(b"\n")
        for raw in data.split(b"\n")[:-1]:
            n += 1
            assert not re.search(rb"[&<>]", raw)
            e = json.loads(raw)
            assert raw.decode() == json.dumps(e, separators=(",", ":"), ensure_ascii=False).replace(
                "&", "\\u0026"
            ).replace("<", "\\u003c").replace(">", "\\u003e")
            keys = list(e)
            assert keys == [k for k in V1_ORDER if k in e]
            assert e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1"
            assert e["level"] in ("Metadata", "Request", "RequestResponse")
            assert TS_RE.match(e["requestReceivedTimestamp"]) and TS_RE.match(e["stageTimestamp"])
            assert (
                WEEK_START
                <= parse_ts(e["requestReceivedTimestamp"])
                <= parse_ts(e["stageTimestamp"])
                < WEEK_END
            )
            assert e["responseStatus"]["metadata"] == {}
            if "annotations" in e:
                assert list(e["annotations"]) == sorted(e["annotations"])
    assert n == summary["events"]
    assert abs(n - EVENTS) / EVENTS < 0.05


def test_synth_week_stages_follow_ack_omit_and_longrunning_rules(events: list) -> None:
    stages: dict[str, list[str]] = defaultdict(list)
    for _, e in events:
        assert e["stage"] != "RequestReceived"
        stages[e["auditID"]].append(e["stage"])
        if e["stage"] == "ResponseStarted":
            assert is_longrunning(e) or status_code(e) == 401
        if status_code(e) == 401:
            assert e["user"] == {} and e["stage"] == "ResponseStarted" and "annotations" not in e
            assert e["responseStatus"]["reason"] == "Unauthorized"
        else:
            assert e["user"]["username"]
            assert e["annotations"]["authorization.k8s.io/decision"] in ("allow", "forbid")
            assert "authorization.k8s.io/reason" in e["annotations"]
            assert (e["annotations"]["authorization.k8s.io/decision"] == "forbid") == (
                status_code(e) == 403
            )
    for _, e in events:
        got = sorted(stages[e["auditID"]])
        if status_code(e) == 401:
            assert got == ["ResponseStarted"]
        elif is_longrunning(e):
            assert got == ["ResponseComplete", "ResponseStarted"]
        else:
            assert got == ["ResponseComplete"]
    codes = Counter(status_code(e) for _, e in events)
    assert codes[101] and codes[201] and codes[401] and codes[403] and codes[404] and codes[409]


def test_synth_week_refuses_a_non_empty_master_dir(tmp_path: Path) -> None:
    (tmp_path / "master-1").mkdir()
    (tmp_path / "master-1" / "kubernetes.audit").write_text("x\n")
    with pytest.raises(FileExistsError):
        synth_week(tmp_path, events=100, max_size_mb=MAX_MB)


def test_synth_week_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        synth_week(tmp_path / "a", week="2026-47")
    with pytest.raises(ValueError):
        synth_week(tmp_path / "b", max_size_mb=0.01)
