"""``kaudit verify``: the custody chain, the evidence store and every published custody head.

Checks: the chain (no torn, broken or altered record); every recorded evidence file exists
and hashes to its name; every backup stored as a tail is the concatenation its record
names; every file in the store is named by a record; the chain holds every custody head it
can find (``custody/head.json``, each ledger commit's ``custody_head``, each
``manifest.json`` under ``reports/`` that carries one), so a chain cut at its tail or
rewritten disagrees with what was published from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from jobs.digest import sha256_file
from jobs.evidence.custody import (
    CollectedRecord,
    chain_problems,
    head_disagreement,
    head_path,
    is_head,
)
from jobs.evidence.segments import concatenation_problem
from jobs.evidence.store import INCOMING, evidence_path
from jobs.settings import Layout


@dataclass(frozen=True)
class VerifyResult:
    """What ``verify`` checked and found.

    Attributes:
        problems: one line per problem, each naming the record, file or head at fault.
        records: custody records checked.
        files: evidence files recorded (each checked once).
        bytes: bytes of the files that hashed correctly.
        heads: custody heads compared with the chain.
    """

    problems: tuple[str, ...]
    records: int
    files: int
    bytes: int
    heads: int

    @property
    def ok(self) -> bool:
        """Nothing wrong."""
        return not self.problems


def _published_heads(layout: Layout) -> Iterator[tuple[Path, object]]:
    """(file, head or None when it cannot be read) for every head that should be found."""
    candidates = [head_path(layout)]
    if layout.ledger.is_dir():
        candidates += sorted(layout.ledger.glob("*.json"))
    reports = layout.home / "reports"
    if reports.is_dir():
        candidates += sorted(reports.rglob("manifest.json"))
    for path in candidates:
        if not path.is_file():
            continue
        try:
            body = json.loads(path.read_bytes())
        except (OSError, ValueError):
            yield path, None
            continue
        if path == head_path(layout):
            yield path, body
        elif isinstance(body, dict) and "custody_head" in body:
            yield path, body["custody_head"]


def _head_problems(layout: Layout, records: list[dict[str, Any]]) -> tuple[list[str], int]:
    problems = []
    heads = 0
    for path, head in _published_heads(layout):
        if head is None and path != head_path(layout) and path.parent != layout.ledger:
            continue  # a report manifest that is not JSON is the report's verify to judge
        if head is None:
            problems.append(f"{path}: not readable JSON (truncated or damaged)")
            continue
        if not is_head(head):
            problems.append(f"{path}: custody head has no count or last record hash")
            continue
        heads += 1
        why = head_disagreement(records, head)
        if why is not None:
            problems.append(f"{path}: custody head disagrees with the chain: it {why}")
    return problems, heads


def _evidence_problems(layout: Layout, records: list[dict[str, Any]]) -> tuple[list[str], int, int]:
    problems = []
    recorded: set[str] = set()
    size = 0
    for i, rec in enumerate(records, start=1):
        sha = rec.get("sha256") if rec.get("record_type") == "collected" else None
        if not isinstance(sha, str) or sha in recorded:
            continue
        recorded.add(sha)
        path = evidence_path(layout, sha)
        if not path.is_file():
            problems.append(f"custody record {i}: evidence file {path} missing")
        elif sha256_file(path) != sha:
            problems.append(f"custody record {i}: evidence file {path} altered (hash differs)")
        else:
            size += path.stat().st_size
        if rec.get("file_sha256") and path.is_file():
            why = concatenation_problem(layout, cast(CollectedRecord, rec))
            if why:
                problems.append(f"custody record {i}: backup {rec.get('file_name')}: {why}")
    if layout.evidence.is_dir():
        for path in sorted(layout.evidence.rglob("*")):
            if INCOMING in path.relative_to(layout.evidence).parts or path.is_dir():
                continue
            if path.name not in recorded or path != evidence_path(layout, path.name):
                problems.append(f"evidence file {path}: no custody record names it")
    return problems, len(recorded), size


def verify_home(layout: Layout) -> VerifyResult:
    """Verify the custody chain, the evidence store and the custody heads of an existing home."""
    records, problems = chain_problems(layout)
    evidence, files, size = _evidence_problems(layout, records)
    heads, n_heads = _head_problems(layout, records)
    return VerifyResult(tuple(problems + evidence + heads), len(records), files, size, n_heads)
