"""What the ``kaudit`` command line prints: one-line errors, crash logs, tables.

:class:`KauditGroup` is the one place that turns an exception into the line a user sees and
the documented exit code (:mod:`jobs.errors`); no traceback reaches the terminal.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from jobs.errors import (
    EXIT_CODES,
    EXIT_DATA,
    EXIT_INTERNAL,
    EXIT_RESOURCES,
    EXIT_USAGE,
    KauditError,
)

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


# What py4j says when the JVM at the other end is gone (it exited: an OutOfMemoryError in a
# task ends a local-mode JVM at once, with nothing sent back)
_JVM_GONE = ("Answer from Java side is empty", "Error while sending or receiving",
             "Error while receiving", "Connection refused")  # fmt: skip


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _spark_log() -> str:
    """The words " and <path>" naming this process's Spark log, when Spark wrote one."""
    from jobs._session import spark_log_path

    path = spark_log_path()
    return f" and {path}" if path.is_file() else ""


def _spark_log_tail(limit: int = 1 << 20) -> str:
    """The last ``limit`` bytes of this process's Spark log, "" when there is none."""
    from jobs._session import spark_log_path

    try:
        with spark_log_path().open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - limit))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _text(exc: BaseException) -> str:
    try:  # a Py4JJavaError's text is asked of the JVM, which may be gone
        return str(exc)
    except Exception:
        return type(exc).__name__


def _raised_in_py4j(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if f"{os.sep}py4j{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def jvm_failure(exc: BaseException) -> tuple[str, int] | None:
    """The one line (and exit code) for Spark's JVM running out of memory or dying; else None.

    Spark's errors reach Python as py4j (or PySpark) exceptions whose text, or this process's
    Spark log, carries the Java error: ``java.lang.OutOfMemoryError``, Spark's
    INVALID_DRIVER_MEMORY (a heap too small to start); or py4j's own error when the JVM no
    longer answers (a local-mode JVM exits at once on an OutOfMemoryError in a task).
    """
    from py4j.protocol import Py4JError, Py4JJavaError, Py4JNetworkError

    from jobs.settings import spark_settings

    chain = _chain(exc)
    # once the JVM shuts down on an OutOfMemoryError, Python sees only what failed after it:
    # this process's Spark log says why
    text = "\n".join([*(_text(e) for e in chain), _spark_log_tail()])
    setting = f"KAUDIT_SPARK_DRIVER_MEMORY (now {spark_settings().driver_memory})"
    if "INVALID_DRIVER_MEMORY" in text:
        return f"Spark cannot start with so little driver memory: raise {setting}", EXIT_USAGE
    if "java.lang.OutOfMemoryError" in text:
        return (
            f"Spark ran out of memory (java.lang.OutOfMemoryError): raise {setting} and run again",
            EXIT_RESOURCES,
        )
    # py4j's own errors only: a Java exception's text may say "Connection refused" of a store
    gone = [
        _text(e) for e in chain if isinstance(e, Py4JError) and not isinstance(e, Py4JJavaError)
    ]
    if (
        any(isinstance(e, Py4JNetworkError) for e in chain)
        or any(isinstance(e, ConnectionError) and _raised_in_py4j(e) for e in chain)
        or any(sign in text for text in gone for sign in _JVM_GONE)
    ):
        return (
            "Spark's JVM stopped during the run (most often out of memory): raise "
            f"{setting} and run again",
            EXIT_RESOURCES,
        )
    return None


class KauditGroup(click.Group):
    """A click group whose errors all end as one line and a documented exit code."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102 - click's entry point
        kwargs["standalone_mode"] = False
        # Libraries' log records stay off the terminal (py4j logs a traceback on the root
        # logger when the JVM is gone; Python would print it for want of a handler).
        logging.getLogger().addHandler(logging.NullHandler())
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
            known = jvm_failure(exc)  # or py4j's connection to a JVM that exited
            if known is not None:
                fail(f"{known[0]}; details in {crash_log(exc)}{_spark_log()}", known[1])
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}", EXIT_DATA)
        except Exception as exc:  # a bug: keep the details, show one line
            log = crash_log(exc)
            known = jvm_failure(exc)
            if known is not None:
                fail(f"{known[0]}; details in {log}{_spark_log()}", known[1])
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
