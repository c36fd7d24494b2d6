"""The custody log: one JSON record per line in ``custody/records.jsonl``, hash-chained.

Each record carries ``prev`` (the previous record's ``record_sha256``) and its own
``record_sha256`` over its canonical JSON, so an edited or deleted record breaks the chain
(:func:`verify_custody`). Appends take an exclusive ``flock`` on the log, so collections of
different masters, in threads or in separate processes (Airflow mapped tasks), cannot
interleave or corrupt records.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Literal, NotRequired, TypedDict, cast

from jobs.evidence.store import evidence_path, hash_file
from jobs.settings import Layout

GENESIS = "0" * 64
_SEAL = ("prev", "record_sha256")


class _Record(TypedDict):
    cluster: str
    master: str
    source_uri: str
    prev: NotRequired[str]  # set when the record is appended
    record_sha256: NotRequired[str]  # set when the record is appended


class CollectedRecord(_Record):
    """A file copied into the store (``record_type`` "collected")."""

    record_type: Literal["collected"]
    file_name: str
    size: int  # bytes stored
    source_size: int  # bytes listed on the master
    mtime_ns: int
    mtime: str
    sha256: str
    collected_at: str
    active: bool
    rotated_at: str | None
    dropped_partial_bytes: int
    new_content: bool


class CollectionFailureRecord(_Record):
    """A master whose files could not be listed."""

    record_type: Literal["collection_failure"]
    error: str
    at: str


class FileUnreadableRecord(_Record):
    """A listed file that could not be opened (or was replaced meanwhile)."""

    record_type: Literal["file_unreadable"]
    file_name: str
    error: str
    at: str


CustodyRecord = CollectedRecord | CollectionFailureRecord | FileUnreadableRecord
"""One line of the custody log; ``record_type`` tells which."""


def collected(records: Sequence[CustodyRecord]) -> list[CollectedRecord]:
    """The "collected" records among ``records``, in order."""
    return [r for r in records if r["record_type"] == "collected"]


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _seal(record: CustodyRecord, prev: str) -> CustodyRecord:
    body: dict[str, Any] = {k: v for k, v in record.items() if k not in _SEAL}
    body["prev"] = prev
    body["record_sha256"] = hashlib.sha256(_canonical(body)).hexdigest()
    return cast(CustodyRecord, body)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[IO[bytes]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def append_custody(
    layout: Layout,
    records: Sequence[CustodyRecord],
    skip_if_known: Callable[[CollectedRecord], Hashable] | None = None,
) -> list[CustodyRecord]:
    """Append records to the custody log under an exclusive lock.

    Args:
        layout: the kaudit home.
        records: records without ``prev``/``record_sha256`` (they are set here).
        skip_if_known: gives a "collected" record's key; records whose key the log already
            holds are not written again (two collections of one master racing).

    Returns:
        The records written, sealed.
    """
    out: list[CustodyRecord] = []
    with _locked(layout.custody) as fh:
        _repair_torn_tail(fh)
        held = _records(fh)
        prev = held[-1]["record_sha256"] if held else GENESIS
        if skip_if_known is not None:
            keys = {skip_if_known(r) for r in collected(held)}
            records = [
                r
                for r in records
                if r["record_type"] != "collected" or skip_if_known(r) not in keys
            ]
        fh.seek(0, os.SEEK_END)
        for rec in records:
            sealed = _seal(rec, prev)
            fh.write(_canonical(cast(dict[str, Any], sealed)) + b"\n")
            prev = sealed["record_sha256"]
            out.append(sealed)
        fh.flush()
        os.fsync(fh.fileno())
    return out


def _records(fh: IO[bytes]) -> list[CustodyRecord]:
    """Complete records; a final line without its newline was never acknowledged."""
    fh.seek(0)
    records = []
    for line in fh.read().split(b"\n")[:-1]:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn line that a later append ended; verify_custody reports it
    return records


def _repair_torn_tail(fh: IO[bytes]) -> None:
    """End a final line left without newline by a crash mid-append.

    The next record then starts on a line of its own (verify reports the torn line).
    """
    fh.seek(0, os.SEEK_END)
    if fh.tell() == 0:
        return
    fh.seek(-1, os.SEEK_END)
    if fh.read(1) != b"\n":
        fh.seek(0, os.SEEK_END)
        fh.write(b"\n")


def _read_lines(layout: Layout) -> list[dict[str, Any]]:
    if not layout.custody.exists():
        return []
    records = []
    with open(layout.custody, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                break  # torn final write
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn line that a later append ended; verify_custody reports it
    return records


def read_custody(layout: Layout) -> list[CustodyRecord]:
    """Every complete custody record, in order."""
    return cast(list[CustodyRecord], _read_lines(layout))


def verify_custody(layout: Layout) -> list[str]:
    """Problems in the custody chain and the store; empty when everything verifies."""
    problems = []
    checked: set[str] = set()
    prev = GENESIS
    if layout.custody.exists():
        with open(layout.custody, "rb") as fh:
            for n, line in enumerate(fh, start=1):
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    problems.append(f"custody line {n}: torn record (a crash during an append)")
    # raw dicts: the hash covers exactly what is on disk, whatever its fields
    for i, rec in enumerate(_read_lines(layout), start=1):
        body = {k: v for k, v in rec.items() if k != "record_sha256"}
        if rec.get("prev") != prev:
            problems.append(f"custody record {i}: chain broken (prev does not match)")
        if hashlib.sha256(_canonical(body)).hexdigest() != rec.get("record_sha256"):
            problems.append(f"custody record {i}: record altered (hash mismatch)")
        prev = rec.get("record_sha256", "")
        if rec.get("record_type") == "collected" and rec["sha256"] not in checked:
            checked.add(rec["sha256"])
            path = evidence_path(layout, rec["sha256"])
            if not path.exists():
                problems.append(f"custody record {i}: evidence {rec['sha256']} missing")
            elif hash_file(path) != rec["sha256"]:
                problems.append(f"custody record {i}: evidence {rec['sha256']} altered")
    return problems
