"""kaudit report: the weekly marts and summary.json of one cluster and ISO week.

Wiring only: load the policy and compute the week window once, read the week's events,
summarise requests, look up the distinct client IPs on the driver (scope + geo), decide
detection observability, compute the marts, write them as
``<home>/marts/<cluster>/<week>/<mart>/`` (Parquet, overwrite) and ``summary.json`` last.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from jobs.config import DetectionsConfig
from jobs.detections.findings import (
    detection_requests,
    detection_statuses,
    important_events_from,
    summarise_detections,
)
from jobs.detections.observability import observability_for_week, policy_source
from jobs.detections.risk import with_ip_risk
from jobs.geo.reader import GeoReader
from jobs.lake.ledger import read_ledger
from jobs.lake.marts import SUMMARY_FILE, mart_dir, write_json, write_mart
from jobs.policy.checks import policy_findings_from, policy_fit_from, summarise_policy_events
from jobs.policy.loader import load_default_policy, load_policy
from jobs.policy.model import Policy
from jobs.settings import Config, Layout
from jobs.weekly import identities, marts
from jobs.weekly.coverage import (
    WeekContext,
    build_coverage,
    build_provenance,
    summarise_master_hours,
)
from jobs.weekly.identities import build_ip_info
from jobs.weekly.requests import read_week, summarise_requests
from jobs.weekly.summary import build_summary, iso_week_window

SUMMARY_MARTS = (
    "overview", "detections", "source_ips", "users", "crd_operations", "resource_operations",
    "policy_findings", "policy_fit",
)  # fmt: skip
# mart name -> sort order of its single Parquet file ("-col" = descending)
MART_ORDER: dict[str, tuple[str, ...]] = {
    "overview": ("dimension", "key"),
    "important_events": ("detection_id", "request_received_ts", "request_key", "finding_key"),
    "detections": ("position",),
    "resource_operations": ("category", "api_group", "resource", "operation"),
    "resource_detail": ("category", "api_group", "resource", "facet", "key"),
    "resource_detail_operations": ("request_received_ts", "audit_id", "evidence_sha256", "line_no"),
    "source_ips": ("-requests", "ip"),
    "users": ("-requests", "user"),
    "impersonation": ("user_name", "attributed_user", "impersonated_user"),
    "crd_operations": ("api_group", "resource", "verb", "user"),
    "policy_findings": ("master", "-events", "check", "rule"),
    "policy_fit": ("master",),
}
POLICY_MARTS = ("policy_findings", "policy_fit")
IMPORTANT_PARTITIONS_PER_CORE = 4  # the last ones written: see run()
GeoFactory = Callable[[], GeoReader]


def _request_marts(
    requests_df: DataFrame, ip_info_df: DataFrame, timezone: str
) -> dict[str, Callable[[], DataFrame]]:
    """How to build each mart computed from the cached requests alone (quick to plan)."""
    return {
        "overview": partial(marts.summarise_overview, requests_df, timezone=timezone),
        "resource_operations": partial(marts.summarise_resource_operations, requests_df),
        "resource_detail": partial(marts.summarise_resource_detail, requests_df),
        "resource_detail_operations": partial(marts.select_resource_operation_list, requests_df),
        "source_ips": partial(identities.summarise_source_ips, requests_df, ip_info_df),
        "users": partial(identities.summarise_users, requests_df),
        "impersonation": partial(identities.summarise_impersonation, requests_df),
        "crd_operations": partial(marts.summarise_crd_operations, requests_df),
    }


def in_few_partitions(important_df: DataFrame, partitions: int | None = None) -> DataFrame:
    """The important events in at most ``partitions`` (IMPORTANT_PARTITIONS_PER_CORE a core).

    The union of a dozen detection passes had ~70 partitions, most of them empty (the 1.5 M
    week: 68), and each of the five jobs that read its cache ran a task per partition. Every
    task deserialises the whole lineage (~27 ms of CPU here): 9 s of the run's 18 s of task
    deserialisation. ``coalesce`` joins neighbouring partitions without a shuffle; a large
    one (a detection pass of a week under attack: ~1 M rows) stays as large as it was.
    """
    cores = important_df.sparkSession.sparkContext.defaultParallelism
    return important_df.coalesce(partitions or IMPORTANT_PARTITIONS_PER_CORE * cores)


def _detection_and_policy_marts(
    requests_df: DataFrame,
    week_df: DataFrame,
    ip_info_df: DataFrame,
    observability: tuple[dict[str, str], dict[str, str]],
    policy: Policy,
    detections: DetectionsConfig,
) -> tuple[dict[str, DataFrame], tuple[DataFrame, DataFrame, DataFrame]]:
    """important_events, detections and the policy marts; and the cached frames they read.

    The requests the detections read (a dozen passes; a tenth of the week's requests), the
    important events (two marts read them) and the events' policy verdicts (one pass for both
    policy marts) are persisted; the caller releases them.
    """
    scoped_df = detection_requests(requests_df, ip_info_df, detections).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    important_df = in_few_partitions(important_events_from(scoped_df, detections)).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    # conformance of the week's events to the cluster's audit policy
    policy_df = summarise_policy_events(week_df, policy).persist(StorageLevel.MEMORY_AND_DISK)
    frames = {
        "important_events": important_df,
        "detections": summarise_detections(important_df, *observability),
        "policy_findings": policy_findings_from(policy_df),
        "policy_fit": policy_fit_from(policy_df),
    }
    return frames, (important_df, policy_df, scoped_df)


def _write(
    spark: SparkSession, df: DataFrame, path: Path, name: str
) -> list[dict[str, Any]] | None:
    """Write one mart; return its rows, read back, when summary.json needs them."""
    write_mart(df, path, MART_ORDER[name])
    if name not in SUMMARY_MARTS:
        return None
    return [r.asDict() for r in spark.read.parquet(str(path)).collect()]


def _write_releasing(
    spark: SparkSession,
    frames: dict[str, DataFrame],
    out: Path,
    groups: tuple[tuple[tuple[str, ...], tuple[DataFrame | None, ...]], ...],
) -> dict[str, list[dict[str, Any]] | None]:
    """Write each group's marts in turn, then release the caches nothing later reads."""
    rows: dict[str, list[dict[str, Any]] | None] = {}
    for names, releases in groups:
        rows |= {name: _write(spark, frames[name], out / name, name) for name in names}
        for release in releases:
            if release is not None:
                release.unpersist()
    return rows


