"""The DAG files: import cleanly, query no database at parse time, and keep the house rules."""

from __future__ import annotations

import ast
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
DAG_IDS = {"audit_collect_ingest", "audit_investigation", "audit_weekly_report"}

# Runs in a fresh interpreter whose Airflow DB URL points nowhere: any query at parse time
# would fail, and every statement sent to any engine is counted.
_PARSE = """
import json, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
statements = []
event.listen(Engine, "before_cursor_execute", lambda *a, **k: statements.append(a[2]))
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
heavy = sorted(m for m in ("pyspark", "pandas", "great_expectations", "weasyprint", "jobs.pipeline")
               if m in sys.modules)
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "dags": sorted(bag.dags), "statements": statements, "heavy": heavy}))
"""


@pytest.fixture(scope="module")
def parsed(tmp_path_factory, airflow_env):
    config_path, home, _ = airflow_env
    tmp = tmp_path_factory.mktemp("parse")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp}/missing-dir/none.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "KAUDIT_CONFIG": str(config_path),
        "KAUDIT_HOME": str(home),
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        [sys.executable, "-c", _PARSE, str(DAGS)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_dagbag_imports_without_errors_or_db_queries(parsed):
    assert parsed["errors"] == {}
    assert set(parsed["dags"]) == DAG_IDS
    assert parsed["statements"] == []
    assert parsed["heavy"] == []


@pytest.fixture(scope="module")
def dags(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags


@pytest.mark.slow
def test_every_dag_keeps_the_house_rules(dags):
    for dag_id, dag in dags.items():
        assert Path(dag.fileloc).stem == dag_id
        assert dag.doc_md.strip() == ast.get_docstring(ast.parse(Path(dag.fileloc).read_text()))
        assert dag.start_date is not None and dag.start_date.tzinfo is not None
        assert "kaudit" in dag.tags
        assert dag.default_args.get("on_failure_callback") is not None
        for task in dag.tasks:
            assert task.on_failure_callback, (dag_id, task.task_id)


@pytest.mark.slow
def test_collect_ingest_structure(dags):
    dag = dags["audit_collect_ingest"]
    assert {t.task_id for t in dag.tasks} == {"masters", "collect", "ingest", "clusters", "alert"}
    assert dag.schedule == "@hourly"  # the config's default
    assert dag.catchup is False
    collect, ingest, alert = (dag.get_task(t) for t in ("collect", "ingest", "alert"))
    assert collect.is_mapped and alert.is_mapped and not ingest.is_mapped
    assert collect.retries == 2 and ingest.retries == 2
    assert ingest.trigger_rule == "all_done"
    assert ingest.upstream_task_ids == {"collect"}
    assert [a.name for a in ingest.outlets] == ["kaudit_events"]
    assert "ingest" in alert.upstream_task_ids


@pytest.mark.slow
def test_weekly_report_structure(dags):
    dag = dags["audit_weekly_report"]
    chain = ["build", "validate", "render", "publish"]
    assert {t.task_id for t in dag.tasks} == {"clusters", *chain}
    assert dag.schedule == "0 6 * * 1"
    # Monday 06:00 in the config's zone, not UTC
    assert "Asia/Shanghai" in str(dag.timetable)
    assert dag.catchup is True
    for before, after in itertools.pairwise(chain):
        task = dag.get_task(after)
        assert task.is_mapped and task.upstream_task_ids == {before}
    assert dag.get_task("build").retries == 1
    assert set(dag.params) == {"week", "allow_empty"}


@pytest.mark.slow
def test_investigation_structure(dags):
    dag = dags["audit_investigation"]
    assert [t.task_id for t in dag.tasks] == ["investigate"]
    assert dag.schedule is None
    assert set(dag.params) == {
        "since",
        "until",
        "cluster",
        "user",
        "ip",
        "resource",
        "namespace",
        "verb",
        "out_format",
    }


@pytest.mark.parametrize(
    ("logical", "tz", "week"),
    [
        ("2026-11-23T06:00:00+08:00", "Asia/Shanghai", "2026-W47"),  # Monday 06:00 local
        ("2026-11-22T22:00:00+00:00", "Asia/Shanghai", "2026-W47"),  # = Monday 06:00 +08
        ("2026-11-22T22:00:00+00:00", "UTC", "2026-W46"),  # still Sunday in UTC
        ("2026-11-26T12:00:00+08:00", "Asia/Shanghai", "2026-W47"),  # later that week
        ("2027-01-04T00:00:00+00:00", "UTC", "2026-W53"),  # ISO year with 53 weeks
    ],
)
def test_week_to_report(logical, tz, week):
    import datetime as dt

    from jobs.tasks import week_to_report

    assert week_to_report(dt.datetime.fromisoformat(logical), tz) == week
