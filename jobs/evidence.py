"""The evidence store: write-once, content-addressed by SHA-256, plus the custody ledger.

Layout under ``<home>``::

    evidence/<aa>/<sha256>       the file's bytes, read-only (0444)
    custody/records.jsonl        one JSON record per line, hash-chained

Each custody record carries ``prev`` (the previous record's ``record_sha256``) and its own
``record_sha256`` over its canonical JSON, so an edited or deleted record breaks the chain
(``verify_custody``). Appends take an exclusive ``flock`` on the ledger, so collections of
different masters, in threads or in separate processes (Airflow mapped tasks), cannot
interleave or corrupt records.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.settings import Layout

GENESIS = "0" * 64
CHUNK = 1 << 20
READ_ONLY = 0o444


def evidence_path(layout: Layout, sha256: str) -> Path:
    return layout.evidence / sha256[:2] / sha256


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield fh
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _last_record_hash(fh: Any) -> str:
    for rec in reversed(_records(fh)):
        return str(rec["record_sha256"])
    return GENESIS


def append_custody(
    layout: Layout, records: list[dict[str, Any]],
    skip_if_known: Callable[[dict[str, Any]], Any] | None = None,
) -> list[dict[str, Any]]:
    """Append records to the custody ledger under an exclusive lock; returns those written.

    ``skip_if_known(record)`` gives a key; "collected" records whose key the ledger already
    holds are not written again (two collections of one master racing).
    """
    out = []
    with _locked(layout.custody) as fh:
        _repair_torn_tail(fh)
        prev = _last_record_hash(fh)
        if skip_if_known is not None:
            held = {skip_if_known(r) for r in _records(fh) if r.get("record_type") == "collected"}
            records = [r for r in records
                       if r.get("record_type") != "collected" or skip_if_known(r) not in held]
        fh.seek(0, os.SEEK_END)
        for rec in records:
            body = {k: v for k, v in rec.items() if k not in ("prev", "record_sha256")}
            body["prev"] = prev
            body["record_sha256"] = hashlib.sha256(_canonical(body)).hexdigest()
            fh.write(_canonical(body) + b"\n")
            prev = body["record_sha256"]
            out.append(body)
        fh.flush()
        os.fsync(fh.fileno())
    return out


def _records(fh: Any) -> list[dict[str, Any]]:
    """Complete records; a final line without its newline was never acknowledged."""
    fh.seek(0)
    records = []
    for line in fh.read().split(b"\n")[:-1]:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn line that a later append ended; verify_custody reports it
    return records


def _repair_torn_tail(fh: Any) -> None:
    """A crash mid-append leaves a final line without newline: end it, so that the next
    record starts on a line of its own (verify reports the torn line)."""
    fh.seek(0, os.SEEK_END)
    if fh.tell() == 0:
        return
    fh.seek(-1, os.SEEK_END)
    if fh.read(1) != b"\n":
        fh.seek(0, os.SEEK_END)
        fh.write(b"\n")


def read_custody(layout: Layout) -> list[dict[str, Any]]:
    """Every complete custody record, in order."""
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
    for i, rec in enumerate(read_custody(layout), start=1):
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


def hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Stored:
    sha256: str
    size: int
    is_new: bool
    dropped_partial_bytes: int


def store_stream(layout: Layout, src: Any, limit: int | None, complete_lines_only: bool) -> Stored:
    """Copy a readable binary stream into the store; content-addressed, read-only, atomic.

    ``limit`` caps the bytes read (the size seen when listing a growing file).
    ``complete_lines_only`` keeps bytes up to the last newline (the active file).
    """
    incoming = layout.evidence / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = incoming / f"{os.getpid()}-{id(src)}-{os.urandom(4).hex()}"
    copied = 0
    try:
        with open(tmp, "wb") as out:
            remaining = limit
            while remaining is None or remaining > 0:
                chunk = src.read(CHUNK if remaining is None else min(CHUNK, remaining))
                if not chunk:
                    break
                out.write(chunk)
                copied += len(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
        dropped = (_truncate_to_last_newline(tmp)
                   if complete_lines_only and not _is_gzip(tmp) else 0)
        sha = hash_file(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())  # the bytes are on disk before custody names them
        final = evidence_path(layout, sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, READ_ONLY)
        try:
            os.link(tmp, final)
            is_new = True
            _fsync_dir(final.parent)
        except FileExistsError:
            is_new = False
        return Stored(sha, copied - dropped, is_new, dropped)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _truncate_to_last_newline(path: Path) -> int:
    """Cut a trailing partial line; returns the number of bytes dropped."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "r+b") as fh:
        pos = size
        while pos > 0:
            start = max(0, pos - CHUNK)
            fh.seek(start)
            block = fh.read(pos - start)
            idx = block.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                fh.truncate(keep)
                return size - keep
            pos = start
        fh.truncate(0)
        return size
