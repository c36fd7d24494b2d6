"""`make bench`: kaudit's ingest and weekly run against Spark's floor and DuckDB, in one run.

For each size (events of a synth week: 3 masters, uncompressed, 100 MB rotation), every step
runs as a child process timed whole (JVM start-up included), its process tree's peak
proportional memory (PSS) sampled every 0.5 s (read only when the tree's RSS could raise the
peak: bench_ingest.tree_peak):
  ingest        `kaudit ingest` into an empty lake
  spark-floor   read.json with the raw audit schema -> date-partitioned Parquet (nothing else)
  duckdb        the same files -> typed, date-partitioned Parquet
  report        `kaudit report` (marts + summary, validation, PDF: each step's own figure)
  marts-floor   Spark's floor for the weekly run: duckdb-marts's SQL in Spark SQL (own JVM)
  duckdb-marts  overview, source_ips, users, resource_operations over the same lake
Then, once: an hourly ingest of one new hour into a four-week lake vs into an empty lake,
bench/bench_investigate.py, and (``--adversarial``) the weekly run on the first size's week
plus a scan (bench/adversarial.py). Spark's event logs go to <work>/eventlog; the slowest
stages of each kaudit process are printed. One table at the end; appended to bench/RESULTS.md.

With ``--repeat N`` each timed step (kaudit's and its floors') runs N times, interleaved
(ingest, floor, DuckDB, ingest, ...), so that a slow spell of a shared machine falls on all
of them. The table gives the median run's time (with every run's in brackets), ratios of
medians, and the highest peak memory of any run.

    python bench/bench.py [--sizes "300000"] [--repeat 3] [--adversarial N] [--work bench/work]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from bench_ingest import DUCKDB_SQL, SAMPLE_SECONDS, prepare, tree_peak  # noqa: E402

KAUDIT = str(Path(sys.executable).parent / "kaudit")
WEEK = "2026-W47"
STEP_RE = re.compile(r"^done (.+) in ([0-9.]+) s$")

DUCKDB_MARTS = """
CREATE TEMP TABLE requests AS
SELECT cluster, coalesce(audit_id, dedup_key) AS request_key,
       arg_max(verb, stage_ts) AS verb, arg_max(user_name, stage_ts) AS user_name,
       arg_max(api_group, stage_ts) AS api_group, arg_max(resource, stage_ts) AS resource,
       arg_max(subresource, stage_ts) AS subresource,
       arg_max(source_ips[-1], stage_ts) AS client_ip,
       arg_max(response_code, stage_ts) AS response_code, count(*) AS events,
       min(request_received_ts) AS request_received_ts
FROM read_parquet('{events}/**/*.parquet', hive_partitioning = true)
WHERE request_received_ts >= TIMESTAMP '2026-11-16' AND request_received_ts < TIMESTAMP '2026-11-23'
GROUP BY ALL;
COPY (
  SELECT 'day' AS dimension, CAST(CAST(request_received_ts AS DATE) AS VARCHAR) AS key,
         count(*) AS requests, sum(events) AS events, count(*) FILTER (response_code >= 400) AS failures,
         count(DISTINCT user_name) AS distinct_users, count(DISTINCT client_ip) AS distinct_source_ips
  FROM requests GROUP BY ALL
  UNION ALL
  SELECT 'hour', strftime(request_received_ts, '%Y-%m-%d %H'), count(*), sum(events),
         count(*) FILTER (response_code >= 400), count(DISTINCT user_name), count(DISTINCT client_ip)
  FROM requests GROUP BY ALL
  UNION ALL
  SELECT 'verb', verb, count(*), sum(events), count(*) FILTER (response_code >= 400),
         count(DISTINCT user_name), count(DISTINCT client_ip) FROM requests GROUP BY ALL
) TO '{out}/overview.parquet';
COPY (SELECT client_ip AS ip, count(*) AS requests, sum(events) AS events,
             count(*) FILTER (response_code >= 400) AS failures, count(DISTINCT user_name) AS users,
             min(request_received_ts) AS first_seen, max(request_received_ts) AS last_seen
      FROM requests GROUP BY ALL ORDER BY requests DESC, ip) TO '{out}/source_ips.parquet';
