"""The weekly PDF report: marts + evidence ledger -> report.pdf, CSVs and manifest.json.

Two manifests: the one embedded in the PDF carries the evidence hashes, policy hash, code
version, validation result, config hash and every attachment's hash; it cannot carry the
hash of the PDF that contains it, so the ``manifest.json`` written next to the PDF carries
the same fields plus ``pdf.sha256``. ``reports.verify`` checks both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jobs.lake.marts import (
    mart_value_counts,
    read_mart_heads,
    read_mart_rows,
    read_mart_where,
    read_summary,
)
from reports import context, csvs
from reports import validation as checks
from reports.figures import coverage_rows, week_charts
from reports.fonts.fetch import font_is_present, font_path
from reports.i18n import Messages
from reports.render import (
    TEMPLATE_ROOT,
    TemplateOnlyFetcher,
    html_to_pdf,
    page_footer_css,
    render_html,
)

TEMPLATE_DIR = TEMPLATE_ROOT / "weekly"
FONT_DIR = TEMPLATE_DIR / "fonts"
MANIFEST_VERSION = 1
# Rows of one detection's CSV attachment (earliest first). The important_events mart keeps
# every row; a scan week can hold millions, which would make a PDF of hundreds of MB that
# no mail server takes (issue 15: the report's lists capped, the marts keep everything).
ATTACHMENT_ROWS = 10_000
EVIDENCE_COLUMNS = (
    "master",
    "file",
    "evidence_sha256",
    "first_event",
    "last_event",
    "lines",
    "events",
    "quarantined",
)
EVENT_COLUMNS = (
    "detection_id",
    "severity",
    "request_received_ts",
    "user_name",
    "attributed_user",
    "user_kind",
    "impersonated_user",
    "client_ip",
    "user_agent",
    "verb",
    "api_group",
    "resource",
    "subresource",
    "namespace",
    "object_name",
    "response_code",
    "audit_id",
    "master",
    "evidence_sha256",
    "line_no",
    "command",
)


class FontMissingError(RuntimeError):
    """The bundled CJK font is absent: the report would show boxes instead of Chinese."""


@dataclass(frozen=True)
class ReportResult:
    """What a render produced."""

    pdf: Path
    manifest: Path
    pdf_sha256: str
    csv_paths: tuple[Path, ...]


def check_render_preconditions(generated_at: datetime) -> None:
    """Refuse to render without the pinned font or with a naive ``generated_at``.

    Raises:
        FontMissingError: the bundled font is absent or altered.
        ValueError: ``generated_at`` has no time zone.
    """
    if not font_is_present(FONT_DIR):
        raise FontMissingError(
            f"{font_path(FONT_DIR)} is missing or altered: run `make install`"
            " (python -m reports.fonts.fetch)"
        )
    if generated_at.tzinfo is None:
        raise ValueError("generated_at must be timezone-aware")


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _rows(week_dir: Path, name: str) -> list[dict[str, Any]]:
    try:
        return read_mart_rows(week_dir, name)
    except FileNotFoundError:
        return []


def _detection_rows(week_dir: Path, detection_id: str) -> Iterator[dict[str, Any]]:
    """All the important events of one detection in mart order, by batch."""
    rows = read_mart_where(week_dir, "important_events", "detection_id", detection_id)
    if rows is None:
        return
    for batch in rows.to_batches(10_000):
        yield from batch.to_pylist()


def _table_rows(table: Any) -> Iterator[dict[str, Any]]:
    if table is None:
        return
    for batch in table.to_batches(10_000):
        yield from batch.to_pylist()


def detection_attachments(counts: dict[str, int]) -> list[dict[str, Any]]:
    """The per-detection CSVs cut at ATTACHMENT_ROWS: file, rows (kept), of (in the mart).

    ``counts``: rows of the important_events mart per detection.
    """
    limit = ATTACHMENT_ROWS
    return [
        {"file": f"detection-{det}.csv", "rows": limit, "of": n}
        for det, n in sorted(counts.items())
        if n > limit
    ]


def _attachments(
    week_dir: Path,
    ctx: dict[str, Any],
    evidence: list[dict[str, Any]],
    validation: dict[str, Any] | None,
) -> dict[str, bytes]:
    files = {
        "summary.json": (week_dir / "summary.json").read_bytes(),
        "evidence.csv": csvs.to_csv(evidence, EVIDENCE_COLUMNS),
    }
    if validation is not None:
        files[checks.CSV_FILE] = checks.to_csv(validation)
    heads = read_mart_heads(week_dir, "important_events", "detection_id", ATTACHMENT_ROWS)
    for det in ctx["detections"]:
        rows = _table_rows(heads.get(det["detection_id"]))
        files[f"detection-{det['detection_id']}.csv"] = csvs.to_csv(rows, EVENT_COLUMNS)
    for name, rows in (
        ("users.csv", ctx["all_users"]),
        ("source_ips.csv", ctx["all_ips"]),
        ("crd_operations.csv", ctx["all_crd"]),
        ("resource_operations.csv", ctx["all_ops"]),
    ):
        columns = list(rows[0]) if rows else ["empty"]
        files[name] = csvs.to_csv(rows, columns)
    return files


def build_week_context(
    week_dir: Path,
    *,
    cluster: str,
    week: str,
    t: Messages,
    evidence: list[dict[str, Any]],
    previous_summary: dict[str, Any] | None,
    validation: dict[str, Any] | None,
    coverage: dict[str, Any] | None = None,
    custody_head: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the template shows except the charts and run metadata.

    ``coverage`` and ``custody_head`` default to summary.json's coverage block and provenance.
    """
    summary = read_summary(week_dir)
    if coverage is None:
        coverage = summary.get("coverage")
    if custody_head is None:
        custody_head = (summary.get("provenance") or {}).get("custody_head")
    # important_events can hold millions of rows (a week under attack): read a detection at
    # a time, never the whole mart
    per_detection = mart_value_counts(week_dir, "important_events", "detection_id")
    ips = _rows(week_dir, "source_ips")
    users = _rows(week_dir, "users")
    detections = context.detection_rows(_rows(week_dir, "detections"), summary, t)
    resource_ops = _rows(week_dir, "resource_operations")
    ops = _rows(week_dir, "resource_detail_operations")
    crd = _rows(week_dir, "crd_operations")
    firsts = [e["first_event"] for e in evidence if e.get("first_event")]
    lasts = [e["last_event"] for e in evidence if e.get("last_event")]
    return {
        "summary": summary,
        "detections": detections,
        "capped_attachments": detection_attachments(per_detection),
        "overview": _rows(week_dir, "overview"),
        "evidence": sorted(evidence, key=lambda e: (e["master"], e.get("first_event") or "")),
        "evidence_stats": {
            "masters": len({e["master"] for e in evidence}),
            "files": len(evidence),
            "events": sum(int(e.get("events") or 0) for e in evidence),
            "first": min(firsts) if firsts else None,
            "last": max(lasts) if lasts else None,
        },
        "figures": context.figures_with_deltas(summary, previous_summary, t),
        "has_previous": previous_summary is not None,
        "findings": context.top_findings(
            detections, list(_detection_rows(week_dir, "exec")), ips, t
        ),
        "important": context.important_groups(detections, t),
        "matrix": context.resource_matrix(resource_ops),
        "resource_table": context.resource_table(resource_ops),
        "resources": context.resource_details(_rows(week_dir, "resource_detail"), ops),
        "geo": context.geography(ips, t),
        "ips": context.cap(ips, context.CAP, "source_ips.csv"),
        "alerts": context.cap(context.alert_ips(ips), context.CAP, "source_ips.csv"),
        "alert_min": context.ALERT_MIN_REQUESTS,
        "alert_rate": context.ALERT_MIN_FAILURE_RATE,
        "users": context.cap(users, context.CAP, "users.csv"),
        "admin": context.admin_attribution(users),
        "impersonation": _rows(week_dir, "impersonation"),
        "crd": context.cap(crd, context.CAP, "crd_operations.csv"),
        "policy_findings": _rows(week_dir, "policy_findings"),
        "policy_fit": _rows(week_dir, "policy_fit"),
        "validation": checks.view(validation, t),
        "coverage": context.coverage_view(coverage, t),
        "custody": context.custody_line(custody_head, t),
        "empty_week": context.is_empty_week(summary, coverage),
        "operations": context.OPERATIONS,
        "all_users": users,
        "all_ips": ips,
        "all_crd": crd,
        "all_ops": ops,
    }


