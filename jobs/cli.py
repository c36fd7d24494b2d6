"""The ``kaudit`` command line: the one click group; each command calls one ``run``.

Every failure a user can meet ends as one line, ``kaudit: error: <what, naming the file, line,
field or path>``, and a documented exit code (:mod:`jobs.errors`); an unexpected one writes its
traceback to a log file and names that file. No traceback reaches the terminal.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from jobs.console import EXIT_CODES_HELP, KauditGroup, print_ledger, print_week
from jobs.errors import (
    KauditError,
)
from jobs.settings import Layout, existing_home, load_config, resolve_home

if TYPE_CHECKING:
    pass

HOME_OPTION = click.option(
    "--home", type=click.Path(file_okay=False), default=None,
    help="kaudit home directory (evidence, lake, marts, reports). "
    "Default: $KAUDIT_HOME, else ./kaudit-home.",
)  # fmt: skip
CONFIG_OPTION = click.option(
    "--config", "config_path", required=True, type=click.Path(dir_okay=False),
    help="the cluster's config file (YAML; see the README).",
)  # fmt: skip


def _writable(directory: Path) -> None:
    """Raise OSError (naming the path) unless a file can be created in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=directory):
        pass


def _home(home: str | None) -> Layout:
    """The layout of an existing home (a mistyped --home is an error, not a new home)."""
    return Layout(existing_home(home))


@click.group(
    cls=KauditGroup, context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES_HELP,
)  # fmt: skip
@click.version_option(package_name="kaudit")
def main() -> None:
    """kaudit: forensic weekly reports from kube-apiserver audit logs."""


def _synth_help() -> str:
    from jobs.synth import planted_markdown

    return planted_markdown()


@main.command(epilog="Planted incidents: see `kaudit synth --planted` or the README.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    required=False,
    help="directory to write one folder per master into (must not hold a week)",
)
@click.option("--week", default="2026-W47", show_default=True, help="ISO week, e.g. 2026-W47")
@click.option(
    "--masters",
    default=3,
    show_default=True,
    type=click.IntRange(1, 64),
    help="control-plane nodes, each with its own files",
)
@click.option(
    "--events",
    default=20000,
    show_default=True,
    type=click.IntRange(100),
    help="audit events (lines) to write, about",
)
@click.option(
    "--seed", default=47, show_default=True, type=int, help="the same seed gives the same bytes"
)
@click.option(
    "--max-size-mb",
    default=100.0,
    show_default=True,
    type=click.FloatRange(0.01),
    help="rotate at this size, as --audit-log-maxsize",
)
@click.option("--compress", is_flag=True, help="gzip rotated backups (--audit-log-compress)")
@click.option("--cluster", default="demo", show_default=True, help="cluster name")
@click.option("--planted", is_flag=True, help="print the planted incidents and exit")
def synth(
    out_dir: str | None,
    week: str,
    masters: int,
    events: int,
    seed: int,
    max_size_mb: float,
    compress: bool,
    cluster: str,
    planted: bool,
) -> None:
    """Write a realistic synthetic week of audit logs, as kube-apiserver leaves them."""
    from jobs.synth import synth_week

    if planted:
        click.echo(_synth_help())
        return
    if not out_dir:
        raise click.UsageError("--out is required")
    try:
        summary = synth_week(
            Path(out_dir),
            week=week,
            masters=masters,
            events=events,
            seed=seed,
            max_size_mb=max_size_mb,
            compress=compress,
            cluster=cluster,
        )
    except (ValueError, FileExistsError) as exc:
        raise click.UsageError(str(exc)) from exc
    files = sum(len(m["files"]) for m in summary["masters"].values())
    size = sum(sum(m["bytes"].values()) for m in summary["masters"].values())
    click.echo(
        f"wrote {summary['events']} audit events ({summary['requests']} requests) for "
        f"{week}, {len(summary['masters'])} masters, {files} files, {size:,} bytes, "
        f"into {out_dir}"
    )
    click.echo(f"{len(summary['planted'])} planted incidents: `kaudit synth --planted` lists them")


