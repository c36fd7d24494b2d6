"""Geo lookups over MaxMind DB (.mmdb) files, normalised to {country, region, city, asn, org}.

One reader path serves the default DB-IP Lite files (fetched by ``jobs.geo.fetch`` into
``.geoip/``) and any user-supplied GeoIP2 / GeoLite2 / DB-IP / IPinfo Lite / ip-location-db
file named in ``report.geoip`` of the cluster config. Lookups run on the driver over the
distinct IPs of a week (small); the caller joins the result back to events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import maxminddb

from jobs.errors import UsageError
from jobs.geo.fetch import DATABASES, DEFAULT_DEST
from jobs.geo.ranges import SCOPE_PUBLIC, ip_scope, parse_ip

GEO_FIELDS = ("country", "region", "city", "asn", "org")
IP_INFO_FIELDS = ("ip", "ip_scope", "is_public", *GEO_FIELDS)
DBIP_ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com), CC BY 4.0"
MAXMIND_ATTRIBUTION = (
    "This product includes GeoLite2 data created by MaxMind, available from https://www.maxmind.com"
)
DEFAULT_CITY = DEFAULT_DEST / DATABASES["dbip-city-lite.mmdb.bz"]
DEFAULT_ASN = DEFAULT_DEST / DATABASES["dbip-asn-lite.mmdb.bz"]
_LANG = "en"


class GeoError(UsageError, RuntimeError):
    """A configured database that cannot be opened (a config problem: exit code 2)."""


def _open(path: Path) -> maxminddb.Reader:
    mode = getattr(maxminddb, "MODE_MMAP_EXT", maxminddb.MODE_AUTO)
    try:
        return maxminddb.open_database(str(path), mode)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError):
        if mode == maxminddb.MODE_AUTO:
            raise
    try:  # the C extension is missing: the pure-Python reader still works (slower)
        return maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
        raise GeoError(f"{path}: cannot open as a MaxMind DB: {exc}") from exc


def _name(node: Any) -> str | None:
    if not isinstance(node, Mapping):
        return None
    names = node.get("names")
    if isinstance(names, Mapping):
        value = names.get(_LANG) or next(iter(names.values()), None)
        return value.strip() if isinstance(value, str) and value.strip() else None
    return None


def _asn(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        digits = value.strip().upper().removeprefix("AS")
        return int(digits) if digits.isdigit() else None
    return None


def normalise_city(rec: Mapping[str, Any] | None) -> dict[str, Any]:
    """Country (ISO code), region, city: GeoIP2/DB-IP nested, or flat (IPinfo, ip-location-db)."""
    if not isinstance(rec, Mapping):
        return {}
    country = rec.get("country")
    subdivisions = rec.get("subdivisions")
    iso = country.get("iso_code") if isinstance(country, Mapping) else None
    out = {
        "country": iso or rec.get("country_code") or _name(country),
        "region": (
            _name(subdivisions[0])
            if isinstance(subdivisions, list) and subdivisions
            else rec.get("state1") or rec.get("region")
        ),
        "city": _name(rec.get("city")) if isinstance(rec.get("city"), Mapping) else rec.get("city"),
    }
    extra = normalise_asn(rec)  # IPinfo Lite carries the ASN in the same record
    return {
        **{k: v for k, v in extra.items() if v is not None},
        **{k: (v if isinstance(v, str) and v else None) for k, v in out.items()},
    }


def normalise_asn(rec: Mapping[str, Any] | None) -> dict[str, Any]:
    """Asn (int) and org from GeoLite2/DB-IP ASN, GeoIP2-ISP or IPinfo Lite records."""
    if not isinstance(rec, Mapping):
        return {}
    asn = _asn(rec.get("autonomous_system_number", rec.get("asn")))
    org = (
        rec.get("autonomous_system_organization")
        or rec.get("isp")
        or rec.get("organization")
        or rec.get("as_name")
    )
    return {"asn": asn, "org": org if isinstance(org, str) and org else None}


@dataclass(frozen=True)
class DatabaseInfo:
    """What produced the geo fields, for the report's metadata."""

    kind: str
    path: str
    database_type: str
    build_date: str

    @property
    def attribution(self) -> str | None:
        """The credit line the database's licence asks for (None when it asks none)."""
        db_type = self.database_type.upper()
        if db_type.startswith("DBIP"):
            return DBIP_ATTRIBUTION
        if db_type.startswith("GEOLITE2"):
            return MAXMIND_ATTRIBUTION
        return None


