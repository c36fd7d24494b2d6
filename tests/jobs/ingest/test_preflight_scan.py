"""The preflight's whole-file facts, which let clean files skip per-line byte checks.

A fact may only be false when no line of the file can fail the check it stands for: these
tests feed the scanner chunk by chunk (patterns across chunk seams, a UTF-8 sequence cut by
a seam or by the end of the file), and compare its idea of UTF-8 with Spark's
``is_valid_utf8``, which the per-line check uses.
"""

from __future__ import annotations

import io

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, IntegerType

from jobs.frames import arrow_frame, struct_type
from jobs.ingest import preflight
from jobs.ingest.preflight import Scan, scan

CLEAN = b'{"kind":"Event","auditID":"a","requestObject":{"x":"\xc3\xa9 }x{ } x {"}}\n' * 3


def _chunks(data: bytes, size: int) -> Scan:
    out = Scan()
    for i in range(0, len(data), size):
        out.feed(data[i : i + size])
    out.close()
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1 << 20])
def test_clean_file_has_no_facts_whatever_the_chunking(size):
    data = CLEAN
    facts = _chunks(data, size)
    assert (facts.odd_bytes, facts.joined_objects) == (False, False)
    assert (facts.physical_lines, facts.size) == (3, len(data))


@pytest.mark.parametrize("size", [1, 2, 3, 5, 64])
@pytest.mark.parametrize("pattern", [b"}{", b"} {"])
def test_joined_objects_found_across_any_chunk_seam(size, pattern):
    for at in range(0, 12):
        data = b"x" * at + pattern + b"y" * 9 + b"\n"
        assert _chunks(data, size).joined_objects, (size, pattern, at)


@pytest.mark.parametrize("size", [1, 2, 3, 1 << 20])
@pytest.mark.parametrize(
    "bad",
    [
        b"\x00",  # NUL
        b"\xff",  # never in UTF-8
        b"\xc3",  # a sequence cut short (at the end of the file below)
        b"\xc0\xaf",  # overlong
        b"\xed\xa0\x80",  # a surrogate
        b"\xf4\x90\x80\x80",  # above U+10FFFF
        b"\xe2\n\x82\xac",  # a newline inside a sequence
    ],
)
def test_odd_bytes_found_in_any_chunking(size, bad):
    assert _chunks(b'{"a":"' + bad + b'"}\n', size).odd_bytes
    assert _chunks(b'{"a":"x"}\n' + bad, size).odd_bytes


def test_scan_reads_the_whole_file(monkeypatch):
    monkeypatch.setattr(preflight, "CHUNK", 4)
    data = CLEAN + b"last line without newline"
    facts = scan(io.BytesIO(data))
    assert (facts.physical_lines, facts.size) == (4, len(data))
    assert scan(io.BytesIO(b"")).physical_lines == 0


# the scanner must never call valid what Spark's per-line check calls invalid
SEQUENCES = [
    b"plain ascii",
    "é€𝄞 ünïcödé".encode(),
    "\ufeffbom \ufffe\uffff noncharacters".encode(),
    b"\xef\xbf\xbd",  # U+FFFD
    b"\xf4\x8f\xbf\xbf",  # U+10FFFF
    b"\xc0\x80",
    b"\xc1\xbf",
    b"\xe0\x80\xaf",
    b"\xe0\x9f\xbf",
    b"\xed\xa0\x80",
    b"\xed\xbf\xbf",
    b"\xf0\x8f\xbf\xbf",
    b"\xf4\x90\x80\x80",
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xfe",
    b"\x80",
    b"\xc3",
    b"\xe2\x82",
    b"a\xc3(b",
]


def test_scanner_agrees_with_sparks_utf8_check(spark):
    rows = arrow_frame(
        spark, list(enumerate(SEQUENCES)), struct_type(i=IntegerType(), b=BinaryType())
    )
    spark_says = {
        r["i"]: r["ok"]
        for r in rows.select("i", F.is_valid_utf8(F.col("b").cast("string")).alias("ok")).collect()
    }
    for i, seq in enumerate(SEQUENCES):
        assert (not _chunks(seq + b"\n", 1 << 20).odd_bytes) == spark_says[i], seq