COPY (SELECT user_name AS user, count(*) AS requests, sum(events) AS events,
             count(*) FILTER (response_code >= 400) AS failures,
             count(DISTINCT client_ip) AS source_ips, list(DISTINCT verb) AS verbs
      FROM requests GROUP BY ALL ORDER BY requests DESC, user) TO '{out}/users.parquet';
COPY (SELECT api_group, resource,
             CASE WHEN verb = 'create' THEN 'create' WHEN verb IN ('update', 'patch') THEN 'update'
                  WHEN verb IN ('delete', 'deletecollection') THEN 'delete'
                  WHEN verb IN ('get', 'list', 'watch') THEN 'read' ELSE 'other' END AS operation,
             count(*) AS requests, count(DISTINCT user_name) AS users
      FROM requests WHERE resource IS NOT NULL AND coalesce(subresource, '') = ''
      GROUP BY ALL) TO '{out}/resource_operations.parquet';
"""

# Spark's floor for the weekly run: the same requests and marts as DUCKDB_MARTS, in Spark SQL
# (max_by for arg_max, collect_set for list(DISTINCT)), in one process with its own JVM.
SPARK_REQUESTS = """
CACHE TABLE requests AS
SELECT cluster, coalesce(audit_id, dedup_key) AS request_key,
       max_by(verb, stage_ts) AS verb, max_by(user_name, stage_ts) AS user_name,
       max_by(api_group, stage_ts) AS api_group, max_by(resource, stage_ts) AS resource,
       max_by(subresource, stage_ts) AS subresource,
       max_by(element_at(source_ips, -1), stage_ts) AS client_ip,
       max_by(response_code, stage_ts) AS response_code, count(*) AS events,
       min(request_received_ts) AS request_received_ts
FROM parquet.`{events}`
WHERE request_received_ts >= TIMESTAMP '2026-11-16' AND request_received_ts < TIMESTAMP '2026-11-23'
GROUP BY ALL
"""
SPARK_MARTS = {
    "overview": """
  SELECT 'day' AS dimension, CAST(CAST(request_received_ts AS DATE) AS STRING) AS key,
         count(*) AS requests, sum(events) AS events,
         count(*) FILTER (WHERE response_code >= 400) AS failures,
         count(DISTINCT user_name) AS distinct_users, count(DISTINCT client_ip) AS distinct_source_ips
  FROM requests GROUP BY ALL
  UNION ALL
  SELECT 'hour', date_format(request_received_ts, 'yyyy-MM-dd HH'), count(*), sum(events),
         count(*) FILTER (WHERE response_code >= 400), count(DISTINCT user_name),
         count(DISTINCT client_ip)
  FROM requests GROUP BY ALL
  UNION ALL
  SELECT 'verb', verb, count(*), sum(events), count(*) FILTER (WHERE response_code >= 400),
         count(DISTINCT user_name), count(DISTINCT client_ip) FROM requests GROUP BY ALL""",
    "source_ips": """
  SELECT client_ip AS ip, count(*) AS requests, sum(events) AS events,
         count(*) FILTER (WHERE response_code >= 400) AS failures,
         count(DISTINCT user_name) AS users,
         min(request_received_ts) AS first_seen, max(request_received_ts) AS last_seen
  FROM requests GROUP BY ALL ORDER BY requests DESC, ip""",
    "users": """
  SELECT user_name AS user, count(*) AS requests, sum(events) AS events,
         count(*) FILTER (WHERE response_code >= 400) AS failures,
         count(DISTINCT client_ip) AS source_ips, collect_set(verb) AS verbs
  FROM requests GROUP BY ALL ORDER BY requests DESC, user""",
    "resource_operations": """
  SELECT api_group, resource,
         CASE WHEN verb = 'create' THEN 'create' WHEN verb IN ('update', 'patch') THEN 'update'
              WHEN verb IN ('delete', 'deletecollection') THEN 'delete'
              WHEN verb IN ('get', 'list', 'watch') THEN 'read' ELSE 'other' END AS operation,
         count(*) AS requests, count(DISTINCT user_name) AS users
  FROM requests WHERE resource IS NOT NULL AND coalesce(subresource, '') = ''
  GROUP BY ALL""",
}


# ---------------------------------------------------------------- children (one process each)


def child_floor(home: Path, out: Path) -> dict:
    """Spark's floor: read.json with the schema -> Parquet partitioned by cluster and date."""
    from pyspark.sql import functions as F

    from jobs._session import get_spark
    from jobs.evidence.custody import collected, read_custody
    from jobs.evidence.store import evidence_path
    from jobs.schemas import RAW_EVENT
    from jobs.settings import Layout

    layout = Layout(home)
    files = sorted(
        {str(evidence_path(layout, r["sha256"])) for r in collected(read_custody(layout))}
    )
    spark = get_spark("kaudit-bench-floor")
    (
        spark.read.schema(RAW_EVENT)
        .json(files)
        .withColumn("cluster", F.lit("bench"))
        .withColumn(
            "event_date", F.to_date(F.col("requestReceivedTimestamp").try_cast("timestamp"))
        )
        .write.mode("overwrite")
        .partitionBy("cluster", "event_date")
        .parquet(str(out))
    )
    events = spark.read.parquet(str(out)).count()
    spark.stop()
    return {"events": events}


