"""risky-source-ip: client IPs in a configured threat list or on a hosting/VPN provider's ASN.

Threat lists (``detections.threat_lists``: files of IPs/CIDRs, one a line, ``#`` comments, e.g.
a blocklist export or a Tor exit list) are parsed once on the driver, bounded, into tagged bit
prefixes (``jobs.geo.ranges.network_prefix``); the week's distinct client IPs are matched
against them by an equi-join on their own prefixes of the lengths the lists use (a broadcast
table; Spark built-ins only). The hosting ASNs are the curated list ``hosting_asns.yaml`` (each
entry names its source), matched against the ASN the geo lookup found.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType

from jobs.config import DetectionsConfig
from jobs.detections.windows import found
from jobs.errors import UsageError
from jobs.frames import arrow_frame, struct_type
from jobs.geo.ranges import ip_bits_col, network_prefix

if TYPE_CHECKING:
    from jobs.detections.model import Detection

MAX_LIST_BYTES = 64 * 1024 * 1024
MAX_NETWORKS = 1_000_000
THREAT_REASON = "threat-list:"
HOSTING_REASON = "hosting-asn:"


class ThreatListError(UsageError, ValueError):
    """A configured threat list that cannot be read or is too large (a config problem)."""


@dataclass(frozen=True)
class HostingAsn:
    """One curated hosting/VPN ASN: its number, provider and where the owner name comes from."""

    asn: int
    provider: str
    owner: str
    why: str


def load_hosting_asns() -> tuple[HostingAsn, ...]:
    """The curated list kept in the project (``jobs/detections/hosting_asns.yaml``)."""
    text = resources.files("jobs.detections").joinpath("hosting_asns.yaml").read_text("utf-8")
    data: Any = yaml.safe_load(text)
    return tuple(
        HostingAsn(int(e["asn"]), str(e["provider"]), str(e["owner"]), str(e["why"]))
        for e in data["asns"]
    )


def risky_ip_configured(config: DetectionsConfig) -> bool:
    """A threat list is given or the hosting-ASN list is on."""
    return bool(config.threat_lists) or config.hosting_asns


def parse_threat_list(path: Path) -> list[str]:
    """The networks of one threat list as tagged bit prefixes; unparsable lines are skipped.

    Raises ThreatListError when the file cannot be read, is over MAX_LIST_BYTES or holds more
    than MAX_NETWORKS entries.
    """
    try:
        size = path.stat().st_size
        if size > MAX_LIST_BYTES:
            raise ThreatListError(f"{path}: threat list over {MAX_LIST_BYTES} bytes")
        lines = path.read_text("utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise ThreatListError(f"detections.threat_lists: cannot read {path}: {exc}") from exc
    prefixes = []
    for line in lines:
        text = line.split("#", 1)[0].strip().split()
        if not text:
            continue
        try:
            prefixes.append(network_prefix(text[0]))
        except ValueError:
            continue  # headers and junk of list exports
        if len(prefixes) > MAX_NETWORKS:
            raise ThreatListError(f"{path}: more than {MAX_NETWORKS} networks")
    return prefixes


def _threat_df(spark: SparkSession, paths: tuple[Path, ...]) -> DataFrame | None:
    rows = sorted(
        {(p, THREAT_REASON + path.name) for path in paths for p in parse_threat_list(path)}
    )
    if not rows:
        return None
    return arrow_frame(spark, rows, struct_type(prefix=StringType(), reason=StringType()))


def with_ip_risk(spark: SparkSession, ip_info_df: DataFrame, config: DetectionsConfig) -> DataFrame:
    """Add ``risk_reasons`` (array<string>, sorted) to a distinct-IP table (ip, asn, ...).

    Null for every IP when risky-source-ip is not configured, so "not configured" never reads
    as "no risky IP".
    """
    if not risky_ip_configured(config):
        return ip_info_df.withColumn("risk_reasons", F.lit(None).cast("array<string>"))
    base_df = ip_info_df.select("ip", "asn").distinct()
    parts: list[DataFrame] = []
    threats = _threat_df(spark, config.threat_lists)
    if threats is not None:
        lengths = sorted({len(r.prefix) for r in threats.select("prefix").distinct().collect()})
        ip_prefixes = base_df.select(
            "ip",
            F.explode(
                F.transform(
                    F.array(*[F.lit(n) for n in lengths]),
                    lambda n: F.substring(ip_bits_col(F.col("ip")), 1, n),
                )
            ).alias("prefix"),
        )
        parts.append(ip_prefixes.join(F.broadcast(threats), on="prefix").select("ip", "reason"))
    if config.hosting_asns:
        hosting = arrow_frame(
            spark,
            [(h.asn, f"{HOSTING_REASON}AS{h.asn} {h.provider}") for h in load_hosting_asns()],
            struct_type(asn=LongType(), reason=StringType()),
        )
        parts.append(base_df.join(F.broadcast(hosting), on="asn").select("ip", "reason"))
    empty = F.array().cast("array<string>")
    if not parts:
        return ip_info_df.withColumn("risk_reasons", empty)
    reasons_df = parts[0]
    for part in parts[1:]:
        reasons_df = reasons_df.unionByName(part)
    per_ip = reasons_df.groupBy(F.col("ip").alias("_rip")).agg(
        F.sort_array(F.collect_set("reason")).alias("_reasons")
    )
    joined = ip_info_df.join(per_ip, ip_info_df["ip"] == per_ip["_rip"], how="left")
    return joined.withColumn("risk_reasons", F.coalesce("_reasons", empty)).drop("_rip", "_reasons")


def risky_client_scope(_config: DetectionsConfig) -> Column:
    """The requests risky_source_ip reads: those of a client IP with a risk reason."""
    reasons = F.coalesce(F.col("client_risk_reasons"), F.array().cast("array<string>"))
    return F.size(reasons) > 0


def risky_source_ip(req_df: DataFrame, det: Detection, config: DetectionsConfig) -> DataFrame:
    """Every request from a client IP with a risk reason, keyed by the IP."""
    return found(
        req_df.filter(risky_client_scope(config)), det, F.concat(F.lit("ip:"), F.col("client_ip"))
    )
