"""A small synthetic week shared by the tests of this directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from week_reader import EVENTS, MAX_MB, events_of

from jobs.synth import synth_week


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("week")
    summary = synth_week(root, events=EVENTS, max_size_mb=MAX_MB, seed=5)
    return root, summary


@pytest.fixture(scope="module")
def events(week: tuple[Path, dict]) -> list[tuple[str, dict]]:
    return events_of(week[0])
