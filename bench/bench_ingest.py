"""Ingest benchmark: kaudit's Spark ingest against DuckDB on the same files, in one run.

For each input size: synth a week (3 masters, uncompressed, 100 MB rotation), collect it, then
in separate child processes (so each one's memory is its own):
  spark   - JVM start-up (session + a trivial job), then `ingest` (timed without start-up)
  duckdb  - read_json of the same evidence files with the same columns -> Parquet
The parent samples the proportional resident memory (PSS) of each child's whole process tree
(the JVM included) every 100 ms. Results are appended to bench/RESULTS.md as a table.

    python bench/bench_ingest.py [--sizes 500000,1500000] [--work bench/work]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DUCKDB_SQL = """
COPY (
  SELECT
    auditID AS audit_id, stage, level, verb, requestURI AS request_uri,
    "user".username AS user_name, "user".uid AS user_uid, "user".groups AS user_groups,
    "user".extra AS user_extra, impersonatedUser.username AS impersonated_user,
    impersonatedUser.groups AS impersonated_groups, sourceIPs AS source_ips,
    userAgent AS user_agent, objectRef IS NOT NULL AS object_ref_present,
    CASE WHEN objectRef IS NOT NULL THEN coalesce(objectRef.apiGroup, '') END AS api_group,
    objectRef.apiVersion AS api_version, objectRef.resource AS resource,
    objectRef.subresource AS subresource, objectRef.namespace AS namespace,
    objectRef.name AS object_name, objectRef.uid AS object_uid,
    TRY_CAST(responseStatus.code AS INTEGER) AS response_code,
    responseStatus.status AS response_status, responseStatus.reason AS response_reason,
    responseStatus.message AS response_message,
    TRY_CAST(requestReceivedTimestamp AS TIMESTAMP) AS request_received_ts,
    TRY_CAST(stageTimestamp AS TIMESTAMP) AS stage_ts,
    annotations['authorization.k8s.io/decision'] AS authz_decision,
    annotations['authorization.k8s.io/reason'] AS authz_reason,
    annotations, CAST(requestObject AS VARCHAR) AS request_object,
    CAST(responseObject AS VARCHAR) AS response_object, apiVersion AS source_api_version,
    CAST(TRY_CAST(requestReceivedTimestamp AS TIMESTAMP) AS DATE) AS event_date,
    'bench' AS cluster
  FROM read_json({files}, format='newline_delimited', ignore_errors=true,
                 maximum_object_size=16777216,
                 columns={{kind: 'VARCHAR', apiVersion: 'VARCHAR', level: 'VARCHAR',
                  auditID: 'VARCHAR', stage: 'VARCHAR', requestURI: 'VARCHAR', verb: 'VARCHAR',
                  "user": 'STRUCT(username VARCHAR, uid VARCHAR, groups VARCHAR[], extra MAP(VARCHAR, VARCHAR[]))',
                  impersonatedUser: 'STRUCT(username VARCHAR, groups VARCHAR[])',
                  sourceIPs: 'VARCHAR[]', userAgent: 'VARCHAR',
                  objectRef: 'STRUCT(resource VARCHAR, namespace VARCHAR, name VARCHAR, uid VARCHAR, apiGroup VARCHAR, apiVersion VARCHAR, subresource VARCHAR)',
                  responseStatus: 'STRUCT(status VARCHAR, message VARCHAR, reason VARCHAR, code VARCHAR)',
                  requestObject: 'JSON', responseObject: 'JSON',
                  requestReceivedTimestamp: 'VARCHAR', stageTimestamp: 'VARCHAR',
                  annotations: 'MAP(VARCHAR, VARCHAR)'}})
) TO '{out}' (FORMAT parquet, PARTITION_BY (cluster, event_date), OVERWRITE_OR_IGNORE)
"""


def child_spark(home: Path) -> dict:
    from jobs._session import get_spark
    from jobs.ingest import main as ingest_main
    from jobs.settings import Layout

    t0 = time.monotonic()
    spark = get_spark("kaudit-bench")
    spark.range(1).count()
    startup = time.monotonic() - t0
    t1 = time.monotonic()
    result = ingest_main.run(spark, Layout(home))
    seconds = time.monotonic() - t1
    events = sum(e.events for e in result.files)
    lines = sum(e.lines for e in result.files)
    spark.stop()
    return {"startup_s": startup, "seconds": seconds, "events": events, "lines": lines}


def child_duckdb(home: Path, out: Path) -> dict:
    import duckdb

    from jobs.evidence.custody import read_custody

    files = sorted(
        {
            str(home / "evidence" / r["sha256"][:2] / r["sha256"])
            for r in read_custody_home(home, read_custody)
        }
    )
    con = duckdb.connect()
    t0 = time.monotonic()
    con.execute(DUCKDB_SQL.format(files=json.dumps(files).replace('"', "'"), out=out))
    seconds = time.monotonic() - t0
    events = con.execute(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')").fetchone()[0]
    return {"startup_s": 0.0, "seconds": seconds, "events": events}


def read_custody_home(home: Path, read_custody):
    from jobs.settings import Layout

    return [r for r in read_custody(Layout(home)) if r["record_type"] == "collected"]


def _children(p: psutil.Process) -> list[psutil.Process]:
    try:
        return p.children(recursive=True)
    except psutil.Error:
        return []


# the memory sampler's period: a sample of a JVM costs ~30 ms of CPU (the kernel walks its
# page tables); every 100 ms it took a third of a core from the measured process
SAMPLE_SECONDS = 0.5


def _resident(p: psutil.Process) -> int:
    """Proportional set size: memory shared between processes counts once in the sum.

    Plain RSS double counts: the JVM starts helpers with vfork/posix_spawn, and for a moment
    the child shares the JVM's whole address space, so a sum of RSS jumps by the JVM's size.
    """
    try:
        # the kernel's own sum: psutil's memory_full_info() parses the whole smaps (a JVM
        # sample took 36 ms; at 10 samples a second, a third of a core of this machine)
        with open(f"/proc/{p.pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return p.memory_full_info().pss
    except (psutil.Error, AttributeError):
        try:
            return p.memory_info().rss
        except psutil.Error:
            return 0


# A sample reads the processes' PSS only when it could raise the peak. PSS <= RSS for every
# process, and RSS is a kernel counter (/proc/<pid>/statm, no walk), while smaps_rollup walks
# the page tables: ~60 ms of CPU for a 2.5 GB JVM, i.e. every 0.5 s an eighth of a core taken
# from the process being measured. The peak found is within PSS_SLACK of the sampled one.
PSS_SLACK = 32 * 2**20


def tree_peak(tree: list[psutil.Process], peak: int) -> int:
    """The peak PSS (bytes) after one sample of ``tree``, given the peak before it."""
    rss = 0
    for p in tree:
        with contextlib.suppress(psutil.Error):
            rss += p.memory_info().rss
    if rss <= peak + PSS_SLACK:  # the PSS sum is at most the RSS sum: no new peak possible
        return peak
    return max(peak, sum(_resident(p) for p in tree))


def run_child(args: list[str]) -> tuple[dict, float]:
    """Run a child; return its JSON result and the peak PSS (MiB) of its process tree."""
    proc = subprocess.Popen(
        [sys.executable, __file__, *args],
        stdout=subprocess.PIPE,
        env=dict(os.environ, SPARK_LOCAL_IP="127.0.0.1"),
    )
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        p = psutil.Process(proc.pid)
        while not stop.is_set():
            peak = tree_peak([p, *_children(p)], peak)
            time.sleep(SAMPLE_SECONDS)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, _ = proc.communicate()
    stop.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed with {proc.returncode}")
    return json.loads(out.decode().strip().splitlines()[-1]), peak / 2**20


def prepare(work: Path, events: int) -> tuple[Path, float]:
    from jobs.evidence.main import run_collect
    from jobs.settings import Layout, parse_config
    from jobs.synth import synth_week

    src = work / f"src-{events}"
    if not src.exists():
        # into a temporary name first: an interrupted synth must not pass for a whole week
        # (one did: a "3 M" week of 2.3 GB, cut short on its fifth day)
        partial = work / f"src-{events}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        synth_week(partial, week="2026-W47", masters=3, events=events, seed=1, max_size_mb=100)
        partial.rename(src)
    masters = sorted(p.name for p in src.iterdir() if p.is_dir())
    config = parse_config(
        {
            "cluster": "bench",
            "timezone": "UTC",
            "masters": [{"name": m, "source": f"file://{src / m}"} for m in masters],
        },
        work,
    )
    home = work / f"home-{events}"
    shutil.rmtree(home, ignore_errors=True)
    run_collect(config, Layout(home))
    size_mb = sum(f.stat().st_size for f in src.rglob("*") if f.is_file()) / 2**20
    return home, size_mb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="500000,1500000")
    ap.add_argument("--work", default=str(ROOT / "bench" / "work"))
    ap.add_argument("--child", choices=["spark", "duckdb"])
    ap.add_argument("--home")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child == "spark":
        print(json.dumps(child_spark(Path(args.home))))
        return
    if args.child == "duckdb":
        print(json.dumps(child_duckdb(Path(args.home), Path(args.out))))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        home, size_mb = prepare(work, n)
        duck_out = work / f"duckdb-{n}"
        shutil.rmtree(duck_out, ignore_errors=True)
        spark, spark_rss = run_child(["--child", "spark", "--home", str(home)])
        duck, duck_rss = run_child(
            ["--child", "duckdb", "--home", str(home), "--out", str(duck_out)]
        )
        rows.append((n, size_mb, spark, spark_rss, duck, duck_rss))
        print(
            f"{n}: spark {spark['seconds']:.1f}s (+{spark['startup_s']:.1f}s start-up), "
            f"{spark_rss:.0f} MiB; duckdb {duck['seconds']:.1f}s, {duck_rss:.0f} MiB"
        )
    write_results(rows)


def write_results(rows) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"\n## Run of {stamp}\n",
        f"Machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"{platform.python_implementation()} {platform.python_version()}; Spark local[*]; "
        "input: synth week, 3 masters, uncompressed 100 MB rotation.\n",
        "| events (target) | input MB | engine | seconds | start-up s | events/s | MB/s | "
        "peak PSS MiB | Spark/DuckDB time |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, mb, spark, srss, duck, drss in rows:
        ratio = spark["seconds"] / duck["seconds"] if duck["seconds"] else float("nan")
        for name, r, rss in (("kaudit ingest (Spark)", spark, srss), ("DuckDB", duck, drss)):
            lines.append(
                f"| {n} | {mb:.0f} | {name} | {r['seconds']:.1f} | {r['startup_s']:.1f} | "
                f"{r['events'] / r['seconds']:.0f} | {mb / r['seconds']:.1f} | {rss:.0f} | "
                f"{ratio:.2f} |"
                if name.startswith("kaudit")
                else f"| {n} | {mb:.0f} | {name} | {r['seconds']:.1f} | - | "
                f"{r['events'] / r['seconds']:.0f} | {mb / r['seconds']:.1f} | {rss:.0f} | 1.00 |"
            )
    results = ROOT / "bench" / "RESULTS.md"
    if not results.exists():
        results.write_text(
            "# Benchmark results\n\nAppended by `make bench`. "
            "Targets: Spark ingest within 2x of DuckDB excluding JVM start-up; "
            "peak memory under 4 GB and flat as input grows.\n"
        )
    with open(results, "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
