"""Evidence coverage per master: the time the held evidence covers, its gaps, retention headroom.

Pure functions over custody records and ledger entries. Coverage comes from the events
themselves (each evidence file's first and last event in the ledger), merged per master.
Gaps are records (master, start, end, cause):

- ``missing``: events stop in one file and resume in the next much later than the master's
  own pace allows (more than :data:`GAP_FACTOR` times its mean interval between events, and
  at least :data:`MIN_GAP`): a backup rotated away before it was collected;
- ``damaged``: a truncated or corrupt gzip file: from its last readable event to the next
  file's first event;
- ``unreachable``: a collection that failed for the master: from the failure to the next
  collection that took a file from it (or to the end of the range asked for).

Retention headroom: kube-apiserver keeps ``maxbackup`` backups of ``maxsize_mb`` for at most
``maxage_days``; at the observed rate a backup lives ``min(maxbackup * maxsize / rate, maxage)``.
Collection must come round well inside that, or backups are deleted before they are taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from jobs.config import RotationConfig
from jobs.evidence.custody import CustodyRecord, collected, read_custody
from jobs.lake.ledger import LedgerEntry, read_ledger
from jobs.settings import Layout

MIN_GAP = timedelta(minutes=10)
GAP_FACTOR = 30
MIB = 1 << 20


@dataclass(frozen=True)
class Gap:
    """Time without evidence on one master, and why."""

    master: str
    start: datetime
    end: datetime
    cause: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO UTC."""
        return {
            "master": self.master,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "cause": self.cause,
        }


@dataclass(frozen=True)
class Headroom:
    """How long a master's backups survive against the collection interval."""

    master: str
    bytes_per_day: float
    backup_lifetime: timedelta | None  # None: the rate is unknown or rotation is unbounded
    collect_every: timedelta | None
    warning: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: durations in hours."""
        life, every = self.backup_lifetime, self.collect_every
        return {
            "master": self.master,
            "bytes_per_day": round(self.bytes_per_day),
            "backup_lifetime_hours": round(life / timedelta(hours=1), 2) if life else None,
            "collect_every_hours": round(every / timedelta(hours=1), 2) if every else None,
            "warning": self.warning,
        }


def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class _Span:
    file: str
    first: datetime
    last: datetime
    events: int
    damage: str | None


def _spans(entries: Sequence[LedgerEntry], cluster: str) -> dict[str, list[_Span]]:
    out: dict[str, list[_Span]] = {}
    for e in entries:
        first, last = _ts(e.first_event), _ts(e.last_event)
        if e.cluster != cluster or first is None or last is None:
            continue
        out.setdefault(e.master, []).append(_Span(e.file, first, last, e.events, e.damage))
    for spans in out.values():
        spans.sort(key=lambda s: (s.first, s.last))
    return out


def covered(
    entries: Sequence[LedgerEntry], cluster: str
) -> dict[str, list[tuple[datetime, datetime]]]:
    """Per master, the merged time ranges its ingested events cover."""
    out: dict[str, list[tuple[datetime, datetime]]] = {}
    for master, spans in _spans(entries, cluster).items():
        merged: list[tuple[datetime, datetime]] = []
        for s in spans:
            if merged and s.first <= merged[-1][1] + _threshold(spans):
                merged[-1] = (merged[-1][0], max(merged[-1][1], s.last))
            else:
                merged.append((s.first, s.last))
        out[master] = merged
    return out


def _threshold(spans: Sequence[_Span]) -> timedelta:
    events = sum(s.events for s in spans)
    if events < 2:
        return MIN_GAP
    pace = (max(s.last for s in spans) - min(s.first for s in spans)) / events
    return max(MIN_GAP, pace * GAP_FACTOR)


def gaps(
    records: Sequence[CustodyRecord],
    entries: Sequence[LedgerEntry],
    cluster: str,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Gap]:
    """Every gap of the cluster's masters (overlapping [start, end) when given), sorted."""
    out: list[Gap] = []
    for master, spans in _spans(entries, cluster).items():
        limit = _threshold(spans)
        reach = spans[0]
        for nxt in spans[1:]:
            if reach.damage and nxt.first > reach.last:
                out.append(
                    Gap(master, reach.last, nxt.first, f"damaged: {reach.file}: {reach.damage}")
                )
            elif nxt.first - reach.last > limit:
                out.append(
                    Gap(
                        master,
                        reach.last,
                        nxt.first,
                        f"missing: no evidence between {reach.file} and {nxt.file} "
                        "(a backup rotated away before it was collected?)",
                    )
                )
            if nxt.last >= reach.last:
                reach = nxt
    out += _unreachable(records, cluster, end)
    if start is not None or end is not None:
        lo = start or datetime.min.replace(tzinfo=UTC)
        hi = end or datetime.max.replace(tzinfo=UTC)
        out = [g for g in out if g.end > lo and g.start < hi]
    return sorted(out, key=lambda g: (g.master, g.start))


