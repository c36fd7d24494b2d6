"""One function per Airflow task: plain arguments in, a small JSON-able dict out.

Each loads the config and the home layout, starts (or reuses) the SparkSession when the step
needs one, and calls one function of jobs/. The DAG files in dags/ call these and nothing
else, so the DAGs stay cheap to parse (this module imports only the standard library at its
top) and every task is runnable, and testable, without Airflow.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from jobs.errors import EXIT_DELIVERY, EXIT_PARTIAL_COLLECTION, KauditError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.settings import Config, Layout


class CollectionError(KauditError):
    """A master could not be listed, or some of its files could not be collected."""

    exit_code = EXIT_PARTIAL_COLLECTION


class DeliveryFailed(KauditError):
    """The report was not delivered: a channel failed or the validation gate blocked it."""

    exit_code = EXIT_DELIVERY


def _config(config_path: str) -> Config:
    from jobs.settings import load_config

    return load_config(config_path)


def _layout(home: str) -> Layout:
    from jobs.settings import Layout

    return Layout(_path(home))


def _path(text: str) -> Any:
    from pathlib import Path

    return Path(text).resolve()


def _spark(config: Config) -> SparkSession:
    from jobs._session import get_spark

    return get_spark("kaudit-airflow", config_master=config.spark_master)


def configured() -> dict[str, Any]:
    """The config files and home of the DAGs (``$KAUDIT_CONFIG``, ``$KAUDIT_HOME``).

    Raises:
        UsageError: no config file is named.
    """
    from jobs.errors import UsageError
    from jobs.settings import dag_settings

    settings = dag_settings()
    if not settings.configs:
        raise UsageError("KAUDIT_CONFIG names no config file (':'-separated paths)")
    return {"configs": [str(p) for p in settings.configs], "home": str(settings.home)}


def masters(config_paths: list[str]) -> list[dict[str, str]]:
    """One collect target per master of every config: {config, master}."""
    return [
        {"config": path, "master": m.name} for path in config_paths for m in _config(path).masters
    ]


def collect(config_path: str, home: str, master: str) -> dict[str, Any]:
    """Collect one master into the evidence store.

    Raises:
        CollectionError: the master could not be listed, or some of its files not collected
            (the other masters' tasks are not affected).
    """
    from dataclasses import replace

    from jobs.evidence.main import run_collect

    config = _config(config_path)
    chosen = tuple(m for m in config.masters if m.name == master)
    if not chosen:
        raise KeyError(f"{config_path}: no master named {master!r}")
    (result,) = run_collect(replace(config, masters=chosen), _layout(home))
    outcome = {
        "cluster": config.cluster, "master": result.master, "collected": result.collected,
        "unchanged": result.unchanged, "skipped": len(result.skipped), "failure": result.failure,
    }  # fmt: skip
    if result.failure is not None:
        raise CollectionError(f"{config.cluster}/{master}: {result.failure}")
    return outcome


def ingest(config_path: str, home: str) -> dict[str, Any]:
    """Ingest every pending evidence file of the home as one committed run.

    ``config_path`` names the Spark master (``spark_master``) and the line size limit.
    """
    from jobs.ingest import main as ingest_main

    config = _config(config_path)
    result = ingest_main.run(_spark(config), _layout(home))
    return {
        "run_id": result.run_id,
        "files": len(result.files),
        "events": sum(e.events for e in result.files),
        "quarantined": sum(e.quarantined for e in result.files),
        "refused": len(result.refused),
    }


def alert(config_path: str, home: str, run_id: str | None) -> dict[str, Any]:
    """The hourly alerts of ingest run ``run_id`` for the config's cluster."""
    from jobs.alerts.main import run_alerts

    config = _config(config_path)
    return run_alerts(_spark(config), config, _layout(home), run_id)


def week_to_report(logical_date: dt.datetime, timezone: str) -> str:
    """The ISO week (in ``timezone``) that ended at or before ``logical_date``.

    A run on Monday 06:00 reports the week before; so does any run later that week.
    """
    from zoneinfo import ZoneInfo

    if logical_date.tzinfo is None:
        raise ValueError("logical_date must be timezone-aware")
    local = logical_date.astimezone(ZoneInfo(timezone))
    monday = local.date() - dt.timedelta(days=local.weekday() + 7)
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def build(config_path: str, home: str, week: str, allow_empty: bool = False) -> dict[str, Any]:
    """Policy check, marts and summary.json of the cluster's ``week``."""
    from jobs import pipeline

    config = _config(config_path)
    summary = pipeline.build(_spark(config), config, _layout(home), week, allow_empty=allow_empty)
    return {
        "config": config_path, "home": home, "week": week, "cluster": config.cluster,
        "requests": summary.get("requests_total"), "events": summary["coverage"]["events"],
    }  # fmt: skip


def validate(step: dict[str, Any]) -> dict[str, Any]:
    """The data contracts of the week ``build`` wrote (validation.json)."""
    from jobs import pipeline

    config = _config(step["config"])
    result = pipeline.validate(_spark(config), config, _layout(step["home"]), step["week"])
    return {**step, "validation_ok": bool(result["success"])}


def render(step: dict[str, Any]) -> dict[str, Any]:
    """The week's PDF, CSVs and manifest."""
    from jobs import pipeline

    result = pipeline.render(_config(step["config"]), _layout(step["home"]), step["week"])
    return {**step, "pdf": str(result.pdf)}


def publish(step: dict[str, Any]) -> dict[str, Any]:
    """Deliver the week's report (report directory, e-mail, webhooks).

    Raises:
        DeliveryFailed: a channel failed, or the validation gate blocked the report.
    """
    from jobs import pipeline

    result = pipeline.publish(_config(step["config"]), _layout(step["home"]), step["week"])
    channels = [{"channel": c.channel, "status": c.status, "error": c.error}
                for c in result.channels]  # fmt: skip
    if result.exit_code:
        raise DeliveryFailed("; ".join(result.lines()))
    return {**step, "published_pdf": str(result.pdf), "channels": channels}


def investigate(
    home: str, params: dict[str, Any], out_file: str, generated_at: str
) -> dict[str, Any]:
    """Answer an investigation (since, until, cluster, user, ip, resource, namespace, verb).

    Writes ``out_file`` (.jsonl, .csv or .pdf; a PDF's provenance time is ``generated_at``,
    the DAG run's time, never the clock) and returns the row count.
    """
    from jobs._session import get_spark
    from jobs.investigate import export
    from jobs.investigate.main import run
    from jobs.investigate.query import Query, parse_time

    query = Query(
        since=parse_time(params["since"], "since"),
        until=parse_time(params["until"], "until"),
        **{k: params.get(k) or None for k in
           ("cluster", "user", "ip", "resource", "namespace", "verb")},
    )  # fmt: skip
    result = run(get_spark("kaudit-airflow"), _layout(home), query)
    when = dt.datetime.fromisoformat(generated_at)
    path = export.write(result, _path(out_file), generated_at=when)
    return {"rows": len(result.rows), "out": str(path), "files_read": len(result.files_read)}


def notify_failure(context: Any) -> None:
    """Airflow ``on_failure_callback``: tell every configured webhook which task failed.

    Never raises: a broken webhook must not hide the task's own failure.
    """
    from jobs.settings import dag_settings, load_config, secret_from_env
    from reports.delivery.results import RetryPolicy, one_line
    from reports.delivery.webhook import WebhookSettings, escape_markdown, post_webhook

    ti = context.get("ti") or context.get("task_instance")
    facts = {
        "dag_id": getattr(ti, "dag_id", "?"), "task_id": getattr(ti, "task_id", "?"),
        "map_index": getattr(ti, "map_index", -1), "run_id": getattr(ti, "run_id", "?"),
        "error": one_line(str(context.get("exception") or "unknown error"), 500),
    }  # fmt: skip
    title = f"kaudit: task {facts['dag_id']}.{facts['task_id']} failed"
    text = "\n".join(f"- {k}: {escape_markdown(str(v))}" for k, v in facts.items())
    for path in dag_settings().configs:
        try:
            hooks = load_config(path).delivery.webhooks
            for hook in hooks:
                settings = WebhookSettings(hook.url, hook.format, secret_from_env(hook.secret_env))
                post_webhook(settings, title, text, {"kind": "kaudit.task_failed", **facts},
                             retry=RetryPolicy(retries=1))  # fmt: skip
        except Exception:  # noqa: S112 - the callback must not raise
            continue


def report_week(config_path: str, when: dt.datetime, week: str | None = None) -> str:
    """The week a weekly run reports: ``week`` when given (checked), else the one that ended."""
    from jobs.weekly.summary import parse_week

    if week:
        parse_week(week)
        return week
    return week_to_report(when, _config(config_path).timezone)


def schedule(which: str) -> tuple[str, dt.datetime]:
    """Parse-time settings of a scheduled DAG: its schedule and its tz-aware start date.

    From the first config of ``$KAUDIT_CONFIG`` (``schedule.collect_ingest`` or
    ``schedule.weekly_report``), in that config's time zone; Airflow's defaults of kaudit
    (hourly, Monday 06:00, UTC) when no config is named. Reads files only: no DB, no Spark.
    """
    from zoneinfo import ZoneInfo

    from jobs.settings import ScheduleConfig, dag_settings, load_config

    settings = dag_settings()
    config = load_config(settings.configs[0]) if settings.configs else None
    schedules = config.schedule if config else ScheduleConfig()
    tz = ZoneInfo(config.timezone if config else "UTC")
    start = dt.datetime.combine(dt.date.fromisoformat(settings.start_date), dt.time(), tz)
    return str(getattr(schedules, which)), start
