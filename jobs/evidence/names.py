r"""File names stored losslessly: a display form that strict JSON readers accept, and the raw bytes.

A master's file name is bytes; Python lists it as ``str`` with undecodable bytes as lone
surrogates (``os.fsdecode``), which strict JSON readers refuse. Records store ``file_name``
as valid UTF-8 with undecodable bytes shown as ``\xNN``, and ``file_name_b64`` (the raw bytes,
base64) when the name is not valid UTF-8. Records written before this carry only
``file_name`` (possibly with lone surrogates): :func:`os_name` still reads them.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict


class NameFields(TypedDict):
    """How a record stores a file name."""

    file_name: str
    file_name_b64: NotRequired[str]


def display_name(raw: bytes) -> str:
    r"""Valid UTF-8 text for a raw name: undecodable bytes become ``\xNN``."""
    return raw.decode("utf-8", errors="backslashreplace")


def name_fields(name: str) -> NameFields:
    """The record fields for a name as ``os`` lists it (lone surrogates for undecodable bytes)."""
    raw = os.fsencode(name)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"file_name": display_name(raw), "file_name_b64": base64.b64encode(raw).decode()}
    return {"file_name": display_name(raw)}


def raw_name(record: Mapping[str, Any]) -> bytes:
    """The name's raw bytes, from a record of any age."""
    b64 = record.get("file_name_b64")
    if b64:
        try:
            return base64.b64decode(b64, validate=True)
        except (binascii.Error, ValueError):
            pass  # a damaged field: the display form is the best left; verify reports the record
    name = str(record["file_name"])
    try:
        return os.fsencode(name)
    except UnicodeEncodeError:  # a surrogate that fsdecode never makes: keep it, not crash
        return name.encode("utf-8", errors="surrogatepass")


def os_name(record: Mapping[str, Any]) -> str:
    """The name as ``os`` lists it (what a source's entries carry), from a record of any age."""
    return os.fsdecode(raw_name(record))