def _unreachable(records: Sequence[CustodyRecord], cluster: str, end: datetime | None) -> list[Gap]:
    out = []
    open_failure: dict[str, tuple[datetime, str]] = {}
    for r in records:
        if r["cluster"] != cluster:
            continue
        if r["record_type"] == "collection_failure":
            at = _ts(r["at"])
            if at is not None:
                open_failure.setdefault(r["master"], (at, r["error"]))
        elif r["record_type"] == "collected" and r["master"] in open_failure:
            since, why = open_failure.pop(r["master"])
            until = _ts(r["collected_at"]) or since
            out.append(Gap(r["master"], since, until, f"unreachable: {why}"))
    for master, (since, why) in open_failure.items():
        out.append(Gap(master, since, max(since, end or datetime.now(UTC)), f"unreachable: {why}"))
    return out


def interval_of(schedule: str) -> timedelta | None:
    """The time between two runs of a cron expression or Airflow preset; None if unknown."""
    presets = {"@hourly": 1.0, "@daily": 24.0, "@midnight": 24.0, "@weekly": 168.0}
    if schedule in presets:
        return timedelta(hours=presets[schedule])
    try:
        from croniter import croniter

        it = croniter(schedule, datetime(2026, 1, 5, tzinfo=UTC))
        first, second, third = (it.get_next(datetime) for _ in range(3))
        gap: timedelta = max(second - first, third - second)
        return gap
    except Exception:  # croniter absent, or an expression it cannot read
        return None


def headroom(
    records: Sequence[CustodyRecord],
    entries: Sequence[LedgerEntry],
    cluster: str,
    rotation: RotationConfig,
    schedule: str,
) -> list[Headroom]:
    """Per master: observed log rate, backup lifetime on the master, and a warning if unsafe."""
    size_of: dict[str, int] = {}
    for r in collected(records):
        size_of.setdefault(r["sha256"], r["size"])
    every = interval_of(schedule)
    out = []
    for master, spans in sorted(_spans(entries, cluster).items()):
        shas = {e.evidence_sha256 for e in entries if e.master == master and e.cluster == cluster}
        total = sum(size_of.get(s, 0) for s in shas)
        days = (max(s.last for s in spans) - min(s.first for s in spans)) / timedelta(days=1)
        rate = total / days if days > 0 else 0.0
        life = _lifetime(rate, rotation)
        warning = None
        if life is not None and every is not None and every >= life * 0.5:
            verdict = "would lose data" if every >= life else "leaves little headroom"
            warning = (
                f"{master} writes {_size(rate)}/day: its backups live about {_hours(life)}; "
                f"collection every {_hours(every)} {verdict}"
            )
        out.append(Headroom(master, rate, life, every, warning))
    return out


def _lifetime(rate: float, rotation: RotationConfig) -> timedelta | None:
    limits = []
    if rate > 0 and rotation.maxbackup and rotation.maxsize_mb:
        limits.append(timedelta(days=rotation.maxbackup * rotation.maxsize_mb * MIB / rate))
    if rotation.maxage_days:
        limits.append(timedelta(days=rotation.maxage_days))
    return min(limits) if limits else None


def _size(n: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


def _hours(d: timedelta) -> str:
    hours = d / timedelta(hours=1)
    return f"{hours:.0f} hours" if hours >= 1.5 else f"{hours * 60:.0f} minutes"


def evidence_gaps(
    layout: Layout, cluster: str, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The gaps of a cluster's evidence overlapping [start, end): dicts (master, start, end, cause).

    For the weekly summary's coverage block.
    """
    found = gaps(read_custody(layout), read_ledger(layout), cluster, start, end)
    return [g.as_dict() for g in found]


def coverage_report(
    layout: Layout, cluster: str, rotation: RotationConfig, schedule: str
) -> dict[str, Any]:
    """Everything ``kaudit coverage`` prints: covered ranges, gaps and headroom per master."""
    records, entries = read_custody(layout), read_ledger(layout)
    return {
        "cluster": cluster,
        "covered": {
            m: [{"start": a.isoformat(), "end": b.isoformat()} for a, b in ranges]
            for m, ranges in sorted(covered(entries, cluster).items())
        },
        "gaps": [g.as_dict() for g in gaps(records, entries, cluster)],
        "headroom": [h.as_dict() for h in headroom(records, entries, cluster, rotation, schedule)],
    }
