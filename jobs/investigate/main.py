"""kaudit investigate: the events a :class:`~jobs.investigate.query.Query` selects, in order.

Wiring only: check the cluster against the ledger, read the date partitions in range
(``jobs.lake.events.read_events_range``), apply the per-event filters, narrow to the requests a
detection selects when one is asked for, order by time and attach each event's evidence file
name from the ledger and the scope/geo of every IP involved.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.detections.catalogue import BY_ID
from jobs.detections.findings import with_client_scope
from jobs.errors import UsageError
from jobs.geo.reader import GeoReader, ip_info
from jobs.investigate.query import (
    TIME_ORDER,
    Query,
    event_filter,
    of_requests,
    time_filter,
    with_context,
)
from jobs.lake.events import event_files, read_events_range, utc_days
from jobs.lake.ledger import LedgerEntry, read_ledger
from jobs.schemas import EVENT_COLUMNS
from jobs.settings import Layout
from jobs.weekly.identities import build_ip_info
from jobs.weekly.requests import summarise_requests

# Request and response bodies stay in the lake: a handed-over export must not carry secrets.
BODY_COLUMNS = ("request_object", "response_object")
_TIMESTAMPS = ("request_received_ts", "stage_ts")
RESULT_COLUMNS: tuple[str, ...] = (
    *(c for c in EVENT_COLUMNS if c not in BODY_COLUMNS),
    "attributed_user",
    "client_ip",
    "exec_command",
    "evidence_file",
)


@dataclass(frozen=True)
class InvestigationResult:
    """What an investigation found.

    Attributes:
        query: the query answered.
        rows: matching events in time order, RESULT_COLUMNS (timestamps aware, UTC).
        files_read: the lake files read (only the partitions in range).
        evidence: ledger entries of the evidence files the rows come from.
        ips: scope and geo (IP_INFO_FIELDS) of every sourceIPs entry of the rows.
    """

    query: Query
    rows: list[dict[str, Any]]
    files_read: tuple[str, ...]
    evidence: tuple[LedgerEntry, ...]
    ips: tuple[dict[str, Any], ...]


def check_cluster(query: Query, entries: list[LedgerEntry]) -> None:
    """Refuse a cluster the lake has never ingested (UsageError)."""
    known = sorted({e.cluster for e in entries})
    if query.cluster is not None and query.cluster not in known:
        raise UsageError(
            f"--cluster: unknown cluster {query.cluster!r} (lake has: {', '.join(known) or 'none'})"
        )


def detection_hits(spark: SparkSession, window_df: DataFrame, detection_id: str) -> DataFrame:
    """Requests of ``window_df`` (events) that detection ``detection_id`` selects.

    Windowed detections (rates, bursts, per-day counts) are judged over the query's range,
    as the weekly job judges them over its week.
    """
    from jobs.settings import DetectionsConfig

    detection = BY_ID[detection_id]
    config = DetectionsConfig()  # the investigation has no cluster config: default lists
    requests_df = summarise_requests(window_df)
    scoped_df = with_client_scope(requests_df, build_ip_info(spark, requests_df))
    if detection.predicate is not None:
        return scoped_df.where(F.coalesce(detection.predicate(config), F.lit(False)))
    assert detection.finder is not None
    return detection.finder(scoped_df, detection, config)


def select_events(spark: SparkSession, range_df: DataFrame, query: Query) -> DataFrame:
    """The matching events (EVENTS columns plus context), ordered by time."""
    matched_df = range_df.where(event_filter(query))
    if query.detection is not None:
        window_df = range_df.where(time_filter(query))
        if query.cluster is not None:
            window_df = window_df.where(F.col("cluster") == query.cluster)
        matched_df = of_requests(matched_df, detection_hits(spark, window_df, query.detection))
    return with_context(matched_df).orderBy(*TIME_ORDER)


def _utc(micros: int | None) -> dt.datetime | None:
    if micros is None:
        return None
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=micros)


def collect_rows(events_df: DataFrame, entries: list[LedgerEntry]) -> list[dict[str, Any]]:
    """The rows on the driver, timestamps aware (UTC) whatever the process's zone."""
    files = {e.evidence_sha256: e.file for e in entries}
    columns = [c for c in RESULT_COLUMNS if c != "evidence_file"]
    picked = [F.unix_micros(c).alias(c) if c in _TIMESTAMPS else F.col(c) for c in columns]
    rows = []
    for row in events_df.select(*picked).collect():
        out = row.asDict()
        for c in _TIMESTAMPS:
            out[c] = _utc(out[c])
        out["evidence_file"] = files.get(out["evidence_sha256"])
        rows.append(out)
    return rows


def run(
    spark: SparkSession, layout: Layout, query: Query, geo: GeoReader | None = None
) -> InvestigationResult:
    """Answer ``query`` over the lake of ``layout``.

    Raises UsageError for a cluster the lake does not hold. ``geo`` (optional) locates the
    public IPs involved; without it only their scope is given.
    """
    entries = read_ledger(layout)
    check_cluster(query, entries)
    range_df = read_events_range(spark, layout, query.since, query.until, query.cluster)
    rows = collect_rows(select_events(spark, range_df, query), entries)
    first, last = utc_days(query.since, query.until)
    used = {r["evidence_sha256"] for r in rows}
    ips = {ip for r in rows for ip in (r["source_ips"] or [])}
    return InvestigationResult(
        query=query,
        rows=rows,
        files_read=tuple(event_files(layout, first, last, query.cluster)),
        evidence=tuple(e for e in entries if e.evidence_sha256 in used),
        ips=tuple(ip_info(ips, geo)),
    )