@main.command()
@CONFIG_OPTION
@HOME_OPTION
def collect(config_path: str, home: str | None) -> None:
    """Copy new audit files from every master into the evidence store."""
    from jobs.errors import EXIT_PARTIAL_COLLECTION
    from jobs.evidence.main import run_collect

    config = load_config(config_path)
    results = run_collect(config, Layout(resolve_home(home)))
    for r in results:
        line = f"{r.master}: collected {r.collected}, unchanged {r.unchanged}"
        if r.skipped:
            line += f", skipped {len(r.skipped)}"
            for s in r.skipped:
                line += f"\n  skipped {s.file}: {s.reason}"
        if r.failure:
            line += f"\n  COLLECTION FAILURE: {r.failure}"
        click.echo(line)
    incomplete = [r.master for r in results if not r.complete]
    if incomplete:  # a failed master, or files a master had that collect could not take
        click.echo(
            f"kaudit: error: partial collection of {', '.join(incomplete)} (recorded in custody)",
            err=True,
        )
        sys.exit(EXIT_PARTIAL_COLLECTION)


@main.command()
@HOME_OPTION
@click.option(
    "--max-line-bytes",
    type=click.IntRange(1024),
    default=None,
    help="lines longer than this are quarantined  [default: 8 MiB]",
)
@click.option(
    "--validate",
    is_flag=True,
    help="also run the events data contract on this run's events (about 10 s more)",
)
def ingest(home: str | None, max_line_bytes: int | None, validate: bool) -> None:
    """Parse every evidence file not yet ingested into the Parquet lake."""
    from jobs._session import get_spark
    from jobs.errors import DataError
    from jobs.ingest import main as ingest_main
    from jobs.lake.ledger import read_ledger
    from jobs.progress import step
    from jobs.settings import DEFAULT_MAX_LINE_BYTES

    layout = _home(home)
    _writable(layout.lake)  # fail before Spark starts: a read-only home, a damaged ledger
    read_ledger(layout)
    with step(click.echo, "ingest (Spark)"):
        # a callable: the JVM starts while the preflight reads the pending files
        result = ingest_main.run(
            lambda: get_spark("kaudit-ingest"), layout, max_line_bytes or DEFAULT_MAX_LINE_BYTES
        )
    if result.files:
        print_ledger(result.files)
        click.echo(
            f"run {result.run_id}: {len(result.files)} files in {result.seconds} s;"
            f" lake at {layout.lake}"
        )
    elif not result.refused:
        click.echo("nothing to ingest")
    if validate and result.run_id:
        from jobs.pipeline import validate_ingest_run

        with step(click.echo, "events data contract (Great Expectations)"):
            checked = validate_ingest_run(get_spark("kaudit-ingest"), layout, result.run_id)
        failed = [r for s in checked["suites"] for r in s["results"] if not r["success"]]
        click.echo(
            f"validation: {'passed' if checked['success'] else 'FAILED'}, "
            f"{len(failed)} expectations not met; "
            f"{layout.lake / '_validation' / (result.run_id + '.json')}"
        )
    if result.refused:  # the other files are committed; these stay out of the lake
        for refused in result.refused:
            click.echo(f"refused: {refused}", err=True)
        raise DataError(
            f"{len(result.refused)} evidence files refused (altered since "
            "collection; recorded in custody): run `kaudit verify`"
        )


@main.command()
@HOME_OPTION
@click.option("--json", "as_json", is_flag=True, help="print a JSON list")
def ledger(home: str | None, as_json: bool) -> None:
    """Per evidence file: lines, events, duplicates, quarantined, blank (they add up)."""
    from jobs.lake.ledger import read_ledger

    entries = read_ledger(_home(home))
    keys = (
        "evidence_sha256",
        "cluster",
        "master",
        "file",
        "lines",
        "events",
        "duplicates",
        "quarantined",
        "blank",
    )
    bad = [e for e in entries if not e.adds_up]
    if as_json:
        rows = [
            {k: getattr(e, k) for k in keys}
            | ({"file_b64": e.file_b64} if getattr(e, "file_b64", None) else {})
            for e in entries
        ]
        click.echo(json.dumps(rows, indent=1))
    elif entries:
        print_ledger(entries)
    else:
        click.echo("ledger is empty")
    if bad:
        raise KauditError(
            f"{len(bad)} ledger entries do not add up: "
            + ", ".join(e.evidence_sha256[:12] for e in bad[:5])
        )


