"""The investigation PDF: query, timeline, per-day activity, events with provenance, geo, manifest.

Reuses the weekly report's renderer (``reports.render``: autoescaped Jinja2, a fetcher that can
reach nothing outside ``reports/templates``), its bundled font and its stylesheet. As for the
weekly report, the manifest embedded in the PDF cannot hold the PDF's own hash, so
``<name>.manifest.json`` written next to the PDF carries the same fields plus ``pdf.sha256``.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.investigate.export import actor_text, csv_bytes, jsonl_bytes, object_text
from reports import charts
from reports.fonts.fetch import font_path
from reports.i18n import Messages
from reports.render import TEMPLATE_ROOT, TemplateOnlyFetcher, html_to_pdf, render_html
from reports.weekly import FONT_DIR, MANIFEST_VERSION, check_render_preconditions, sha256

if TYPE_CHECKING:
    from jobs.investigate.main import InvestigationResult

TEMPLATE_DIR = TEMPLATE_ROOT / "investigation"
TIMEZONE = "UTC"  # the query's own times are shown as given; event times are UTC
_EVIDENCE_FIELDS = ("master", "file", "evidence_sha256", "first_event", "last_event", "lines")


def code_version() -> str:
    """The installed kaudit version ("unknown" when not installed)."""
    try:
        return version("kaudit")
    except PackageNotFoundError:
        return "unknown"


def _failed(row: dict[str, Any]) -> bool:
    code = row.get("response_code")
    return code is not None and code >= 400


def _charts(result: InvestigationResult) -> dict[str, str]:
    font = font_path(FONT_DIR)
    rows = result.rows
    days = sorted({r["request_received_ts"].date() for r in rows})
    per_day = Counter((r["request_received_ts"].date(), _failed(r)) for r in rows)
    by_day = charts.ok_fail_chart(
        font,
        [d.isoformat()[5:] for d in days],
        [per_day[(d, False)] for d in days],
        [per_day[(d, True)] for d in days],
        ylabel="events",
        ok_label="succeeded or pending",
        failed_label="failed (>= 400)",
    )
    since, until = (t.astimezone(UTC) for t in (result.query.since, result.query.until))
    # Each event is a thin span on its actor's line, wide enough to be seen at any range.
    width = max((until - since) / 600, timedelta(seconds=1))
    spans = [
        (actor_text(r), r["request_received_ts"], r["request_received_ts"] + width, _failed(r))
        for r in rows
    ]
    timeline = charts.coverage_chart(
        font,
        spans,
        (since, until),
        covered_label="event",
        gap_label="failed event (>= 400)",
        xlabel="date",
        tz_name=TIMEZONE,
    )
    return {"by_day": by_day, "timeline": timeline}


def build_context(result: InvestigationResult, t: Messages) -> dict[str, Any]:
    """Everything the template shows except the charts and run metadata."""
    rows = result.rows
    events = [
        {
            **r,
            "actor": actor_text(r),
            "object": object_text(r),
            "failed": _failed(r),
            "time": r["request_received_ts"].strftime("%Y-%m-%d %H:%M:%S.%f"),
        }
        for r in rows
    ]
    requests = {(r["cluster"], r["audit_id"] or r["dedup_key"]) for r in rows}
    return {
        "query": result.query.describe(),
        "events": events,
        "execs": [e for e in events if e.get("exec_command")],
        "stats": {
            "events": len(rows),
            "requests": len(requests),
            "first": rows[0]["request_received_ts"] if rows else None,
            "last": rows[-1]["request_received_ts"] if rows else None,
            "actors": sorted({e["actor"] for e in events}),
            "files_read": len(result.files_read),
        },
        "ips": list(result.ips),
        "evidence": [_evidence_row(e) for e in result.evidence],
        "t": t,
    }


def _evidence_row(entry: Any) -> dict[str, Any]:
    return {f: getattr(entry, f) for f in _EVIDENCE_FIELDS}


def _manifest(
    result: InvestigationResult,
    generated_at: datetime,
    attachments: dict[str, bytes],
) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "kind": "investigation",
        "query": dict(result.query.describe()),
        "generated_at": generated_at.isoformat(),
        "code_version": code_version(),
        "events": len(result.rows),
        "lake_files_read": len(result.files_read),
        "evidence": [_evidence_row(e) for e in result.evidence],
        "attachments": {name: sha256(data) for name, data in sorted(attachments.items())},
        "pdf_sha256_note": "the .manifest.json next to the PDF carries pdf.sha256; this embedded "
        "copy cannot contain the hash of the file it is inside",
    }


def manifest_path(pdf: Path) -> Path:
    """Where the outer manifest of ``pdf`` goes: ``<stem>.manifest.json`` beside it."""
    return pdf.with_name(pdf.stem + ".manifest.json")


def render_investigation_pdf(
    result: InvestigationResult,
    out: Path,
    *,
    generated_at: datetime,
    fetcher: TemplateOnlyFetcher | None = None,
) -> Path:
    """Write ``out`` (PDF/A-3b with events.csv, events.jsonl and manifest.json embedded).

    Also writes :func:`manifest_path` of ``out``. Returns ``out``.
    """
    check_render_preconditions(generated_at)
    t = Messages("en", TIMEZONE)
    files = {"events.csv": csv_bytes(result), "events.jsonl": jsonl_bytes(result)}
    manifest = _manifest(result, generated_at, files)
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode()
    ctx = build_context(result, t)
    ctx.update(
        generated_at=generated_at,
        code_version=manifest["code_version"],
        manifest=manifest,
        charts=_charts(result) if result.rows else {},
    )
    html = render_html(TEMPLATE_DIR, ctx, t)
    # The stylesheet and font are the weekly report's: the fetcher may read all templates.
    pdf = html_to_pdf(
        html,
        TEMPLATE_DIR,
        {**files, "manifest.json": manifest_bytes},
        generated_at,
        fetcher or TemplateOnlyFetcher(TEMPLATE_ROOT),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pdf)
    outer = {**manifest, "pdf": {"file": out.name, "sha256": sha256(pdf)}}
    manifest_path(out).write_text(
        json.dumps(outer, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return out