def _manifest(
    *,
    cluster: str,
    week: str,
    generated_at: datetime,
    code_version: str,
    config_sha256: str,
    policy: dict[str, Any],
    validation: dict[str, Any] | None,
    evidence: list[dict[str, Any]],
    attachments: dict[str, bytes],
    capped: list[dict[str, Any]],
    custody_head: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        # the custody log's head when the report was made: a chain cut or rewritten later
        # disagrees with every report published from it (`kaudit verify` checks)
        "custody_head": custody_head,
        "manifest_version": MANIFEST_VERSION,
        "cluster": cluster,
        "week": week,
        "generated_at": generated_at.isoformat(),
        "code_version": code_version,
        "config_sha256": config_sha256,
        "policy": {"source": str(policy.get("source")), "sha256": policy.get("sha256")},
        "validation": {
            "status": checks.status(validation),
            "success": None if validation is None else bool(validation["success"]),
        },
        "evidence": [{k: e.get(k) for k in EVIDENCE_COLUMNS} for e in evidence],
        "attachments": {name: sha256(data) for name, data in sorted(attachments.items())},
        # attachments cut at ATTACHMENT_ROWS: {file: {rows, of}}; the marts hold every row
        "attachments_capped": {c["file"]: {"rows": c["rows"], "of": c["of"]} for c in capped},
        "pdf_sha256_note": "the manifest.json next to the PDF carries pdf.sha256; this embedded "
        "copy cannot contain the hash of the file it is inside",
    }


