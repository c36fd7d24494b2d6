"""Run settings: the home layout and the Spark environment.

This is the only module that reads the process environment (the config file is jobs/config.py;
its names are re-exported here for callers that want one import).
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jobs.config import (
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_PATTERN,
    Config,
    ConfigError,
    DeliveryConfig,
    DetectionsConfig,
    EmailConfig,
    GeoConfig,
    MasterConfig,
    ReportConfig,
    ScheduleConfig,
    ValidationConfig,
    WebhookConfig,
    load_config,
    parse_config,
)
from jobs.errors import UsageError
from jobs.yamlsafe import load_yaml

__all__ = [
    "DEFAULT_HOME",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_PATTERN",
    "DEFAULT_SPARK_MASTER",
    "Config",
    "ConfigError",
    "DeliveryConfig",
    "DetectionsConfig",
    "EmailConfig",
    "GeoConfig",
    "HomeError",
    "Layout",
    "MasterConfig",
    "ReportConfig",
    "ScheduleConfig",
    "SparkSettings",
    "ValidationConfig",
    "WebhookConfig",
    "existing_home",
    "load_config",
    "load_yaml",
    "parse_config",
    "resolve_home",
    "secret_from_env",
    "source_date_epoch",
    "spark_settings",
]

DEFAULT_HOME = "kaudit-home"
DEFAULT_SPARK_MASTER = "local[*]"


class HomeError(UsageError):
    """The kaudit home named by --home or $KAUDIT_HOME does not exist."""


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    """--home, else $KAUDIT_HOME, else ./kaudit-home."""
    return Path(home or os.environ.get("KAUDIT_HOME") or DEFAULT_HOME).resolve()


def existing_home(home: str | os.PathLike[str] | None) -> Path:
    """The home for commands that read one (ingest, ledger, report, verify): it must exist.

    Raises:
        HomeError: when the directory does not exist or holds no kaudit store.
    """
    path = resolve_home(home)
    if not path.is_dir() or not any((path / d).exists() for d in ("custody", "evidence", "lake")):
        raise HomeError(f"no kaudit home at {path} (run `kaudit collect` first, or pass --home)")
    return path


def source_date_epoch() -> datetime | None:
    """``$SOURCE_DATE_EPOCH`` as a UTC time: reports built with it are byte-reproducible.

    Raises:
        UsageError: when it is set but not a whole number of seconds.
    """
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if not value:
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise UsageError(f"SOURCE_DATE_EPOCH={value!r}: not a whole number of seconds") from exc


def secret_from_env(name: str | None) -> str | None:
    """The value of the environment variable a config key names (secrets stay out of files)."""
    return os.environ.get(name) if name else None


@dataclass(frozen=True)
class Layout:
    """Where things live under the kaudit home directory."""

    home: Path

    @property
    def evidence(self) -> Path:
        """The content-addressed evidence store."""
        return self.home / "evidence"

    @property
    def custody(self) -> Path:
        """The hash-chained custody log."""
        return self.home / "custody" / "records.jsonl"

    @property
    def lake(self) -> Path:
        """The Parquet lake (events, quarantine, duplicates, ledger)."""
        return self.home / "lake"

    @property
    def events(self) -> Path:
        """Normalised events, partitioned by cluster and UTC date."""
        return self.lake / "events"

    @property
    def quarantine(self) -> Path:
        """Lines that are not events, with their place and reason."""
        return self.lake / "quarantine"

    @property
    def duplicates(self) -> Path:
        """Lines whose event the lake already holds."""
        return self.lake / "duplicates"

    @property
    def ledger(self) -> Path:
        """One JSON file per committed ingest run."""
        return self.lake / "_ledger"

    @property
    def staging(self) -> Path:
        """Scratch space of runs in progress."""
        return self.home / "tmp"

    def marts(self, cluster: str, week: str) -> Path:
        """The weekly marts of one cluster and ISO week."""
        return self.home / "marts" / cluster / week

    def reports(self, cluster: str, week: str) -> Path:
        """The published weekly report of one cluster and ISO week."""
        return self.home / "reports" / cluster / week


@dataclass(frozen=True)
class SparkSettings:
    """How kaudit builds its SparkSession; environment variables override the defaults."""

    master: str = DEFAULT_SPARK_MASTER
    driver_memory: str = "2g"
    shuffle_partitions: str = "8"
    bind_address: str = "127.0.0.1"
    driver_host: str = "127.0.0.1"
    # The parallel collector: G1's concurrent threads took ~28 CPU-s of a 1.5 M-event weekly
    # run on 2 cores (15 with this one); a batch job has no pause target to keep.
    # Less inlining by C2 (HotSpot's defaults: 325, 2500, 15): C2 compiles Spark's own code
    # all through a run, and its compile time grows with what it inlines. On 2 cores it took
    # ~89 CPU-s of a 1.5 M-event weekly run; with these ~58, and the tasks ran no slower.
    java_options: str = (
        "-XX:MaxDirectMemorySize=512m -XX:+UseParallelGC"
        " -XX:FreqInlineSize=150 -XX:InlineSmallCode=1500 -XX:MaxInlineLevel=9"
    )
    log_level: str = "ERROR"
    # the JVM's class-data-sharing archive of Spark's classes (``python -m jobs.cds``, run by
    # ``make install``); "" = none. Used only when the file exists.
    cds_archive: str = str(Path(sys.prefix) / "kaudit-spark-classes.jsa")
    # HotSpot compiler directives (``-XX:CompilerDirectivesFile``); "" = none. Spark's
    # generated classes (new ones for every query) are compiled by C1 only: on 2 cores C2
    # compiling them took as much CPU as a third of the weekly run's task time.
    jit_directives: str = str(Path(__file__).with_name("jit_directives.json"))


def spark_settings(config_master: str | None = None) -> SparkSettings:
    """Spark settings: ``$KAUDIT_SPARK_MASTER`` over the config's ``spark_master`` over local.

    Also quiets Spark's start-up on the terminal (``SPARK_LOCAL_IP`` pinned to the driver host,
    so Spark does not warn that it resolved a loopback name) and keeps glibc to two malloc
    arenas: each JVM thread otherwise gets its own, and resident memory swings by GBs.
    """
    env = os.environ
    defaults = SparkSettings()
    settings = SparkSettings(
        master=env.get("KAUDIT_SPARK_MASTER") or config_master or defaults.master,
        driver_memory=env.get("KAUDIT_SPARK_DRIVER_MEMORY", defaults.driver_memory),
        shuffle_partitions=env.get("KAUDIT_SHUFFLE_PARTITIONS", defaults.shuffle_partitions),
        bind_address=env.get("KAUDIT_SPARK_BIND", defaults.bind_address),
        driver_host=env.get("KAUDIT_SPARK_HOST", defaults.driver_host),
        java_options=env.get("KAUDIT_SPARK_JAVA_OPTS", defaults.java_options),
        log_level=env.get("KAUDIT_SPARK_LOG_LEVEL", defaults.log_level),
        cds_archive=env.get("KAUDIT_SPARK_CDS", defaults.cds_archive),
        jit_directives=env.get("KAUDIT_SPARK_JIT_DIRECTIVES", defaults.jit_directives),
    )
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env.setdefault("SPARK_LOCAL_IP", settings.driver_host)
    return settings


def java_command() -> str:
    """The java that Spark's launcher runs: ``$JAVA_HOME/bin/java``, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    found = shutil.which("java", path=str(Path(home) / "bin")) if home else None
    return found or shutil.which("java") or "java"


