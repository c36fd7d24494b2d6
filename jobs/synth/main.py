"""Write one synthetic week: the minute-by-minute driver and the run's summary."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

from jobs.synth.background import Background, background_table, build, human_weight
from jobs.synth.engine import (
    ACTIVE_NAME,
    BUCKET_S,
    MIB,
    MICROS,
    MIN_MAX_SIZE_BYTES,
    WEEK_S,
    Generator,
    RotatingWriter,
)
from jobs.synth.incidents import PLANTED, planted_requests, render, week_second

LOCAL_OFFSET_S = 8 * 3600  # Asia/Shanghai, no DST
LOCAL_TZ_NAME = "Asia/Shanghai"


def week_start_utc(week: str) -> dt.datetime:
    """Monday 00:00 local (UTC+8) of an ISO week like ``2026-W47``, as a UTC datetime.

    Args:
        week: the ISO week.

    Returns:
        The week's start.

    Raises:
        ValueError: not an ISO week.
    """
    try:
        year, number = week.upper().split("-W")
        monday = dt.date.fromisocalendar(int(year), int(number), 1)
    except ValueError as exc:
        raise ValueError(f"week must look like 2026-W47, got {week!r}") from exc
    local = dt.datetime(monday.year, monday.month, monday.day, tzinfo=dt.UTC)
    return local - dt.timedelta(seconds=LOCAL_OFFSET_S)


def _write_traffic(
    g: Generator, writers: list[RotatingWriter], background: Background, events: int
) -> int:
    """Fill every minute with its planted requests and its share of the background.

    Returns the number of planted requests answered 401 or 403 (the rest of
    ``g.auth_failures`` is the background's).
    """
    masters = g.masters
    requests = planted_requests()
    background_lines = max(events - sum(r.lines for r in requests), 0)
    shares = background_table()["shares"]
    n_buckets = WEEK_S // BUCKET_S
    human_weights = [human_weight(b) for b in range(n_buckets)]
    system_per_bucket = background_lines * shares["system"] / n_buckets
    human_scale = background_lines * shares["human"] / sum(human_weights)
    unauthenticated_per_bucket = (
        background_lines * (1 - shares["system"] - shares["human"]) / n_buckets
    )
    rng = g.rng
    choices = rng.choices
    system, human, humans, unauth = (
        background.system,
        background.human,
        background.humans,
        background.unauthenticated,
    )
    system_done = human_done = unauth_done = 0
    system_target = human_target = unauth_target = 0.0
    next_planted = planted_failures = 0
    turn = 0  # planted requests without a master go to the masters in turn
    bucket_us = BUCKET_S * MICROS
    for b in range(n_buckets):
        bucket_start = g.start_us + b * bucket_us
        g.bucket_end = bucket_start + bucket_us
        while (
            next_planted < len(requests) and requests[next_planted].week_second < (b + 1) * BUCKET_S
        ):
            request = requests[next_planted]
            master = request.master if request.master is not None else turn % masters
            turn += 1
            at_us = g.start_us + request.week_second * MICROS + int(rng.random() * 900_000)
            before_failures = g.auth_failures
            render(g, request, at_us, min(master, masters - 1), next_planted)
            planted_failures += g.auth_failures - before_failures
            next_planted += 1
        # each share runs until its running target of lines is reached
        before = g.lines
        system_target += system_per_bucket
        while system_done < system_target:
            t = bucket_start + int(rng.random() * bucket_us)
            op = choices(system.ops, cum_weights=system.cum_weights)[0]
            op(t, int(rng.random() * masters))
            system_done += g.lines - before
            before = g.lines
        human_target += human_weights[b] * human_scale
        while human_done < human_target:
            t = bucket_start + int(rng.random() * bucket_us)
            op = choices(human.ops, cum_weights=human.cum_weights)[0]
            master = int(rng.random() * masters)
            op(t, master, choices(humans.ops, cum_weights=humans.cum_weights)[0])
            human_done += g.lines - before
            before = g.lines
        unauth_target += unauthenticated_per_bucket
        while unauth_done < unauth_target:
            t = bucket_start + int(rng.random() * bucket_us)
            choices(unauth.ops, cum_weights=unauth.cum_weights)[0](t, int(rng.random() * masters))
            unauth_done += g.lines - before
            before = g.lines
        for m in range(masters):
            for _key, line, stage in g.drain(m, g.bucket_end):
                writers[m].write(line.encode(), stage)
    for m in range(masters):
        for _key, line, stage in g.drain(m, g.end_us + 1):
            writers[m].write(line.encode(), stage)
        writers[m].close()
    return planted_failures


def synth_week(
    out_dir: Path,
    week: str = "2026-W47",
    masters: int = 3,
    events: int = 20000,
    seed: int = 47,
    max_size_mb: float = 100.0,
    compress: bool = False,
    cluster: str = "demo",
) -> dict[str, Any]:
    """Write one week of ACK-style audit logs for ``masters`` masters under ``out_dir``.

    Args:
        out_dir: root directory; ``<out_dir>/master-<n>/`` is created and must be empty.
        week: ISO week, local time UTC+8 (Asia/Shanghai), Monday 00:00 to Sunday 24:00.
        masters: number of control-plane nodes (each writes its own file set).
        events: approximate total number of event lines across all masters.
        seed: RNG seed; the same arguments give byte-identical files.
        max_size_mb: lumberjack ``--audit-log-maxsize`` in MiB (fractions allowed, >= 1/16).
        compress: gzip rotated backups (``--audit-log-compress``).
        cluster: cluster name recorded in the summary.

    Returns:
        A summary: window, files per master, line and request totals, planted incidents,
        and ``background_detections``: detection id to the number of background requests it
        counts (the realistic failures of background.yaml, which depend on seed and size).

    Raises:
        ValueError: bad arguments.
        FileExistsError: a master directory is not empty.
    """
    if masters < 1:
        raise ValueError("masters must be >= 1")
    limit = int(max_size_mb * MIB)
    if limit < MIN_MAX_SIZE_BYTES:
        raise ValueError(f"max_size_mb must be >= {MIN_MAX_SIZE_BYTES / MIB}")
    out_dir = Path(out_dir)
    start = week_start_utc(week)
    start_us = int(start.timestamp()) * MICROS
    g = Generator(start_us, masters, seed)
    names = [f"master-{i + 1}" for i in range(masters)]
    writers = []
    for i, name in enumerate(names):
        directory = out_dir / name
        directory.mkdir(parents=True, exist_ok=True)
        if any(directory.iterdir()):
            raise FileExistsError(f"{directory} is not empty")
        rotation_rng = random.Random(seed * 7919 + i)  # noqa: S311 - reproducible
        writers.append(RotatingWriter(directory, limit, compress, rotation_rng, start_us))
    planted_failures = _write_traffic(g, writers, build(g), events)

    per_master = {}
    for name, w in zip(names, writers, strict=True):
        files = [*w.backups, ACTIVE_NAME]
        per_master[name] = {
            "files": files,
            "bytes": {f: (out_dir / name / f).stat().st_size for f in files},
            "lines": w.lines,
        }
    planted = []
    for row in PLANTED:
        entry = dict(row)
        if "master" in entry:
            index = int(entry["master"].removeprefix("master-")) - 1
            entry["master"] = names[min(index, masters - 1)]
        local = start + dt.timedelta(seconds=week_second(row["first_local"]) + LOCAL_OFFSET_S)
        entry["first_local_time"] = local.strftime("%Y-%m-%dT%H:%M:%S+08:00")
        planted.append(entry)
    return {
        "cluster": cluster,
        "week": week,
        "timezone": LOCAL_TZ_NAME,
        "window_utc": [g.micro_timestamp(start_us), g.micro_timestamp(g.end_us)],
        "seed": seed,
        "max_size_mb": max_size_mb,
        "compress": compress,
        "masters": per_master,
        "events": g.lines,
        "requests": g.requests,
        "planted": planted,
        # requests of the background that a detection counts, as that detection counts them
        # (auth-failures: every request answered 401 or 403); background.yaml says which
        "background_detections": {"auth-failures": g.auth_failures - planted_failures},
    }


run = synth_week
