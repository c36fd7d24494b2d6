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
from typing import Any

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
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any], run_id: str) -> LedgerEntry:
        """An entry read from the run file of ``run_id``."""
        names = {f.name for f in fields(cls)} - {"run_id"}
        return cls(**{k: v for k, v in body.items() if k in names}, run_id=run_id)


def committed_runs(layout: Layout) -> set[str]:
    """Ids of the committed ingest runs."""
    return {p.stem for p in layout.ledger.glob("*.json")} if layout.ledger.is_dir() else set()


def read_ledger(layout: Layout) -> list[LedgerEntry]:
    """Every committed per-file ledger entry, in commit order."""
    if not layout.ledger.is_dir():
        return []
    runs = [json.loads(p.read_text()) for p in layout.ledger.glob("*.json")]
    runs.sort(key=lambda r: (r["committed_at"], r["run_id"]))
    return [LedgerEntry.from_json(f, r["run_id"]) for r in runs for f in r["files"]]


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
