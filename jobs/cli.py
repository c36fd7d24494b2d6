"""The ``kaudit`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from jobs.settings import ConfigError, Layout, load_config, resolve_home

if TYPE_CHECKING:
    from collections.abc import Sequence

    from jobs.lake.ledger import LedgerEntry

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
    from jobs.errors import EXIT_PARTIAL_COLLECTION
    from jobs.evidence.main import run_collect

    config = _config(config_path)
    try:
        results = run_collect(config, Layout(resolve_home(home)))
    except OSError as exc:
        raise click.ClickException(f"evidence store: {exc}") from exc
    for r in results:
        line = f"{r.master}: collected {r.collected}, unchanged {r.unchanged}"
        if r.skipped:
            line += f", skipped {len(r.skipped)}"
            for s in r.skipped:
                line += f"\n  skipped {s.file}: {s.reason}"
        if r.failure:
            line += f"\n  COLLECTION FAILURE: {r.failure}"
        click.echo(line)
    if any(r.failure for r in results):
        sys.exit(EXIT_PARTIAL_COLLECTION)


@main.command()
@HOME_OPTION
@click.option("--max-line-bytes", type=click.IntRange(1024), default=None,
              help="lines longer than this are quarantined  [default: 8 MiB]")
def ingest(home: str | None, max_line_bytes: int | None) -> None:
    """Parse every evidence file not yet ingested into the Parquet lake."""
    from jobs._session import get_spark
    from jobs.errors import DataError
    from jobs.ingest import main as ingest_main
    from jobs.settings import DEFAULT_MAX_LINE_BYTES

    layout = Layout(resolve_home(home))
    spark = get_spark("kaudit-ingest")
    try:
        result = ingest_main.run(spark, layout, max_line_bytes or DEFAULT_MAX_LINE_BYTES)
    except DataError as exc:
        click.echo(f"Error: {exc}", err=True)  # as click prints it, with the error's own code
        sys.exit(exc.exit_code)
    if not result.files:
        click.echo("nothing to ingest")
        return
    _print_ledger(result.files)
    click.echo(f"run {result.run_id}: {len(result.files)} files in {result.seconds} s;"
               f" lake at {layout.lake}")


def _print_ledger(entries: Sequence[LedgerEntry]) -> None:
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


@main.command()
@HOME_OPTION
@click.option("--json", "as_json", is_flag=True, help="print a JSON list")
def ledger(home: str | None, as_json: bool) -> None:
    """Per evidence file: lines, events, duplicates, quarantined, blank (they add up)."""
    from jobs.lake.ledger import read_ledger

    entries = read_ledger(Layout(resolve_home(home)))
    keys = ("evidence_sha256", "cluster", "master", "file", "lines", "events", "duplicates",
            "quarantined", "blank")
    bad = [e for e in entries if not e.adds_up]
    if as_json:
        click.echo(json.dumps([{k: getattr(e, k) for k in keys} for e in entries], indent=1))
    else:
        _print_ledger(entries) if entries else click.echo("ledger is empty")
    if bad:
        raise click.ClickException(f"{len(bad)} ledger entries do not add up")


@main.command()
@HOME_OPTION
def verify(home: str | None) -> None:
    """Verify the custody chain and that every evidence file still has its hash."""
    from jobs.evidence.main import run_verify

    problems = run_verify(Layout(resolve_home(home)))
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


@main.command()
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False), help="cluster config (YAML)")
@click.option("--week", required=True, help="ISO week in the cluster's time zone, e.g. 2026-W47")
@HOME_OPTION
def report(config_path: str, week: str, home: str | None) -> None:
    """Compute the weekly aggregates and detections of one cluster."""
    from jobs.errors import KauditError
    from jobs.weekly.summary import WeekError, parse_week

    config = _config(config_path)
    try:
        parse_week(week)  # refuse a bad week before Spark starts
    except WeekError as exc:
        raise click.BadParameter(str(exc), param_hint="--week") from exc
    from jobs._session import get_spark
    from jobs.weekly import main as weekly_main

    layout = Layout(resolve_home(home))
    try:
        summary = weekly_main.run(get_spark("kaudit-report"), config, layout, week)
    except KauditError as exc:  # bad policy file, unreadable geo database
        click.echo(f"kaudit: error: {exc}", err=True)
        raise click.exceptions.Exit(exc.exit_code) from exc
    fired = {k: v for k, v in summary["detections"].items() if v}
    blind = sorted(k for k, v in summary["detections_status"].items() if v != "ok")
    click.echo(f"{config.cluster} {week}: {summary['requests_total']} requests, "
               f"{summary['events_total']} events")
    click.echo(f"detections: {', '.join(f'{k}={v}' for k, v in sorted(fired.items())) or 'none'}")
    if blind:
        click.echo(f"not observable under the policy: {', '.join(blind)}")
    click.echo(f"marts: {layout.marts(config.cluster, week)}")


_POLICY_OPTION = click.option(
    "--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Audit Policy YAML file (default: the embedded ACK policy).",
)


def _policy(policy_file: Path | None) -> Any:
    from jobs.errors import EXIT_USAGE
    from jobs.policy import PolicyError
    from jobs.policy import main as policy_main

    try:
        return policy_main.load(policy_file)
    except PolicyError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_USAGE) from exc


@main.group("policy")
def policy() -> None:
    """Audit policy: validate a policy file, match events against it."""


@policy.command("check")
@_POLICY_OPTION
def policy_check(policy_file: Path | None) -> None:
    """Validate a policy file and print its rules (exit code 2 when invalid)."""
    from jobs.policy import main as policy_main

    loaded = _policy(policy_file)
    click.echo(
        f"{loaded.source}: OK, {loaded.api_version}, {len(loaded.rules)} rules, "
        f"omitStages=[{', '.join(loaded.omit_stages)}], "
        f"omitManagedFields={str(loaded.omit_managed_fields).lower()}, sha256={loaded.sha256}"
    )
    for rule in policy_main.run_check(loaded):
        line = f"line {rule.line}" if rule.line is not None else ""
        click.echo(f"{rule.index:>3}  {rule.level:<15}  {line:<9}  {rule.selectors}")


@policy.command("match")
@_POLICY_OPTION
@click.argument("events", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True))
def policy_match(policy_file: Path | None, events: tuple[str, ...]) -> None:
    """Print the matching rule and level for every line of EVENTS (JSON lines; stdin if none).

    One JSON object per input line, in input order: {"line", "audit_id", "stage", "rule",
    "level"}, or {"line", "error"} for a line that is not an audit event. With several
    inputs each object also names its "file"; lines are counted from 1 in each input.
    """
    from jobs._session import get_spark
    from jobs.policy import main as policy_main

    loaded = _policy(policy_file)
    sources = events or (policy_main.STDIN,)
    try:
        results = policy_main.run_match(lambda: get_spark("kaudit-policy"), loaded, sources)
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
    for result in results:
        click.echo(json.dumps(result))


if __name__ == "__main__":
    main()
