"""Writing the lake: one ingest run at a time, staged, moved in, then committed.

Commit protocol (so that a run killed midway and re-run leaves the same lake):

1. :func:`lake_lock`, then :func:`rollback_uncommitted`: delete the files of runs that never
   committed, and the staging area;
2. :func:`stage`: write the run's rows as ONE Parquet dataset partitioned by
   bucket/cluster/event_date under the run's staging folder;
3. :func:`move_staged`: move the staged files into the lake, each named ``run-<id>-...``;
4. :func:`commit_run`: write ``lake/_ledger/<id>.json`` atomically: the commit point. It
   carries the custody head of the moment, so a custody chain cut later disagrees with it.
   Readers (:mod:`jobs.lake.events`) count only files of committed runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.lake.ledger import LedgerEntry, committed_runs, write_run_file
from jobs.settings import Layout

BUCKETS = ("event", "duplicate", "quarantined", "blank")
"""Where a line can land; every line lands in exactly one (blank lines are only counted)."""
PARTITIONS = ("bucket", "cluster", "event_date")


def new_run_id() -> str:
    """A run id that sorts by start time and is unique."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + uuid.uuid4().hex[:8]


def run_of(path: Path) -> str:
    """The run id in a lake file name ``run-<id>-...``."""
    return path.name.split("-", 2)[1]


@contextlib.contextmanager
def lake_lock(layout: Layout) -> Iterator[None]:
    """Hold the lake's exclusive lock: one writer at a time."""
    layout.lake.mkdir(parents=True, exist_ok=True)
    with open(layout.lake / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def rollback_uncommitted(layout: Layout) -> int:
    """Delete lake files written by runs that never committed, and the staging area.

    Call it holding :func:`lake_lock`. Returns the number of lake files removed.
    """
    committed = committed_runs(layout)
    removed = 0
    for root in (layout.events, layout.quarantine, layout.duplicates):
        if not root.is_dir():
            continue
        for p in root.rglob("run-*"):
            if run_of(p) not in committed:
                p.unlink()
                removed += 1
    if layout.staging.exists():
        shutil.rmtree(layout.staging)
    return removed


def staging_dir(layout: Layout, run_id: str) -> Path:
    """The run's scratch folder (staged rows, decompressed copies); removed on commit."""
    return layout.staging / run_id


def staged_dir(layout: Layout, run_id: str) -> Path:
    """Where :func:`stage` writes the run's rows."""
    return staging_dir(layout, run_id) / "staged"


def stage(rows: DataFrame, layout: Layout, run_id: str) -> Path:
    """Write the run's rows (with ``bucket``, ``cluster``, ``event_date``) to staging.

    Returns:
        The staged dataset's folder.
    """
    path = staged_dir(layout, run_id)
    rows.write.mode("overwrite").options(**PLAIN_ENCODED).partitionBy(*PARTITIONS).parquet(
        str(path)
    )
    return path


# Columns whose values are (nearly) all distinct: a Parquet dictionary saves nothing on them,
# and building it (hashing and comparing every value until the dictionary page is full, in
# every row group) was a tenth of ingest's CPU. Written plain instead; the values are the same.
UNIQUE_COLUMNS = (
    "audit_id", "dedup_key", "request_object", "response_object", "object_uid", "line_no",
    "request_received_ts", "stage_ts", "raw",
)  # fmt: skip
PLAIN_ENCODED = {f"parquet.enable.dictionary#{c}": "false" for c in UNIQUE_COLUMNS}


def move_staged(layout: Layout, run_id: str) -> int:
    """Staged files -> the lake, each renamed ``run-<id>-<n>-part-...``; returns files moved.

    Events keep their ``cluster=/event_date=`` folders; quarantine and duplicates keep only
    ``cluster=``. Spark gives a task's files the same name in every partition folder, so the
    running number keeps names unique, and ``os.link`` refuses to overwrite anything.
    """
    staged = staged_dir(layout, run_id)
    targets = {
        "event": layout.events,
        "quarantined": layout.quarantine,
        "duplicate": layout.duplicates,
    }
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


def commit_run(
    layout: Layout,
    run_id: str,
    entries: Sequence[LedgerEntry],
    custody_head: Mapping[str, Any] | None = None,
) -> None:
    """Commit a moved run: write its ledger file (with the caller's custody head), drop staging.

    The head comes from the caller (ingest reads it from jobs.evidence): the lake does not
    import the evidence package.
    """
    write_run_file(layout, run_id, entries, custody_head=custody_head)
    shutil.rmtree(staging_dir(layout, run_id), ignore_errors=True)


def write_run(
    layout: Layout, run_id: str, rows: DataFrame, entries: Sequence[LedgerEntry] = ()
) -> int:
    """Stage, move and commit ``rows`` as one run, under the lake lock; returns files moved.

    For tools and tests that put known rows in the lake (ingest goes step by step, because
    it checks the staged counts before moving). Rows without a ``bucket`` column are events.
    """
    if "bucket" not in rows.columns:
        rows = rows.withColumn("bucket", F.lit("event"))
    with lake_lock(layout):
        stage(rows, layout, run_id)
        moved = move_staged(layout, run_id)
        commit_run(layout, run_id, entries)
    return moved
