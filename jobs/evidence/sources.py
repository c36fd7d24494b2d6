"""Where a master's audit files are listed and read: file:// here, sftp:// in sources_sftp.

A source lists entries (name, size, mtime, inode) and opens them. Symlinks, directories and
devices are listed as not regular and never opened; a name with a path separator is refused;
a file replaced between listing and opening (a rotation) is refused.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from jobs.settings import MasterConfig


@dataclass(frozen=True)
class Entry:
    """One directory entry of a master, as listed.

    Attributes:
        name: the file name (no directory).
        size: bytes at listing time.
        mtime_ns: modification time, nanoseconds since the epoch.
        regular: a regular file, not a symlink/dir/device.
        inode: 0 when the source cannot tell (checked against the opened file).
    """

    name: str
    size: int
    mtime_ns: int
    regular: bool
    inode: int = 0


def unsafe_name(name: str) -> str | None:
    """Why a (remote, untrusted) name may not be used in a path, or None for a plain name."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        return "unsafe name (path separator or dot entry)"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "unsafe name (control characters)"
    return None


class Source(Protocol):
    """A master's log directory."""

    uri: str

    def list(self) -> list[Entry]:
        """Every entry of the directory."""
        ...

    def open(self, entry: Entry) -> BinaryIO:
        """The listed file, opened for reading; raises OSError or ValueError."""
        ...

    def stat(self, name: str) -> Entry | None:
        """The entry now under ``name`` (not following symlinks); None when it is gone."""
        ...

    def close(self) -> None:
        """Release the directory (and any connection)."""
        ...


class LocalSource:
    """A file:// directory on this machine."""

    def __init__(self, directory: Path, uri: str) -> None:
        self.directory = directory
        self.uri = uri
        self._dir_fd: int | None = None

    def list(self) -> list[Entry]:
        """Every entry, stat'ed without following symlinks."""
        self._dir_fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        entries = []
        with os.scandir(self._dir_fd) as it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:  # rotated away between readdir and stat
                    continue
                entries.append(
                    Entry(e.name, st.st_size, st.st_mtime_ns, stat.S_ISREG(st.st_mode), st.st_ino)
                )
        return entries

    def open(self, entry: Entry) -> BinaryIO:
        """Open a listed file relative to the listed directory, never through a symlink."""
        name = entry.name
        if "/" in name or name in (".", ".."):
            raise ValueError(f"refusing file name {name!r}")
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=self._dir_fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or (entry.inode and st.st_ino != entry.inode):
            os.close(fd)
            raise ValueError(f"{name!r} was replaced between listing and opening")
        return os.fdopen(fd, "rb")

    def stat(self, name: str) -> Entry | None:
        """The entry now under ``name``, not following symlinks; None when it is gone."""
        try:
            st = os.stat(name, dir_fd=self._dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        return Entry(name, st.st_size, st.st_mtime_ns, stat.S_ISREG(st.st_mode), st.st_ino)

    def close(self) -> None:
        """Close the directory descriptor taken by :meth:`list`."""
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None


def open_source(master: MasterConfig) -> Source:
    """The source of a master's files (an sftp source connects here).

    Raises:
        OSError: the master cannot be reached (sftp: after the configured retries).
        NotImplementedError: a scheme not built.
    """
    if master.scheme == "file":
        return LocalSource(master.local_path, master.source)
    if master.scheme == "sftp":
        from jobs.evidence.sources_sftp import SftpSource

        return SftpSource.connect(master)
    raise NotImplementedError(
        f"master {master.name}: {master.scheme}:// collection is not built yet"
    )
