"""Fixtures of the report tests; the tiny week itself is in report_week.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_week import write_week

from reports.fonts.fetch import fetch as fetch_font


@pytest.fixture(scope="session")
def font() -> None:
    fetch_font()  # make install has normally done this; a no-op when the font is present


@pytest.fixture(scope="session")
def week_dir(tmp_path_factory) -> Path:
    return write_week(tmp_path_factory.mktemp("week") / "2026-W47")
