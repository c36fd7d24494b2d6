from __future__ import annotations

import click

from jobs.cli import main


def _commands(group, path=()):
    for name, command in group.commands.items():
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_option_of_every_command_has_help():
    missing = [
        f"kaudit {' '.join(path)} {param.opts[0]}"
        for path, command in _commands(main)
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert missing == []


def test_help_lists_the_exit_codes():
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for code in ("0", "1", "2", "3", "4", "5", "6", "70"):
        assert f"\n    {code} " in result.output
