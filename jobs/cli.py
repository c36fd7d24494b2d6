"""The ``kaudit`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from jobs.settings import ConfigError, Layout, load_config, resolve_home

HOME_OPTION = click.option(
    "--home", type=click.Path(file_okay=False), default=None,
    help="kaudit home (evidence, lake, marts). Default: $KAUDIT_HOME, else ./kaudit-home.",
)


def _config(path: str) -> Any:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kaudit")
def main() -> None:
    """kaudit: forensic weekly reports from kube-apiserver audit logs."""


def _synth_help() -> str:
    from jobs.synth import planted_markdown

    return planted_markdown()


@main.command(epilog="Planted incidents: see `kaudit synth --planted` or the README.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=False)
@click.option("--week", default="2026-W47", show_default=True, help="ISO week, e.g. 2026-W47")
@click.option("--masters", default=3, show_default=True, type=click.IntRange(1, 64))
@click.option("--events", default=20000, show_default=True, type=click.IntRange(100))
@click.option("--seed", default=47, show_default=True, type=int)
@click.option("--max-size-mb", default=100.0, show_default=True, type=click.FloatRange(0.01))
@click.option("--compress", is_flag=True, help="gzip rotated backups (--audit-log-compress)")
@click.option("--cluster", default="demo", show_default=True)
@click.option("--planted", is_flag=True, help="print the planted incidents and exit")
def synth(out_dir: str | None, week: str, masters: int, events: int, seed: int,
          max_size_mb: float, compress: bool, cluster: str, planted: bool) -> None:
    """Write a realistic synthetic week of audit logs, as kube-apiserver leaves them."""
    from jobs.synth import synth_week

    if planted:
        click.echo(_synth_help())
        return
    if not out_dir:
        raise click.UsageError("--out is required")
    try:
        summary = synth_week(Path(out_dir), week=week, masters=masters, events=events, seed=seed,
                             max_size_mb=max_size_mb, compress=compress, cluster=cluster)
    except (ValueError, FileExistsError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(summary, indent=1, sort_keys=True, default=str))


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False))
@HOME_OPTION
def collect(config_path: str, home: str | None) -> None:
    """Copy new audit files from every master into the evidence store."""
    from jobs.collect import collect as run_collect

    config = _config(config_path)
    try:
        results = run_collect(config, Layout(resolve_home(home)))
    except OSError as exc:
        raise click.ClickException(f"evidence store: {exc}") from exc
    failed = False
    for r in results:
        line = f"{r['master']}: collected {r['collected']}, unchanged {r['unchanged']}"
        if r["skipped"]:
            line += f", skipped {len(r['skipped'])}"
            for s in r["skipped"]:
                line += f"\n  skipped {s['file']}: {s['reason']}"
        if r["failure"]:
            failed = True
            line += f"\n  COLLECTION FAILURE: {r['failure']}"
        click.echo(line)
    if failed:
        sys.exit(3)


@main.command()
@HOME_OPTION
@click.option("--max-line-bytes", type=click.IntRange(1024), default=None,
              help="lines longer than this are quarantined  [default: 8 MiB]")
def ingest(home: str | None, max_line_bytes: int | None) -> None:
    """Parse every evidence file not yet ingested into the Parquet lake."""
    from jobs._session import get_spark
    from jobs.ingest.main import IngestError
    from jobs.ingest.main import ingest as run_ingest
    from jobs.settings import DEFAULT_MAX_LINE_BYTES

    layout = Layout(resolve_home(home))
    spark = get_spark("kaudit-ingest")
    try:
        result = run_ingest(spark, layout, max_line_bytes or DEFAULT_MAX_LINE_BYTES)
    except IngestError as exc:
        raise click.ClickException(str(exc)) from exc
    if not result["files"]:
        click.echo("nothing to ingest")
        return
    _print_ledger(result["files"])
    click.echo(f"run {result['run_id']}: {len(result['files'])} files in {result['seconds']} s;"
               f" lake at {layout.lake}")


def _print_ledger(entries: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ingest ledger")
    keys = ("lines", "events", "duplicates", "quarantined", "blank")
    for col in ("master", "file", "sha256", *keys):
        table.add_column(col, justify="right" if col in keys else "left")
    totals = dict.fromkeys(keys, 0)
    for e in entries:
        table.add_row(e["master"], e["file"], e["evidence_sha256"][:12],
                      *[str(e[k]) for k in keys])
        for k in keys:
            totals[k] += e[k]
    table.add_row("total", "", "", *[str(totals[k]) for k in keys], style="bold")
    Console(width=160).print(table)


@main.command()
@HOME_OPTION
@click.option("--json", "as_json", is_flag=True, help="print a JSON list")
def ledger(home: str | None, as_json: bool) -> None:
    """Per evidence file: lines, events, duplicates, quarantined, blank (they add up)."""
    from jobs.ingest.main import read_ledger

    entries = read_ledger(Layout(resolve_home(home)))
    keys = ("evidence_sha256", "cluster", "master", "file", "lines", "events", "duplicates",
            "quarantined", "blank")
    bad = [e for e in entries
           if e["lines"] != e["events"] + e["duplicates"] + e["quarantined"] + e["blank"]]
    if as_json:
        click.echo(json.dumps([{k: e[k] for k in keys} for e in entries], indent=1))
    else:
        _print_ledger(entries) if entries else click.echo("ledger is empty")
    if bad:
        raise click.ClickException(f"{len(bad)} ledger entries do not add up")


@main.command()
@HOME_OPTION
def verify(home: str | None) -> None:
    """Verify the custody chain and that every evidence file still has its hash."""
    from jobs.evidence import verify_custody

    problems = verify_custody(Layout(resolve_home(home)))
    for p in problems:
        click.echo(p)
    if problems:
        raise click.ClickException(f"{len(problems)} problems")
    click.echo("custody chain and evidence verified")


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="demo-out",
              show_default=True)
@click.option("--events", default=60000, show_default=True, type=int)
@click.option("--week", default="2026-W47", show_default=True)
def demo(out_dir: str, events: int, week: str) -> None:
    """Generate a week, collect it, ingest it and report (everything under --out)."""
    from jobs.demo import run_demo

    run_demo(Path(out_dir), events=events, week=week)


def _register() -> None:
    """Commands built in their own packages."""
    from jobs.aggregate.cli import report
    from jobs.policy.cli import policy

    main.add_command(policy)
    main.add_command(report)


_register()

if __name__ == "__main__":
    main()
