"""The alert digest in each channel's form: escaped markdown, plain text, JSON payload."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobs.alerts.evaluate import Alert
from reports.delivery.digest import Digest
from reports.delivery.results import one_line
from reports.delivery.webhook import escape_markdown

MAX_LISTED = 30


def _describe(alert: Alert) -> list[str]:
    """The alert's event-derived facts, unescaped, in reading order."""
    d = alert.details
    who = d.get("attributed_user") or d.get("user_name") or "(unauthenticated)"
    obj = "/".join(str(x) for x in (d.get("namespace"), d.get("object_name")) if x)
    facts = [f"user {who}"]
    if obj:
        facts.append(f"{d.get('resource') or ''} {obj}".strip())
    if d.get("container"):
        facts.append(f"container {d['container']}")
    if d.get("command"):
        facts.append(f"command {d['command']}")
    if d.get("client_ip"):
        facts.append(f"from {d['client_ip']}")
    if alert.requests > 1:
        facts.append(f"{alert.requests} requests")
    return facts


def build_alert_digest(cluster: str, run_id: str, alerts: Sequence[Alert]) -> Digest:
    """Title, markdown (every event-derived text escaped), plain text and JSON payload."""
    n = len(alerts)
    subject = f"kaudit alert: {cluster}: {n} new finding{'s' if n != 1 else ''}"
    md_lines, text_lines = [f"### {escape_markdown(subject)}", ""], [subject, ""]
    for alert in alerts[:MAX_LISTED]:
        facts = _describe(alert)
        md_lines.append(
            f"- **{alert.severity}** {escape_markdown(alert.title)}: "
            + "; ".join(escape_markdown(f) for f in facts)
            + f" (at {escape_markdown(alert.first_seen)})"
        )
        text_lines.append(one_line(
            f"- [{alert.severity}] {alert.title}: {'; '.join(facts)} (at {alert.first_seen})", 500
        ))  # fmt: skip
    if n > MAX_LISTED:
        more = f"... and {n - MAX_LISTED} more (kaudit investigate, or the weekly report)"
        md_lines.append(f"- {more}")
        text_lines.append(more)
    payload: dict[str, Any] = {
        "kind": "kaudit.alerts",
        "cluster": cluster,
        "run_id": run_id,
        "alerts": [a.to_json() for a in alerts],
    }
    return Digest(subject, "\n".join(md_lines), "\n".join(text_lines), payload)
