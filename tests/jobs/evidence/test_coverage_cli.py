"""``kaudit coverage``: an unreachable master is a gap, printed and in --json."""

from __future__ import annotations

import json

from click.testing import CliRunner

from jobs import cli
from jobs.evidence.main import run_collect
from jobs.settings import Layout, parse_config


def test_coverage_lists_an_unreachable_master(tmp_path):
    layout = Layout(tmp_path / "home")
    config = parse_config(
        {
            "cluster": "c1",
            "timezone": "UTC",
            "masters": [{"name": "gone", "source": f"file://{tmp_path / 'nope'}"}],
        },
        tmp_path,
    )
    run_collect(config, layout)
    out = CliRunner().invoke(cli.main, ["coverage", "--home", str(layout.home), "--json"])
    assert out.exit_code == 0, out.output
    [report] = json.loads(out.output)
    [gap] = report["gaps"]
    assert gap["master"] == "gone" and gap["cause"].startswith("unreachable: cannot list")
    text = CliRunner().invoke(cli.main, ["coverage", "--home", str(layout.home)])
    assert "GAP gone" in text.output
    missing = CliRunner().invoke(cli.main, ["coverage", "--home", str(tmp_path / "none")])
    assert missing.exit_code == 2 and "no kaudit home" in missing.output
