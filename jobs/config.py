"""The cluster config file: typed, and validated whole at load.

The config file is YAML. It is validated whole, once, at load, for every command: every unknown
key and every bad value is reported (each naming the file and the key), so a typo never silently
falls back to a default. Example (the README lists every key)::

    cluster: prod-hz
    timezone: Asia/Shanghai
    spark_master: spark://10.0.0.9:7077             # optional; $KAUDIT_SPARK_MASTER wins
    masters:
      - name: master-1
        source: file:///var/log/kubernetes
        pattern: "kubernetes*.audit*"
    policy: /etc/kubernetes/audit-policy.yml      # optional, default: embedded ACK policy
    report:                                         # optional
      language: zh-CN                               # en (default) or zh-CN
      system_users: [kubernetes-admin-bot]
      trusted_proxies: [10.0.0.5, 10.0.1.0/24]
      geoip: {city: /data/GeoLite2-City.mmdb, asn: /data/GeoLite2-ASN.mmdb}
    delivery:                                       # optional
      gate: block                                   # block or warn on failed validation
      email: {smtp_host: smtp.example.com, sender: kaudit@example.com, to: [audit@example.com]}
      webhooks: [{url: "https://oapi.dingtalk.com/robot/send?access_token=...",
                  format: dingtalk, secret_env: DINGTALK_SECRET}]
    detections:                                     # optional; a list left out: "not configured"
      allowed_users: [alice, "group:platform-ops"]
      allowed_registries: [registry-vpc.cn-shanghai.aliyuncs.com/acme]
      allowed_namespaces: [default, "team-*"]
      threat_lists: [/etc/kaudit/tor-exits.txt]
    schedule: {collect_ingest: "@hourly", weekly_report: "0 6 * * 1"}
    rotation: {maxsize_mb: 100, maxbackup: 10, maxage_days: 7}   # the masters' --audit-log-max*
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobs.errors import UsageError
from jobs.yamlsafe import load_yaml

DEFAULT_PATTERN = "kubernetes*.audit*"
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
LANGUAGES = ("en", "zh-CN")
WEBHOOK_FORMATS = ("json", "dingtalk")
GATES = ("block", "warn")
STARTTLS_MODES = ("auto", "require", "off")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SOURCE_SCHEMES = ("file://", "sftp://")
_SCHEDULE_RE = re.compile(  # an Airflow preset or 5 cron fields
    r"@(once|continuous|hourly|daily|weekly|monthly|quarterly|yearly)|([\w*/,?#-]+\s+){4}[\w*/,?#-]+"
)
T = TypeVar("T")


class ConfigError(UsageError):
    """A config file problem; the message names the file and every key at fault."""


@dataclass(frozen=True)
class MasterConfig:
    """One control-plane node and where its audit files are."""

    name: str
    source: str
    pattern: str = DEFAULT_PATTERN
    options: dict[str, Any] = field(default_factory=dict)  # scheme-specific (sftp: key_file...)

    @property
    def scheme(self) -> str:
        """The source's scheme: ``file`` or ``sftp``."""
        return self.source.split("://", 1)[0]

    @property
    def local_path(self) -> Path:
        """The directory of a file:// source."""
        if self.scheme != "file":
            raise ConfigError(f"master {self.name}: not a file:// source: {self.source}")
        return Path(self.source[len("file://") :])


@dataclass(frozen=True)
class GeoConfig:
    """The user's own geo-IP databases (MaxMind format); default: the embedded DB-IP Lite."""

    city: Path | None = None
    asn: Path | None = None


@dataclass(frozen=True)
class ReportConfig:
    """What the weekly report counts as system identity, proxies, geo, and its language."""

    system_users: tuple[str, ...] = ()
    system_user_prefixes: tuple[str, ...] = ("system:",)
    trusted_proxies: tuple[str, ...] = ()
    geoip: GeoConfig = field(default_factory=GeoConfig)
    language: str = "en"


@dataclass(frozen=True)
class EmailConfig:
    """SMTP delivery of the report to auditors; secrets are named, never written here."""

    smtp_host: str
    sender: str
    to: tuple[str, ...]
    smtp_port: int = 587
    starttls: str = "auto"
    username_env: str | None = None
    password_env: str | None = None
    conn_id: str | None = None  # an Airflow connection, when run from Airflow


