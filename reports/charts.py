"""Report charts: tidy data in, byte-stable SVG out (matplotlib Figure API, never pyplot).

One colour means "bad" and one "good" in every chart; bad bars are also hatched so the
distinction survives greyscale printing, and every bar carries its value as a label.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib import font_manager
from matplotlib.dates import DateFormatter
from matplotlib.dates import date2num as _date2num
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

GOOD = "#1a7f4b"
BAD = "#c0262d"
NEUTRAL = "#3f5f7f"
BAD_HATCH = "////"
WIDTH_IN = 6.8
_SVG_META = {"Date": None, "Creator": "kaudit", "Format": None, "Type": None}


def _num(moment: datetime) -> float:
    return float(_date2num(moment))  # type: ignore[no-untyped-call]


@contextmanager
def _style(font: Path) -> Iterator[None]:
    font_manager.fontManager.addfont(str(font))
    family = font_manager.FontProperties(fname=str(font)).get_name()
    rc: Any = {
        "svg.hashsalt": "kaudit",
        # text as SVG <text> in the report's font (WeasyPrint sets it as PDF text): as glyph
        # paths, drawing the charts' text took WeasyPrint seconds per report
        "svg.fonttype": "none",
        "font.family": [family],
        "font.size": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "hatch.color": "white",
        "axes.unicode_minus": False,
    }
    with matplotlib.rc_context(rc):
        yield


@contextmanager
def _axes(font: Path, height_in: float) -> Iterator[Any]:
    """One report-wide axes in the house style; render it with ``_svg`` inside the block."""
    with _style(font):
        yield Figure(figsize=(WIDTH_IN, height_in)).add_subplot()


def _legend_below(ax: Any, y: float, ncols: int = 2, **legend: Any) -> None:
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, y), ncols=ncols, frameon=False, **legend)


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata=_SVG_META, bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]  # inline in HTML: no XML prolog or DOCTYPE


def _count_axis(axis: Any) -> None:
    """A linear axis of counts: whole numbers with thousands separators, never "1e6"."""
    axis.set_major_locator(MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True))
    axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def _label_bars(ax: Any, bars: Any, values: Sequence[float], fmt: str = "{:,.0f}") -> None:
    ax.bar_label(
        bars,
        labels=[fmt.format(v) if v else "" for v in values],
        fontsize=6.5,
        padding=1.5,
    )


def _stack(
    ax: Any,
    xs: Sequence[Any],
    ok: Sequence[int],
    failed: Sequence[int],
    labels: tuple[str, str],
    **bar: Any,
) -> Any:
    """Good bars with the bad ones (hatched) stacked on top; returns the bad bars."""
    ax.bar(xs, list(ok), color=GOOD, label=labels[0], **bar)
    return ax.bar(
        xs, list(failed), bottom=list(ok), color=BAD, hatch=BAD_HATCH, label=labels[1], **bar
    )


def bar_chart(
    font: Path,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    ylabel: str,
    horizontal: bool = False,
    height_in: float = 2.2,
) -> str:
    """Plain counts, one neutral colour (counts are neither good nor bad)."""
    with _axes(font, height_in) as ax:
        if horizontal:
            bars = ax.barh(list(labels)[::-1], list(values)[::-1], color=NEUTRAL)
            _count_axis(ax.xaxis)
            ax.set_xlabel(ylabel)
            _label_bars(ax, bars, list(values)[::-1])
        else:
            bars = ax.bar(list(labels), list(values), color=NEUTRAL)
            _count_axis(ax.yaxis)
            ax.set_ylabel(ylabel)
            _label_bars(ax, bars, values)
        ax.margins(x=0.02, y=0.15)
        return _svg(ax.figure)


def ok_fail_chart(
    font: Path,
    labels: Sequence[str],
    ok: Sequence[int],
    failed: Sequence[int],
    *,
    ylabel: str,
    ok_label: str,
    failed_label: str,
    height_in: float = 2.2,
) -> str:
    """Stacked good/bad bars (successes and failures per label)."""
    with _axes(font, height_in) as ax:
        bad = _stack(ax, list(labels), ok, failed, (ok_label, failed_label))
        _label_bars(ax, bad, failed)
        _count_axis(ax.yaxis)
        ax.set_ylabel(ylabel)
        _legend_below(ax, -0.15)
        return _svg(ax.figure)


def hourly_chart(
    font: Path,
    ok: Sequence[int],
    failed: Sequence[int],
    ticks: Sequence[tuple[int, str]],
    *,
    ylabel: str,
    xlabel: str,
    ok_label: str,
    failed_label: str,
    height_in: float = 2.0,
) -> str:
    """Stacked good/bad bars, one per hour, touching; ``ticks`` are (bar index, label).

    Too many bars to label each: the axis carries the values instead.
    """
    xs = list(range(len(ok)))
    with _axes(font, height_in) as ax:
        _stack(ax, xs, ok, failed, (ok_label, failed_label), width=1.0, linewidth=0)
        ax.set_xticks([i - 0.5 for i, _ in ticks], [label for _, label in ticks], ha="left")
        ax.set_xlim(-0.5, max(len(xs), 1) - 0.5)
        ax.grid(axis="x", color="#b9b9b9", linewidth=0.4)
        ax.set_axisbelow(True)
        _count_axis(ax.yaxis)
        ax.set_ylabel(ylabel)
        ax.set_xlabel(xlabel)
        _legend_below(ax, -0.3)
        return _svg(ax.figure)


def grouped_chart(
    font: Path,
    groups: Sequence[str],
    series: dict[str, Sequence[int]],
    *,
    ylabel: str,
    log: bool = True,
    height_in: float = 2.6,
) -> str:
    """Grouped bars: one group per category, one bar per series (verb), log scale by default.

    Series are told apart by hatch as well as grey level, so print keeps them distinct.
    """
    hatches = ["", "..", "xx", "\\\\\\", "--", "oo"]
    shades = ["#1f3b57", "#4f7596", "#8fb0cc", "#c9d9e8", "#6b6b6b", "#a0a0a0"]
    with _axes(font, height_in) as ax:
        width = 0.8 / max(len(series), 1)
        for i, (name, values) in enumerate(series.items()):
            xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
            plotted = [v if v > 0 else 0 for v in values]
            bars = ax.bar(
                xs,
                plotted,
                width,
                label=name,
                color=shades[i % len(shades)],
                hatch=hatches[i % len(hatches)],
                edgecolor="black",
                linewidth=0.4,
            )
            _label_bars(ax, bars, values)
        ax.set_xticks(range(len(groups)), list(groups))
        if log:
            ax.set_yscale("symlog", linthresh=1)
        ax.set_ylabel(ylabel)
        _legend_below(ax, -0.12, ncols=len(series))
        return _svg(ax.figure)


def coverage_chart(
    font: Path,
    rows: Sequence[tuple[str, datetime, datetime, bool]],
    window: tuple[datetime, datetime],
    *,
    covered_label: str,
    gap_label: str,
    xlabel: str,
    tz_name: str,
) -> str:
    """A timeline per master: covered spans in the good colour, gaps hatched in the bad one.

    ``rows`` are (master, start, end, is_gap); the x axis is the report week.
    """
    masters = sorted({r[0] for r in rows})
    with _axes(font, 0.5 + 0.35 * max(len(masters), 1)) as ax:
        for master, start, end, is_gap in rows:
            y = masters.index(master)
            left = _num(start)
            ax.barh(
                y,
                _num(end) - left,
                left=left,
                height=0.5,
                color=BAD if is_gap else GOOD,
                hatch=BAD_HATCH if is_gap else "",
                edgecolor="black" if is_gap else GOOD,
                linewidth=0.3,
            )
        ax.set_yticks(range(len(masters)), masters)
        ax.set_xlim(_num(window[0]), _num(window[1]))
        formatter = DateFormatter("%m-%d", tz=window[0].tzinfo)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(formatter)
        ax.set_xlabel(f"{xlabel} ({tz_name})")
        handles = [
            Patch(color=GOOD, label=covered_label),
            Patch(facecolor=BAD, hatch=BAD_HATCH, label=gap_label),
        ]
        _legend_below(ax, -0.35, handles=handles)
        return _svg(ax.figure)