@dataclass(frozen=True)
class DagSettings:
    """What the Airflow DAGs run on: the cluster config files and the kaudit home.

    Attributes:
        configs: the config files (one per cluster), from ``$KAUDIT_CONFIG`` (':'-separated).
        home: the kaudit home (``$KAUDIT_HOME``, else ./kaudit-home).
        start_date: first logical date of the scheduled DAGs (``$KAUDIT_DAG_START``, an ISO
            date; default 2026-01-05, a Monday), at midnight in the first config's time zone.
    """

    configs: tuple[Path, ...]
    home: Path
    start_date: str = "2026-01-05"


def dag_settings() -> DagSettings:
    """The DAGs' settings from the environment of the Airflow process (parse and task time)."""
    raw = os.environ.get("KAUDIT_CONFIG", "")
    configs = tuple(Path(p).expanduser().resolve() for p in raw.split(":") if p.strip())
    return DagSettings(
        configs=configs,
        home=resolve_home(None),
        start_date=os.environ.get("KAUDIT_DAG_START") or DagSettings.start_date,
    )


def airflow_environment(airflow_home: Path, dags_folder: Path, configs: list[Path],
                        home: Path) -> dict[str, str]:  # fmt: skip
    """Set the environment an embedded Airflow (SQLite, no examples) and the DAGs read.

    Must run before ``airflow`` is imported: Airflow reads its settings at import. Returns
    what was set (for a subprocess, e.g. ``airflow db migrate``).
    """
    values = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(airflow_home / "logs"),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "KAUDIT_CONFIG": ":".join(str(p) for p in configs),
        "KAUDIT_HOME": str(home),
    }
    os.environ.update(values)
    return values