@main.command()
@click.argument("report_pdf", required=False, type=click.Path(dir_okay=False, path_type=Path))
@HOME_OPTION
def verify(report_pdf: Path | None, home: str | None) -> None:
    r"""Verify the evidence store, or a report PDF against its manifest and the store.

    \b
    kaudit verify [--home DIR]
        the custody chain, every evidence file's hash, every published custody head, and
        that every file in the evidence store is named by a custody record.
    kaudit verify REPORT.pdf [--home DIR]
        the PDF against its embedded manifest (and the manifest.json beside it) and, when
        the store is at hand, every evidence hash the manifest names against the store.

    Exit 0 when everything matches, 1 with the first mismatch named.
    """
    if report_pdf is not None:
        _verify_report(report_pdf, home)
        return
    from jobs.evidence.main import run_verify

    result = run_verify(_home(home))
    for p in result.problems:
        click.echo(p)
    click.echo(
        f"checked {result.records} custody records, {result.files} evidence files "
        f"({result.bytes} bytes), {result.heads} custody heads"
    )
    if result.problems:
        raise KauditError(f"{len(result.problems)} problems; the first: {result.problems[0]}")
    click.echo("custody chain and evidence verified")


def _verify_report(pdf: Path, home: str | None) -> None:
    from reports.verify import verify_report

    if not pdf.is_file():
        raise click.UsageError(f"{pdf}: no such file")
    store = existing_home(home) if home else None
    if store is None and resolve_home(None).is_dir():
        store = resolve_home(None)  # the default home is at hand: check the evidence too
    problems = verify_report(pdf, store)
    if problems:
        for p in problems:
            click.echo(p)
        raise KauditError(f"{pdf}: {problems[0]}")
    checked = f"and the evidence in {store}" if store else "(no evidence store at hand)"
    click.echo(f"{pdf}: matches its manifest {checked}")


@main.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="demo-out",
    show_default=True,
    help="everything goes under this directory (the home is <out>/home)",
)
@click.option(
    "--events",
    default=60000,
    show_default=True,
    type=int,
    help="size of the generated week, in audit events",
)
@click.option(
    "--week", default="2026-W47", show_default=True, help="ISO week to generate and report"
)
def demo(out_dir: str, events: int, week: str) -> None:
    """Generate a week, collect it, ingest it and report (everything under --out)."""
    from jobs.weekly.summary import parse_week

    parse_week(week)  # refuse a bad week before anything is generated
    from jobs.demo import run_demo

    run_demo(Path(out_dir), events=events, week=week, echo=click.echo)


@main.command()
@CONFIG_OPTION
@click.option("--week", required=True, help="ISO week in the cluster's time zone, e.g. 2026-W47")
@HOME_OPTION
@click.option(
    "--allow-empty",
    is_flag=True,
    help="write the report of a week with no events at all (otherwise exit 1)",
)
def report(config_path: str, week: str, home: str | None, allow_empty: bool) -> None:
    """The weekly report of one cluster: marts, validation, PDF, delivery.

    Writes the marts and summary.json under <home>/marts/<cluster>/<week>/, validation.json
    and Great Expectations' Data Docs beside them, and report.pdf, manifest.json and the CSVs
    under <home>/reports/<cluster>/<week>/; then sends it as the config's delivery section
    says. Exit 6 when validation failed and the gate blocks delivery, 5 when a delivery failed.
    """
    from jobs.weekly.summary import parse_week

    config = load_config(config_path)
    parse_week(week)  # refuse a bad week before Spark starts
    layout = _home(home)
    from jobs.lake.ledger import read_ledger
    from jobs.policy import load_policy

    if config.policy is not None:  # a missing or invalid policy: one line, before Spark
        load_policy(config.policy)
    read_ledger(layout)  # a damaged ledger run file: one line naming it, before Spark
    from jobs import pipeline
    from jobs._session import get_spark, stop_spark

    spark = get_spark("kaudit-report", config_master=config.spark_master)
    outcome = pipeline.weekly_report(
        spark, config, layout, week, allow_empty=allow_empty, echo=click.echo,
        release_spark=stop_spark,
    )  # fmt: skip
    print_week(config.cluster, week, outcome)
    for line in outcome.publish.lines():
        click.echo(f"delivery: {line}")
    click.echo(str(outcome.pdf))
    if outcome.publish.exit_code:
        sys.exit(outcome.publish.exit_code)


_POLICY_OPTION = click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Audit Policy YAML file (default: the embedded ACK policy).",
)


