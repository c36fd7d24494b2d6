"""The ISO-week window and summary.json, built from the collected (small) marts. Pure Python."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from jobs.detections.catalogue import CATALOGUE
from jobs.detections.model import STATUS_OK
from jobs.errors import UsageError
from jobs.weekly.marts import RESOURCE_CATEGORIES

_WEEK_RE = re.compile(r"^(\d{4})-W(\d{2})$")
SUMMARY_VERSION = 1


class WeekError(UsageError, ValueError):
    """Not an ISO week such as 2026-W47 (the user passed it: exit code 2)."""


def parse_week(week: str) -> dt.date:
    """The Monday of ISO ``week`` (``2026-W47``); raises WeekError for anything else."""
    match = _WEEK_RE.match(week or "")
    if not match:
        raise WeekError(f"week {week!r}: expected YYYY-Www, e.g. 2026-W47")
    year, number = int(match.group(1)), int(match.group(2))
    try:
        return dt.date.fromisocalendar(year, number, 1)
    except ValueError as exc:
        raise WeekError(f"week {week!r}: {year} has no ISO week {number}") from exc


def iso_week_window(week: str, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """[Monday 00:00, next Monday 00:00) of ISO ``week`` in ``timezone``, as aware datetimes."""
    monday = parse_week(week)
    tz = ZoneInfo(timezone)
    start = dt.datetime.combine(monday, dt.time(), tzinfo=tz)
    end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time(), tzinfo=tz)
    return start, end


def _by_key(rows: Iterable[Mapping[str, Any]], dimension: str) -> dict[str, int]:
    return {
        r["key"]: int(r["requests"])
        for r in sorted((r for r in rows if r["dimension"] == dimension), key=lambda r: r["key"])
    }


def _resource_operations(rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {
        category: {
            resource: {"create": 0, "update": 0, "delete": 0, "read": 0}
            for resource in sorted({r for _, r in pairs})
        }
        for category, pairs in RESOURCE_CATEGORIES.items()
    }
    for row in rows:
        ops = out.get(row["category"], {}).get(row["resource"])
        if ops is not None and row["operation"] in ops:
            ops[row["operation"]] += int(row["requests"])
    return out


def _crd_operations(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    totals: dict[tuple[str, str, str], int] = {}
    for row in rows:
        key = (row["api_group"], row["resource"], row["verb"])
        totals[key] = totals.get(key, 0) + int(row["requests"])
    return [
        {"group": g, "resource": r, "verb": v, "requests": n}
        for (g, r, v), n in sorted(totals.items())
    ]


def build_summary(
    *,
    cluster: str,
    week: str,
    timezone: str,
    window: tuple[dt.datetime, dt.datetime],
    overview: Iterable[Mapping[str, Any]],
    detections: Iterable[Mapping[str, Any]],
    source_ips: Iterable[Mapping[str, Any]],
    users: Iterable[Mapping[str, Any]],
    crd_operations: Iterable[Mapping[str, Any]],
    resource_operations: Iterable[Mapping[str, Any]],
    geoip: Mapping[str, Any],
    policy_findings: Iterable[Mapping[str, Any]] = (),
    policy_fit: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """summary.json: stable keys, everything sorted, no timestamps other than the window."""
    overview = list(overview)
    total = next((r for r in overview if r["dimension"] == "total"), None)
    det = {r["detection_id"]: r for r in detections}
    ids = [d.id for d in CATALOGUE]
    return {
        "summary_version": SUMMARY_VERSION,
        "cluster": cluster,
        "week": week,
        "timezone": timezone,
        "window": {"start": window[0].isoformat(), "end": window[1].isoformat()},
        "requests_total": int(total["requests"]) if total else 0,
        "events_total": int(total["events"] or 0) if total else 0,
        "requests_by_verb": _by_key(overview, "verb"),
        "requests_by_status_class": _by_key(overview, "status_class"),
        "requests_by_user_kind": _by_key(overview, "user_kind"),
        "requests_by_day": _by_key(overview, "day"),
        "detections": {i: (det[i]["requests"] if i in det else 0) for i in ids},
        "detections_status": {i: (det[i]["status"] if i in det else STATUS_OK) for i in ids},
        "source_ips": [
            {
                "ip": r["ip"],
                "requests": int(r["requests"]),
                "failures": int(r["failures"]),
                "forbidden": int(r["forbidden"]),
                "is_public": bool(r["is_public"]),
                "country": r["country"],
                "region": r["region"],
                "city": r["city"],
                "asn": r["asn"],
                "org": r["org"],
            }
            for r in sorted(source_ips, key=lambda r: (-int(r["requests"]), r["ip"]))
        ],
        "users": [
            {"user": r["user"], "kind": r["user_kind"], "requests": int(r["requests"])}
            for r in sorted(
                users, key=lambda r: (-int(r["requests"]), r["user"] is not None, r["user"] or "")
            )
        ],
        "crd_operations": _crd_operations(crd_operations),
        "resource_operations": _resource_operations(resource_operations),
        "geoip": {k: geoip.get(k) for k in ("database", "build_date", "attribution")},
        "policy_findings": [
            {
                "master": r["master"],
                "rule": r["rule"],
                "check": r["check"],
                "severity": r["severity"],
                "events": int(r["events"]),
                "requests": int(r["requests"]),
            }
            for r in sorted(
                policy_findings,
                key=lambda r: (
                    r["master"] or "",
                    r["check"],
                    -1 if r["rule"] is None else r["rule"],
                ),
            )
        ],
        "policy_fit": [
            {
                "master": r["master"],
                "events": int(r["events"]),
                "events_matching_level": int(r["events_matching_level"]),
                "share": float(r["share"]),
            }
            for r in sorted(policy_fit, key=lambda r: r["master"] or "")
        ],
    }