def _default_context(config: Config) -> WeekContext:
    """Provenance for a run called without one (tests, tools): no custody, no hashes."""
    return WeekContext(
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0), code_version="unknown",
        config_sha256="", policy={"source": policy_source(config.policy), "sha256": ""},
        masters=tuple(m.name for m in config.masters),
    )  # fmt: skip


def _evidence_blocks(
    spark: SparkSession,
    config: Config,
    layout: Layout,
    week_df: DataFrame,
    window: tuple[dt.datetime, dt.datetime],
    context: WeekContext | None,
) -> dict[str, Any]:
    """summary.json's coverage and provenance blocks (issue: empty weeks never look clean)."""
    context = context or _default_context(config)
    hours = [r.asDict() for r in summarise_master_hours(week_df).collect()]
    coverage = build_coverage(
        window=window, masters=context.masters or [m.name for m in config.masters],
        master_hours=hours,
        collection_failures=[f for f in context.collection_failures
                             if f.get("cluster") == config.cluster],
        evidence_gaps=context.evidence_gaps,
    )  # fmt: skip
    provenance = build_provenance(
        cluster=config.cluster, window=window, ledger=read_ledger(layout), context=context
    )
    return {"coverage": coverage, "provenance": provenance}


def run(
    spark: SparkSession,
    config: Config,
    layout: Layout,
    week: str,
    geo_factory: GeoFactory | None = None,
    context: WeekContext | None = None,
    idle_work: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Compute and write the marts of ``config.cluster`` for ISO ``week``; return the summary.

    ``idle_work`` (e.g. importing the next steps' libraries) runs in a daemon thread while
    the first Spark job (the request summary, the longest) runs: not earlier, when it would
    slow the building of the query plans, which holds the GIL.

    Raises WeekError for a bad ``week``, PolicyError for a bad policy file and GeoError for a
    configured geo database that cannot be opened (all UsageError).
    """
    window = iso_week_window(week, config.timezone)
    policy = load_policy(config.policy) if config.policy else load_default_policy()
    report = config.report
    # Not cached: each reader (requests, observability, policy checks, coverage) scans only
    # the Parquet columns it needs; caching all 40 columns cost more than the rescans.
    week_df = read_week(spark, layout, config.cluster, *window)
    requests_df = summarise_requests(
        week_df,
        timezone=config.timezone,
        system_users=report.system_users,
        system_prefixes=report.system_user_prefixes,
        trusted_proxies=report.trusted_proxies,
    ).persist(StorageLevel.MEMORY_AND_DISK)
    geo = (geo_factory or (lambda: GeoReader.from_config(report.geoip.city, report.geoip.asn)))()
    important_df: DataFrame | None = None
    policy_df: DataFrame | None = None
    scoped_df: DataFrame | None = None
    try:
        if idle_work is not None:
            threading.Thread(target=idle_work, name="kaudit-idle-work", daemon=True).start()
        with geo:
            ip_info_df = build_ip_info(spark, requests_df, geo)
            geoip = geo.describe()
        observability = observability_for_week(spark, week_df, policy, policy_source(config.policy))
        # the cluster's allow-lists and threat data (issue 11): risky IPs, "not configured"
        ip_info_df = with_ip_risk(spark, ip_info_df, config.detections)
        observability = detection_statuses(observability, config.detections)
        out = mart_dir(layout, config.cluster, week)
        written: dict[str, list[dict[str, Any]] | None] = {}
        # Planning takes driver time (py4j calls; seconds for the detection and policy marts):
        # a second thread plans each request mart in turn, then the detection and policy
        # marts, while two more write the request marts as soon as they are planned (one
        # mart's job alone left a core idle in its small final stages). Each cache
        # is released as soon as nothing left reads it (a week under attack caches millions
        # of requests and important events; the later aggregations then ran out of memory):
        # important_events is written while the requests it is computed from are cached.
        with ThreadPoolExecutor(1, thread_name_prefix="kaudit-plan") as planner:
            request_marts = {
                name: planner.submit(build)
                for name, build in _request_marts(requests_df, ip_info_df, config.timezone).items()
            }
            planning = planner.submit(
                _detection_and_policy_marts, requests_df, week_df, ip_info_df, observability,
                policy, config.detections,
            )  # fmt: skip
            try:
                with ThreadPoolExecutor(2, thread_name_prefix="kaudit-write") as writers:
                    writes = {
                        name: writers.submit(
                            lambda n, m: _write(spark, m.result(), out / n, n), name, mart
                        )
                        for name, mart in request_marts.items()
                    }
                    for name, write in writes.items():
                        written[name] = write.result()
            finally:
                planned, cached = planning.result()
                important_df, policy_df, scoped_df = cached

        # Everything left reads the important events' cache or the policy verdicts': fill the
        # first and release what it was computed from; then this thread writes important_events
        # while a second one writes the other marts. A week under attack's important_events
        # (millions of rows) is sorted and written by one task (one file): the other marts take
        # the other core meanwhile.
        important_df.count()
        for release in (requests_df, scoped_df):
            release.unpersist()
        side_marts = ((("detections",), ()), (POLICY_MARTS, (policy_df,)))
        with ThreadPoolExecutor(1, thread_name_prefix="kaudit-marts") as side:
            side_rows = side.submit(_write_releasing, spark, planned, out, side_marts)
            written |= _write_releasing(spark, planned, out, ((("important_events",), ()),))
            written |= side_rows.result()
        important_df.unpersist()
        collected = {name: rows for name, rows in written.items() if rows is not None}
        summary = build_summary(
            cluster=config.cluster,
            week=week,
            timezone=config.timezone,
            window=window,
            geoip=geoip,
            **collected,
        )
        summary |= _evidence_blocks(spark, config, layout, week_df, window, context)
        write_json(summary, out / SUMMARY_FILE)
        return summary
    finally:
        for frame in (important_df, policy_df, scoped_df, requests_df):
            if frame is not None:
                frame.unpersist()
