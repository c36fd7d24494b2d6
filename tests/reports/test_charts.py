"""The charts' count axes: whole numbers with thousands separators, as the bar labels."""

from __future__ import annotations

import re
from html import unescape

import pytest

from reports import charts
from reports.figures import FONT_DIR
from reports.fonts.fetch import font_path


def _texts(svg: str) -> list[str]:
    return [unescape(t).strip() for t in re.findall(r"<text\b[^>]*>([^<]*)</text>", svg)]


def _ticks(svg: str, axis: str) -> list[str]:
    """The tick labels of one axis ("x" or "y"): matplotlib groups each as <g id="ytick_N">."""
    found = re.findall(rf'<g id="{axis}tick_\d+">.*?<text\b[^>]*>([^<]*)</text>', svg, re.DOTALL)
    return [unescape(t).strip() for t in found]


@pytest.mark.parametrize("horizontal", [False, True])
def test_a_million_requests_read_as_a_count_not_a_power_of_ten(font, horizontal):
    svg = charts.bar_chart(
        font_path(FONT_DIR), ["1xx", "2xx", "4xx"], [5, 1_257_882, 12_438],
        ylabel="requests", horizontal=horizontal,
    )  # fmt: skip
    axis = _ticks(svg, "x" if horizontal else "y")
    assert axis[0] == "0" and all(re.fullmatch(r"\d{1,3}(,\d{3})*", t) for t in axis), axis
    assert any("," in t for t in axis), axis
    assert "1,257,882" in _texts(svg)  # the bar's own label, as before
    assert not [t for t in _texts(svg) if re.search(r"\de\d|1e", t)]  # no "1e6" offset


def test_small_counts_get_whole_ticks_only(font):
    for svg in (
        charts.bar_chart(font_path(FONT_DIR), ["a", "b"], [1, 0], ylabel="requests"),
        charts.ok_fail_chart(
            font_path(FONT_DIR), ["a", "b"], [1, 0], [0, 1], ylabel="requests",
            ok_label="ok", failed_label="failed",
        ),
        charts.hourly_chart(
            font_path(FONT_DIR), [1, 0, 1], [0, 1, 0], [(0, "11-16")], ylabel="requests",
            xlabel="hour", ok_label="ok", failed_label="failed",
        ),
    ):  # fmt: skip
        ticks = _ticks(svg, "y")
        assert ticks and all(re.fullmatch(r"\d+", t) for t in ticks), ticks
        assert len(ticks) == len(set(ticks)), ticks  # 0.5 shown as "0" or "1" would repeat
