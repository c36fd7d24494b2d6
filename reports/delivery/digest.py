"""The short weekly summary sent by webhook and as the e-mail body.

Key figures, top findings, validation status and the PDF's path and SHA-256, built from
summary.json. Event-derived text is escaped for markdown here; the JSON payload carries it as data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports.delivery.results import one_line
from reports.delivery.webhook import escape_markdown

VALIDATION_FAILED = "VALIDATION FAILED"
TOP_FINDINGS = 5
TOP_USERS = 3
_SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}


@dataclass(frozen=True)
class Digest:
    """One message in the forms each channel needs."""

    subject: str
    markdown: str
    text: str
    payload: dict[str, Any]


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def key_figures(summary: Mapping[str, Any]) -> dict[str, int]:
    """Headline counts from summary.json; a missing key counts as 0."""
    status = summary.get("requests_by_status_class") or {}
    detections = summary.get("detections") or {}
    statuses = summary.get("detections_status") or {}
    ips = summary.get("source_ips") or []
    return {
        "requests_total": _int(summary.get("requests_total")),
        "events_total": _int(summary.get("events_total")),
        "failed_requests": _int(status.get("4xx")) + _int(status.get("5xx")),
        "public_ips": sum(1 for r in ips if isinstance(r, Mapping) and r.get("is_public")),
        "users": len(summary.get("users") or []),
        "detections_fired": sum(1 for n in detections.values() if _int(n) > 0),
        "detections_not_observable": sum(1 for s in statuses.values() if s != "ok"),
    }


def top_findings(
    summary: Mapping[str, Any], detection_info: Mapping[str, tuple[str, str]] | None = None
) -> list[dict[str, Any]]:
    """Fired detections, most severe then most frequent first.

    ``detection_info`` maps a detection id to (severity, title), from the catalogue.
    """
    info = detection_info or {}
    fired = [(str(k), _int(n)) for k, n in (summary.get("detections") or {}).items() if _int(n)]
    rows: list[dict[str, Any]] = [
        {
            "detection": k,
            "severity": info.get(k, ("", ""))[0],
            "title": info.get(k, ("", k))[1],
            "requests": n,
        }
        for k, n in fired
    ]
    rows.sort(key=lambda r: (_SEVERITY_RANK.get(r["severity"], 9), -r["requests"], r["detection"]))
    return rows[:TOP_FINDINGS]


def top_users(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The busiest human users (the people behind the week's activity)."""
    users = [
        u
        for u in summary.get("users") or []
        if isinstance(u, Mapping) and u.get("kind") == "human" and u.get("user")
    ]
    users.sort(key=lambda u: (-_int(u.get("requests")), str(u["user"])))
    return [
        {"user": str(u["user"]), "requests": _int(u.get("requests"))} for u in users[:TOP_USERS]
    ]


def build_report_digest(
    summary: Mapping[str, Any],
    *,
    validation_ok: bool,
    pdf_path: Path,
    pdf_sha256: str,
    detection_info: Mapping[str, tuple[str, str]] | None = None,
) -> Digest:
    """The weekly report's summary message; marked VALIDATION FAILED when validation failed."""
    cluster = one_line(str(summary.get("cluster", "?")), 100)
    week = one_line(str(summary.get("week", "?")), 20)
    window = summary.get("window") or {}
    figures = key_figures(summary)
    findings = top_findings(summary, detection_info)
    users = top_users(summary)
    status = "passed" if validation_ok else VALIDATION_FAILED
    mark = "" if validation_ok else f"[{VALIDATION_FAILED}] "
    subject = f"{mark}kaudit weekly audit report: {cluster} {week}"
    payload: dict[str, Any] = {
        "kind": "kaudit.weekly_report",
        "cluster": cluster,
        "week": week,
        "timezone": summary.get("timezone"),
        "window": {"start": window.get("start"), "end": window.get("end")},
        "validation": {"ok": validation_ok, "status": status},
        "figures": figures,
        "top_findings": findings,
        "top_users": users,
        "pdf": {"path": str(pdf_path), "sha256": pdf_sha256},
    }
    esc = escape_markdown
    md = [f"### {esc(subject)}"]
    if not validation_ok:
        md.append(f"**{VALIDATION_FAILED}**: do not treat this report as clean.")
    period = f"{window.get('start', '?')} – {window.get('end', '?')} ({summary.get('timezone')})"
    lines = [
        f"Period: {period}",
        f"Requests: {figures['requests_total']}, events: {figures['events_total']}, "
        f"failed (4xx/5xx): {figures['failed_requests']}",
        f"Public source IPs: {figures['public_ips']}, users: {figures['users']}",
        f"Detections fired: {figures['detections_fired']}, not observable under the policy: "
        f"{figures['detections_not_observable']}",
        f"Validation: {status}",
    ]
    md += [f"- {esc(line)}" for line in lines]
    text = [subject, "", *lines, "", "Top findings:"]
    md.append("\n**Top findings**")
    for f in findings or [{"severity": "", "title": "none", "requests": 0, "detection": ""}]:
        sev = f"[{f['severity']}] " if f["severity"] else ""
        item = f"{sev}{f['title']}: {f['requests']}" if f["detection"] else "none"
        md.append(f"- {esc(item)}")
        text.append(f"- {one_line(item)}")
    if users:
        who = ", ".join(f"{u['user']} ({u['requests']})" for u in users)
        md.append(f"\n**Top users**: {esc(who, 400)}")
        text += ["", f"Top users: {one_line(who, 400)}"]
    md.append(f"\nPDF: {esc(str(pdf_path), 400)}  \nSHA-256: {pdf_sha256}")
    text += [
        "",
        f"PDF: {pdf_path}",
        f"SHA-256: {pdf_sha256}",
        "",
        "The PDF and its manifest.json are attached; `kaudit verify` checks them.",
    ]
    return Digest(
        subject=subject, markdown="\n".join(md), text="\n".join(text) + "\n", payload=payload
    )
