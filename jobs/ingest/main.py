"""``kaudit ingest``: every evidence file not yet ingested -> lake events, quarantine, duplicates.

Wiring only. Under the lake lock (see :mod:`jobs.lake.runs` for the commit protocol): roll
back uncommitted runs; frame (and re-hash) the pending evidence files, refusing and recording
in custody those whose bytes no longer hash to their name; classify their lines with Spark and
stage them (the JSON parsed once); move the staged events whose key repeats to duplicates;
check that the staged buckets add up to the framed lines (else commit nothing); move the
staged files into the lake; commit the ledger.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession

from jobs.ingest.accounting import ledger_entries, staged_counts
from jobs.ingest.dedup import move_duplicates
from jobs.ingest.lines import classified_rows, one_file_per_partition
from jobs.ingest.preflight import Refused, frame_pending, pending_files, record_refusals
from jobs.lake.ledger import LedgerEntry
from jobs.lake.runs import (
    commit_run,
    lake_lock,
    move_staged,
    new_run_id,
    rollback_uncommitted,
    stage,
    staging_dir,
)
from jobs.settings import DEFAULT_MAX_LINE_BYTES, Layout


@dataclass(frozen=True)
class IngestResult:
    """What one ``kaudit ingest`` did.

    Attributes:
        run_id: the committed run, or None when nothing was pending.
        files: the run's ledger entries, one per evidence file.
        rolled_back_files: lake files of uncommitted runs deleted first.
        seconds: time from framing to commit.
        refused: evidence files not ingested because their bytes no longer hash to their
            name and custody record (recorded in custody as "evidence_altered"); the CLI
            exits with EXIT_DATA when there is any.
    """

    run_id: str | None
    files: tuple[LedgerEntry, ...]
    rolled_back_files: int
    seconds: float = 0.0
    refused: tuple[Refused, ...] = ()


@contextlib.contextmanager
def _job(spark: SparkSession, description: str) -> Iterator[None]:
    """Name the Spark jobs run inside (the event log and profiles show it)."""
    spark.sparkContext.setJobDescription(description)
    try:
        yield
    finally:
        spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]


def run(
    session: SparkSession | Callable[[], SparkSession],
    layout: Layout,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    run_id: str | None = None,
) -> IngestResult:
    """Ingest every pending evidence file of the home into its lake, as one committed run.

    ``session``: the SparkSession, or a callable that starts it (the CLI's): then called only
    when files are pending, while the preflight reads them in a second thread (hashing
    releases the GIL; the JVM's start is mostly another process).
    """
    run_id = run_id or new_run_id()
    with lake_lock(layout):
        rolled_back = rollback_uncommitted(layout)
        pending = pending_files(layout)
        if not pending:
            return IngestResult(None, (), rolled_back)
        started = time.monotonic()
        meta = {r["sha256"]: r for r in pending}
        staging = staging_dir(layout, run_id) / "plain"
        if isinstance(session, SparkSession):
            spark, preflight = session, frame_pending(layout, pending, staging)
        else:
            with ThreadPoolExecutor(1, thread_name_prefix="kaudit-preflight") as pool:
                framing = pool.submit(frame_pending, layout, pending, staging)
                spark = session()
                preflight = framing.result()
        refused = tuple(preflight.refused)
        record_refusals(layout, refused)
        framed = preflight.framed
        if not framed:
            return IngestResult(None, (), rolled_back, refused=refused)
        staged = None
        with one_file_per_partition(spark, framed), _job(spark, "ingest: parse, classify, stage"):
            rows = classified_rows(spark, framed, meta, max_line_bytes)
            if rows is not None:
                staged = stage(rows, layout, run_id)
        if staged is not None and rows is not None:
            clusters = {m["cluster"] for m in meta.values()}
            with _job(spark, "ingest: duplicates (staged keys)"):
                move_duplicates(spark, layout, staged, rows.schema, framed, clusters)
        with _job(spark, "ingest: line accounting"):
            counts = staged_counts(spark, staged) if staged is not None else {}
        entries = ledger_entries(run_id, framed, meta, counts)
        move_staged(layout, run_id)
        commit_run(layout, run_id, entries, custody_head=_custody_head(layout))
        return IngestResult(
            run_id, tuple(entries), rolled_back, round(time.monotonic() - started, 3), refused
        )


def _custody_head(layout: Layout) -> dict[str, Any] | None:
    """The custody head to copy into the ledger commit.

    None when head.json is damaged: verify names it; the commit must not hide the run.
    """
    from jobs.evidence.custody import read_head

    try:
        head = read_head(layout)
    except ValueError:
        return None
    return dict(head) if head else None
