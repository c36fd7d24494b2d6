"""The ledger of alerts already delivered: ``<home>/alerts/sent.jsonl``.

One line per (channel, alert key), appended atomically under an exclusive lock.

The lock is held from reading the ledger to recording what was sent, so two runs of the same
hour (a retry and a manual re-run) cannot both send an alert.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from jobs.settings import Layout

SENT_FILE = "sent.jsonl"


def alerts_dir(layout: Layout) -> Path:
    """Where the alert ledger lives."""
    return layout.home / "alerts"


@contextlib.contextmanager
def sent_lock(layout: Layout) -> Iterator[None]:
    """Hold the alert ledger's exclusive lock."""
    folder = alerts_dir(layout)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_sent(layout: Layout) -> set[tuple[str, str]]:
    """(channel, alert key) pairs already delivered; a torn last line is ignored."""
    path = alerts_dir(layout) / SENT_FILE
    if not path.is_file():
        return set()
    sent = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        sent.add((record["channel"], record["key"]))
    return sent


def record_sent(layout: Layout, channel: str, keys: Iterable[str], run_id: str) -> None:
    """Append one line per key in a single write (O_APPEND), then fsync."""
    data = "".join(
        json.dumps({"channel": channel, "key": k, "run_id": run_id}, sort_keys=True) + "\n"
        for k in keys
    ).encode()
    if not data:
        return
    fd = os.open(alerts_dir(layout) / SENT_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
