"""The weekly report's charts from its context (data selection; drawing is in charts.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from reports import charts, context
from reports.fonts.fetch import font_path
from reports.i18n import Messages
from reports.render import TEMPLATE_ROOT

FONT_DIR = TEMPLATE_ROOT / "weekly" / "fonts"


def _ok_failed(rows: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
    """(succeeded, failed) requests per overview row."""
    failed = [int(r["failures"] or 0) for r in rows]
    return [int(r["requests"]) - f for r, f in zip(rows, failed, strict=True)], failed


def week_charts(
    ctx: dict[str, Any],
    summary: dict[str, Any],
    t: Messages,
    window: tuple[datetime, datetime],
    coverage_rows: list[Any],
) -> dict[str, str]:
    """The report's charts as inline SVG strings, keyed by name.

    A chart without data is "" (the template says so in words): empty axes would look like a
    drawing error, and a zero-height bar like a measured zero.
    """
    font = font_path(FONT_DIR)

    def dim(name: str) -> list[dict[str, Any]]:
        return [r for r in ctx["overview"] if r["dimension"] == name]

    def ok_fail(labels: list[str], rows: list[dict[str, Any]]) -> str:
        return charts.ok_fail_chart(
            font,
            labels,
            *_ok_failed(rows),
            ylabel=t("chart.requests"),
            ok_label=t("chart.success"),
            failed_label=t("chart.failure"),
        )

    def by_hour() -> str:
        hours = week_hours(window)
        keyed = {r["key"]: r for r in dim("hour")}
        rows = [keyed.get(h, {"requests": 0, "failures": 0}) for h in hours]
        return charts.hourly_chart(
            font,
            *_ok_failed(rows),
            [(i, h[5:10]) for i, h in enumerate(hours) if h.endswith(" 00")],
            ylabel=t("chart.requests"),
            xlabel=t("chart.hour", tz=summary.get("timezone", "")),
            ok_label=t("chart.success"),
            failed_label=t("chart.failure"),
        )

    matrix = ctx["matrix"]
    countries = ctx["geo"]["countries"][:12]
    status = dim("status_class")
    drawings: dict[str, tuple[bool, Callable[[], str]]] = {
        "by_hour": (any(r["requests"] for r in dim("hour")), by_hour),
        "by_day": (
            bool(dim("day")),
            lambda: ok_fail([r["key"][5:] for r in dim("day")], dim("day")),
        ),
        "by_verb": (
            bool(dim("verb")),
            lambda: ok_fail([r["key"] for r in dim("verb")], dim("verb")),
        ),
        "by_kind": (
            bool(dim("user_kind")),
            lambda: ok_fail([t(f"kind.{r['key']}") for r in dim("user_kind")], dim("user_kind")),
        ),
        "by_status": (
            bool(status),
            lambda: charts.bar_chart(
                font,
                [r["key"] for r in status],
                [int(r["requests"]) for r in status],
                ylabel=t("chart.requests"),
                height_in=1.6,
            ),
        ),
        "category_verb": (
            bool(matrix),
            lambda: charts.grouped_chart(
                font,
                [t(f"cat.{c}") for c in matrix],
                {t(f"col.{op}"): [matrix[c][op] for c in matrix] for op in context.OPERATIONS},
                ylabel=t("chart.requests"),
            ),
        ),
        "by_country": (
            bool(countries),
            lambda: charts.bar_chart(
                font,
                [c for c, _ in countries],
                [n for _, n in countries],
                ylabel=t("chart.requests"),
                horizontal=True,
                height_in=0.6 + 0.22 * max(len(countries), 1),
            ),
        ),
        "coverage": (
            bool(coverage_rows),
            lambda: charts.coverage_chart(
                font,
                coverage_rows,
                window,
                covered_label=t("chart.covered"),
                gap_label=t("chart.gap"),
                xlabel=t("chart.day"),
                tz_name=summary.get("timezone", ""),
            ),
        ),
    }
    return {name: draw() if has_data else "" for name, (has_data, draw) in drawings.items()}


def week_hours(window: tuple[datetime, datetime]) -> list[str]:
    """The week's hours as the overview mart keys them: local "YYYY-MM-DD HH", in order.

    Stepped in UTC so that a DST change gives 167 or 169 hours, as the clock showed them.
    """
    start, end = (w.astimezone(UTC) for w in window)
    keys: list[str] = []
    moment = start
    while moment < end:
        key = moment.astimezone(window[0].tzinfo).strftime("%Y-%m-%d %H")
        if key not in keys[-1:]:
            keys.append(key)
        moment += timedelta(hours=1)
    return keys


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
