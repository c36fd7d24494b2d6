from __future__ import annotations

import pytest

from jobs.evidence.main import run_collect
from jobs.settings import Layout, parse_config


@pytest.fixture
def collect_dirs(tmp_path):
    """collect_dirs({master: dir}, pattern=...) -> Layout with those dirs collected."""

    def run(dirs, pattern="*", home=None):
        layout = Layout(home or tmp_path / "home")
        config = parse_config(
            {
                "cluster": "c1",
                "timezone": "UTC",
                "masters": [
                    {"name": n, "source": f"file://{d}", "pattern": pattern}
                    for n, d in dirs.items()
                ],
            },
            tmp_path,
        )
        results = run_collect(config, layout)
        assert all(r.failure is None for r in results), results
        return layout

    return run
