"""Shared fixtures: one SparkSession for the whole test session (start-up costs ~15 s)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

# PySpark hands timestamps to Python in the process's local zone; the tests compare them
# with UTC values, so the test process runs in UTC whatever the machine's zone.
os.environ["TZ"] = "UTC"
time.tzset()

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("KAUDIT_CORPUS", ROOT.parent / "shared" / "corpus"))


@pytest.fixture(scope="session")
def spark():
    from jobs._session import get_spark

    session = get_spark(
        "kaudit-tests",
        master="local[2]",
        driver_memory="2g",
        extra_conf={"spark.sql.shuffle.partitions": "2"},
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"corpus not found at {CORPUS}; set KAUDIT_CORPUS")
    return CORPUS


@pytest.fixture(scope="session")
def small_week(spark, tmp_path_factory):
    """One small synthetic week (3 masters, planted incidents) collected and ingested, shared
    by every test that only reads it (ingest is the expensive part). Tests that write under
    the home copy it first (``copy_home``). Returns (config, layout, synth summary)."""
    from jobs import synth
    from jobs.evidence.main import run_collect
    from jobs.ingest import main as ingest_main
    from jobs.settings import Layout, parse_config

    tmp = tmp_path_factory.mktemp("small-week")
    summary = synth.synth_week(
        tmp / "logs", week="2026-W47", masters=3, events=3000, seed=11, cluster="demo"
    )
    masters = [
        {"name": f"master-{i}", "source": f"file://{tmp / 'logs' / f'master-{i}'}"}
        for i in (1, 2, 3)
    ]
    config = parse_config(
        {"cluster": "demo", "timezone": synth.LOCAL_TZ_NAME, "masters": masters}, tmp
    )
    layout = Layout(tmp / "home")
    assert all(r.failure is None for r in run_collect(config, layout))
    ingest_main.run(spark, layout)
    return config, layout, summary


@pytest.fixture
def copy_home(small_week, tmp_path):
    """A private copy of the small week's home, for tests that write marts or reports."""
    import shutil

    from jobs.settings import Layout

    config, layout, _ = small_week
    home = tmp_path / "home"
    shutil.copytree(layout.home, home)
    for path in home.rglob("*"):
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    return config, Layout(home)
