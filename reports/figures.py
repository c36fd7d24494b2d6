"""The weekly report's charts from its context (data selection; drawing is in charts.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reports import charts, context
from reports.fonts.fetch import font_path
from reports.i18n import Messages
from reports.render import TEMPLATE_ROOT

FONT_DIR = TEMPLATE_ROOT / "weekly" / "fonts"


def week_charts(
    ctx: dict[str, Any],
    summary: dict[str, Any],
    t: Messages,
    window: tuple[datetime, datetime],
    coverage_rows: list[Any],
) -> dict[str, str]:
    """The report's charts as inline SVG strings, keyed by name."""
    font = font_path(FONT_DIR)
    by_day = [r for r in ctx["overview"] if r["dimension"] == "day"]

    def dim(name: str) -> list[dict[str, Any]]:
        return [r for r in ctx["overview"] if r["dimension"] == name]

    kinds = dim("user_kind")

    def ok_fail(labels: list[str], rows: list[dict[str, Any]]) -> str:
        failed = [int(r["failures"] or 0) for r in rows]
        ok = [int(r["requests"]) - f for r, f in zip(rows, failed, strict=True)]
        return charts.ok_fail_chart(
            font,
            labels,
            ok,
            failed,
            ylabel=t("chart.requests"),
            ok_label=t("chart.success"),
            failed_label=t("chart.failure"),
        )

    matrix = ctx["matrix"]
    countries = ctx["geo"]["countries"][:12]
    return {
        "by_day": ok_fail([r["key"][5:] for r in by_day], by_day),
        "by_verb": ok_fail([r["key"] for r in dim("verb")], dim("verb")),
        "by_kind": ok_fail([t(f"kind.{r['key']}") for r in kinds], kinds),
        "by_status": charts.bar_chart(
            font,
            [r["key"] for r in dim("status_class")],
            [int(r["requests"]) for r in dim("status_class")],
            ylabel=t("chart.requests"),
            height_in=1.6,
        ),
        "category_verb": charts.grouped_chart(
            font,
            [t(f"cat.{c}") for c in matrix],
            {t(f"col.{op}"): [matrix[c][op] for c in matrix] for op in context.OPERATIONS},
            ylabel=t("chart.requests"),
        ),
        "by_country": charts.bar_chart(
            font,
            [c for c, _ in countries],
            [n for _, n in countries],
            ylabel=t("chart.requests"),
            horizontal=True,
            height_in=0.6 + 0.22 * max(len(countries), 1),
        ),
        "coverage": charts.coverage_chart(
            font,
            coverage_rows,
            window,
            covered_label=t("chart.covered"),
            gap_label=t("chart.gap"),
            xlabel=t("chart.day"),
            tz_name=summary.get("timezone", ""),
        ),
    }


def coverage_rows(
    evidence: list[dict[str, Any]],
    coverage: dict[str, Any] | None,
    window: tuple[datetime, datetime],
) -> list[tuple[str, datetime, datetime, bool]]:
    """Timeline rows (master, start, end, is_gap) clipped to the report week."""

    def clip(value: str) -> datetime:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return min(max(moment, window[0]), window[1])

    rows = [
        (e["master"], clip(e["first_event"]), clip(e["last_event"]), False)
        for e in evidence
        if e.get("first_event") and e.get("last_event")
    ]
    # ``coverage`` (from the collection issue): {"gaps": [{"master", "start", "end"}]}
    rows += [
        (g["master"], clip(g["start"]), clip(g["end"]), True)
        for g in (coverage or {}).get("gaps") or []
    ]
    return sorted(rows, key=lambda r: (r[0], r[1], r[3]))
