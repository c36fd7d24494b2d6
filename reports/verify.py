"""Check a report PDF against its embedded manifest, its outer manifest and the evidence store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from jobs.digest import sha256_file

MANIFEST = "manifest.json"


def read_attachments(pdf: Path) -> dict[str, bytes]:
    """The files embedded in ``pdf`` (name -> bytes)."""
    reader = PdfReader(pdf)
    return {name: contents[0] for name, contents in reader.attachments.items() if contents}


def verify_report(pdf: Path, home: Path | None = None) -> list[str]:
    """Problems found, first mismatch first; an empty list means everything matches.

    Checks: the embedded manifest.json exists and every attachment's SHA-256 matches it; the
    ``manifest.json`` next to the PDF (when present) names this PDF's SHA-256 and agrees with
    the embedded one; with ``home``, every evidence file in the store re-hashes to its name.
    """
    problems: list[str] = []
    try:
        files = read_attachments(pdf)
    except Exception as exc:  # a damaged PDF is a finding, not a crash
        return [f"{pdf}: cannot read the PDF's attachments: {exc}"]
    if MANIFEST not in files:
        return [f"{pdf}: no embedded {MANIFEST}"]
    manifest: dict[str, Any] = json.loads(files[MANIFEST])
    listed: dict[str, str] = manifest.get("attachments") or {}
    for name, expected in sorted(listed.items()):
        if name not in files:
            problems.append(f"attachment {name}: listed in the manifest but missing")
        elif hashlib.sha256(files[name]).hexdigest() != expected:
            problems.append(f"attachment {name}: sha256 differs from the manifest")
    for name in sorted(set(files) - set(listed) - {MANIFEST}):
        problems.append(f"attachment {name}: not listed in the manifest")
    outer_path = pdf.with_name(MANIFEST)
    if outer_path.is_file():
        outer = json.loads(outer_path.read_text(encoding="utf-8"))
        actual = sha256_file(pdf)
        expected_pdf = (outer.get("pdf") or {}).get("sha256")
        if expected_pdf != actual:
            problems.append(
                f"{pdf.name}: sha256 {actual} differs from {outer_path} ({expected_pdf})"
            )
        if {k: v for k, v in outer.items() if k != "pdf"} != manifest:
            problems.append(f"{outer_path}: differs from the manifest embedded in the PDF")
    if home is not None:
        for entry in manifest.get("evidence") or []:
            sha = str(entry.get("evidence_sha256") or "")
            stored = home / "evidence" / sha[:2] / sha
            if not stored.is_file():
                problems.append(f"evidence {entry.get('file')}: {stored} missing from the store")
            elif sha256_file(stored) != sha:
                problems.append(f"evidence {entry.get('file')}: stored file does not hash to {sha}")
    return problems
