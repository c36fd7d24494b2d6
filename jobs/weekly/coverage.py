"""What the week's evidence covers, and where the week's numbers came from.

An empty or half-covered week must never look clean: the coverage block says, per configured
master, the first and last event of the week, the hours without any event, and collection
failures; a master never collected is a gap over the whole week. The provenance block names the
evidence files and ingest runs the week read, with counts and hashes, so that every number in
``summary.json`` can be traced back to evidence. Pure Python except :func:`summarise_master_hours`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.lake.ledger import LedgerEntry

HOUR = dt.timedelta(hours=1)
CAUSE_NO_EVENTS = "no events"
CAUSE_NEVER_COLLECTED = "master never collected"
CAUSE_COLLECTION_FAILURE = "collection failure"


@dataclass(frozen=True)
class WeekContext:
    """What a weekly run's provenance needs from outside the lake (custody, code, config)."""

    generated_at: dt.datetime
    code_version: str
    config_sha256: str
    policy: Mapping[str, str]
    custody_head: Mapping[str, Any] | None = None
    collection_failures: Sequence[Mapping[str, Any]] = ()
    masters: Sequence[str] = field(default_factory=tuple)
    # gaps the evidence itself shows (a backup rotated away before collection, a damaged
    # file, an unreachable master): jobs.evidence.coverage, passed in by the caller
    evidence_gaps: Sequence[Mapping[str, Any]] = ()


def summarise_master_hours(week_df: DataFrame) -> DataFrame:
    """Events per (master, UTC hour) of the week: at most masters x 168 rows.

    Required columns: ``master``, ``request_received_ts``. Output: ``master``, ``hour``
    (timestamp truncated to the hour), ``events``.
    """
    return (
        week_df.groupBy("master", F.date_trunc("hour", "request_received_ts").alias("hour"))
        .agg(F.count(F.lit(1)).alias("events"))
        .select("master", "hour", "events")
    )


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _hours(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    first = _utc(start).replace(minute=0, second=0, microsecond=0)
    return [first + i * HOUR for i in range(int((_utc(end) - first) / HOUR))]


def _runs(hours: Sequence[dt.datetime]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Consecutive hours folded into [start, end) ranges."""
    runs: list[tuple[dt.datetime, dt.datetime]] = []
    for hour in hours:
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + HOUR)
        else:
            runs.append((hour, hour + HOUR))
    return runs


def _failures_in(
    failures: Iterable[Mapping[str, Any]], master: str, start: dt.datetime, end: dt.datetime
) -> list[Mapping[str, Any]]:
    out = []
    for failure in failures:
        at = dt.datetime.fromisoformat(str(failure.get("at")))
        if failure.get("master") == master and start <= _utc(at) < end:
            out.append(failure)
    return out


def build_coverage(
    *,
    window: tuple[dt.datetime, dt.datetime],
    masters: Sequence[str],
    master_hours: Iterable[Mapping[str, Any]],
    collection_failures: Iterable[Mapping[str, Any]] = (),
    evidence_gaps: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The coverage block of summary.json.

    Args:
        window: the ISO week, [start, end), timezone-aware.
        masters: the masters the config names (a master with no events at all is a gap).
        master_hours: rows of :func:`summarise_master_hours`.
        collection_failures: custody records of failed collections (``master``, ``at``,
            ``error``, optional ``file_name``).
        evidence_gaps: gaps between the held files (master, start, end, cause).
    """
    start, end = _utc(window[0]), _utc(window[1])
    failures = list(collection_failures)
    by_master: dict[str, dict[dt.datetime, int]] = {}
    for row in master_hours:
        by_master.setdefault(str(row["master"]), {})[_utc(row["hour"])] = int(row["events"])
    per_master: list[dict[str, Any]] = []
    gaps: list[dict[str, Any]] = []
    for master in sorted(set(masters) | set(by_master)):
        hours = by_master.get(master, {})
        empty = [h for h in _hours(start, end) if not hours.get(h)]
        in_week = _failures_in(failures, master, start, end)
        for gap_start, gap_end in _runs(empty):
            cause = CAUSE_NEVER_COLLECTED if not hours else CAUSE_NO_EVENTS
            if _failures_in(in_week, master, gap_start, gap_end):
                cause = CAUSE_COLLECTION_FAILURE
            gaps.append(
                {
                    "master": master,
                    "start": gap_start.isoformat(),
                    "end": gap_end.isoformat(),
                    "hours": int((gap_end - gap_start) / HOUR),
                    "cause": cause,
                }
            )
        seen = sorted(hours)
        per_master.append(
            {
                "master": master,
                "events": sum(hours.values()),
                "first_event_hour": seen[0].isoformat() if seen else None,
                "last_event_hour": seen[-1].isoformat() if seen else None,
                "hours_without_events": len(empty),
                "collection_failures": len(in_week),
                "configured": master in masters,
            }
        )
    total = sum(m["events"] for m in per_master)
    held = [dict(g) for g in evidence_gaps]
    return {
        "complete": bool(total) and not gaps and not held,
        "evidence_gaps": held,
        "events": total,
        "hours_in_week": len(_hours(start, end)),
        "masters": per_master,
        "gaps": gaps,
    }


def _overlaps(entry: LedgerEntry, start: dt.datetime, end: dt.datetime) -> bool:
    if entry.first_event is None or entry.last_event is None:
        return False
    first = dt.datetime.fromisoformat(entry.first_event.replace("Z", "+00:00"))
    last = dt.datetime.fromisoformat(entry.last_event.replace("Z", "+00:00"))
    return first < end and last >= start


def build_provenance(
    *,
    cluster: str,
    window: tuple[dt.datetime, dt.datetime],
    ledger: Iterable[LedgerEntry],
    context: WeekContext,
) -> dict[str, Any]:
    """The provenance block of summary.json: what the week's numbers were computed from."""
    start, end = _utc(window[0]), _utc(window[1])
    failures = context.collection_failures
    read = [e for e in ledger if e.cluster == cluster and _overlaps(e, start, end)]
    return {
        "evidence_files": [
            {
                "sha256": e.evidence_sha256,
                "master": e.master,
                "file": e.file,
                "run_id": e.run_id,
                "first_event": e.first_event,
                "last_event": e.last_event,
                "lines": e.lines,
                "events": e.events,
                "quarantined": e.quarantined,
            }
            for e in sorted(read, key=lambda e: (e.master, e.first_event or "", e.file))
        ],
        "ledger_runs": sorted({e.run_id for e in read}),
        "quarantined_lines": sum(e.quarantined for e in read),
        "collection_failures": sum(1 for f in failures if f.get("cluster") == cluster),
        "generated_at": _utc(context.generated_at).isoformat(),
        "kaudit_version": context.code_version,
        "config_sha256": context.config_sha256,
        "policy": dict(context.policy),
        "custody_head": dict(context.custody_head) if context.custody_head else None,
    }