class GeoReader:
    """City and ASN lookups; either database may be absent (its fields are then null)."""

    def __init__(self, city: Path | None = None, asn: Path | None = None) -> None:
        self._readers: dict[str, maxminddb.Reader] = {}
        self.databases: list[DatabaseInfo] = []
        for kind, path in (("city", city), ("asn", asn)):
            if path is None:
                continue
            reader = _open(Path(path))
            meta = reader.metadata()
            built = dt.datetime.fromtimestamp(meta.build_epoch, tz=dt.UTC).date().isoformat()
            self._readers[kind] = reader
            self.databases.append(DatabaseInfo(kind, Path(path).name, meta.database_type, built))

    @classmethod
    def from_config(
        cls,
        city: Path | None = None,
        asn: Path | None = None,
        default_city: Path = DEFAULT_CITY,
        default_asn: Path = DEFAULT_ASN,
    ) -> GeoReader:
        """User paths (must exist) win; otherwise the default files when they are present."""
        for kind, path in (("city", city), ("asn", asn)):
            if path is not None and not Path(path).is_file():
                raise GeoError(f"report.geoip.{kind}: no such file: {path}")
        return cls(
            city=city or (default_city if Path(default_city).is_file() else None),
            asn=asn or (default_asn if Path(default_asn).is_file() else None),
        )

    def _get(self, kind: str, ip: str) -> Any:
        reader = self._readers.get(kind)
        if reader is None:
            return None
        try:
            return reader.get(ip)
        except ValueError:  # IPv6 address in an IPv4-only database, or unparsable
            return None

    def lookup(self, ip: str | None) -> dict[str, Any]:
        """{country, region, city, asn, org}; all None for invalid, private or unknown IPs."""
        out: dict[str, Any] = dict.fromkeys(GEO_FIELDS)
        addr = parse_ip(ip)
        if addr is None:
            return out
        text = str(addr)
        out.update(
            {
                k: v
                for k, v in normalise_city(self._get("city", text)).items()
                if k in out and v is not None
            }
        )
        out.update(
            {k: v for k, v in normalise_asn(self._get("asn", text)).items() if v is not None}
        )
        return out

    def lookup_many(self, ips: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Lookups for distinct IPs, keyed by the IP text as given."""
        return {ip: self.lookup(ip) for ip in sorted(set(ips))}

    def describe(self) -> dict[str, Any]:
        """{database, build_date, attribution, databases[]} for summary.json."""
        if not self.databases:
            return {"database": None, "build_date": None, "attribution": None, "databases": []}
        attributions = sorted({d.attribution for d in self.databases if d.attribution})
        return {
            "database": " + ".join(d.database_type for d in self.databases),
            "build_date": min(d.build_date for d in self.databases),
            "attribution": "; ".join(attributions) or None,
            "databases": [
                {
                    "kind": d.kind,
                    "file": d.path,
                    "database_type": d.database_type,
                    "build_date": d.build_date,
                }
                for d in self.databases
            ],
        }

    def close(self) -> None:
        """Close the open databases."""
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    def __enter__(self) -> GeoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def ip_info(ips: Iterable[str], reader: GeoReader | None = None) -> list[dict[str, Any]]:
    """Scope (explicit range table) and geo of distinct IPs, sorted by IP: IP_INFO_FIELDS.

    Only public addresses are looked up; private, reserved and invalid ones keep null geo.
    """
    out = []
    for ip in sorted({i for i in ips if i is not None}):
        scope = ip_scope(ip)
        public = scope == SCOPE_PUBLIC
        geo = reader.lookup(ip) if (reader is not None and public) else dict.fromkeys(GEO_FIELDS)
        out.append({"ip": ip, "ip_scope": scope, "is_public": public, **geo})
    return out
