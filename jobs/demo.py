"""`kaudit demo`: a realistic generated week through the whole pipeline, on this machine."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from jobs.settings import Layout, load_config

DEMO_CLUSTER = "demo"
DEMO_TZ = "Asia/Shanghai"


def write_demo_config(out: Path, masters: list[str]) -> Path:
    config = {
        "cluster": DEMO_CLUSTER,
        "timezone": DEMO_TZ,
        "masters": [{"name": m, "source": f"file://{(out / 'masters' / m).resolve()}"}
                    for m in masters],
    }
    path = out / "kaudit.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_demo(out: Path, events: int = 60000, week: str = "2026-W47") -> None:
    from jobs._session import get_spark
    from jobs.evidence.main import run_collect
    from jobs.ingest import main as ingest_main
    from jobs.lake.ledger import read_ledger
    from jobs.synth import synth_week

    out.mkdir(parents=True, exist_ok=True)
    masters_dir = out / "masters"
    if masters_dir.is_dir() and any(masters_dir.iterdir()):
        # synth is deterministic: a second demo reuses the same files (and so collects and
        # ingests nothing new: the evidence store and lake are write-once)
        click.echo(f"1/4 synth: reusing the week already in {masters_dir} "
                   "(remove that folder to generate another week)")
    else:
        click.echo(f"1/4 synth: {events} events for {week} into {masters_dir}")
        synth_week(masters_dir, week=week, masters=3, events=events, seed=47, max_size_mb=5.0,
                   cluster=DEMO_CLUSTER)
    masters = sorted(p.name for p in masters_dir.iterdir() if p.is_dir())
    config = load_config(write_demo_config(out, masters))
    layout = Layout((out / "home").resolve())
    click.echo(f"2/4 collect: {len(masters)} masters into {layout.evidence}")
    for r in run_collect(config, layout):
        click.echo(f"    {r.master}: collected {r.collected}, unchanged {r.unchanged}")
    click.echo("3/4 ingest (Spark, local mode)")
    spark = get_spark("kaudit-demo")
    ingest_main.run(spark, layout)
    entries = read_ledger(layout)
    totals = {k: sum(getattr(e, k) for e in entries)
              for k in ("lines", "events", "duplicates", "quarantined", "blank")}
    counts = ", ".join(f"{k} {v}" for k, v in totals.items())
    click.echo(f"    ledger: {len(entries)} files, {counts}")
    from jobs.weekly import main as weekly_main

    click.echo(f"4/4 report: weekly marts for {week}")
    summary = weekly_main.run(spark, config, layout, week)
    click.echo(f"    marts in {layout.marts(DEMO_CLUSTER, week)}; "
               f"requests {summary.get('requests_total')}, detections "
               f"{json.dumps(summary.get('detections', {}), sort_keys=True)}")
    click.echo(f"\nlake: {layout.lake}\nledger: kaudit ledger --home {layout.home}")
