"""Repeated bench steps: the table's figure is the median run; memory is the worst run's."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench


def _run(seconds, pss, workers=False, label="x"):
    return {
        "seconds": seconds,
        "pss_mib": pss,
        "python_workers": workers,
        "steps": {"marts": seconds / 2},
        "eventlog": label,
    }


def test_the_median_run_with_the_worst_memory():
    runs = [_run(130.0, 2000, label="a"), _run(110.0, 2600, label="b"), _run(115.0, 2100, True)]
    m = bench.median_of(runs)
    assert m["seconds"] == 115.0 and m["steps"] == {"marts": 57.5}
    assert m["pss_mib"] == 2600 and m["python_workers"] is True
    assert m["runs"] == [130.0, 110.0, 115.0]
    # an even count: the lower middle, never an average no run took
    assert bench.median_of(runs[:2])["seconds"] == 110.0


def test_the_table_shows_every_run_and_the_ratio_of_medians():
    step = bench.median_of([_run(40.0, 1600), _run(50.0, 1650), _run(45.0, 1620)])
    floor = bench.median_of([_run(30.0, 1300), _run(36.0, 1350), _run(31.0, 1310)])
    duck = bench.median_of([_run(12.0, 3300)])
    rows = bench.table(
        [{"events": 10, "ingest": step, "floor": floor, "duckdb": duck}], None, None, None
    )
    assert rows[2].startswith(
        "| ingest, whole process | 10 | 45.0 (40.0 / 50.0 / 45.0) | 31.0 (30.0 / 36.0 / 31.0) "
        "| 12.0 | 1.45x |"
    )
    assert "| 1650 / 1350 / 3300 |" in rows[2]


def test_the_weekly_and_adversarial_rows_with_their_steps():
    size = {
        "events": 10,
        "ingest": bench.median_of([_run(40.0, 1600)]),
        "floor": bench.median_of([_run(30.0, 1300)]),
        "duckdb": bench.median_of([_run(12.0, 3300)]),
        "report": bench.median_of([_run(118.0, 2700), _run(112.0, 2800)]),
        "marts_floor": bench.median_of([_run(30.0, 1500), _run(31.0, 1500)]),
        "duckdb_marts": bench.median_of([_run(2.5, 990), _run(2.6, 990)]),
    }
    adv = {"events": "10+5", "report": bench.median_of([_run(230.0, 3100), _run(250.0, 3000)])}
    rows = bench.table([size], None, adv, None)
    assert (
        "| weekly run (`kaudit report`), whole process | 10 | 112.0 (118.0 / 112.0) |" in (rows[3])
    )
    assert rows[4] == "| &nbsp; report step: marts | 10 | 56.0 | - | - | - | - | - | - |"
    assert rows[5].startswith(
        "| weekly run, adversarial week (+scan) | 10+5 | 230.0 (230.0 / 250.0)"
    )
    assert "| 3100 |" in rows[5]
    assert rows[6] == "| &nbsp; adversarial step: marts | - | 115.0 | - | - | - | - | - | - |"
