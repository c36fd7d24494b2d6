"""The evidence store: write-once, content-addressed by SHA-256.

Layout under ``<home>``: ``evidence/<aa>/<sha256>``, the file's bytes, read-only (0444).
A file is copied into ``evidence/.incoming`` first, hashed, fsynced and then hard-linked
under its hash, so a name in the store always holds complete bytes and is never overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from jobs.settings import Layout

CHUNK = 1 << 20
READ_ONLY = 0o444
INCOMING = ".incoming"  # copies in progress, under evidence/: not evidence yet


class Readable(Protocol):
    """A binary stream, as a local file or a remote (sftp) file handle gives it."""

    def read(self, size: int, /) -> bytes:
        """Up to ``size`` bytes; empty at the end."""
        ...


@dataclass(frozen=True)
class Stored:
    """One stream as the store holds it.

    Attributes:
        sha256: the content hash, also its name in the store.
        size: bytes stored.
        is_new: False when the store already held these bytes.
        dropped_partial_bytes: bytes of a trailing partial line left out.
    """

    sha256: str
    size: int
    is_new: bool
    dropped_partial_bytes: int


def evidence_path(layout: Layout, sha256: str) -> Path:
    """Where the store keeps the file whose content hash is ``sha256``."""
    return layout.evidence / sha256[:2] / sha256


def hash_file(path: Path) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def store_stream(
    layout: Layout, src: Readable, limit: int | None, complete_lines_only: bool
) -> Stored:
    """Copy a readable binary stream into the store; content-addressed, read-only, atomic.

    Args:
        layout: the kaudit home.
        src: the stream to copy.
        limit: caps the bytes read (the size seen when listing a growing file).
        complete_lines_only: keep bytes up to the last newline (the active file).

    Returns:
        What was stored.
    """
    incoming = layout.evidence / INCOMING
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = incoming / f"{os.getpid()}-{id(src)}-{os.urandom(4).hex()}"
    try:
        copied = _copy(src, tmp, limit)
        dropped = _truncate_to_last_newline(tmp) if complete_lines_only and not _is_gzip(tmp) else 0
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


def _copy(src: Readable, dest: Path, limit: int | None) -> int:
    copied = 0
    with open(dest, "wb") as out:
        remaining = limit
        while remaining is None or remaining > 0:
            chunk = src.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not chunk:
                break
            out.write(chunk)
            copied += len(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return copied


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
