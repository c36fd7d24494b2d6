"""``kaudit report --config FILE --week 2026-W47 [--home DIR]``: the weekly marts."""

from __future__ import annotations

import click

from jobs.settings import ConfigError, Layout, load_config, resolve_home


@click.command("report")
@click.option("--config", "config_path", required=True,
              type=click.Path(exists=True, dir_okay=False), help="cluster config (YAML)")
@click.option("--week", required=True, help="ISO week in the cluster's time zone, e.g. 2026-W47")
@click.option("--home", default=None, help="kaudit home (default: $KAUDIT_HOME or ./kaudit-home)")
def report(config_path: str, week: str, home: str | None) -> None:
    """Compute the weekly aggregates and detections of one cluster."""
    from jobs._session import get_spark
    from jobs.aggregate.main import run_weekly
    from jobs.aggregate.summary import WeekError, iso_week_window
    from jobs.geo.reader import GeoError

    try:
        config = load_config(config_path)
        iso_week_window(week, config.timezone)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    except WeekError as exc:
        raise click.BadParameter(str(exc), param_hint="--week") from exc
    root = resolve_home(home)
    try:
        summary = run_weekly(get_spark("kaudit-report"), config, root, week)
    except GeoError as exc:
        raise click.ClickException(str(exc)) from exc
    fired = {k: v for k, v in summary["detections"].items() if v}
    blind = sorted(k for k, v in summary["detections_status"].items() if v != "ok")
    click.echo(f"{config.cluster} {week}: {summary['requests_total']} requests, "
               f"{summary['events_total']} events")
    click.echo(f"detections: {', '.join(f'{k}={v}' for k, v in sorted(fired.items())) or 'none'}")
    if blind:
        click.echo(f"not observable under the policy: {', '.join(blind)}")
    click.echo(f"marts: {Layout(root).marts(config.cluster, week)}")