def _policy(policy_file: Path | None) -> Any:
    from jobs.policy import main as policy_main

    return policy_main.load(policy_file)  # a bad policy is a PolicyError: one line, exit 2


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
    from jobs.ingest import match as policy_match

    loaded = _policy(policy_file)
    sources = events or (policy_match.STDIN,)
    results = policy_match.run_match(lambda: get_spark("kaudit-policy"), loaded, sources)
    for result in results:
        click.echo(json.dumps(result))


@main.command()
@HOME_OPTION
@click.option("--since", required=True, help="start, ISO date or time (no zone: UTC), inclusive")
@click.option("--until", required=True, help="end, ISO date or time (no zone: UTC), exclusive")
@click.option("--cluster", default=None, help="only this cluster")
@click.option(
    "--user", default=None, help="user, impersonated user, or person behind kubernetes-admin"
)
@click.option("--ip", default=None, help="IP or CIDR, matched against every sourceIPs entry")
@click.option("--resource", default=None, help="objectRef resource, e.g. pods")
@click.option("--namespace", default=None, help="objectRef namespace")
@click.option("--name", default=None, help="objectRef name")
@click.option("--verb", default=None, help="request verb, e.g. delete")
@click.option("--detection", default=None, help="a detection id (docs/detections.md)")
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="write .csv, .jsonl or .pdf instead of printing a table",
)
def investigate(
    home: str | None,
    since: str,
    until: str,
    cluster: str | None,
    user: str | None,
    ip: str | None,
    resource: str | None,
    namespace: str | None,
    name: str | None,
    verb: str | None,
    detection: str | None,
    out_file: Path | None,
) -> None:
    """Every event of an identity, IP or object over a time range, with its provenance."""
    from datetime import UTC, datetime

    from jobs.errors import KauditError

    try:
        from jobs.investigate import export
        from jobs.investigate.query import Query, parse_time

        query = Query(
            since=parse_time(since, "--since"),
            until=parse_time(until, "--until"),
            cluster=cluster,
            user=user,
            ip=ip,
            resource=resource,
            namespace=namespace,
            name=name,
            verb=verb,
            detection=detection,
        )
        if out_file is not None:
            export.output_form(out_file)  # refuse a bad --out before Spark starts
        from jobs._session import get_spark
        from jobs.geo.reader import GeoReader
        from jobs.investigate.main import run
        from jobs.settings import existing_home

        layout = Layout(existing_home(home))
        geo = GeoReader.from_config() if out_file is not None else None
        try:
            result = run(get_spark("kaudit-investigate"), layout, query, geo)
        finally:
            if geo is not None:
                geo.close()
        if out_file is None:
            export.print_table(result)
            return
        export.write(result, out_file, generated_at=datetime.now(UTC))
    except KauditError as exc:
        click.echo(f"kaudit: error: {exc}", err=True)
        raise click.exceptions.Exit(exc.exit_code) from exc
    if not result.rows:
        click.echo("no events match the query")
    click.echo(f"{len(result.rows)} events written to {out_file}")


@main.command()
@HOME_OPTION
@click.option(
    "--config", "config_path", default=None, type=click.Path(dir_okay=False),
    help="the cluster's config (rotation settings and schedule); default: the product's",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def coverage(home: str | None, config_path: str | None, as_json: bool) -> None:
    """Per master: the time the held evidence covers, its gaps, and retention headroom."""
    from jobs.config import RotationConfig, ScheduleConfig
    from jobs.evidence.coverage import coverage_report
    from jobs.evidence.custody import read_custody
    from jobs.settings import existing_home

    layout = Layout(existing_home(home))
    config = load_config(config_path) if config_path else None
    clusters = [config.cluster] if config else sorted({r["cluster"] for r in read_custody(layout)})
    rotation = config.rotation if config else RotationConfig()
    schedule = (config.schedule if config else ScheduleConfig()).collect_ingest
    reports = [coverage_report(layout, c, rotation, schedule) for c in clusters]
    if as_json:
        click.echo(json.dumps(reports, indent=1))
        return
    for rep in reports:
        click.echo(f"cluster {rep['cluster']}")
        for master, ranges in rep["covered"].items():
            spans = ", ".join(f"{r['start']} .. {r['end']}" for r in ranges)
            click.echo(f"  {master}: covered {spans}")
        for g in rep["gaps"]:
            click.echo(f"  GAP {g['master']} {g['start']} .. {g['end']}: {g['cause']}")
        for h in rep["headroom"]:
            if h["warning"]:
                click.echo(f"  WARNING {h['warning']}")


if __name__ == "__main__":
    main()
