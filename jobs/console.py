"""What the ``kaudit`` command line prints: one-line errors, crash logs, tables.

:class:`KauditGroup` is the one place that turns an exception into the line a user sees and
the documented exit code (:mod:`jobs.errors`); no traceback reaches the terminal.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from jobs.errors import EXIT_CODES, EXIT_DATA, EXIT_INTERNAL, EXIT_USAGE, KauditError

if TYPE_CHECKING:
    from jobs.lake.ledger import LedgerEntry

EXIT_CODES_HELP = "\b\nExit codes:\n" + "\n".join(
    f"  {code:<3} {meaning}" for code, meaning in EXIT_CODES.items()
)


def fail(message: str, code: int) -> NoReturn:
    """Print ``kaudit: error: <message>`` on stderr and exit with ``code``."""
    click.echo(f"kaudit: error: {message}", err=True)
    sys.exit(code)


def crash_log(exc: BaseException) -> Path:
    """Write the traceback of an unexpected error to a file the user can send us."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    fd, name = tempfile.mkstemp(prefix=f"kaudit-crash-{stamp}-", suffix=".log")
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write(" ".join(sys.argv) + "\n")
        fh.write("".join(traceback.format_exception(exc)))
    return Path(name)


class KauditGroup(click.Group):
    """A click group whose errors all end as one line and a documented exit code."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102 - click's entry point
        kwargs["standalone_mode"] = False
        try:
            result = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.exceptions.NoArgsIsHelpError as exc:  # `kaudit`, `kaudit policy`: help
            click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
            sys.exit(0)
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            fail(exc.format_message() + where, EXIT_USAGE)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("interrupted", 130)
        except KauditError as exc:
            fail(str(exc), exc.exit_code)
        except OSError as exc:  # read-only home, full disk, a path that vanished
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}", EXIT_DATA)
        except Exception as exc:  # a bug: keep the details, show one line
            log = crash_log(exc)
            fail(f"internal error ({type(exc).__name__}); details in {log}", EXIT_INTERNAL)
        sys.exit(result if isinstance(result, int) else 0)


def print_ledger(entries: Sequence[LedgerEntry]) -> None:
    """The per-file ledger as a table, with a total row."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ingest ledger")
    keys = ("lines", "events", "duplicates", "quarantined", "blank")
    for col in ("master", "file", "sha256", *keys):
        table.add_column(col, justify="right" if col in keys else "left")
    totals = dict.fromkeys(keys, 0)
    for e in entries:
        counts = {k: getattr(e, k) for k in keys}
        table.add_row(e.master, e.file, e.evidence_sha256[:12], *[str(counts[k]) for k in keys])
        for k in keys:
            totals[k] += counts[k]
    table.add_row("total", "", "", *[str(totals[k]) for k in keys], style="bold")
    Console(width=160).print(table)


def print_week(cluster: str, week: str, outcome: Any) -> None:
    """What a weekly run found: totals, detections, coverage gaps, validation."""
    summary = outcome.summary
    fired = {k: v for k, v in summary["detections"].items() if v}
    blind = sorted(k for k, v in summary["detections_status"].items() if v != "ok")
    click.echo(
        f"{cluster} {week}: {summary['requests_total']} requests, {summary['events_total']} events"
    )
    click.echo(f"detections: {', '.join(f'{k}={v}' for k, v in sorted(fired.items())) or 'none'}")
    if blind:
        click.echo(f"not ok (not observable or not configured): {', '.join(blind)}")
    coverage = summary["coverage"]
    if not coverage["complete"]:
        click.echo(
            f"coverage: the evidence does not cover the week: {len(coverage['gaps'])} "
            "gaps (hours without events or masters never collected):"
        )
        for gap in coverage["gaps"][:10]:
            click.echo(f"  {gap['master']}: {gap['start']} .. {gap['end']} ({gap['cause']})")
    failed = [r for s in outcome.validation["suites"] for r in s["results"] if not r["success"]]
    status = "passed" if outcome.validation["success"] else "FAILED"
    click.echo(f"validation: {status} ({len(failed)} expectations not met)")
