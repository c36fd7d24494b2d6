"""Week data -> the template's context (pure: dicts in, dicts out, no IO, no rendering)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from reports.i18n import Messages

CAP = 25  # rows of a list shown in the PDF; the whole list is in the attached CSV
OPS_CAP = 8
ALERT_MIN_REQUESTS = 10  # the public-IP failure-rate alert: > 10 requests and > 50% failures
ALERT_MIN_FAILURE_RATE = 0.5
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
OPERATIONS = ("create", "update", "delete", "read")
IMPORTANT = {  # heading key -> detections whose findings make up the group
    "imp.public": ("public-ip-failure-rate", "system-identity-public-ip", "anonymous-allowed"),
    "imp.exec": ("exec", "attach", "exec-suspicious-command", "portforward"),
    "imp.delete": ("resource-deletion", "namespace-deleted", "events-deleted"),
    "imp.secret": ("secret-read", "secret-read-denied", "secret-enumeration", "secret-write"),
}


def cap(rows: Sequence[dict[str, Any]], limit: int, file: str) -> dict[str, Any]:
    """The first ``limit`` rows and how many more the attachment ``file`` holds."""
    return {"rows": list(rows[:limit]), "more": max(len(rows) - limit, 0), "file": file}


def key_figures(summary: dict[str, Any]) -> dict[str, int]:
    """The executive summary's figures of one week's summary.json."""
    status = summary.get("requests_by_status_class") or {}
    return {
        "metric.requests": int(summary.get("requests_total") or 0),
        "metric.events": int(summary.get("events_total") or 0),
        "metric.failures": sum(int(v) for k, v in status.items() if k[:1] in ("4", "5")),
        "metric.findings": sum(int(v) for v in (summary.get("detections") or {}).values() if v),
        "metric.public_requests": sum(
            int(r.get("requests") or 0)
            for r in summary.get("source_ips") or []
            if r.get("is_public")
        ),
        "metric.users": len(summary.get("users") or []),
    }


def figures_with_deltas(
    summary: dict[str, Any], previous: dict[str, Any] | None, t: Messages
) -> list[dict[str, Any]]:
    """Rows of (label, this week, previous week, signed delta, arrow)."""
    now = key_figures(summary)
    before = key_figures(previous) if previous else None
    out = []
    for key, value in now.items():
        row: dict[str, Any] = {
            "label": t(key),
            "value": value,
            "previous": None,
            "delta": None,
            "arrow": "",
        }
        if before is not None:
            delta = value - before[key]
            row.update(
                previous=before[key],
                delta=delta,
                arrow=t("arrow.up")
                if delta > 0
                else t("arrow.down")
                if delta < 0
                else t("arrow.same"),
            )
        out.append(row)
    return out


def detection_rows(
    marts_rows: list[dict[str, Any]], summary: dict[str, Any], t: Messages
) -> list[dict[str, Any]]:
    """Every detection of the catalogue with its status; none is dropped or shown as a bare 0."""
    by_id = {r["detection_id"]: dict(r) for r in marts_rows}
    statuses = summary.get("detections_status") or {}
    for det_id, findings in (summary.get("detections") or {}).items():
        if det_id not in by_id:  # in summary.json only: keep it rather than lose it silently
            by_id[det_id] = {
                "detection_id": det_id,
                "title": det_id,
                "severity": "info",
                "section": "",
                "status": statuses.get(det_id, "ok"),
                "basis": None,
                "requests": None,
                "findings": findings or 0,
                "position": 999,
            }
    rows = []
    for r in sorted(by_id.values(), key=lambda r: (r.get("position", 999), r["detection_id"])):
        status = r.get("status") or "ok"
        key = f"det.{r['detection_id']}"
        rows.append(
            {
                **r,
                "title": _translated(t, key, r.get("title") or r["detection_id"]),
                "observable": status == "ok",
                "status_label": _translated(t, f"status.{status}", status),
                "severity_label": _sev(t, r.get("severity")),
            }
        )
    return rows


def _translated(t: Messages, key: str, fallback: Any) -> str:
    return t(key) if t.has(key) else str(fallback or "")


def _sev(t: Messages, severity: str | None) -> str:
    return _translated(t, f"sev.{severity}", severity)


def important_groups(detections: list[dict[str, Any]], t: Messages) -> list[dict[str, Any]]:
    """Counts for the overview's important-event groups; unobservable parts are named."""
    by_id = {d["detection_id"]: d for d in detections}
    out = []
    for key, ids in IMPORTANT.items():
        present = [by_id[i] for i in ids if i in by_id]
        out.append(
            {
                "label": t(key),
                "findings": sum(int(d.get("findings") or 0) for d in present if d["observable"]),
                "not_observable": [d["title"] for d in present if not d["observable"]],
            }
        )
    return out


