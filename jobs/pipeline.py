"""The weekly report's steps, each one call for the CLI and one task for the Airflow DAG.

``build`` (policy check, marts, summary with coverage and provenance), ``validate`` (the GX
data contracts), ``render`` (the PDF and its manifest) and ``publish`` (report directory,
e-mail, webhooks). Each step reads what the previous one wrote under the kaudit home, so a
DAG can retry or re-run one step alone; :func:`weekly_report` chains them for the CLI.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from jobs.errors import EXIT_FINDINGS, KauditError
from jobs.evidence.custody import read_custody
from jobs.lake.ledger import read_ledger
from jobs.lake.marts import mart_dir, read_small_mart, read_summary
from jobs.policy.loader import DEFAULT_POLICY_FILE
from jobs.settings import Config, Layout, source_date_epoch
from jobs.weekly import main as weekly_main
from jobs.weekly.coverage import WeekContext
from jobs.weekly.summary import iso_week_window, parse_week

Echo = Callable[[str], None]
VALIDATION_FILE = "validation.json"
# Marts up to this many rows are validated with GX's pandas engine (read with pyarrow); larger
# ones (important_events in a week under attack) stay in Spark, so memory stays bounded.
LOCAL_MART_ROWS = 200_000
_POLICY_DIR = Path(__file__).resolve().parent / "policy"


class EmptyWeekError(KauditError):
    """The week has no events at all: an empty report must be asked for (--allow-empty)."""

    exit_code = EXIT_FINDINGS


@cache
def code_version() -> str:
    """Kaudit's version, and the git commit when run from a checkout."""
    version = metadata.version("kaudit")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{commit}" if commit else version


