"""Investigation benchmark: one day of a four-week lake vs the same day of a one-week lake.

Partition pruning should make the two close: ``kaudit investigate`` reads only the date
partitions of its range, so three more weeks in the lake should cost (almost) nothing.

Steps: synth weeks W44..W47 (``--events`` event lines each, 3 masters), collect all four
into one home and W47 alone into another, ingest both, then time the same query (one UTC day of
W47, one user) on each home: one warm-up run, then the median of ``--repeat`` runs. Prints the
figures; nothing is written outside ``--work``.

    python bench/bench_investigate.py [--events 50000] [--repeat 3] [--work bench/work-investigate]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WEEKS = ("2026-W44", "2026-W45", "2026-W46", "2026-W47")
DAY = dt.datetime(2026, 11, 18, tzinfo=dt.UTC)  # Wednesday of W47 (UTC)


def _home(work: Path, name: str, weeks: tuple[str, ...], events: int, spark) -> object:
    from jobs import synth
    from jobs.evidence.main import run_collect
    from jobs.ingest import main as ingest_main
    from jobs.settings import Layout, parse_config

    layout = Layout(work / name)
    for week in weeks:
        logs = work / "logs" / week
        if not logs.exists():
            # one seed per week: the same seed gives the same audit IDs, which dedup would drop
            seed = 7 + WEEKS.index(week)
            synth.synth_week(logs, week=week, masters=3, events=events, seed=seed, cluster="bench")
        masters = [
            {"name": f"master-{i}", "source": f"file://{logs / f'master-{i}'}"} for i in (1, 2, 3)
        ]
        config = parse_config({"cluster": "bench", "timezone": "UTC", "masters": masters}, work)
        failures = [r.failure for r in run_collect(config, layout) if r.failure]
        if failures:
            raise SystemExit(f"collect failed: {failures}")
    t0 = time.perf_counter()
    ingest_main.run(spark, layout)
    print(f"{name}: {len(weeks)} week(s) ingested in {time.perf_counter() - t0:.1f} s")
    return layout


def _time(spark, layout, query, repeat: int) -> tuple[float, int, int]:
    from jobs.investigate.main import run

    run(spark, layout, query)  # warm-up: JIT, file listing caches
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run(spark, layout, query)
        times.append(time.perf_counter() - t0)
    assert result is not None
    return statistics.median(times), len(result.rows), len(result.files_read)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50000, help="event lines per week")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work-investigate")
    args = parser.parse_args()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    from jobs import synth
    from jobs._session import get_spark
    from jobs.investigate.query import Query

    if args.work.exists():
        shutil.rmtree(args.work)
    args.work.mkdir(parents=True)
    spark = get_spark(
        "kaudit-bench-investigate",
        master="local[2]",
        extra_conf={"spark.sql.shuffle.partitions": "4"},
    )
    four = _home(args.work, "home-4-weeks", WEEKS, args.events, spark)
    one = _home(args.work, "home-1-week", WEEKS[-1:], args.events, spark)
    user = next(p for p in synth.PLANTED if p["key"] == "exec-shadow")["username"]
    query = Query(since=DAY, until=DAY + dt.timedelta(days=1), cluster="bench", user=user)
    t4, n4, f4 = _time(spark, four, query, args.repeat)
    t1, n1, f1 = _time(spark, one, query, args.repeat)
    print(
        f"query: one UTC day ({DAY.date()}), --user {user}; {args.events} events/week; "
        f"median of {args.repeat}"
    )
    print(f"four-week lake: {t4:.2f} s ({n4} events, {f4} lake files read)")
    print(f"one-week lake:  {t1:.2f} s ({n1} events, {f1} lake files read)")
    print(f"ratio four/one: {t4 / t1:.2f}")
    spark.stop()


if __name__ == "__main__":
    main()