def _place(ip_row: dict[str, Any] | None) -> str:
    if not ip_row or not ip_row.get("is_public"):
        return ""
    parts = [p for p in (ip_row.get("city") or ip_row.get("region"), ip_row.get("country")) if p]
    return f" ({', '.join(parts)})" if parts else ""


def alert_ips(source_ips: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Public IPs over the failure-rate threshold."""
    return [
        r
        for r in source_ips
        if r.get("is_public")
        and int(r.get("requests") or 0) > ALERT_MIN_REQUESTS
        and float(r.get("failure_rate") or 0.0) > ALERT_MIN_FAILURE_RATE
    ]


def top_findings(
    detections: list[dict[str, Any]],
    events: list[dict[str, Any]],
    source_ips: list[dict[str, Any]],
    t: Messages,
    limit: int = 6,
) -> list[str]:
    """Plain-words sentences for the executive summary, most severe first."""
    ips = {r["ip"]: r for r in source_ips}
    out: list[str] = []
    exec_groups: Counter[tuple[str, str, str]] = Counter(
        (
            e.get("attributed_user") or e.get("user_name") or "?",
            e.get("client_ip") or "?",
            e.get("namespace") or "?",
        )
        for e in events
        if e.get("detection_id") == "exec"
    )
    for (user, ip, ns), n in exec_groups.most_common(2):
        out.append(
            t("finding.exec", n=t.num(n), ns=ns, user=user, ip=ip, place=_place(ips.get(ip)))
        )
    alerts = alert_ips(source_ips)
    if alerts:
        out.append(
            t(
                "finding.public_ip",
                n=t.num(len(alerts)),
                ips=", ".join(f"{r['ip']}{_place(r)}" for r in alerts[:3]),
            )
        )
    ranked = sorted(
        (
            d
            for d in detections
            if d["observable"]
            and d.get("findings")
            and d.get("severity") in ("critical", "high")
            and d["detection_id"] not in ("exec", "public-ip-failure-rate")
        ),
        key=lambda d: (SEVERITY_ORDER.get(d.get("severity") or "", 9), -int(d["findings"])),
    )
    for d in ranked:
        if len(out) >= limit:
            break
        out.append(
            t(
                "finding.generic",
                title=d["title"],
                n=t.num(d["findings"]),
                severity=d["severity_label"],
            )
        )
    return out


def resource_matrix(resource_ops: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Category -> operation -> requests (the category x verb chart's data)."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(OPERATIONS, 0))
    for r in resource_ops:
        if r.get("operation") in OPERATIONS:
            out[r["category"]][r["operation"]] += int(r.get("requests") or 0)
    return dict(sorted(out.items(), key=lambda kv: (kv[0] == "other", kv[0])))


def resource_table(resource_ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (category, resource) with requests per operation."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for r in resource_ops:
        key = (r["category"], r.get("resource") or "")
        row = rows.setdefault(
            key, {"category": key[0], "resource": key[1], **dict.fromkeys(OPERATIONS, 0)}
        )
        if r.get("operation") in OPERATIONS:
            row[r["operation"]] += int(r.get("requests") or 0)
    return sorted(
        rows.values(),
        key=lambda r: (r["category"] == "other", r["category"], -sum(r[o] for o in OPERATIONS)),
    )


def resource_details(
    detail: list[dict[str, Any]],
    operations: list[dict[str, Any]],
    main_categories: Sequence[str] = ("compute", "network", "storage", "rbac"),
) -> list[dict[str, Any]]:
    """Per main resource type: totals, namespace distribution, daily trend, capped writes."""
    out = []
    totals = [r for r in detail if r["facet"] == "total" and r["category"] in main_categories]
    for tot in sorted(totals, key=lambda r: -int(r["requests"])):
        same = [
            r
            for r in detail
            if (r["category"], r.get("resource")) == (tot["category"], tot.get("resource"))
        ]
        ops = [
            o
            for o in operations
            if (o["category"], o.get("resource")) == (tot["category"], tot.get("resource"))
        ]
        out.append(
            {
                "category": tot["category"],
                "resource": tot.get("resource"),
                "requests": tot["requests"],
                "success_rate": tot.get("success_rate"),
                "namespaces": sorted(
                    (r for r in same if r["facet"] == "namespace"),
                    key=lambda r: -int(r["requests"]),
                )[:6],
                "trend": sorted((r for r in same if r["facet"] == "day"), key=lambda r: r["key"]),
                "ops": cap(
                    sorted(
                        ops,
                        key=lambda o: o["request_received_ts"] or datetime.min.replace(tzinfo=UTC),
                    ),
                    OPS_CAP,
                    "resource_operations.csv",
                ),
            }
        )
    return out


def geography(source_ips: list[dict[str, Any]], t: Messages) -> dict[str, Any]:
    """Requests by country and by region (private addresses grouped as one line)."""
    countries: Counter[str] = Counter()
    regions: Counter[tuple[str, str]] = Counter()
    for r in source_ips:
        n = int(r.get("requests") or 0)
        if not r.get("is_public"):
            countries[t("s6.private")] += n
            continue
        countries[r.get("country") or "?"] += n
        regions[(r.get("country") or "?", r.get("region") or "?")] += n
    return {
        "countries": countries.most_common(),
        "regions": [
            {"country": c, "region": g, "requests": n} for (c, g), n in regions.most_common()
        ],
    }


def admin_attribution(users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Users who acted through the shared kubernetes-admin account, by attributed person."""
    return [u for u in users if "kubernetes-admin" in (u.get("accounts") or [])]


def coverage_view(coverage: dict[str, Any] | None, t: Messages) -> dict[str, Any]:
    """The cover's coverage line and section 9's gap table, from summary.json's coverage.

    ``complete`` is None when the summary predates the coverage block: unknown, not clean.
    """
    if coverage is None:
        return {"complete": None, "label": t("coverage.unknown"), "gaps": [], "events": None}
    gaps = [
        {
            "master": g.get("master"),
            "start": g.get("start"),
            "end": g.get("end"),
            "hours": g.get("hours"),
            "cause": _translated(
                t, f"cause.{str(g.get('cause')).replace(' ', '_')}", g.get("cause")
            ),
        }
        for g in coverage.get("gaps") or []
    ]
    complete = bool(coverage.get("complete"))
    return {
        "complete": complete,
        "label": t("coverage.complete") if complete else t("coverage.gaps", n=t.num(len(gaps))),
        "gaps": gaps,
        "events": coverage.get("events"),
    }


def custody_line(head: dict[str, Any] | None, t: Messages) -> str | None:
    """The custody head as "N records, last <16 hex>…"; None when there is none."""
    if not head or not head.get("last_record_sha256"):
        return None
    return t(
        "cover.custody_line",
        n=t.num(int(head.get("count") or 0)),
        sha=str(head["last_record_sha256"])[:16],
    )


def is_empty_week(summary: dict[str, Any], coverage: dict[str, Any] | None) -> bool:
    """No request and no event: the report says so rather than show a page of zeros."""
    events = (coverage or {}).get("events")
    return not int(summary.get("requests_total") or 0) and not int(events or 0)