@dataclass(frozen=True)
class WebhookConfig:
    """A webhook that receives the report summary (and hourly alert digests)."""

    url: str
    format: Literal["json", "dingtalk"] = "json"
    secret_env: str | None = None  # DingTalk signing secret, read from this variable


@dataclass(frozen=True)
class DeliveryConfig:
    """Where a finished report goes besides the report directory."""

    email: EmailConfig | None = None
    webhooks: tuple[WebhookConfig, ...] = ()
    gate: Literal["block", "warn"] = "block"
    retries: int = 3


@dataclass(frozen=True)
class ValidationConfig:
    """Thresholds of the data contracts."""

    quarantine_warn_share: float = 0.05


@dataclass(frozen=True)
class DetectionsConfig:
    """The cluster's own allow-lists and threat data; a list left out is "not configured"."""

    allowed_users: tuple[str, ...] | None = None  # users or "group:<name>" acting as humans
    allowed_registries: tuple[str, ...] | None = None  # image registry prefixes
    allowed_namespaces: tuple[str, ...] | None = None  # names or fnmatch patterns
    threat_lists: tuple[Path, ...] = ()  # files of IPs/CIDRs, one a line, '#' comments
    # flag IPs whose ASN is on the curated hosting/VPN list (off by default: on a managed
    # cloud the operators' own cloud shells and NAT gateways sit in those ASNs)
    hosting_asns: bool = False
    alert: tuple[str, ...] = ()  # detection ids that also alert hourly


@dataclass(frozen=True)
class ScheduleConfig:
    """When the Airflow DAGs run (cron expressions or Airflow presets)."""

    collect_ingest: str = "@hourly"
    weekly_report: str = "0 6 * * 1"  # Monday 06:00 in the config's time zone


@dataclass(frozen=True)
class RotationConfig:
    """The masters' kube-apiserver audit log rotation (``--audit-log-max*``), for coverage."""

    maxsize_mb: float = 100.0
    maxbackup: int = 10
    maxage_days: float = 7.0