def child_duckdb(home: Path, out: Path) -> dict:
    import duckdb

    from jobs.evidence.custody import collected, read_custody
    from jobs.evidence.store import evidence_path
    from jobs.settings import Layout

    layout = Layout(home)
    files = sorted(
        {str(evidence_path(layout, r["sha256"])) for r in collected(read_custody(layout))}
    )
    con = duckdb.connect()
    con.execute(DUCKDB_SQL.format(files=json.dumps(files).replace('"', "'"), out=out))
    return {
        "events": con.execute(
            f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')"
        ).fetchone()[0]
    }


def child_duckdb_marts(home: Path, out: Path) -> dict:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(DUCKDB_MARTS.format(events=home / "lake" / "events", out=out))
    return {"requests": con.execute("SELECT count(*) FROM requests").fetchone()[0]}


def child_marts_floor(home: Path, out: Path) -> dict:
    """Spark's floor for the weekly run: DUCKDB_MARTS's requests and marts in Spark SQL."""
    from jobs._session import get_spark

    spark = get_spark("kaudit-bench-marts-floor")
    spark.sql(SPARK_REQUESTS.format(events=home / "lake" / "events"))
    for name, sql in SPARK_MARTS.items():
        spark.sql(sql).coalesce(1).write.mode("overwrite").parquet(str(out / name))
    requests = spark.table("requests").count()
    spark.stop()
    return {"requests": requests}


CHILDREN = {
    "floor": child_floor,
    "duckdb": child_duckdb,
    "duckdb-marts": child_duckdb_marts,
    "marts-floor": child_marts_floor,
}


# ---------------------------------------------------------------- measuring a process tree


def _env(work: Path, label: str) -> dict[str, str]:
    logs = work / "eventlog" / label
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    conf = (
        f"--conf spark.eventLog.enabled=true --conf spark.eventLog.dir=file://{logs} --conf spark.eventLog.compress=false"
        " pyspark-shell"
    )
    return dict(
        os.environ,
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_SUBMIT_ARGS=conf,
    )


