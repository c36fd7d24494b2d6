"""Entry points the pipeline calls: the whole week (weekly job) and one ingest batch.

Every suite of a call goes through ONE :class:`~expectations.runner.Runner` (one ephemeral
context, one Spark data source). ``validate_week`` writes ``validation.json`` (read by the
PDF renderer) and, optionally, GX's Data Docs beside it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from expectations.consistency import build_consistency_suite, consistency_frame
from expectations.events import (
    build_events_suite,
    file_ranges_from_ledger,
    prepare_events,
    with_key_checks,
)
from expectations.ledger import QUARANTINE_WARN_SHARE, build_ledger_suite, ledger_frame
from expectations.marts import MART_SUITES
from expectations.runner import Runner, SuiteOutcome

VALIDATION_FILE = "validation.json"
DATA_DOCS_DIR = "data_docs"


def summary(outcomes: Sequence[SuiteOutcome]) -> dict[str, Any]:
    """validation.json's shape: overall success (no critical failure) and every result."""
    return {"success": all(o.success for o in outcomes), "suites": [o.to_dict() for o in outcomes]}


def _write_json(data: Any, path: Path) -> None:
    """Atomically (temp file + rename): a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _validate_events(runner: Runner, events_df: DataFrame, ranges_df: DataFrame) -> SuiteOutcome:
    """The events suite over the prepared events, cached while GX reads them.

    Events are the one large input: without the cache each of GX's passes would re-read the
    lake and redo the join with the file ranges.
    """
    prepared = prepare_events(events_df, ranges_df).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return runner.validate(with_key_checks(prepared), build_events_suite())
    finally:
        prepared.unpersist()


def validate_week(
    spark: SparkSession,
    events_df: DataFrame,
    marts: dict[str, DataFrame],
    ledger_entries: list[dict[str, Any]],
    out_dir: Path,
    *,
    quarantine_warn_share: float = QUARANTINE_WARN_SHARE,
    data_docs: bool = True,
    local_marts: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Validate a week's events, every mart, the ledger and the cross-dataset totals.

    ``events_df``: the events the marts were computed from (EVENTS columns). ``marts``: every
    mart of ``MART_SUITES`` by name (Spark; the cross-dataset checks join them with the
    events). ``local_marts``: the same marts as pandas frames, for those small enough: their
    suites then run on GX's pandas engine (same outcomes, milliseconds instead of a Spark job
    per expectation). ``ledger_entries``: the ledger's file entries of the
    evidence files those events come from (their first/last_event bound the events).
    Writes ``<out_dir>/validation.json`` (and ``<out_dir>/data_docs/`` when ``data_docs``);
    returns the same dict. ``success`` is false when any critical expectation failed.
    """
    missing = sorted(set(MART_SUITES) - set(marts))
    if missing:
        raise KeyError(f"marts missing from the week's validation: {', '.join(missing)}")
    runner = Runner(out_dir / DATA_DOCS_DIR if data_docs else None)
    ranges_df = file_ranges_from_ledger(spark, ledger_entries)
    # The cross-dataset row is one Spark query (seconds over the week's events); it runs in a
    # second thread while GX validates the rest, whose passes leave the cores half idle.
    with ThreadPoolExecutor(1, thread_name_prefix="kaudit-consistency") as pool:
        consistency = pool.submit(consistency_frame, events_df, marts)
        outcomes = [_validate_events(runner, events_df, ranges_df)]
        local = local_marts or {}
        outcomes += [
            runner.validate(local[name] if name in local else marts[name], build())
            for name, build in MART_SUITES.items()
        ]
        outcomes.append(
            runner.validate(
                ledger_frame(spark, ledger_entries), build_ledger_suite(quarantine_warn_share)
            )
        )
        outcomes.append(runner.validate(consistency.result(), build_consistency_suite()))
    result = summary(outcomes)
    if data_docs:
        runner.build_data_docs()
    _write_json(result, out_dir / VALIDATION_FILE)
    return result


def validate_ingest_batch(
    spark: SparkSession, events_df: DataFrame, file_ranges_df: DataFrame
) -> dict[str, Any]:
    """Validate one ingest batch's events; the validation.json shape with one suite.

    ``file_ranges_df``: ``expectations.events.FILE_RANGES_SCHEMA`` (evidence_sha256,
    first_event, last_event) for the batch's files. ``spark`` is the session the DataFrames
    belong to (GX's Spark engine uses the active session).
    """
    del spark  # the DataFrames carry their session; kept for a uniform call shape
    return summary([_validate_events(Runner(), events_df, file_ranges_df)])


def failed_expectations(
    result: Mapping[str, Any], severity: str | None = None
) -> list[dict[str, Any]]:
    """Flat list of failed results (with their suite), e.g. for a report's cover."""
    return [
        {"suite": s["suite"], **r}
        for s in result["suites"]
        for r in s["results"]
        if not r["success"] and (severity is None or r["severity"] == severity)
    ]
