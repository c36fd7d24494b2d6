"""One embedded Airflow (SQLite) per test session, over a small synth week.

The Airflow environment is set before anything imports ``airflow``; the receivers (SMTP and
HTTP on 127.0.0.1) live as long as the session, and the config file names them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

# the publish tests' receivers (tests/ is not a package)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reports"))
from publish_servers import HttpReceiver, SmtpSink, start_smtp

WEEK = "2026-W47"


@pytest.fixture(scope="session")
def receivers():
    sink = SmtpSink()
    controller = start_smtp(sink)
    hook = HttpReceiver()
    yield sink, controller.port, hook
    hook.close()
    controller.stop()


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory, receivers):
    """(config_path, home, logs dir) with Airflow pointed at a migrated SQLite DB."""
    from jobs import synth
    from jobs.demo import prepare_airflow

    _, smtp_port, hook = receivers
    tmp = tmp_path_factory.mktemp("airflow")
    synth.synth_week(tmp / "logs", week=WEEK, masters=2, events=3000, seed=11, cluster="demo")
    config = {
        "cluster": "demo",
        "timezone": synth.LOCAL_TZ_NAME,
        "masters": [
            {"name": f"master-{i}", "source": f"file://{tmp / 'logs' / f'master-{i}'}"}
            for i in (1, 2)
        ],
        "delivery": {
            "retries": 0,
            "email": {
                "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "starttls": "off",
                "sender": "kaudit@example.com", "to": ["audit@example.com"],
            },
            "webhooks": [{"url": hook.url("/hook"), "format": "json"}],
        },
    }  # fmt: skip
    config_path = tmp / "kaudit.yaml"
    config_path.write_text(yaml.safe_dump(config))
    home = tmp / "home"
    prepare_airflow(tmp / "airflow-home", [config_path], home)
    return config_path, home, tmp
