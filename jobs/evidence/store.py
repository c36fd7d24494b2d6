"""The evidence store: write-once, content-addressed by SHA-256.

Layout under ``<home>``: ``evidence/<aa>/<sha256>``, the file's bytes, read-only (0444).
A file is copied into ``evidence/.incoming`` first, hashed, fsynced and then hard-linked
under its hash, so a name in the store always holds complete bytes and is never overwritten.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from jobs.digest import sha256_file
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
        lines: lines stored (newlines, plus a final line without one).
    """

    sha256: str
    size: int
    is_new: bool
    dropped_partial_bytes: int
    lines: int = 0


def evidence_path(layout: Layout, sha256: str) -> Path:
    """Where the store keeps the file whose content hash is ``sha256``."""
    return layout.evidence / sha256[:2] / sha256


class TransferError(OSError):
    """A copy that did not check out (short, or its bytes changed on disk): nothing is stored."""


def store_stream(
    layout: Layout,
    src: Readable,
    limit: int | None,
    complete_lines_only: bool,
    expect_size: int | None = None,
    observe: Callable[[bytes], None] | None = None,
    before_link: Callable[[str], None] | None = None,
) -> Stored:
    """Copy a readable binary stream into the store; content-addressed, read-only, atomic.

    The bytes go to ``evidence/.incoming`` first. They are linked under their hash only when
    the copy checks out: ``expect_size`` bytes arrived (a short read is an interrupted transfer
    or a file that shrank), and the file as fsynced hashes to what streamed through. Whatever
    fails on the way, the temporary copy is removed: the store never holds a partial file.

    Args:
        layout: the kaudit home.
        src: the stream to copy.
        limit: caps the bytes read (the size seen when listing a growing file).
        complete_lines_only: keep bytes up to the last newline (the active file).
        expect_size: bytes the source must give; fewer raises :class:`TransferError`.
        observe: sees every chunk as it is copied (a second hash, a decompressor).
        before_link: called with the hash just before the bytes enter the store; whatever
            it raises leaves nothing stored (the source changed meanwhile, a twin is held).

    Returns:
        What was stored.

    Raises:
        TransferError: the copy was short or its bytes on disk differ from those streamed.
    """
    incoming = layout.evidence / INCOMING
    incoming.mkdir(parents=True, exist_ok=True)
    tmp = incoming / f"{os.getpid()}-{id(src)}-{os.urandom(4).hex()}"
    try:
        copied, streamed, newlines = _copy(src, tmp, limit, observe)
        if expect_size is not None and copied != expect_size:
            raise TransferError(f"short transfer: {copied} of {expect_size} bytes")
        cut = complete_lines_only and not _is_gzip(tmp)
        dropped = _truncate_to_last_newline(tmp) if cut else 0
        sha = sha256_file(tmp)
        if not cut and sha != streamed:
            raise TransferError("the copy on disk does not hash to the bytes transferred")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())  # the bytes are on disk before custody names them
        if before_link is not None:
            before_link(sha)
        final = evidence_path(layout, sha)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, READ_ONLY)
        try:
            os.link(tmp, final)
            is_new = True
            _fsync_dir(final.parent)
        except FileExistsError:
            is_new = False
        size = copied - dropped
        ends_open = size > 0 and dropped == 0 and not cut and _last_byte(tmp) != b"\n"
        return Stored(sha, size, is_new, dropped, newlines + (1 if ends_open else 0))
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _copy(
    src: Readable, dest: Path, limit: int | None, observe: Callable[[bytes], None] | None
) -> tuple[int, str, int]:
    """(bytes copied, their SHA-256 as streamed, newlines among them)."""
    copied = newlines = 0
    digest = hashlib.sha256()
    with open(dest, "wb") as out:
        remaining = limit
        while remaining is None or remaining > 0:
            chunk = src.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not chunk:
                break
            out.write(chunk)
            digest.update(chunk)
            newlines += chunk.count(b"\n")
            if observe is not None:
                observe(chunk)
            copied += len(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return copied, digest.hexdigest(), newlines


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


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
