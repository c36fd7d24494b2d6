"""Typed run settings: the cluster config file and the home directory layout.

The config file is YAML. Unknown keys and bad values are errors that name the key, so a typo
never silently falls back to a default. Example (see README for every key)::

    cluster: prod-hz
    timezone: Asia/Shanghai
    masters:
      - name: master-1
        source: file:///var/log/kubernetes
        pattern: "kubernetes*.audit*"
    policy: /etc/kubernetes/audit-policy.yml      # optional, default: embedded ACK policy
    report:                                         # optional
      system_users: [kubernetes-admin-bot]
      trusted_proxies: [10.0.0.5, 10.0.1.0/24]
      geoip: {city: /data/GeoLite2-City.mmdb, asn: /data/GeoLite2-ASN.mmdb}
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

DEFAULT_PATTERN = "kubernetes*.audit*"
DEFAULT_HOME = "kaudit-home"
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_SOURCE_SCHEMES = ("file://", "sftp://")


class ConfigError(ValueError):
    """A config file problem; the message names the file and the key."""


@dataclass(frozen=True)
class MasterConfig:
    name: str
    source: str
    pattern: str = DEFAULT_PATTERN
    options: dict[str, Any] = field(default_factory=dict)  # scheme-specific (sftp: user, key...)

    @property
    def scheme(self) -> str:
        return self.source.split("://", 1)[0]

    @property
    def local_path(self) -> Path:
        """The directory of a file:// source."""
        if self.scheme != "file":
            raise ConfigError(f"master {self.name}: not a file:// source: {self.source}")
        return Path(self.source[len("file://") :])


@dataclass(frozen=True)
class GeoConfig:
    city: Path | None = None
    asn: Path | None = None


@dataclass(frozen=True)
class ReportConfig:
    system_users: tuple[str, ...] = ()
    system_user_prefixes: tuple[str, ...] = ("system:",)
    trusted_proxies: tuple[str, ...] = ()
    geoip: GeoConfig = field(default_factory=GeoConfig)


@dataclass(frozen=True)
class Config:
    cluster: str
    timezone: str
    masters: tuple[MasterConfig, ...]
    policy: Path | None = None
    report: ReportConfig = field(default_factory=ReportConfig)
    path: Path | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_TOP_KEYS = {"cluster", "timezone", "masters", "policy", "report"}
_MASTER_KEYS = {"name", "source", "pattern", "host_key", "user", "key_file", "port",
                "known_hosts", "password_env"}
_REPORT_KEYS = {"system_users", "system_user_prefixes", "trusted_proxies", "geoip"}
_GEO_KEYS = {"city", "asn"}


def _check_keys(where: str, data: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - allowed)
    if unknown:
        allowed_keys = ", ".join(sorted(allowed))
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {allowed_keys})")
    return data


def _str_list(where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings")
    return tuple(value)


def _resolve(base: Path, value: Any, where: str) -> Path:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected a file path")
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)


def _parse_master(i: int, raw: Any, base: Path) -> MasterConfig:
    where = f"masters[{i}]"
    data = _check_keys(where, raw, _MASTER_KEYS)
    for key in ("name", "source"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError(f"{where}.{key}: required, a non-empty string")
    name, source = data["name"], data["source"]
    if not _NAME_RE.match(name):
        raise ConfigError(f"{where}.name: {name!r} must be letters, digits, '.', '_' or '-'")
    if not source.startswith(_SOURCE_SCHEMES):
        raise ConfigError(f"{where}.source: {source!r} must start with file:// or sftp://")
    if source.startswith("file://"):
        path = source[len("file://") :]
        if not path:
            raise ConfigError(f"{where}.source: file:// needs a directory")
        if not Path(path).is_absolute():
            source = "file://" + str((base / path).resolve())
    pattern = data.get("pattern", DEFAULT_PATTERN)
    if not isinstance(pattern, str) or not pattern or "/" in pattern:
        raise ConfigError(f"{where}.pattern: a file-name glob without '/'")
    options = {k: v for k, v in data.items() if k not in {"name", "source", "pattern"}}
    return MasterConfig(name=name, source=source, pattern=pattern, options=options)


def parse_config(data: Any, base: Path, path: Path | None = None) -> Config:
    where = str(path) if path else "config"
    data = _check_keys(where, data, _TOP_KEYS)
    cluster = data.get("cluster")
    if not isinstance(cluster, str) or not _NAME_RE.match(cluster):
        raise ConfigError(f"{where}: cluster: required, letters, digits, '.', '_' or '-'")
    tz = data.get("timezone", "UTC")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"{where}: timezone: unknown time zone {tz!r}") from exc
    raw_masters = data.get("masters")
    if not isinstance(raw_masters, list) or not raw_masters:
        raise ConfigError(f"{where}: masters: required, a non-empty list")
    masters = tuple(_parse_master(i, m, base) for i, m in enumerate(raw_masters))
    names = [m.name for m in masters]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{where}: masters: duplicate name {dup[0]!r}")
    policy = _resolve(base, data["policy"], f"{where}: policy") if data.get("policy") else None
    report = _parse_report(where, data.get("report") or {}, base)
    return Config(cluster=cluster, timezone=str(tz), masters=masters, policy=policy,
                  report=report, path=path)


def _parse_report(where: str, raw: Any, base: Path) -> ReportConfig:
    data = _check_keys(f"{where}: report", raw, _REPORT_KEYS)
    geo_raw = _check_keys(f"{where}: report.geoip", data.get("geoip") or {}, _GEO_KEYS)
    geo = GeoConfig(**{k: _resolve(base, v, f"{where}: report.geoip.{k}")
                       for k, v in geo_raw.items()})
    prefixes = data.get("system_user_prefixes")
    return ReportConfig(
        system_users=_str_list(f"{where}: report.system_users", data.get("system_users")),
        system_user_prefixes=(_str_list(f"{where}: report.system_user_prefixes", prefixes)
                              if prefixes is not None else ("system:",)),
        trusted_proxies=_str_list(f"{where}: report.trusted_proxies", data.get("trusted_proxies")),
        geoip=geo,
    )


def load_config(path: str | os.PathLike[str]) -> Config:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
    return parse_config(data, p.resolve().parent, p)


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    """--home, else $KAUDIT_HOME, else ./kaudit-home."""
    return Path(home or os.environ.get("KAUDIT_HOME") or DEFAULT_HOME).resolve()


@dataclass(frozen=True)
class Layout:
    """Where things live under the kaudit home directory."""

    home: Path

    @property
    def evidence(self) -> Path:
        return self.home / "evidence"

    @property
    def custody(self) -> Path:
        return self.home / "custody" / "records.jsonl"

    @property
    def lake(self) -> Path:
        return self.home / "lake"

    @property
    def events(self) -> Path:
        return self.lake / "events"

    @property
    def quarantine(self) -> Path:
        return self.lake / "quarantine"

    @property
    def duplicates(self) -> Path:
        return self.lake / "duplicates"

    @property
    def ledger(self) -> Path:
        return self.lake / "_ledger"

    @property
    def staging(self) -> Path:
        return self.home / "tmp"

    def marts(self, cluster: str, week: str) -> Path:
        return self.home / "marts" / cluster / week
