"""Coverage and gaps: a synthetic week with one backup deleted before collection shows that gap."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from jobs.config import RotationConfig
from jobs.evidence.coverage import evidence_gaps, gaps, headroom, interval_of
from jobs.evidence.main import run_collect
from jobs.ingest.main import run as ingest
from jobs.lake.ledger import LedgerEntry
from jobs.settings import Layout, parse_config
from jobs.synth import synth_week

pytestmark = pytest.mark.slow


def _times(path):
    return [json.loads(x)["requestReceivedTimestamp"] for x in path.read_text().splitlines()]


def test_a_backup_deleted_before_collection_is_exactly_the_gap(spark, tmp_path):
    src = tmp_path / "masters"
    synth_week(src, week="2026-W47", masters=2, events=3000, seed=5, max_size_mb=0.0625)
    m1 = src / "master-1"
    backups = sorted(p for p in m1.iterdir() if p.name != "kubernetes.audit")
    assert len(backups) >= 4
    before, deleted, after = backups[1], backups[2], backups[3]
    deleted.unlink()
    config = parse_config(
        {
            "cluster": "demo",
            "timezone": "UTC",
            "masters": [{"name": m.name, "source": f"file://{m}"} for m in sorted(src.iterdir())],
        },
        tmp_path,
    )
    layout = Layout(tmp_path / "home")
    run_collect(config, layout)
    ingest(spark, layout)
    week = (datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC))
    found = evidence_gaps(layout, "demo", *week)
    assert len(found) == 1, found
    [gap] = found
    start = datetime.fromisoformat(max(_times(before)).replace("Z", "+00:00"))
    end = datetime.fromisoformat(min(_times(after)).replace("Z", "+00:00"))
    assert (gap["master"], gap["start"], gap["end"]) == (
        "master-1",
        start.isoformat(),
        end.isoformat(),
    )
    assert gap["cause"].startswith("missing") and before.name in gap["cause"]


def _entry(master, file, first, last, events=100):
    return LedgerEntry(
        evidence_sha256=file,
        cluster="c",
        master=master,
        file=file,
        compressed=False,
        damage=None,
        first_event=first.isoformat(),
        last_event=last.isoformat(),
        lines=events,
        events=events,
        duplicates=0,
        quarantined=0,
        blank=0,
        run_id="r",
    )


def test_unreachable_and_damaged_are_gaps_and_headroom_warns():
    t0 = datetime(2026, 11, 16, tzinfo=UTC)
    h = timedelta(hours=1)
    entries = [
        _entry("m2", "a", t0, t0 + 10 * h, 1000),
        _entry("m2", "b", t0 + 10 * h, t0 + 20 * h, 1000),
        _entry("m2", "c", t0 + 21 * h, t0 + 24 * h, 300),
    ]
    entries[1] = LedgerEntry(**{**entries[1].__dict__, "damage": "gzip stream truncated"})
    failure = {
        "record_type": "collection_failure",
        "cluster": "c",
        "master": "m2",
        "source_uri": "sftp://x",
        "error": "m2 unreachable",
        "at": (t0 + 5 * h).isoformat(),
    }
    taken = [
        {
            "record_type": "collected",
            "cluster": "c",
            "master": "m2",
            "sha256": s,
            "size": 1_400_000_000 * 24 // 3 // 24,
            "collected_at": (t0 + 7 * h).isoformat(),
            "source_uri": "sftp://x",
            "file_name": s,
            "active": False,
        }
        for s in "abc"
    ]
    records = [failure, *taken]
    found = gaps(records, entries, "c")
    causes = {g.cause.split(":")[0]: (g.start, g.end) for g in found}
    assert causes["unreachable"] == (t0 + 5 * h, t0 + 7 * h)
    assert causes["damaged"] == (t0 + 20 * h, t0 + 21 * h)
    [room] = headroom(records, entries, "c", RotationConfig(), "@daily")
    # 10 x 100 MiB (lumberjack's MB is MiB) at 1.4 GB/day: 1048.6 / 1400 days = 18.0 hours
    assert room.warning == (
        "m2 writes 1.4 GB/day: its backups live about 18 hours; "
        "collection every 24 hours would lose data"
    )
    assert headroom(records, entries, "c", RotationConfig(), "@hourly")[0].warning is None
    assert interval_of("*/15 * * * *") == timedelta(minutes=15)
