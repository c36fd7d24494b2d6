"""What an investigation asks, and the Spark filters that answer it (Column expressions only).

A :class:`Query` is validated when built: a reversed or empty time range, a bad IP or CIDR and
an unknown detection id are :class:`~jobs.errors.UsageError` (exit 2). Its filters combine with
AND. Times without a zone are UTC; a date alone means midnight UTC.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, fields

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.detections.catalogue import BY_ID
from jobs.detections.columns import attributed_user_col
from jobs.detections.predicates import exec_command_col
from jobs.errors import UsageError
from jobs.geo.ranges import in_networks_col
from jobs.weekly.requests import client_ip_col

# Query field -> EVENTS column compared for equality.
EQUALITY_FILTERS = {
    "cluster": "cluster",
    "resource": "resource",
    "namespace": "namespace",
    "name": "object_name",
    "verb": "verb",
}


def parse_time(text: str, option: str) -> dt.datetime:
    """An ISO date or date-time as an aware datetime (no zone: UTC).

    Raises:
        UsageError: when ``text`` is not ISO 8601.
    """
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option}: not an ISO date or time: {text!r} (e.g. 2026-11-17 or "
            "2026-11-17T22:00:00+08:00)"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """An IP address or CIDR (host bits may be set) as a network.

    Raises:
        UsageError: when ``text`` is neither.
    """
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise UsageError(f"--ip: not an IP address or CIDR: {text!r}") from None


@dataclass(frozen=True)
class Query:
    """One investigation: a time range [since, until) and optional filters, combined with AND.

    Attributes:
        since: start (aware, inclusive).
        until: end (aware, exclusive).
        cluster: the cluster; None: every cluster in the lake.
        user: user name, impersonated user, or person behind a shared login.
        ip: IP or CIDR matched against every entry of the sourceIPs chain.
        resource: objectRef resource (e.g. ``pods``).
        namespace: objectRef namespace.
        name: objectRef name.
        verb: request verb.
        detection: a catalogue detection id: the events of the requests it selects.
    """

    since: dt.datetime
    until: dt.datetime
    cluster: str | None = None
    user: str | None = None
    ip: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    verb: str | None = None
    detection: str | None = None

    def __post_init__(self) -> None:
        """Refuse a naive or reversed time range, a bad CIDR, an unknown detection."""
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise UsageError("--since/--until must carry a time zone")
        if self.since >= self.until:
            raise UsageError(
                f"time range reversed or empty: --since {self.since.isoformat()} is not before "
                f"--until {self.until.isoformat()}"
            )
        if self.ip is not None:
            parse_network(self.ip)
        if self.detection is not None and self.detection not in BY_ID:
            raise UsageError(
                f"--detection: unknown detection id {self.detection!r} "
                f"(known: {', '.join(sorted(BY_ID))})"
            )

    def describe(self) -> list[tuple[str, str]]:
        """(option, value) of every set field, in declaration order, for reports."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            text = value.isoformat() if isinstance(value, dt.datetime) else str(value)
            out.append((f.name, text))
        return out


def time_filter(query: Query) -> Column:
    """request_received_ts in [since, until)."""
    ts = F.col("request_received_ts")
    since, until = query.since.astimezone(dt.UTC), query.until.astimezone(dt.UTC)
    return (ts >= F.lit(since)) & (ts < F.lit(until))


def user_filter(user: str) -> Column:
    """The user acted: as themselves, as the impersonated user, or behind a shared login."""
    attributed = attributed_user_col(F.col("user_name"), F.col("authz_reason"))
    return F.coalesce(
        (F.col("user_name") == user) | (F.col("impersonated_user") == user) | (attributed == user),
        F.lit(False),
    )


def ip_filter(ip_or_cidr: str) -> Column:
    """Some entry of the sourceIPs chain lies in the IP or CIDR (forwarded entries included)."""
    net = str(parse_network(ip_or_cidr))
    return F.coalesce(
        F.exists(F.col("source_ips"), lambda ip: in_networks_col(ip, [net])), F.lit(False)
    )


def event_filter(query: Query) -> Column:
    """Every per-event filter of ``query`` (time, cluster, user, IP, object, verb) ANDed."""
    test = time_filter(query)
    for field_name, column in EQUALITY_FILTERS.items():
        value = getattr(query, field_name)
        if value is not None:
            test = test & F.coalesce(F.col(column) == value, F.lit(False))
    if query.user is not None:
        test = test & user_filter(query.user)
    if query.ip is not None:
        test = test & ip_filter(query.ip)
    return test


def request_ref_col() -> Column:
    """What ties an event to its request: the audit ID, else the event's own place."""
    return F.coalesce(
        F.col("audit_id"),
        F.concat_ws(":", F.lit("line"), F.col("evidence_sha256"), F.col("line_no")),
    )


def of_requests(events_df: DataFrame, hits_df: DataFrame) -> DataFrame:
    """Events whose request is among ``hits_df`` (rows with cluster, audit_id and evidence)."""
    refs = hits_df.select("cluster", request_ref_col().alias("_ref")).distinct()
    return (
        events_df.withColumn("_ref", request_ref_col())
        .join(F.broadcast(refs), on=["cluster", "_ref"], how="left_semi")
        .drop("_ref")
    )


def with_context(events_df: DataFrame) -> DataFrame:
    """Add the columns an investigator reads besides EVENTS'.

    ``attributed_user`` (person behind a shared login), ``client_ip`` (last sourceIPs entry,
    the apiserver's direct peer) and ``exec_command`` (decoded, exec events only).
    """
    return events_df.select(
        "*",
        attributed_user_col(F.col("user_name"), F.col("authz_reason")).alias("attributed_user"),
        client_ip_col(F.col("source_ips")).alias("client_ip"),
        F.when(F.col("subresource") == "exec", exec_command_col()).alias("exec_command"),
    )


TIME_ORDER = ("request_received_ts", "stage_ts", "evidence_sha256", "line_no")
