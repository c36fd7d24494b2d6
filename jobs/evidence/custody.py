"""The custody log: one JSON record per line in ``custody/records.jsonl``, hash-chained.

Each record carries ``prev`` (the previous record's ``record_sha256``) and its own
``record_sha256`` over its canonical JSON, so an edited or deleted record breaks the chain
(:func:`verify_custody`). Appends take an exclusive ``flock`` on the log, so collections of
different masters, in threads or in separate processes (Airflow mapped tasks), cannot
interleave or corrupt records.

Each append also rewrites the head, ``custody/head.json`` (record count, last record hash,
time), atomically under the same lock. The head is copied into every ledger commit and every
report manifest, so a chain cut at its tail (or rewritten) disagrees with what was published
from it. File names are stored losslessly (:mod:`jobs.evidence.names`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, NotRequired, TypedDict, TypeGuard, TypeVar, cast

from jobs.evidence.names import name_fields
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
    file_name: str  # display form, valid UTF-8 (jobs.evidence.names)
    file_name_b64: NotRequired[str]  # the raw name, when it is not valid UTF-8
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
    # a segment of a file collected incrementally (jobs.evidence.segments): bytes
    # [offset, offset + size) of the file, lines line_offset + 1.., after prev_segment
    inode: NotRequired[int]  # 0 when the source cannot tell
    chain: NotRequired[str]
    offset: NotRequired[int]
    line_offset: NotRequired[int]
    lines: NotRequired[int]
    prev_segment: NotRequired[str | None]
    # a rotated backup whose head was held as segments: only its tail is stored; the
    # backup's bytes are the concatenation of ``segments`` then this record's bytes
    file_sha256: NotRequired[str]
    file_size: NotRequired[int]
    segments: NotRequired[list[str]]
    uncompressed_sha256: NotRequired[str | None]  # a gzip file's content, when it inflates


class CollectionFailureRecord(_Record):
    """A master whose files could not be listed."""

    record_type: Literal["collection_failure"]
    error: str
    at: str


class FileUnreadableRecord(_Record):
    """A listed file that could not be opened (or was replaced meanwhile)."""

    record_type: Literal["file_unreadable"]
    file_name: str
    file_name_b64: NotRequired[str]
    error: str
    at: str


class FileSkippedRecord(_Record):
    """A listed file collect refused to take (symlink, not a regular file, unsafe name)."""

    record_type: Literal["file_skipped"]
    file_name: str
    file_name_b64: NotRequired[str]
    reason: str
    at: str


class EvidenceAlteredRecord(_Record):
    """An evidence file whose bytes no longer hash to its name: ingest refused it."""

    record_type: Literal["evidence_altered"]
    file_name: str
    file_name_b64: NotRequired[str]
    path: str
    expected_sha256: str
    actual_sha256: str
    at: str


class ChainRestartedRecord(_Record):
    """A file collected incrementally no longer starts with the bytes held: a new chain starts.

    (Rotated, truncated or replaced; the old chain stays open for its backup to close it.)
    """

    record_type: Literal["chain_restarted"]
    file_name: str
    file_name_b64: NotRequired[str]
    chain: str
    held_bytes: int
    reason: str
    at: str


class CompressedTwinRecord(_Record):
    """A gzip file whose content custody already holds uncompressed: linked, not stored again."""

    record_type: Literal["compressed_twin"]
    file_name: str
    file_name_b64: NotRequired[str]
    sha256: str  # the gzip bytes as transferred
    source_size: int
    mtime_ns: int
    uncompressed_sha256: str
    twin_file: str
    twin_sha256: str  # the held record (whole file or the segment that closed its chain)
    at: str


CustodyRecord = (
    CollectedRecord
    | CollectionFailureRecord
    | FileUnreadableRecord
    | FileSkippedRecord
    | EvidenceAlteredRecord
    | ChainRestartedRecord
    | CompressedTwinRecord
)
"""One line of the custody log; ``record_type`` tells which."""


NamedRecord = TypeVar(
    "NamedRecord",
    CollectedRecord,
    FileUnreadableRecord,
    FileSkippedRecord,
    EvidenceAlteredRecord,
    ChainRestartedRecord,
    CompressedTwinRecord,
)


def named(record: NamedRecord, name: str) -> NamedRecord:
    """``record`` with ``file_name``/``file_name_b64`` set losslessly from ``name`` as os lists it.

    Records are built with the os name and pass through here before they are written: a
    lone surrogate never reaches the log.
    """
    fields = name_fields(name)
    record["file_name"] = fields["file_name"]
    if "file_name_b64" in fields:
        record["file_name_b64"] = fields["file_name_b64"]
    return record


class CustodyHead(TypedDict):
    """What the chain held at its last append: ``custody/head.json``."""

    count: int
    last_record_sha256: str
    updated_at: str


def now() -> str:
    """The current UTC time as custody records write it."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


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
        # a head the chain no longer holds (or a damaged one) is kept as it is: advancing it
        # would hide the cut; verify names it
        try:
            published = read_head(layout)
            keep_head = published is not None and head_disagreement(held, published) is not None
        except ValueError:
            published, keep_head = None, True
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
        if not keep_head and (out or published is None) and held + out:
            _write_head(layout, len(held) + len(out), prev)
    return out