def measure(cmd: list[str], work: Path, label: str) -> dict:
    """Run ``cmd``; wall seconds, peak PSS (MiB) of its tree, Python workers seen, output."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env(work, label), cwd=ROOT
    )
    peak, daemons = 0, 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, daemons
        p = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                tree = [p, *p.children(recursive=True)]
            except psutil.Error:
                tree = [p]
            for x in tree:
                try:
                    if "pyspark.daemon" in " ".join(x.cmdline()):
                        daemons += 1
                except psutil.Error:
                    pass
            peak = tree_peak(tree, peak)
            time.sleep(SAMPLE_SECONDS)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    out, _ = proc.communicate()
    seconds = time.monotonic() - t0
    stop.set()
    t.join()
    text = out.decode(errors="replace")
    if proc.returncode not in (0, 6):  # 6: validation failed the gate; the timing stands
        print(text[-3000:])
        raise SystemExit(f"{label}: {cmd} failed with {proc.returncode}")
    steps = {m.group(1): float(m.group(2)) for m in map(STEP_RE.match, text.splitlines()) if m}
    return {
        "seconds": seconds,
        "pss_mib": peak / 2**20,
        "python_workers": daemons > 0,
        "steps": steps,
        "output": text,
        "eventlog": str(work / "eventlog" / label),
    }


def child_cmd(name: str, home: Path, out: Path) -> list[str]:
    return [sys.executable, __file__, "--child", name, "--home", str(home), "--out", str(out)]


# ---------------------------------------------------------------- steps


def write_config(home: Path, src: Path) -> Path:
    import yaml

    masters = [
        {"name": m.name, "source": f"file://{m}"} for m in sorted(src.iterdir()) if m.is_dir()
    ]
    path = home.parent / f"{home.name}.yaml"
    path.write_text(yaml.safe_dump({"cluster": "bench", "timezone": "UTC", "masters": masters}))
    return path


def reset_lake(home: Path) -> None:
    for sub in ("lake", "marts", "reports", "tmp"):
        shutil.rmtree(home / sub, ignore_errors=True)


def _label(name: str, rep: int) -> str:
    return name if rep == 0 else f"{name}-r{rep + 1}"


def median_of(runs: list[dict]) -> dict:
    """One step's figure over its repeated runs: the run of median time (the lower middle
    of an even count), its steps and event log; peak PSS and Python workers over all runs.
    """
    ordered = sorted(runs, key=lambda r: r["seconds"])
    mid = dict(ordered[(len(ordered) - 1) // 2])
    mid["pss_mib"] = max(r["pss_mib"] for r in runs)
    mid["python_workers"] = any(r["python_workers"] for r in runs)
    mid["runs"] = [r["seconds"] for r in runs]
    return mid


def bench_size(
    work: Path, n: int, ingest_only: bool = False, report: bool = True, repeat: int = 1
) -> dict:
    home, size_mb = prepare(work, n)
    config = write_config(home, work / f"src-{n}")
    res: dict = {"events": n, "input_mb": size_mb}
    runs: dict[str, list[dict]] = {"ingest": [], "floor": [], "duckdb": []}
    for rep in range(repeat):  # interleaved: a slow spell of the machine hits every step
        reset_lake(home)
        runs["ingest"].append(
            measure([KAUDIT, "ingest", "--home", str(home)], work, _label(f"ingest-{n}", rep))
        )
        runs["floor"].append(
            measure(child_cmd("floor", home, work / f"floor-{n}"), work, _label(f"floor-{n}", rep))
        )
        runs["duckdb"].append(
            measure(
                child_cmd("duckdb", home, work / f"duckdb-{n}"), work, _label(f"duckdb-{n}", rep)
            )
        )
    res.update({k: median_of(v) for k, v in runs.items()})
    if ingest_only:
        return res
    if not report:
        print(
            f"{n}: ingest {res['ingest']['seconds']:.1f} s, floor {res['floor']['seconds']:.1f} s",
            flush=True,
        )
        return res
    weekly: dict[str, list[dict]] = {"report": [], "marts_floor": [], "duckdb_marts": []}
    for rep in range(repeat):
        weekly["report"].append(
            measure(
                [KAUDIT, "report", "--config", str(config), "--week", WEEK, "--home", str(home)],
                work,
                _label(f"report-{n}", rep),
            )
        )
        weekly["marts_floor"].append(
            measure(
                child_cmd("marts-floor", home, work / f"martsfloor-{n}"),
                work,
                _label(f"martsfloor-{n}", rep),
            )
        )
        weekly["duckdb_marts"].append(
            measure(
                child_cmd("duckdb-marts", home, work / f"duckmarts-{n}"),
                work,
                _label(f"duckmarts-{n}", rep),
            )
        )
    res.update({k: median_of(v) for k, v in weekly.items()})
    res["summary_lists"] = summary_lists(home)
    for k in ("ingest", "floor", "duckdb", "report", "marts_floor", "duckdb_marts"):
        print(
            f"{n} {k}: {res[k]['seconds']:.1f} s, {res[k]['pss_mib']:.0f} MiB, "
            f"steps {res[k]['steps']}, python workers: {res[k]['python_workers']}",
            flush=True,
        )
    return res


def summary_lists(home: Path) -> dict[str, int]:
    """Lengths of summary.json's lists (the report's lists are drawn from them)."""
    path = home / "marts" / "bench" / WEEK / "summary.json"
    if not path.exists():
        return {}
    summary = json.loads(path.read_text())
    return {k: len(v) for k, v in summary.items() if isinstance(v, list)}


def bench_adversarial(work: Path, n: int, scan: int, repeat: int = 1) -> dict:
    """The weekly run on the size-n week plus a scan of ``scan`` requests (bench/adversarial.py)."""
    from adversarial import add_scan

    from jobs.evidence.main import run_collect
    from jobs.settings import Layout, load_config

    src = work / f"src-adv-{n}"
    if not src.exists():  # built under a temporary name: a cut-short copy is never reused
        partial = work / f"src-adv-{n}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(work / f"src-{n}", partial)
        add_scan(partial / "master-1", requests=scan)
        partial.rename(src)
    home = work / f"home-adv-{n}"
    shutil.rmtree(home, ignore_errors=True)
    config = write_config(home, src)
    run_collect(load_config(config), Layout(home))
    res = {"ingest": measure([KAUDIT, "ingest", "--home", str(home)], work, f"adv-ingest-{n}")}
    res["report"] = median_of(
        [
            measure(
                [KAUDIT, "report", "--config", str(config), "--week", WEEK, "--home", str(home)],
                work,
                _label(f"adv-report-{n}", rep),
            )
            for rep in range(repeat)
        ]
    )
    res["summary_lists"] = summary_lists(home)
    print(
        f"adversarial {n}+{scan}: ingest {res['ingest']['seconds']:.1f} s, report "
        f"{res['report']['seconds']:.1f} s {res['report']['steps']}, "
        f"{res['report']['pss_mib']:.0f} MiB; lists {res['summary_lists']}",
        flush=True,
    )
    return res


def bench_hourly(work: Path, week_events: int) -> dict:
    """One new hour into a lake of four weeks vs into an empty lake (whole `kaudit ingest`)."""
    from jobs import synth
    from jobs.evidence.main import run_collect
    from jobs.settings import Layout, parse_config

    base = work / "hourly"
    logs = base / "logs"
    for i, week in enumerate(("2026-W44", "2026-W45", "2026-W46", "2026-W47", "2026-W48")):
        if not (logs / week).exists():
            partial = logs / f"{week}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            synth.synth_week(
                partial, week=week, masters=3, events=week_events, seed=7 + i, cluster="bench"
            )
            partial.rename(logs / week)
    hour = base / "hour" / "master-9"
    if not hour.exists():
        hour.mkdir(parents=True)
        marker = '"requestReceivedTimestamp":"2026-11-25T10:'
        with open(hour / "kubernetes-2026-11-25T11-00-00.000.audit", "w") as out:
            for f in sorted((logs / "2026-W48").rglob("*.audit")):
                with open(f) as fh:
                    out.writelines(line for line in fh if marker in line)

    def collect(home: Path, sources: list[Path]) -> None:
        masters = [{"name": f"{s.parent.name}-{s.name}", "source": f"file://{s}"} for s in sources]
        config = parse_config({"cluster": "bench", "timezone": "UTC", "masters": masters}, base)
        run_collect(config, Layout(home))

    weeks = [
        m
        for w in ("2026-W44", "2026-W45", "2026-W46", "2026-W47")
        for m in sorted((logs / w).iterdir())
    ]
    full, empty = base / "home-4w", base / "home-empty"
    for h in (full, empty):
        shutil.rmtree(h, ignore_errors=True)
    collect(full, weeks)
    fill = measure([KAUDIT, "ingest", "--home", str(full)], work, "hourly-fill")
    collect(full, [hour])
    collect(empty, [hour])
    res = {"fill_seconds": fill["seconds"], "lines": next(hour.iterdir()).read_bytes().count(b"\n")}
    res["four_weeks"] = measure([KAUDIT, "ingest", "--home", str(full)], work, "hourly-4w")
    res["empty"] = measure([KAUDIT, "ingest", "--home", str(empty)], work, "hourly-empty")
    print(
        f"hourly ({res['lines']} lines): 4-week lake {res['four_weeks']['seconds']:.1f} s, "
        f"empty lake {res['empty']['seconds']:.1f} s",
        flush=True,
    )
    return res


def bench_investigate(work: Path, events: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH / "bench_investigate.py"),
            "--events",
            str(events),
            "--work",
            str(work / "investigate"),
        ],
        capture_output=True,
        text=True,
        env=_env(work, "investigate"),
        cwd=ROOT,
    )
    lines = [x for x in out.stdout.splitlines() if x.strip()]
    print("\n".join(lines[-4:]), flush=True)
    return {"lines": lines[-4:], "rc": out.returncode}


# ---------------------------------------------------------------- profile (event logs)


def slowest_stages(eventlog: str, top: int = 6) -> list[tuple[float, float, str, int]]:
    """(wall s, executor CPU s, job description or call site, tasks) of the slowest stages.

    CPU time is the sum over the stage's tasks: unlike wall time, it hardly moves when other
    processes share the machine.
    """
    described: dict[int, str] = {}
    stages = []
    for path in (p for p in Path(eventlog).rglob("*") if p.is_file()):
        for line in path.read_text(errors="replace").splitlines():
            if '"SparkListenerStageSubmitted"' in line:
                event = json.loads(line)
                desc = (event.get("Properties") or {}).get("spark.job.description")
                if desc:
                    described[event["Stage Info"]["Stage ID"]] = desc
            if '"SparkListenerStageCompleted"' not in line:
                continue
            info = json.loads(line)["Stage Info"]
            if "Submission Time" in info and "Completion Time" in info:
                acc = {a["Name"]: a.get("Value") for a in info.get("Accumulables", [])}
                cpu = int(acc.get("internal.metrics.executorCpuTime", 0) or 0) / 1e9
                seconds = (info["Completion Time"] - info["Submission Time"]) / 1000
                name = described.get(info["Stage ID"], info["Stage Name"])
                stages.append((seconds, cpu, name, info["Number of Tasks"]))
    return sorted(stages, reverse=True)[:top]


# ---------------------------------------------------------------- the table


def table(
    results: list[dict], hourly: dict | None, adv: dict | None, inv: dict | None
) -> list[str]:
    rows = [
        "| step | events | kaudit s | floor s | DuckDB s | kaudit/floor | kaudit/DuckDB "
        "| peak PSS MiB (kaudit / floor / DuckDB) | Python workers |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def ratio(a: float, b: float | None) -> str:
        return f"{a / b:.2f}x" if b else "-"

    def sec(step: dict) -> str:
        """Seconds; with repeats, the median and every run's."""
        runs = step.get("runs") or [step["seconds"]]
        if len(runs) == 1:
            return f"{step['seconds']:.1f}"
        return f"{step['seconds']:.1f} ({' / '.join(f'{x:.1f}' for x in runs)})"

    for r in results:
        n, ing, fl, du = r["events"], r["ingest"], r["floor"], r["duckdb"]
        rows.append(
            f"| ingest, whole process | {n} | {sec(ing)} | {sec(fl)} "
            f"| {sec(du)} | {ratio(ing['seconds'], fl['seconds'])} | "
            f"{ratio(ing['seconds'], du['seconds'])} | {ing['pss_mib']:.0f} / "
            f"{fl['pss_mib']:.0f} / {du['pss_mib']:.0f} | {ing['python_workers']} |"
        )
        if "report" not in r:
            continue
        rep, dm, mf = r["report"], r["duckdb_marts"], r.get("marts_floor")
        mf_s, mf_mib = (sec(mf), f"{mf['pss_mib']:.0f}") if mf else ("-", "-")
        rows.append(
            f"| weekly run (`kaudit report`), whole process | {n} | {sec(rep)} "
            f"| {mf_s} | {sec(dm)} | {ratio(rep['seconds'], mf and mf['seconds'])} | "
            f"{ratio(rep['seconds'], dm['seconds'])} | "
            f"{rep['pss_mib']:.0f} / {mf_mib} / {dm['pss_mib']:.0f} | {rep['python_workers']} |"
        )
        for step, seconds in rep["steps"].items():
            rows.append(
                f"| &nbsp; report step: {step} | {n} | {seconds:.1f} | - | - | - | - | - | - |"
            )
    if adv:
        rep = adv["report"]
        rows.append(
            f"| weekly run, adversarial week (+scan) | {adv['events']} | "
            f"{sec(rep)} | - | - | - | - | {rep['pss_mib']:.0f} | "
            f"{rep['python_workers']} |"
        )
        for step, seconds in rep["steps"].items():
            rows.append(
                f"| &nbsp; adversarial step: {step} | - | {seconds:.1f} | - | - | - | - | - | - |"
            )
    if hourly:
        rows.append(
            f"| hourly ingest, 4-week lake vs empty lake (floor column) | "
            f"{hourly['lines']} | {hourly['four_weeks']['seconds']:.1f} | "
            f"{hourly['empty']['seconds']:.1f} | - | "
            f"{ratio(hourly['four_weeks']['seconds'], hourly['empty']['seconds'])} | - | "
            f"{hourly['four_weeks']['pss_mib']:.0f} / {hourly['empty']['pss_mib']:.0f} | - |"
        )
    if inv:
        rows.append(f"| investigation bench | - | {' / '.join(inv['lines'][-2:])} | | | | | | |")
    return rows


