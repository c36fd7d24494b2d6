"""Which detections alert, and the alerts they raise on the events of one ingest run.

The detections are the catalogue's own (``jobs.detections.findings.find_important_events``),
run over the requests of the run's lake files only; windowed detections (the public-IP failure
rate) are judged over those requests, i.e. over the newly ingested hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.detections.catalogue import BY_ID
from jobs.errors import UsageError
from jobs.settings import Config, Layout

# The detections the product alerts on in near real time (issue 12); config adds more.
DEFAULT_ALERT_IDS = (
    "exec",
    "attach",
    "public-ip-failure-rate",
    "anonymous-allowed",
    "cluster-admin-binding",
)
_SHOWN = (
    "user_name", "attributed_user", "client_ip", "verb", "resource", "subresource",
    "namespace", "object_name", "response_code", "container", "command", "master",
    "evidence_sha256", "line_no",
)  # fmt: skip


@dataclass(frozen=True)
class Alert:
    """One finding to announce.

    Attributes:
        key: stable identity across re-runs: cluster, detection and request (per-request
            detections) or finding key and UTC hour of its first request (windowed ones).
        detection_id: the catalogue id.
        severity: the catalogue severity.
        title: the catalogue title.
        first_seen: ISO time (UTC) of the finding's first request.
        requests: how many requests make up the finding.
        details: the first request's fields (_SHOWN), event-derived: escape before display.
    """

    key: str
    detection_id: str
    severity: str
    title: str
    first_seen: str
    requests: int
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The alert as JSON-able data."""
        return {
            "key": self.key, "detection_id": self.detection_id, "severity": self.severity,
            "title": self.title, "first_seen": self.first_seen, "requests": self.requests,
            **self.details,
        }  # fmt: skip


def alert_ids(config: Config) -> tuple[str, ...]:
    """The default alerting detections plus ``detections.alert`` of the config, in order.

    Raises:
        UsageError: the config names an id the catalogue does not have.
    """
    unknown = [i for i in config.detections.alert if i not in BY_ID]
    if unknown:
        raise UsageError(f"detections.alert: unknown detection ids: {', '.join(unknown)}")
    return tuple(dict.fromkeys((*DEFAULT_ALERT_IDS, *config.detections.alert)))


def run_events(spark: SparkSession, layout: Layout, run_id: str, cluster: str) -> DataFrame:
    """The events ``run_id`` committed to the lake for ``cluster`` (its own files only)."""
    from jobs.lake.events import committed_files
    from jobs.schemas import EVENTS

    files = [
        f for f in committed_files(layout, layout.events / f"cluster={cluster}")
        if Path(f).name.startswith(f"run-{run_id}-")
    ]  # fmt: skip
    if not files:
        return spark.createDataFrame([], EVENTS)
    return spark.read.schema(EVENTS).option("basePath", str(layout.events)).parquet(*files)


def _findings(spark: SparkSession, config: Config, events_df: DataFrame) -> DataFrame:
    from jobs.detections.findings import find_important_events
    from jobs.geo.reader import GeoReader
    from jobs.weekly.identities import build_ip_info
    from jobs.weekly.requests import summarise_requests

    report = config.report
    requests_df = summarise_requests(
        events_df, timezone=config.timezone, system_users=report.system_users,
        system_prefixes=report.system_user_prefixes, trusted_proxies=report.trusted_proxies,
    )  # fmt: skip
    with GeoReader.from_config(report.geoip.city, report.geoip.asn) as geo:
        ip_info_df = build_ip_info(spark, requests_df, geo)
    return find_important_events(requests_df, ip_info_df, config.detections)


def find_alerts(spark: SparkSession, config: Config, layout: Layout, run_id: str) -> list[Alert]:
    """The alerts of ``run_id``'s events for ``config.cluster``, most severe first."""
    ids = alert_ids(config)
    events_df = run_events(spark, layout, run_id, config.cluster)
    hits_df = _findings(spark, config, events_df).where(F.col("detection_id").isin(*ids))
    ts = F.col("request_received_ts")
    windowed = F.col("finding_key").isNotNull()
    hour = F.date_format(F.date_trunc("hour", F.min(ts)), "yyyy-MM-dd'T'HH")
    grouped = hits_df.groupBy(
        "detection_id", "severity", F.coalesce("finding_key", "request_key").alias("_key")
    ).agg(
        F.min(ts).alias("first_ts"),
        F.count_distinct("request_key").alias("requests"),
        F.max(windowed).alias("windowed"),
        hour.alias("hour"),
        F.min_by(F.struct(*_SHOWN), ts).alias("first"),
    )
    rank = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    alerts = []
    for row in grouped.select(
        "*", F.date_format("first_ts", "yyyy-MM-dd'T'HH:mm:ss'Z'").alias("first_seen")
    ).collect():
        key = f"{row['_key']}|{row['hour']}" if row["windowed"] else row["_key"]
        alerts.append(Alert(
            key=f"{config.cluster}|{row['detection_id']}|{key}",
            detection_id=row["detection_id"], severity=row["severity"],
            title=BY_ID[row["detection_id"]].title, first_seen=row["first_seen"],
            requests=int(row["requests"]), details=row["first"].asDict(),
        ))  # fmt: skip
    return sorted(alerts, key=lambda a: (rank.get(a.severity, 9), ids.index(a.detection_id),
                                         a.first_seen, a.key))  # fmt: skip
