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

    session = get_spark("kaudit-tests", master="local[2]", driver_memory="2g",
                        extra_conf={"spark.sql.shuffle.partitions": "2"})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"corpus not found at {CORPUS}; set KAUDIT_CORPUS")
    return CORPUS