def record(
    lines: list[str],
    sizes: list[int],
    load: tuple[float, float],
    extra: list[str],
    repeat: int = 1,
) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    how = f"bench/bench.py --repeat {repeat}: medians" if repeat > 1 else "bench/bench.py"
    head = [
        f"\n## Run of {stamp} ({how})\n",
        f"Machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
        f"{platform.python_implementation()} {platform.python_version()}; load average "
        f"{load[0]:.1f} at start, {load[1]:.1f} at end; sizes {', '.join(map(str, sizes))} "
        "events (synth week, 3 masters, uncompressed, 100 MB rotation).\n",
    ]
    with open(BENCH / "RESULTS.md", "a") as fh:
        fh.write("\n".join(head + lines + [""] + extra) + "\n")


def _save(work: Path, obj: object) -> None:
    """Figures so far (a run cut short keeps them)."""
    (work / "results.json").write_text(json.dumps(obj, default=str, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="300000", help="events per synth week, space or comma")
    ap.add_argument("--work", default=str(BENCH / "work"))
    ap.add_argument("--hourly-week-events", type=int, default=100000)
    ap.add_argument("--investigate-events", type=int, default=50000)
    ap.add_argument("--adversarial", type=int, default=0, help="scan requests (0: skip)")
    ap.add_argument("--skip", default="", help="comma list: hourly,investigate")
    ap.add_argument("--no-record", action="store_true")
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each timed step this many times, interleaved; the table shows the median",
    )
    ap.add_argument("--ingest-only", action="store_true", help="iterate: ingest vs floors only")
    ap.add_argument("--report-max", type=int, default=0, help="weekly run only up to this size")
    ap.add_argument("--child", choices=sorted(CHILDREN))
    ap.add_argument("--home")
    ap.add_argument("--out")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](Path(args.home), Path(args.out))))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in re.split(r"[ ,]+", args.sizes.strip()) if s]
    skip = set(args.skip.split(","))
    load0 = os.getloadavg()[0]
    report_max = args.report_max or max(sizes)
    results = []
    for n in sizes:
        results.append(bench_size(work, n, args.ingest_only, n <= report_max, args.repeat))
        _save(work, results)
    if args.ingest_only:
        for r in results:
            for k in ("ingest", "floor", "duckdb"):
                print(r["events"], k, f"{r[k]['seconds']:.1f} s", f"{r[k]['pss_mib']:.0f} MiB")
                for st in slowest_stages(r[k]["eventlog"], 4):
                    print("   ", st)
        return
    hourly = None if "hourly" in skip else bench_hourly(work, args.hourly_week_events)
    inv = None if "investigate" in skip else bench_investigate(work, args.investigate_events)
    adv = None
    if args.adversarial:
        adv = bench_adversarial(work, sizes[0], args.adversarial, args.repeat)
        adv["events"] = f"{sizes[0]}+{args.adversarial}"
    _save(work, {"sizes": results, "hourly": hourly, "investigate": inv, "adversarial": adv})
    profile = [
        "Slowest stages per process (event log of the median run: wall and executor CPU "
        "seconds, job):",
        "",
    ]
    for r in results:
        for k in ("ingest", "report"):
            if k not in r:
                continue
            profile.append(
                f"- {k} {r['events']}: "
                + "; ".join(
                    f"{s:.1f} s wall / {c:.1f} s CPU {name} ({tasks} tasks)"
                    for s, c, name, tasks in slowest_stages(r[k]["eventlog"])
                )
            )
    lines = table(results, hourly, adv, inv)
    print("\n".join([*lines, "", *profile]))
    if not args.no_record:
        record(lines, sizes, (load0, os.getloadavg()[0]), profile, args.repeat)


if __name__ == "__main__":
    main()
