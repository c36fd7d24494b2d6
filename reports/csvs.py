"""CSV attachments that a spreadsheet opens as text, never as formulas."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, cast

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset("".join(_FORMULA_START))


def neutralise(value: Any) -> str:
    """``value`` as CSV cell text; a cell a spreadsheet would run as a formula gets a ``'``."""
    kind = type(value)
    if kind is str:  # most cells: the same answer as below, without the chain of checks
        plain = cast(str, value)
        return "'" + plain if plain[:1] in _FORMULA_FIRST else plain
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # numbers come from the pipeline, not from an event field
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, datetime | date):
        text = value.isoformat()
    elif isinstance(value, list | dict | tuple):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> bytes:
    """UTF-8 CSV (with BOM, so spreadsheets read Chinese right) of ``columns`` of ``rows``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([neutralise(row.get(c)) for c in columns])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
