"""kaudit ingest: every evidence file not yet ingested -> lake/events, quarantine, duplicates.

Commit protocol (so that an ingest killed midway and re-run leaves the same lake):
1. take the lake lock; delete files of runs that never committed, and the staging area;
2. frame the pending evidence files (line counts; gzip salvaged into staging);
3. Spark: read lines, classify, dedup against the lake, write ONE staged Parquet dataset
   partitioned by bucket/cluster/event_date;
4. count buckets per file from the staged data; they must add up to the framed line counts,
   else fail loudly and commit nothing;
5. move the staged files into the lake, each named ``run-<id>-...``;
6. write ``lake/_ledger/<id>.json`` atomically: this is the commit point.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, LongType, StringType, StructField, StructType

from jobs.evidence import evidence_path, read_custody
from jobs.ingest.preflight import Framed, frame
from jobs.ingest.transforms import GZIP_TRUNCATED, OUTPUT_COLUMNS, classify_lines
from jobs.schemas import EVENTS
from jobs.settings import DEFAULT_MAX_LINE_BYTES, Layout

BUCKETS = ("event", "duplicate", "quarantined", "blank")
_LOW_33_BITS = (1 << 33) - 1
_ISO_UTC = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"


class IngestError(RuntimeError):
    """Ingest could not account for every line; nothing was committed."""


@contextlib.contextmanager
def lake_lock(layout: Layout) -> Iterator[None]:
    layout.lake.mkdir(parents=True, exist_ok=True)
    with open(layout.lake / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_ledger(layout: Layout) -> list[dict[str, Any]]:
    """Every committed per-file ledger entry, in commit order."""
    if not layout.ledger.is_dir():
        return []
    runs = []
    for p in layout.ledger.glob("*.json"):
        runs.append(json.loads(p.read_text()))
    runs.sort(key=lambda r: (r["committed_at"], r["run_id"]))
    return [dict(f, run_id=r["run_id"]) for r in runs for f in r["files"]]


def _committed_runs(layout: Layout) -> set[str]:
    return {p.stem for p in layout.ledger.glob("*.json")} if layout.ledger.is_dir() else set()


def rollback_uncommitted(layout: Layout) -> int:
    """Delete lake files written by runs that never committed. Returns files removed."""
    committed = _committed_runs(layout)
    removed = 0
    for root in (layout.events, layout.quarantine, layout.duplicates):
        if not root.is_dir():
            continue
        for p in root.rglob("run-*"):
            run_id = p.name.split("-", 2)[1]
            if run_id not in committed:
                p.unlink()
                removed += 1
    if layout.staging.exists():
        shutil.rmtree(layout.staging)
    return removed


def pending_files(layout: Layout) -> list[dict[str, Any]]:
    """Evidence files with a custody record and no ledger entry, oldest first.

    Order: by master's rotation time (backups by the UTC time in their name, the active
    file's snapshots by collection time), so the first copy of a duplicated event wins.
    """
    done = {e["evidence_sha256"] for e in read_ledger(layout)}
    first: dict[str, dict[str, Any]] = {}
    for rec in read_custody(layout):
        if rec.get("record_type") == "collected" and rec["sha256"] not in done:
            first.setdefault(rec["sha256"], rec)
    return sorted(first.values(), key=lambda r: (r["rotated_at"] or r["collected_at"], r["sha256"]))


def _lines_df(spark: SparkSession, framed: list[Framed], meta: dict[str, dict[str, Any]]
              ) -> DataFrame:
    files = spark.createDataFrame(
        [(f.sha256, meta[f.sha256]["cluster"], meta[f.sha256]["master"], i)
         for i, f in enumerate(framed)],
        "evidence_sha256 string, cluster string, master string, file_order int",
    )
    raw = (
        spark.read.option("lineSep", "\n").text([str(f.read_path) for f in framed])
        .select(
            "value",
            F.element_at(F.split(F.col("_metadata.file_path"), "/"), -1).alias("evidence_sha256"),
            ((F.monotonically_increasing_id().bitwiseAND(F.lit(_LOW_33_BITS))) + 1)
            .alias("line_no"),
        )
    )
    return raw.join(F.broadcast(files), on="evidence_sha256", how="inner")


def _damage_rows(spark: SparkSession, framed: list[Framed], meta: dict[str, dict[str, Any]]
                 ) -> DataFrame | None:
    rows = [
        (f.sha256, f.lines + 1, GZIP_TRUNCATED, f.damage, f.damage_tail[:1 << 20],
         len(f.damage_tail), meta[f.sha256]["master"], meta[f.sha256]["cluster"], "quarantined")
        for f in framed if f.damage
    ]
    if not rows:
        return None
    schema = StructType([
        StructField("evidence_sha256", StringType()), StructField("line_no", LongType()),
        StructField("reason", StringType()), StructField("detail", StringType()),
        StructField("raw", BinaryType()), StructField("raw_length", LongType()),
        StructField("master", StringType()), StructField("cluster", StringType()),
        StructField("bucket", StringType()),
    ])
    return spark.createDataFrame(rows, schema)


@contextlib.contextmanager
def _one_file_per_partition(spark: SparkSession, largest: int) -> Iterator[None]:
    """Make the text scan put each file, unsplit, in a partition of its own.

    Line numbers come from the row index within the partition, so this is load-bearing;
    the ledger check (Spark's per-file counts == framed line counts) verifies it each run.
    """
    keys = {"spark.sql.files.maxPartitionBytes": str(largest + 1),
            "spark.sql.files.openCostInBytes": str(largest + 1)}
    old = {k: spark.conf.get(k, None) for k in keys}
    for k, v in keys.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, previous in old.items():
            if previous is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, previous)


def _known_keys(spark: SparkSession, layout: Layout, clusters: set[str]) -> DataFrame | None:
    files = committed_files(layout, layout.events)
    if not files:
        return None
    return (
        spark.read.schema(EVENTS).option("basePath", str(layout.events)).parquet(*files)
        .where(F.col("cluster").isin(sorted(clusters)))
        .select("cluster", "dedup_key")
    )


def _move_staged(staged: Path, layout: Layout, run_id: str) -> int:
    """Staged files -> the lake, each renamed ``run-<id>-<n>-part-...``; returns files moved.

    Events keep their ``cluster=/event_date=`` folders; quarantine and duplicates keep only
    ``cluster=``. Spark gives a task's files the same name in every partition folder, so the
    running number keeps names unique, and ``os.link`` refuses to overwrite anything.
    """
    targets = {"event": layout.events, "quarantined": layout.quarantine,
               "duplicate": layout.duplicates}
    moved = 0
    for bucket, root in targets.items():
        base = staged / f"bucket={bucket}"
        for part in sorted(base.rglob("part-*.parquet")):
            rel = part.relative_to(base)
            sub = rel.parts[:-1] if bucket == "event" else rel.parts[:1]
            dest_dir = root.joinpath(*sub)
            dest_dir.mkdir(parents=True, exist_ok=True)
            os.link(part, dest_dir / f"run-{run_id}-{moved:05d}-{part.name}")
            part.unlink()
            moved += 1
    return moved


def committed_files(layout: Layout, root: Path) -> list[str]:
    """Parquet files under ``root`` written by committed ingest runs (readers use these:
    an ingest between its move and its commit, or killed there, must not be counted)."""
    committed = _committed_runs(layout)
    return sorted(str(p) for p in root.rglob("run-*.parquet")
                  if p.name.split("-", 2)[1] in committed)


def ingest(spark: SparkSession, layout: Layout, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
           run_id: str | None = None, crash_after_move: bool = False) -> dict[str, Any]:
    """Ingest every pending evidence file. Returns {run_id, files: [ledger entries], ...}."""
    run_id = run_id or datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + uuid.uuid4().hex[:8]
    with lake_lock(layout):
        rolled_back = rollback_uncommitted(layout)
        pending = pending_files(layout)
        if not pending:
            return {"run_id": None, "files": [], "rolled_back_files": rolled_back}
        started = time.monotonic()
        meta = {r["sha256"]: r for r in pending}
        staging = layout.staging / run_id
        missing = [r["sha256"] for r in pending
                   if not evidence_path(layout, r["sha256"]).is_file()]
        if missing:
            raise IngestError(f"evidence missing from the store: {', '.join(missing)} "
                              "(custody names them; run `kaudit verify`)")
        framed = [frame(r["sha256"], evidence_path(layout, r["sha256"]), staging / "plain")
                  for r in pending]
        readable = [f for f in framed if f.size > 0]
        staged = staging / "staged"
        parts: list[DataFrame] = []
        damage = _damage_rows(spark, framed, meta)
        if damage is not None:
            parts.append(damage)
        with _one_file_per_partition(spark, max([f.size for f in readable], default=0)):
            if readable:
                lines = _lines_df(spark, readable, meta)
                known = _known_keys(spark, layout, {m["cluster"] for m in pending})
                parts.insert(0, classify_lines(lines, max_line_bytes, known)
                             .select(*OUTPUT_COLUMNS))
            if parts:
                out = parts[0]
                for extra in parts[1:]:
                    out = out.unionByName(extra, allowMissingColumns=True)
                (out.write.mode("overwrite").partitionBy("bucket", "cluster", "event_date")
                 .parquet(str(staged)))
        counts = _staged_counts(spark, staged) if parts else {}
        entries = _ledger_entries(framed, meta, counts)
        staged_files = sum(len(list((staged / f"bucket={b}").rglob("part-*.parquet")))
                           for b in ("event", "quarantined", "duplicate"))
        if _move_staged(staged, layout, run_id) != staged_files:
            raise IngestError(f"run {run_id}: not every staged file reached the lake")
        if crash_after_move:  # test hook: simulate a kill between move and commit
            raise IngestError("simulated crash before commit")
        commit_run(layout, run_id, entries)
        shutil.rmtree(staging, ignore_errors=True)
        return {"run_id": run_id, "files": entries, "rolled_back_files": rolled_back,
                "seconds": round(time.monotonic() - started, 3)}


def _staged_counts(spark: SparkSession, staged: Path) -> dict[str, dict[str, Any]]:
    rows = (
        spark.read.parquet(str(staged))
        .groupBy("evidence_sha256", "bucket")
        .agg(F.count(F.lit(1)).alias("n"), F.max("line_no").alias("max_line"),
             # formatted by Spark in the session zone (UTC): collect() would convert
             # timestamps to the driver's local zone
             F.date_format(F.min("request_received_ts"), _ISO_UTC).alias("first"),
             F.date_format(F.max("request_received_ts"), _ISO_UTC).alias("last"))
        .collect()
    )
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        c = out.setdefault(r["evidence_sha256"], _empty_counts())
        c[r["bucket"]] += r["n"]
        c["max_line"] = max(c["max_line"], r["max_line"] or 0)
        if r["bucket"] == "event" and r["first"] is not None:
            c["first_event"], c["last_event"] = r["first"], r["last"]
    return out


def _empty_counts() -> dict[str, Any]:
    return {b: 0 for b in BUCKETS} | {"max_line": 0, "first_event": None, "last_event": None}


def _ledger_entries(framed: list[Framed], meta: dict[str, dict[str, Any]],
                    counts: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    entries = []
    for f in framed:
        c = counts.get(f.sha256, _empty_counts())
        lines = f.lines + (1 if f.damage else 0)
        total = sum(c[b] for b in BUCKETS)
        if total != lines or c["max_line"] != lines:
            raise IngestError(
                f"evidence {f.sha256}: {lines} lines framed but buckets add up to {total} "
                f"(max line number {c['max_line']}): refusing to commit"
            )
        m = meta[f.sha256]
        entries.append({
            "evidence_sha256": f.sha256, "cluster": m["cluster"], "master": m["master"],
            "file": m["file_name"], "compressed": f.compressed, "damage": f.damage,
            "first_event": c["first_event"], "last_event": c["last_event"],
            "lines": lines, **{k: c[v] for k, v in (("events", "event"),
                                                   ("duplicates", "duplicate"),
                                                   ("quarantined", "quarantined"),
                                                   ("blank", "blank"))},
        })
    return entries


def commit_run(layout: Layout, run_id: str, entries: list[dict[str, Any]]) -> None:
    layout.ledger.mkdir(parents=True, exist_ok=True)
    tmp = layout.ledger / f".{run_id}.tmp"
    body = {"run_id": run_id, "committed_at": datetime.now(UTC).isoformat(), "files": entries}
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, layout.ledger / f"{run_id}.json")
