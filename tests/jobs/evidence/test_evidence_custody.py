"""The custody log's JSON: canonical, one record a line, chained by record hashes."""

from __future__ import annotations

import hashlib
import json

from jobs.evidence.custody import GENESIS, append_custody, head_path, read_custody
from jobs.evidence.verify import verify_home
from jobs.settings import Layout


def _failure(master):
    return {
        "record_type": "collection_failure",
        "cluster": "c1",
        "master": master,
        "source_uri": f"file:///nowhere/{master}",
        "error": "FileNotFoundError: gone",
        "at": "2026-11-18T00:00:00.000000+00:00",
    }


def test_records_are_canonical_json_chained_by_hash(tmp_path):
    layout = Layout(tmp_path / "home")
    written = append_custody(layout, [_failure("m1"), _failure("m2")])
    lines = layout.custody.read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3
    prev = GENESIS
    for line, rec, master in zip(lines[:2], written, ("m1", "m2"), strict=True):
        body = _failure(master) | {"prev": prev}
        digest = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest()
        assert (
            line
            == json.dumps(
                body | {"record_sha256": digest}, sort_keys=True, separators=(",", ":")
            ).encode()
        )
        assert rec == body | {"record_sha256": digest}
        prev = digest
    assert read_custody(layout) == written
    assert verify_home(layout).problems == ()


def test_a_deleted_record_breaks_the_chain(tmp_path):
    layout = Layout(tmp_path / "home")
    append_custody(layout, [_failure("m1"), _failure("m2"), _failure("m3")])
    lines = layout.custody.read_text().splitlines(keepends=True)
    layout.custody.write_text(lines[0] + lines[2])
    assert verify_home(layout).problems == (
        "custody record 2: chain broken (prev does not match)",
        f"{head_path(layout)}: custody head disagrees with the chain: it names 3 custody "
        "records, the chain has 2 (truncated chain)",
    )
