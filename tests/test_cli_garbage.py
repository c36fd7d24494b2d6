"""Every kaudit command and subcommand, fed garbage: a documented exit code, one error line
that starts with ``kaudit: error:``, never a traceback nor an "internal error".

Spark is replaced by a stand-in that fails the test: garbage must be refused before Spark.
Left out, as they are valid input that needs Spark: ``kaudit demo`` with no arguments (the
minutes-long full demo) and ``kaudit policy match BINARY`` (a file of lines, each one then
reported as quarantined by Spark; test_cli_errors covers policy match's own refusals).
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from jobs.cli import main
from jobs.errors import EXIT_CODES, EXIT_INTERNAL

DOCUMENTED = set(EXIT_CODES) - {EXIT_INTERNAL}
NEEDS_SPARK = {("demo",): "no arguments", ("policy", "match"): "one existing file"}


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


COMMANDS = _commands(main)


def _garbage(tmp) -> list[list[str]]:
    a_dir = tmp / "a-dir"
    a_dir.mkdir(exist_ok=True)
    binary = tmp / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    unreadable = tmp / "unreadable.yaml"
    unreadable.write_text("cluster: x\n", encoding="utf-8")
    unreadable.chmod(0)  # root still reads it: then it is one more bad config
    home = ["--home", "/nonexistent/x"]
    return [
        [],
        ["--bogus"],
        home,
        ["frobnicate", "quux", "--", "-zz"],
        ["--week", "2026-W99"],
        ["--config", str(a_dir)],
        ["--config", str(binary)],
        ["--config", str(unreadable)],
        ["--config", str(binary), "--week", "2026-W47", *home],
        ["--config", str(unreadable), "--week", "2026-W47", *home],
        ["--policy", str(a_dir)],
        ["--policy", str(binary), "frobnicate.jsonl"],
        ["--since", "yesterday-ish", "--until", "2026-13-45", *home],
        ["--out", str(binary), "--since", "2026-11-16", "--until", "2026-11-23", *home],
        ["--out", str(a_dir / "x.docx"), "--since", "2026-11-16", "--until", "2026-11-23"],
        [str(binary), *home],
        [str(binary)],
        ["--out", str(tmp / "out"), "--week", "2026-W99"],
        ["--out", str(tmp / "out"), "--events", "5", "--masters", "0"],
    ]


def _needs_spark(command: tuple[str, ...], args: list[str]) -> bool:
    kind = NEEDS_SPARK.get(command)
    if kind == "no arguments":
        return not args
    return kind == "one existing file" and len(args) == 1 and Path(args[0]).is_file()


@pytest.fixture
def no_spark(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("garbage reached Spark")

    monkeypatch.setattr("jobs._session.get_spark", refuse)


def test_every_command_is_walked():
    names = {" ".join(c) for c in COMMANDS}
    assert {"", "ingest", "ledger", "report", "verify", "policy check", "policy match"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "kaudit")
def test_garbage_never_ends_in_a_traceback(tmp_path, monkeypatch, no_spark, command):
    monkeypatch.chdir(tmp_path)  # the default home (./kaudit-home) does not exist here
    monkeypatch.delenv("KAUDIT_HOME", raising=False)
    runner = CliRunner()
    for args in _garbage(tmp_path):
        if _needs_spark(command, args):
            continue
        result = runner.invoke(main, [*command, *args], input="")
        shown = f"kaudit {' '.join([*command, *args])} -> {result.exit_code}\n{result.output}"
        assert result.exit_code in DOCUMENTED, shown
        assert "Traceback" not in result.output, shown
        assert "error: internal error" not in result.output, shown
        assert not isinstance(result.exception, AssertionError), shown  # Spark never starts
        if result.exit_code != 0:
            assert result.stderr.startswith("kaudit: error:"), shown
