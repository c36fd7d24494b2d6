"""`kaudit demo`: a generated week through the real DAGs, with an embedded Airflow.

The demo generates a week of audit logs (``jobs.synth``), builds its config in memory, writes
it once under the home for Airflow (and for the user's own ``kaudit`` commands), then runs
``audit_collect_ingest`` and ``audit_weekly_report`` with ``dag.test()`` against an Airflow
whose SQLite metadata DB lives in ``<home>/airflow``. Spark runs in local mode in this process.
Airflow's and Spark's logs go to ``<home>/airflow/demo.log``; the terminal gets one line per
step and, last, the path of the PDF.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from jobs.errors import KauditError
from jobs.settings import Config, airflow_environment, parse_config

DEMO_CLUSTER = "demo"
DEMO_TZ = "Asia/Shanghai"
DAGS_FOLDER = Path(__file__).resolve().parents[1] / "dags"
Echo = Callable[[str], None]


class DagRunFailed(KauditError):
    """A DAG run did not succeed; the message names the failed tasks and the log."""


def demo_config(masters_dir: Path) -> dict[str, Any]:
    """The demo cluster's config as data: one master per generated folder."""
    masters = sorted(p for p in masters_dir.iterdir() if p.is_dir())
    return {
        "cluster": DEMO_CLUSTER,
        "timezone": DEMO_TZ,
        "masters": [{"name": m.name, "source": f"file://{m.resolve()}"} for m in masters],
        # the demo shows its report whatever validation says (marked VALIDATION FAILED)
        "delivery": {"gate": "warn"},
    }


def write_config_once(data: dict[str, Any], path: Path) -> Path:
    """Write ``data`` as YAML at ``path`` unless the file already says exactly that."""
    text = yaml.safe_dump(data, sort_keys=False)
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


def prepare_airflow(airflow_home: Path, configs: list[Path], home: Path) -> None:
    """Point Airflow at ``airflow_home`` (SQLite) and the dags folder; migrate its DB once.

    Must run before anything imports ``airflow`` in this process.
    """
    airflow_home.mkdir(parents=True, exist_ok=True)
    airflow_environment(airflow_home, DAGS_FOLDER, configs, home)  # inherited by the CLI
    marker = airflow_home / ".migrated"
    if not marker.is_file():
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"],
            check=True, stdout=sys.stdout, stderr=sys.stderr,
        )  # fmt: skip
        marker.write_text("airflow db migrate done\n")


