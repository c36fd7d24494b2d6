"""The forms of an investigation's answer, chosen by the output file's extension.

``.csv`` (formula-safe, via ``reports.csvs``), ``.jsonl`` (one normalized event per line),
``.pdf`` (``reports.investigation``); no file: a table on the terminal.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from jobs.errors import UsageError
from jobs.investigate.main import RESULT_COLUMNS, InvestigationResult

FORMS = (".csv", ".jsonl", ".pdf")
# What the terminal shows of each event: (header, row -> text).
_TERMINAL_COLUMNS = (
    "time (UTC)", "stage", "user", "acting as", "client IP", "verb", "object", "code",
    "command", "evidence",
)  # fmt: skip


def output_form(path: Path) -> str:
    """The form ``path`` asks for (its lower-cased extension); UsageError if unknown."""
    form = path.suffix.lower()
    if form not in FORMS:
        raise UsageError(f"--out: unknown form {path.name!r}: use a .csv, .jsonl or .pdf file")
    return form


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def jsonl_bytes(result: InvestigationResult) -> bytes:
    """One JSON object per event (RESULT_COLUMNS, timestamps ISO 8601 UTC), in time order."""
    lines = [
        json.dumps(
            {c: row.get(c) for c in RESULT_COLUMNS},
            ensure_ascii=False,
            sort_keys=True,
            default=_json_value,
        )
        for row in result.rows
    ]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def csv_bytes(result: InvestigationResult) -> bytes:
    """The events as CSV, every cell neutralised against spreadsheet formulas."""
    from reports.csvs import to_csv

    return to_csv(result.rows, RESULT_COLUMNS)


def object_text(row: dict[str, Any]) -> str:
    """``resource/subresource namespace/name`` of an event (the request path if none)."""
    if not row.get("object_ref_present"):
        return str(row.get("request_uri") or "")
    kind = "/".join(p for p in (row.get("resource"), row.get("subresource")) if p)
    where = "/".join(p for p in (row.get("namespace"), row.get("object_name")) if p)
    return f"{kind} {where}".strip()


def actor_text(row: dict[str, Any]) -> str:
    """The user name, with the person behind a shared login when they differ."""
    user = row.get("user_name") or "(unauthenticated)"
    person = row.get("attributed_user")
    return f"{user} (= {person})" if person and person != user else user


def _terminal_row(row: dict[str, Any]) -> list[str]:
    ts = row["request_received_ts"]
    return [
        ts.strftime("%Y-%m-%d %H:%M:%S.%f") if ts else "",
        row.get("stage") or "",
        actor_text(row),
        row.get("impersonated_user") or "",
        row.get("client_ip") or "",
        row.get("verb") or "",
        object_text(row),
        "" if row.get("response_code") is None else str(row["response_code"]),
        row.get("exec_command") or "",
        f"{row['evidence_sha256'][:12]}:{row['line_no']} {row.get('evidence_file') or ''}",
    ]


def print_table(result: InvestigationResult, console: Console | None = None) -> None:
    """The events as a table on the terminal, or a line saying nothing matched."""
    console = console or Console(width=200)
    if not result.rows:
        console.print("no events match the query", markup=False, highlight=False)
        return
    query = ", ".join(f"{k}={v}" for k, v in result.query.describe())
    table = Table(title=f"{len(result.rows)} events: {query}", title_justify="left")
    for header in _TERMINAL_COLUMNS:
        table.add_column(header, overflow="fold")
    for row in result.rows:
        # event fields are attacker-controlled text: never interpret them as rich markup
        table.add_row(*[Text(cell) for cell in _terminal_row(row)])
    console.print(table)


def write(result: InvestigationResult, path: Path, generated_at: dt.datetime) -> Path:
    """Write ``result`` in the form ``path``'s extension names; returns the path written.

    A PDF also gets ``<name>.manifest.json`` next to it (see ``reports.investigation``).
    """
    form = output_form(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if form == ".csv":
        path.write_bytes(csv_bytes(result))
    elif form == ".jsonl":
        path.write_bytes(jsonl_bytes(result))
    else:
        from reports.investigation import render_investigation_pdf

        render_investigation_pdf(result, path, generated_at=generated_at)
    return path