def head_path(layout: Layout) -> Path:
    """``<home>/custody/head.json``, beside the log."""
    return layout.custody.parent / "head.json"


def read_head(layout: Layout) -> CustodyHead | None:
    """The custody head (copy it into whatever is published from the chain); None if none yet.

    Raises:
        ValueError: the head file is not a head (damaged); verify reports it too.
    """
    path = head_path(layout)
    try:
        body = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable custody head ({exc})") from exc
    if not is_head(body):
        raise ValueError(f"{path}: not a custody head")
    return cast(CustodyHead, body)


def is_head(body: object) -> TypeGuard[Mapping[str, Any]]:
    """True for a dict shaped like a :class:`CustodyHead`."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("count"), int)
        and isinstance(body.get("last_record_sha256"), str)
    )


def head_disagreement(records: Sequence[Mapping[str, Any]], head: Mapping[str, Any]) -> str | None:
    """Why a chain does not hold a head (truncated or rewritten), or None when it does.

    A chain longer than the head agrees: records appended since are not covered by it.
    """
    count, last = head["count"], head["last_record_sha256"]
    if count > len(records):
        return f"names {count} custody records, the chain has {len(records)} (truncated chain)"
    if count > 0 and records[count - 1].get("record_sha256") != last:
        return (
            f"names record {count} as {last}, the chain has "
            f"{records[count - 1].get('record_sha256')} (rewritten chain)"
        )
    return None


def _write_head(layout: Layout, count: int, last: str) -> None:
    """Temp file, fsync, rename, fsync the directory: a head is whole or the previous one."""
    path = head_path(layout)
    tmp = path.with_name(f".head.{os.getpid()}.tmp")
    body: CustodyHead = {"count": count, "last_record_sha256": last, "updated_at": now()}
    with open(tmp, "wb") as fh:
        fh.write(json.dumps(body, sort_keys=True).encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def chain_problems(layout: Layout) -> tuple[list[dict[str, Any]], list[str]]:
    """The complete records as on disk, and the problems of the chain (torn, broken, altered)."""
    problems = []
    prev = GENESIS
    if layout.custody.exists():
        with open(layout.custody, "rb") as fh:
            for n, line in enumerate(fh, start=1):
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    problems.append(f"custody line {n}: torn record (a crash during an append)")
    # raw dicts: the hash covers exactly what is on disk, whatever its fields
    records = _read_lines(layout)
    for i, rec in enumerate(records, start=1):
        body = {k: v for k, v in rec.items() if k != "record_sha256"}
        if rec.get("prev") != prev:
            problems.append(f"custody record {i}: chain broken (prev does not match)")
        if hashlib.sha256(_canonical(body)).hexdigest() != rec.get("record_sha256"):
            problems.append(f"custody record {i}: record altered (hash mismatch)")
        prev = rec.get("record_sha256", "")
    return records, problems