def run_dag(
    dag_id: str, logical_date: dt.datetime, conf: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run one DAG in this process with ``dag.test()``; return its tasks' states and results.

    Returns:
        {"state": run state, "tasks": {task_id or task_id[i]: state},
         "results": {task_id or task_id[i]: return value}}.
    """
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    bag = DagBag(dag_folder=str(DAGS_FOLDER / f"{dag_id}.py"))
    if bag.import_errors:
        raise DagRunFailed(f"{dag_id}: import errors: {bag.import_errors}")
    dag = bag.dags[dag_id]
    for task in dag.tasks:
        task.retries = 0  # a local run shows a failure at once instead of waiting to retry
    run = dag.test(logical_date=logical_date, run_conf=conf)

    def name(task_id: str, map_index: int) -> str:
        return task_id if map_index < 0 else f"{task_id}[{map_index}]"

    with create_session() as session:
        tis = run.get_task_instances(session=session)
        states = {name(t.task_id, t.map_index): str(t.state) for t in tis}
        rows: list[Any] = list(
            session.scalars(
                XComModel.get_many(run_id=run.run_id, dag_ids=dag_id, key="return_value")
            )
        )
        results = {name(x.task_id, x.map_index): XComModel.deserialize_value(x) for x in rows}
    return {"state": str(run.state), "run_id": run.run_id, "tasks": states, "results": results}


@contextlib.contextmanager
def logs_to(path: Path) -> Iterator[IO[str]]:
    """Send this process's stdout and stderr (Airflow, Spark's JVM) to ``path``.

    Yields a stream on the original stdout for the demo's own lines.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    terminal = os.fdopen(os.dup(saved[0]), "w", buffering=1)
    with path.open("a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            terminal.close()


def week_start(week: str, timezone: str) -> dt.datetime:
    """Monday 00:00 (``timezone``) after ISO ``week``: when its hourly runs are all done."""
    from jobs.weekly.summary import iso_week_window

    return iso_week_window(week, timezone)[1]


def _synth(masters_dir: Path, week: str, events: int, echo: Echo) -> None:
    from jobs.synth import synth_week

    if masters_dir.is_dir() and any(masters_dir.iterdir()):
        # synth is deterministic: a second demo of the same week reuses the same files (and so
        # collects and ingests nothing new: the evidence store and lake are write-once)
        echo(f"1/4 synth: reusing {week} in {masters_dir} (remove it to generate it again)")
        return
    echo(f"1/4 synth: {events} events for {week} into {masters_dir}")
    synth_week(masters_dir, week=week, masters=3, events=events, seed=47, max_size_mb=5.0,
               cluster=DEMO_CLUSTER)  # fmt: skip


def _check(outcome: dict[str, Any], dag_id: str, log: Path) -> None:
    failed = sorted(t for t, s in outcome["tasks"].items() if s not in ("success", "skipped"))
    if outcome["state"] != "success" or failed:
        raise DagRunFailed(f"{dag_id}: run {outcome['state']}, tasks {failed} (see {log})")


def _report_collect_ingest(outcome: dict[str, Any], echo: Echo) -> None:
    results = outcome["results"]
    for key in sorted(k for k in results if k.startswith("collect[")):
        r = results[key]
        echo(f"    collect {r['master']}: collected {r['collected']}, unchanged {r['unchanged']}")
    ingested = results.get("ingest") or {}
    if ingested.get("run_id"):
        echo(f"    ingest run {ingested['run_id']}: {ingested['files']} files, "
             f"{ingested['events']} events, {ingested['quarantined']} quarantined")  # fmt: skip
    else:
        echo("    ingest: nothing new")
    for key in sorted(k for k in results if k.startswith("alert[")):
        a = results[key]
        sent = ", ".join(f"{c['channel']} {c['status']}" for c in a["channels"]) or "nothing sent"
        echo(f"    alerts {a['cluster']}: {a['alerts']} findings ({sent})")


def _stop_spark() -> None:
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()
    # py4j says goodbye at interpreter exit, after the terminal is ours again
    logging.getLogger("py4j").setLevel(logging.WARNING)


def _run_both(
    config: Config, config_path: Path, home: Path, week: str, log: Path, say: Echo
) -> dict[str, Any]:
    """Both DAGs through the embedded Airflow; the weekly run's publish result."""
    prepare_airflow(home / "airflow", [config_path], home)
    monday = week_start(week, config.timezone)
    say(f"3/4 audit_collect_ingest: {len(config.masters)} masters into {home}")
    outcome = run_dag("audit_collect_ingest", monday)
    _check(outcome, "audit_collect_ingest", log)
    _report_collect_ingest(outcome, say)
    say(f"4/4 audit_weekly_report: {week} (build, validate, render, publish)")
    weekly = run_dag("audit_weekly_report", monday + dt.timedelta(hours=6), {"week": week})
    _check(weekly, "audit_weekly_report", log)
    step: dict[str, Any] = weekly["results"]["publish[0]"]
    say(f"    validation: {'passed' if step['validation_ok'] else 'FAILED (see the report)'}")
    for channel in step["channels"]:
        say(f"    {channel['channel']}: {channel['status']}")
    return step


def run_demo(out: Path, events: int = 60000, week: str = "2026-W47", echo: Echo = print) -> Path:
    """Generate ``week``, run both DAGs through the embedded Airflow; return the PDF path.

    Raises:
        DagRunFailed: a DAG run did not succeed (the message names the log).
    """
    out = out.resolve()
    home = out / "home"
    masters_dir = out / "masters" / week
    _synth(masters_dir, week, events, echo)
    data = demo_config(masters_dir)
    config: Config = parse_config(data, out)  # checked in memory before anything runs
    config_path = write_config_once(data, home / "kaudit.yaml")
    airflow_home = home / "airflow"
    log = airflow_home / "demo.log"
    echo(f"2/4 Airflow: metadata DB in {airflow_home}, logs in {log}")
    with logs_to(log) as terminal:

        def say(line: str) -> None:
            terminal.write(line + "\n")

        try:
            step = _run_both(config, config_path, home, week, log, say)
        finally:
            _stop_spark()  # inside: py4j logs its goodbye to the (redirected) stderr
    pdf = Path(step["pdf"])
    # kaudit and airflow are in the venv, not on the PATH: name them by their full path
    bin_dir = Path(sys.executable).parent
    echo(f"\nconfig: {config_path}\nlake: {home / 'lake'}\n"
         f"the CLI: {bin_dir / 'kaudit'} ledger --home {home}   (or: source "
         f"{bin_dir / 'activate'}, then kaudit ...)\n"
         f"verify the PDF: {bin_dir / 'kaudit'} verify {pdf} --home {home}\n"
         f"Airflow UI: AIRFLOW_HOME={airflow_home} AIRFLOW__CORE__DAGS_FOLDER={DAGS_FOLDER} "
         f"KAUDIT_CONFIG={config_path} KAUDIT_HOME={home} "
         f"{bin_dir / 'airflow'} standalone")  # fmt: skip
    echo(str(pdf))
    return pdf