@dataclass(frozen=True)
class Config:
    """One cluster's config file, validated."""

    cluster: str
    timezone: str
    masters: tuple[MasterConfig, ...]
    policy: Path | None = None
    report: ReportConfig = field(default_factory=ReportConfig)
    delivery: DeliveryConfig = field(default_factory=DeliveryConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    detections: DetectionsConfig = field(default_factory=DetectionsConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    rotation: RotationConfig = field(default_factory=RotationConfig)
    spark_master: str | None = None
    path: Path | None = None

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)


_TOP_KEYS = {
    "cluster",
    "timezone",
    "masters",
    "policy",
    "report",
    "delivery",
    "validation",
    "detections",
    "schedule",
    "rotation",
    "spark_master",
}
_MASTER_KEYS = {
    "name",
    "source",
    "pattern",
    "host_key",
    "user",
    "key_file",
    "port",
    "known_hosts",
    "password_env",
    "conn_id",
    "timeout",
    "retries",
}
_ROTATION_KEYS = {"maxsize_mb", "maxbackup", "maxage_days"}
_REPORT_KEYS = {"system_users", "system_user_prefixes", "trusted_proxies", "geoip", "language"}
_GEO_KEYS = {"city", "asn"}
_DELIVERY_KEYS = {"email", "webhooks", "gate", "retries"}
_EMAIL_KEYS = {
    "smtp_host",
    "smtp_port",
    "sender",
    "to",
    "starttls",
    "username_env",
    "password_env",
    "conn_id",
}
_WEBHOOK_KEYS = {"url", "format", "secret_env"}
_VALIDATION_KEYS = {"quarantine_warn_share"}
_DETECTIONS_KEYS = {
    "allowed_users",
    "allowed_registries",
    "allowed_namespaces",
    "threat_lists",
    "hosting_asns",
    "alert",
}
_SCHEDULE_KEYS = {"collect_ingest", "weekly_report"}


class _Problems:
    """Collects every problem of one config file, so the user fixes them all in one go."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.messages: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.messages.append(f"{self.where}: {key}: {message}")

    def mapping(self, key: str, data: Any, allowed: set[str]) -> dict[str, Any]:
        """``data`` as a mapping with only ``allowed`` keys; problems recorded, never raised."""
        if data is None:
            return {}
        if not isinstance(data, dict):
            self.add(key, f"expected a mapping, got {type(data).__name__}")
            return {}
        for unknown in sorted(set(map(str, data)) - allowed):
            self.add(key, f"unknown key {unknown!r} (allowed: {', '.join(sorted(allowed))})")
        return {str(k): v for k, v in data.items() if str(k) in allowed}

    def check(self, key: str, value: T, ok: Callable[[T], bool], message: str) -> T | None:
        if ok(value):
            return value
        self.add(key, message)
        return None

    def raise_if_any(self) -> None:
        if self.messages:
            count = f"{len(self.messages)} problems" if len(self.messages) > 1 else "1 problem"
            raise ConfigError(f"config has {count}:\n  " + "\n  ".join(self.messages))


def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _str_list(p: _Problems, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        p.add(key, "expected a list of strings")
        return ()
    return tuple(value)


def _path(p: _Problems, base: Path, key: str, value: Any) -> Path | None:
    if not _is_str(value):
        p.add(key, "expected a file path")
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base / path)


def _env_name(p: _Problems, key: str, value: Any) -> str | None:
    if value is None:
        return None
    return p.check(
        key,
        value,
        lambda v: isinstance(v, str) and bool(_ENV_NAME_RE.match(v)),
        f"{value!r} is not an environment variable name",
    )


def _choice(p: _Problems, key: str, value: Any, choices: tuple[str, ...], default: str) -> str:
    if value is None:
        return default
    if value not in choices:
        p.add(key, f"{value!r} is not one of {', '.join(choices)}")
        return default
    return str(value)


def _port(p: _Problems, key: str, value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536
    return p.check(key, value, lambda _: ok, f"{value!r} is not a port number")


def _parse_master(p: _Problems, i: int, raw: Any, base: Path) -> MasterConfig | None:
    key = f"masters[{i}]"
    data = p.mapping(key, raw, _MASTER_KEYS)
    name, source = data.get("name"), data.get("source")
    for field_name, value in (("name", name), ("source", source)):
        if not _is_str(value):
            p.add(f"{key}.{field_name}", "required, a non-empty string")
    if not (_is_str(name) and _is_str(source)):
        return None
    assert isinstance(name, str) and isinstance(source, str)
    ok = True
    if not _NAME_RE.match(name):
        p.add(f"{key}.name", f"{name!r} must be letters, digits, '.', '_' or '-'")
        ok = False
    if not source.startswith(_SOURCE_SCHEMES):
        p.add(f"{key}.source", f"{source!r} must start with file:// or sftp://")
        ok = False
    elif source.startswith("file://"):
        local = source[len("file://") :]
        if not local:
            p.add(f"{key}.source", "file:// needs a directory")
            ok = False
        elif not Path(local).is_absolute():
            source = "file://" + str((base / local).resolve())
    pattern = data.get("pattern", DEFAULT_PATTERN)
    if not _is_str(pattern) or "/" in pattern:
        p.add(f"{key}.pattern", "a file-name glob without '/'")
        ok = False
    if data.get("port") is not None:  # sftp settings: typed here, collect never trips on them
        _port(p, f"{key}.port", data["port"])
    for opt in ("user", "key_file", "known_hosts", "host_key", "conn_id"):
        if opt in data and not _is_str(data[opt]):
            p.add(f"{key}.{opt}", "a non-empty string")
    for opt in ("timeout", "retries"):
        if opt in data and (isinstance(data[opt], bool) or not isinstance(data[opt], int | float)):
            p.add(f"{key}.{opt}", f"{data[opt]!r} is not a number")
    _env_name(p, f"{key}.password_env", data.get("password_env"))
    options = {k: v for k, v in data.items() if k not in {"name", "source", "pattern"}}
    return MasterConfig(name=name, source=source, pattern=pattern, options=options) if ok else None


def _is_network(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _parse_report(p: _Problems, raw: Any, base: Path) -> ReportConfig:
    data = p.mapping("report", raw, _REPORT_KEYS)
    geo_raw = p.mapping("report.geoip", data.get("geoip"), _GEO_KEYS)
    geo = {k: _path(p, base, f"report.geoip.{k}", v) for k, v in geo_raw.items()}
    proxies = _str_list(p, "report.trusted_proxies", data.get("trusted_proxies"))
    for proxy in proxies:
        if not _is_network(proxy):
            p.add("report.trusted_proxies", f"{proxy!r} is not an IP address or CIDR")
    prefixes = data.get("system_user_prefixes")
    return ReportConfig(
        system_users=_str_list(p, "report.system_users", data.get("system_users")),
        system_user_prefixes=(
            _str_list(p, "report.system_user_prefixes", prefixes)
            if prefixes is not None
            else ("system:",)
        ),
        trusted_proxies=proxies,
        geoip=GeoConfig(**geo),
        language=_choice(p, "report.language", data.get("language"), LANGUAGES, "en"),
    )


def _parse_email(p: _Problems, raw: Any) -> EmailConfig | None:
    if raw is None:
        return None
    data = p.mapping("delivery.email", raw, _EMAIL_KEYS)
    for key in ("smtp_host", "sender"):
        if not _is_str(data.get(key)) and not data.get("conn_id"):
            p.add(f"delivery.email.{key}", "required, a non-empty string (or conn_id)")
    to = _str_list(p, "delivery.email.to", data.get("to"))
    if not to:
        p.add("delivery.email.to", "required, a non-empty list of addresses")
    port = _port(p, "delivery.email.smtp_port", data.get("smtp_port", 587)) or 587
    return EmailConfig(
        smtp_host=str(data.get("smtp_host") or ""),
        sender=str(data.get("sender") or ""),
        to=to,
        smtp_port=port,
        starttls=_choice(
            p, "delivery.email.starttls", data.get("starttls"), STARTTLS_MODES, "auto"
        ),
        username_env=_env_name(p, "delivery.email.username_env", data.get("username_env")),
        password_env=_env_name(p, "delivery.email.password_env", data.get("password_env")),
        conn_id=data.get("conn_id") if _is_str(data.get("conn_id")) else None,
    )


def _parse_webhooks(p: _Problems, raw: Any) -> tuple[WebhookConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        p.add("delivery.webhooks", "expected a list")
        return ()
    hooks = []
    for i, item in enumerate(raw):
        key = f"delivery.webhooks[{i}]"
        data = p.mapping(key, item, _WEBHOOK_KEYS)
        url = data.get("url")
        if not (_is_str(url) and str(url).startswith(("http://", "https://"))):
            p.add(f"{key}.url", "required, an http:// or https:// URL")
            continue
        hooks.append(
            WebhookConfig(
                url=str(url),
                format=cast(
                    Literal["json", "dingtalk"],
                    _choice(p, f"{key}.format", data.get("format"), WEBHOOK_FORMATS, "json"),
                ),
                secret_env=_env_name(p, f"{key}.secret_env", data.get("secret_env")),
            )
        )
    return tuple(hooks)


def _parse_delivery(p: _Problems, raw: Any) -> DeliveryConfig:
    data = p.mapping("delivery", raw, _DELIVERY_KEYS)
    retries = data.get("retries", 3)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 10:
        p.add("delivery.retries", f"{retries!r} is not a whole number from 0 to 10")
        retries = 3
    return DeliveryConfig(
        email=_parse_email(p, data.get("email")),
        webhooks=_parse_webhooks(p, data.get("webhooks")),
        gate=cast(
            Literal["block", "warn"],
            _choice(p, "delivery.gate", data.get("gate"), GATES, "block"),
        ),
        retries=retries,
    )


def _parse_validation(p: _Problems, raw: Any) -> ValidationConfig:
    data = p.mapping("validation", raw, _VALIDATION_KEYS)
    share = data.get("quarantine_warn_share", 0.05)
    if not isinstance(share, int | float) or isinstance(share, bool) or not 0 <= share <= 1:
        p.add("validation.quarantine_warn_share", f"{share!r} is not a number from 0 to 1")
        share = 0.05
    return ValidationConfig(quarantine_warn_share=float(share))


def _optional_list(p: _Problems, key: str, data: dict[str, Any]) -> tuple[str, ...] | None:
    name = key.rsplit(".", 1)[-1]
    return _str_list(p, key, data[name]) if data.get(name) is not None else None


def _parse_detections(p: _Problems, raw: Any, base: Path) -> DetectionsConfig:
    data = p.mapping("detections", raw, _DETECTIONS_KEYS)
    lists = _str_list(p, "detections.threat_lists", data.get("threat_lists"))
    paths = tuple(
        x
        for i, v in enumerate(lists)
        if (x := _path(p, base, f"detections.threat_lists[{i}]", v)) is not None
    )
    alert = _str_list(p, "detections.alert", data.get("alert"))
    if alert:  # the catalogue imports pyspark: only when alerts are configured
        from jobs.detections.catalogue import DETECTION_IDS

        for unknown in (a for a in alert if a not in DETECTION_IDS):
            p.add("detections.alert", f"unknown detection {unknown!r} (see docs/detections.md)")
    hosting = data.get("hosting_asns", False)
    if not isinstance(hosting, bool):
        p.add("detections.hosting_asns", f"{hosting!r} is not true or false")
        hosting = False
    return DetectionsConfig(
        allowed_users=_optional_list(p, "detections.allowed_users", data),
        allowed_registries=_optional_list(p, "detections.allowed_registries", data),
        allowed_namespaces=_optional_list(p, "detections.allowed_namespaces", data),
        threat_lists=paths,
        hosting_asns=hosting,
        alert=alert,
    )


def _parse_schedule(p: _Problems, raw: Any) -> ScheduleConfig:
    data = p.mapping("schedule", raw, _SCHEDULE_KEYS)
    good = {k: v for k, v in data.items() if _is_str(v) and _SCHEDULE_RE.fullmatch(v.strip())}
    for key in sorted(set(data) - set(good)):
        p.add(f"schedule.{key}", f"{data[key]!r}: not a 5-field cron expression or a preset")
    return ScheduleConfig(**good)


def _parse_rotation(p: _Problems, raw: Any) -> RotationConfig:
    data = p.mapping("rotation", raw, _ROTATION_KEYS)
    good: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            p.add(f"rotation.{key}", "a number >= 0 (0: no limit, as kube-apiserver reads it)")
        else:
            good[key] = value
    return RotationConfig(**good)


def parse_config(data: Any, base: Path, path: Path | None = None) -> Config:
    """Validate a parsed config mapping; relative paths resolve against ``base``.

    Raises:
        ConfigError: naming every unknown key and bad value at once.
    """
    p = _Problems(str(path) if path else "config")
    top = p.mapping("config", data, _TOP_KEYS)
    if data is not None and not isinstance(data, dict):
        p.raise_if_any()
    cluster = top.get("cluster")
    if not (isinstance(cluster, str) and _NAME_RE.match(cluster)):
        p.add("cluster", "required, letters, digits, '.', '_' or '-'")
    tz = str(top.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        p.add("timezone", f"unknown time zone {tz!r}")
    raw_masters = top.get("masters")
    masters: list[MasterConfig] = []
    if not isinstance(raw_masters, list) or not raw_masters:
        p.add("masters", "required, a non-empty list")
    else:
        masters = [
            m
            for i, raw in enumerate(raw_masters)
            if (m := _parse_master(p, i, raw, base)) is not None
        ]
    names = [m.name for m in masters]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        p.add("masters", f"duplicate name {dup!r}")
    policy = _path(p, base, "policy", top["policy"]) if top.get("policy") else None
    spark_master = top.get("spark_master")
    if spark_master is not None and not _is_str(spark_master):
        p.add("spark_master", "a Spark master URL such as spark://host:7077 or local[*]")
    config = Config(
        cluster=str(cluster),
        timezone=tz,
        masters=tuple(masters),
        policy=policy,
        report=_parse_report(p, top.get("report"), base),
        delivery=_parse_delivery(p, top.get("delivery")),
        validation=_parse_validation(p, top.get("validation")),
        detections=_parse_detections(p, top.get("detections"), base),
        schedule=_parse_schedule(p, top.get("schedule")),
        rotation=_parse_rotation(p, top.get("rotation")),
        spark_master=spark_master if _is_str(spark_master) else None,
        path=path,
    )
    p.raise_if_any()
    return config


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load and validate a config file.

    Raises:
        ConfigError: naming the file and every key at fault.
    """
    p = Path(path)
    return parse_config(load_yaml(p, "config", ConfigError), p.resolve().parent, p)
