"""The ingest ledger: ``lake/_ledger/<run_id>.json``, one file per committed run.

A run file is the commit point of an ingest run: lake files named ``run-<id>-...`` count only
once ``<id>.json`` exists. It holds ``run_id``, ``committed_at``, ``files``: one
:class:`LedgerEntry` per evidence file, whose lines add up to the four buckets, and
``custody_head``: the custody head at commit (``kaudit verify`` checks the chain against it;
absent in runs committed before heads existed).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobs.errors import DataError
from jobs.settings import Layout


@dataclass(frozen=True)
class LedgerEntry:
    r"""What one ingest run made of one evidence file.

    Attributes:
        evidence_sha256: the evidence file.
        cluster: its cluster.
        master: its master.
        file: its name on the master.
        compressed: gzip on the master.
        damage: the gzip damage found, or None.
        first_event: earliest event time (ISO, UTC), or None without events.
        last_event: latest event time (ISO, UTC), or None without events.
        lines: physical lines (plus one for gzip damage).
        events: lines that became events.
        duplicates: lines repeating an event already held.
        quarantined: lines refused, with a reason.
        blank: empty or whitespace-only lines.
        run_id: the ingest run; not stored in the entry (its file names it).
        file_b64: the raw name (base64) when it is not valid UTF-8 (``file`` then shows
            undecodable bytes as ``\xNN``); stored only then.
        line_offset: for a segment of a file collected incrementally, the file's lines
            before it: its lines are ``line_offset + 1 .. line_offset + lines`` of ``file``
            (the lake's ``line_no`` is the line in the file); stored only when not 0.
    """

    evidence_sha256: str
    cluster: str
    master: str
    file: str
    compressed: bool
    damage: str | None
    first_event: str | None
    last_event: str | None
    lines: int
    events: int
    duplicates: int
    quarantined: int
    blank: int
    run_id: str
    file_b64: str | None = None
    line_offset: int = 0

    @property
    def adds_up(self) -> bool:
        """Every line is in exactly one bucket."""
        return self.lines == self.events + self.duplicates + self.quarantined + self.blank

    def to_json(self) -> dict[str, Any]:
        """The entry as its run file stores it (without ``run_id``)."""
        body = asdict(self)
        del body["run_id"]
        if body["file_b64"] is None:
            del body["file_b64"]  # the entry's JSON is as before for names in UTF-8
        if not body["line_offset"]:
            del body["line_offset"]
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any], run_id: str) -> LedgerEntry:
        """An entry read from the run file of ``run_id``."""
        names = {f.name for f in fields(cls)} - {"run_id"}
        return cls(**{k: v for k, v in body.items() if k in names}, run_id=run_id)


def committed_runs(layout: Layout) -> set[str]:
    """Ids of the committed ingest runs."""
    return {p.stem for p in layout.ledger.glob("*.json")} if layout.ledger.is_dir() else set()


def _read_run_file(path: Path) -> tuple[str, str, list[LedgerEntry]]:
    """(committed_at, run_id, entries) of one run file.

    Raises:
        DataError: naming the file, when it is unreadable, truncated or not a run file.
    """
    try:
        body = json.loads(path.read_bytes())
    except OSError as exc:
        raise DataError(f"{path}: cannot read ledger run file: {exc.strerror or exc}") from exc
    except ValueError as exc:  # truncated, not JSON, not UTF-8
        raise DataError(
            f"{path}: ledger run file is damaged (not complete JSON: {exc}); restore it from backup"
        ) from exc
    try:
        run_id, committed_at = str(body["run_id"]), str(body["committed_at"])
        entries = [LedgerEntry.from_json(f, run_id) for f in body["files"]]
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"{path}: ledger run file is damaged (missing or bad field: {exc})"
        ) from exc
    return committed_at, run_id, entries


def read_ledger(layout: Layout) -> list[LedgerEntry]:
    """Every committed per-file ledger entry, in commit order.

    Raises:
        DataError: naming the run file, when one is unreadable, truncated or malformed.
    """
    if not layout.ledger.is_dir():
        return []
    runs = sorted((_read_run_file(p) for p in layout.ledger.glob("*.json")), key=lambda r: r[:2])
    return [entry for _, _, entries in runs for entry in entries]


def ingested_evidence(layout: Layout) -> set[str]:
    """Evidence files (SHA-256) that a committed run holds."""
    return {e.evidence_sha256 for e in read_ledger(layout)}


def write_run_file(
    layout: Layout,
    run_id: str,
    entries: Sequence[LedgerEntry],
    custody_head: Mapping[str, Any] | None = None,
) -> None:
    """Write ``lake/_ledger/<run_id>.json`` atomically (temp file, fsync, rename)."""
    layout.ledger.mkdir(parents=True, exist_ok=True)
    tmp = layout.ledger / f".{run_id}.tmp"
    body: dict[str, Any] = {
        "run_id": run_id,
        "committed_at": datetime.now(UTC).isoformat(),
        "files": [e.to_json() for e in entries],
    }
    if custody_head is not None:
        body["custody_head"] = dict(custody_head)
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, layout.ledger / f"{run_id}.json")