def config_sha256(config: Config) -> str:
    """SHA-256 of the parsed config in canonical JSON.

    The same settings give the same hash however the file was formatted (and the file itself
    may not exist: the demo builds its config in memory).
    """
    body = asdict(config)
    body.pop("path", None)
    text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def policy_identity(config: Config) -> dict[str, str]:
    """Which audit policy the week was checked against, and the SHA-256 of its bytes."""
    path = config.policy or _POLICY_DIR / DEFAULT_POLICY_FILE
    source = str(config.policy) if config.policy else "embedded ACK policy"
    return {"source": source, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def generated_at() -> dt.datetime:
    """Now, or ``$SOURCE_DATE_EPOCH`` when set (reproducible reports)."""
    return source_date_epoch() or dt.datetime.now(dt.UTC).replace(microsecond=0)


def _custody_head(layout: Layout) -> dict[str, Any] | None:
    try:
        from jobs.evidence.custody import read_head
    except ImportError:  # older store layout without a head record
        return None
    head = read_head(layout)
    return dict(head) if head else None


def week_context(
    config: Config, layout: Layout, when: dt.datetime, week: str | None = None
) -> WeekContext:
    """Everything the summary's coverage and provenance need from outside the lake."""
    from jobs.evidence.coverage import evidence_gaps

    gaps: list[dict[str, Any]] = []
    if week is not None:
        start, end = iso_week_window(week, config.timezone)
        gaps = evidence_gaps(layout, config.cluster, start, end)
    failures = [
        dict(r) for r in read_custody(layout) if r["record_type"] != "collected"
    ]  # fmt: skip
    return WeekContext(
        generated_at=when, code_version=code_version(), config_sha256=config_sha256(config),
        policy=policy_identity(config), custody_head=_custody_head(layout),
        collection_failures=failures, masters=tuple(m.name for m in config.masters),
        evidence_gaps=gaps,
    )  # fmt: skip


def build(
    spark: SparkSession,
    config: Config,
    layout: Layout,
    week: str,
    *,
    allow_empty: bool = False,
    idle_work: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Policy check, marts and summary.json of the week; refuses a week with no events.

    ``idle_work`` runs in a thread once Spark starts on the week (see ``weekly.main.run``).

    Raises:
        EmptyWeekError: no events at all in the week (unless ``allow_empty``); the marts and
            the summary, with its coverage block, are written all the same.
    """
    parse_week(week)
    context = week_context(config, layout, generated_at(), week)
    summary = weekly_main.run(spark, config, layout, week, context=context, idle_work=idle_work)
    if not summary["coverage"]["events"] and not allow_empty:
        raise EmptyWeekError(
            f"no events for cluster {config.cluster} in {week} "
            f"({mart_dir(layout, config.cluster, week) / 'summary.json'} says why); "
            "pass --allow-empty to report an empty week"
        )
    return summary


def validate(spark: SparkSession, config: Config, layout: Layout, week: str) -> dict[str, Any]:
    """Run every data contract on the week's events and marts; writes validation.json."""
    from expectations.marts import MART_SUITES
    from expectations.weekly import validate_week

    week_dir = mart_dir(layout, config.cluster, week)
    start, end = iso_week_window(week, config.timezone)
    from jobs.weekly.requests import read_week

    events_df = read_week(spark, layout, config.cluster, start, end)
    marts = {name: spark.read.parquet(str(week_dir / name)) for name in MART_SUITES}
    local_marts = {
        name: frame
        for name in MART_SUITES
        if (frame := read_small_mart(week_dir, name, LOCAL_MART_ROWS)) is not None
    }
    summary = read_summary(week_dir)
    read = {f["sha256"] for f in summary["provenance"]["evidence_files"]}
    ledger = [e.to_json() for e in read_ledger(layout) if e.evidence_sha256 in read]
    return validate_week(
        spark, events_df, marts, ledger, week_dir,
        quarantine_warn_share=config.validation.quarantine_warn_share,
        local_marts=local_marts,
    )  # fmt: skip


def validate_ingest_run(spark: SparkSession, layout: Layout, run_id: str) -> dict[str, Any]:
    """The events suite on one ingest run's events (its own lake files, nothing else).

    Writes ``<home>/lake/_validation/<run_id>.json`` (validation.json's shape) and returns it.
    Kept out of ``kaudit ingest`` by default: GX costs ~10 s a run, which an hourly ingest need
    not wait for; the DAG runs it as its own task after ingest, the CLI with ``--validate``.
    """
    from expectations.events import file_ranges_from_ledger
    from expectations.weekly import validate_ingest_batch
    from jobs.lake.events import committed_files
    from jobs.lake.marts import write_json
    from jobs.schemas import EVENTS

    files = [f for f in committed_files(layout, layout.events)
             if Path(f).name.startswith(f"run-{run_id}-")]  # fmt: skip
    events_df = (
        spark.read.schema(EVENTS).option("basePath", str(layout.events)).parquet(*files)
        if files else spark.createDataFrame([], EVENTS)
    )  # fmt: skip
    entries = [e.to_json() for e in read_ledger(layout) if e.run_id == run_id]
    result = validate_ingest_batch(spark, events_df, file_ranges_from_ledger(spark, entries))
    write_json(result, layout.lake / "_validation" / f"{run_id}.json")
    return result


def _previous_summary(layout: Layout, config: Config, week: str) -> dict[str, Any] | None:
    monday = parse_week(week) - dt.timedelta(days=7)
    year, number, _ = monday.isocalendar()
    previous = mart_dir(layout, config.cluster, f"{year}-W{number:02d}")
    return read_summary(previous) if (previous / "summary.json").is_file() else None


def render(config: Config, layout: Layout, week: str) -> Any:
    """The PDF, its CSVs and manifest.json under ``<home>/reports/<cluster>/<week>/``."""
    from reports.weekly import render_weekly_report

    week_dir = mart_dir(layout, config.cluster, week)
    summary = read_summary(week_dir)
    provenance = summary["provenance"]
    validation_path = week_dir / VALIDATION_FILE
    validation = json.loads(validation_path.read_text()) if validation_path.is_file() else None
    read = {f["sha256"] for f in provenance["evidence_files"]}
    evidence = [e.to_json() for e in read_ledger(layout) if e.evidence_sha256 in read]
    return render_weekly_report(
        week_dir, layout.reports(config.cluster, week), cluster=config.cluster, week=week,
        timezone=config.timezone, language=config.report.language, evidence=evidence,
        policy=provenance["policy"], validation=validation,
        previous_summary=_previous_summary(layout, config, week),
        code_version=provenance["kaudit_version"], config_sha256=provenance["config_sha256"],
        generated_at=dt.datetime.fromisoformat(provenance["generated_at"]),
        coverage=summary["coverage"], custody_head=provenance["custody_head"],
    )  # fmt: skip


def publish(config: Config, layout: Layout, week: str, *, report_dir: Path | None = None) -> Any:
    """Deliver the rendered report: e-mail to auditors and webhooks, per the config."""
    from jobs.delivery import email_settings, webhook_settings
    from reports.publish import publish_report

    out = layout.reports(config.cluster, week)
    summary = read_summary(mart_dir(layout, config.cluster, week))
    validation_path = mart_dir(layout, config.cluster, week) / VALIDATION_FILE
    validation_ok = (
        validation_path.is_file() and json.loads(validation_path.read_text())["success"]
    )  # fmt: skip
    delivery = config.delivery
    email = email_settings(delivery)
    webhooks = webhook_settings(delivery)
    from jobs.detections.catalogue import CATALOGUE

    return publish_report(
        out / "report.pdf", out / "manifest.json", summary, report_dir=report_dir or out,
        email=email, webhooks=webhooks, validation_ok=validation_ok, gate=delivery.gate,
        retries=delivery.retries,
        detection_info={d.id: (d.severity, d.title) for d in CATALOGUE},
    )  # fmt: skip


def _preload() -> None:
    """Import the later steps' modules; a failure here is left to the step that needs them."""
    for module in ("expectations.weekly", "expectations.marts", "reports.weekly"):
        try:
            importlib.import_module(module)
        except Exception:  # the step's own import reports it properly
            return


@dataclass(frozen=True)
class WeeklyOutcome:
    """What one weekly run produced."""

    summary: dict[str, Any]
    validation: dict[str, Any]
    pdf: Path
    publish: Any


def weekly_report(
    spark: SparkSession, config: Config, layout: Layout, week: str, *,
    allow_empty: bool = False, echo: Echo = print,
    release_spark: Callable[[], None] | None = None,
) -> WeeklyOutcome:  # fmt: skip
    """All four steps, with a line of progress for each.

    ``release_spark`` is called once the last Spark step (validation) is done: the CLI ends
    the JVM there, so its memory (3 GB after a week under attack) is not held while the PDF
    is drawn.
    """
    from jobs.progress import step

    with step(echo, "policy check, marts and summary"):
        # while Spark summarises the week's requests this process waits on the JVM: import
        # the validation and PDF libraries (GX, matplotlib, WeasyPrint; ~10 s) meanwhile
        summary = build(spark, config, layout, week, allow_empty=allow_empty, idle_work=_preload)
    with step(echo, "validation (Great Expectations)"):
        validation = validate(spark, config, layout, week)
    if release_spark is not None:
        release_spark()
    with step(echo, "PDF report"):
        result = render(config, layout, week)
    with step(echo, "publish"):
        published = publish(config, layout, week)
    return WeeklyOutcome(summary, validation, result.pdf, published)