def render_weekly_report(
    week_dir: Path,
    out_dir: Path,
    *,
    cluster: str,
    week: str,
    timezone: str,
    language: str,
    evidence: list[dict[str, Any]],
    policy: dict[str, Any],
    validation: dict[str, Any] | None,
    previous_summary: dict[str, Any] | None,
    code_version: str,
    config_sha256: str,
    generated_at: datetime,
    coverage: dict[str, Any] | None = None,
    fetcher: TemplateOnlyFetcher | None = None,
    custody_head: dict[str, Any] | None = None,
) -> ReportResult:
    """Render ``out_dir/report.pdf`` (PDF/A-3b), ``manifest.json`` and the CSVs beside it.

    ``fetcher`` lets a test watch every URL the renderer asks for.
    """
    check_render_preconditions(generated_at)
    t = Messages(language, timezone)
    ctx = build_week_context(
        week_dir,
        cluster=cluster,
        week=week,
        t=t,
        evidence=evidence,
        previous_summary=previous_summary,
        validation=validation,
        coverage=coverage,
        custody_head=custody_head,
    )
    summary = ctx["summary"]
    coverage = coverage if coverage is not None else summary.get("coverage")
    zone = ZoneInfo(timezone)
    window = (
        datetime.fromisoformat(summary["window"]["start"]).astimezone(zone),
        datetime.fromisoformat(summary["window"]["end"]).astimezone(zone),
    )
    files = _attachments(week_dir, ctx, ctx["evidence"], validation)
    manifest = _manifest(
        cluster=cluster,
        week=week,
        generated_at=generated_at,
        code_version=code_version,
        config_sha256=config_sha256,
        policy=policy,
        validation=validation,
        evidence=ctx["evidence"],
        attachments=files,
        capped=ctx["capped_attachments"],
        custody_head=custody_head,
    )
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode()
    ctx.update(
        cluster=cluster,
        week=week,
        timezone=timezone,
        lang=language,
        window_start=window[0].date().isoformat(),
        window_end=window[1].date().fromordinal(window[1].date().toordinal() - 1).isoformat(),
        generated_at=generated_at,
        code_version=code_version,
        config_sha256=config_sha256,
        policy=policy,
        charts=week_charts(
            ctx, summary, t, window, coverage_rows(ctx["evidence"], coverage, window)
        ),
        font_file=f"fonts/{font_path(FONT_DIR).name}",
        page_footer=page_footer_css(t),
    )
    html = render_html(TEMPLATE_DIR, ctx, t)
    pdf = html_to_pdf(
        html, TEMPLATE_DIR, {**files, "manifest.json": manifest_bytes}, generated_at, fetcher
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_dir = out_dir / "attachments"
    csv_dir.mkdir(exist_ok=True)
    csv_paths = []
    for name, data in sorted(files.items()):
        if name.endswith(".csv"):
            (csv_dir / name).write_bytes(data)
            csv_paths.append(csv_dir / name)
    pdf_path = out_dir / "report.pdf"
    pdf_path.write_bytes(pdf)
    digest = sha256(pdf)
    outer = {**manifest, "pdf": {"file": pdf_path.name, "sha256": digest}}
    manifest_path = out_dir / "manifest.json"
    manifest_path.write_text(
        json.dumps(outer, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return ReportResult(
        pdf=pdf_path, manifest=manifest_path, pdf_sha256=digest, csv_paths=tuple(csv_paths)
    )
