from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

WEEK = "2026-W47"


@pytest.fixture(scope="session")
def synth_lake(spark, tmp_path_factory):
    """A small synth week (planted incidents), collected and ingested into a tmp home.

    Returns (layout, summary, logs dir).
    """
    from jobs import synth
    from jobs.evidence.main import run_collect
    from jobs.ingest import main as ingest_main
    from jobs.settings import Layout, parse_config

    tmp = tmp_path_factory.mktemp("investigate-synth")
    summary = synth.synth_week(
        tmp / "logs", week=WEEK, masters=2, events=2500, seed=5, cluster="demo"
    )
    masters = [
        {"name": f"master-{i}", "source": f"file://{tmp / 'logs' / f'master-{i}'}"} for i in (1, 2)
    ]
    config = parse_config(
        {"cluster": "demo", "timezone": synth.LOCAL_TZ_NAME, "masters": masters}, tmp
    )
    layout = Layout(tmp / "home")
    assert all(r.failure is None for r in run_collect(config, layout))
    ingest_main.run(spark, layout)
    return layout, summary, tmp / "logs"


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="session")
def raw_events(synth_lake):
    """Every line of the generated files, read with plain Python: the independent oracle."""
    _, _, logs = synth_lake
    out = []
    for path in sorted(Path(logs).rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        for n, line in enumerate(data.decode().splitlines(), start=1):
            if not line.strip():
                continue
            ev = json.loads(line)
            out.append(
                {
                    "sha": sha,
                    "line": n,
                    "file": path.name,
                    "master": path.parent.name,
                    "ev": ev,
                    "rrt": _ts(ev["requestReceivedTimestamp"]),
                    "st": _ts(ev["stageTimestamp"]),
                }
            )
    return out


@pytest.fixture(scope="session")
def window(synth_lake):
    """The synth week's [start, end) in UTC."""
    start, end = synth_lake[1]["window_utc"]
    return _ts(start), _ts(end)


def _order(rows):
    return [
        (r["sha"], r["line"])
        for r in sorted(rows, key=lambda r: (r["rrt"], r["st"], r["sha"], r["line"]))
    ]


@pytest.fixture(scope="session")
def oracle_order():
    """oracle_order(raw rows) -> [(sha, line)] in the investigation's time order."""
    return _order
