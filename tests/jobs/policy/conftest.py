"""Fixtures for the policy tests: the ACK policy and builders for lake-shaped events."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

POLICY_HEADER = "apiVersion: audit.k8s.io/v1\nkind: Policy\n"
MAX_LINE_BYTES = 1 << 20


@pytest.fixture(scope="session")
def ack_policy():
    from jobs.policy.loader import load_default_policy

    return load_default_policy()


@pytest.fixture(scope="session")
def inline_policy() -> Callable[[str], Any]:
    """Parse a policy body (everything after apiVersion/kind) written inline in a test."""
    from jobs.policy.loader import parse_policy

    def build(body: str) -> Any:
        return parse_policy(POLICY_HEADER + body, source="<test>")

    return build


@pytest.fixture(scope="session")
def events_df(spark) -> Callable[[Sequence[dict[str, Any]]], Any]:
    """Rows given as dicts of EVENTS columns (missing keys are null) -> DataFrame[EVENTS]."""
    from jobs.schemas import EVENT_COLUMNS, EVENTS

    def build(rows: Sequence[dict[str, Any]]) -> Any:
        unknown = {key for row in rows for key in row} - set(EVENT_COLUMNS)
        assert not unknown, f"not EVENTS columns: {unknown}"
        return spark.createDataFrame([tuple(r.get(c) for c in EVENT_COLUMNS) for r in rows], EVENTS)

    return build


@pytest.fixture(scope="session")
def lines_df(spark) -> Callable[[Sequence[tuple[str, Any]]], Any]:
    """(case_id, event dict or raw line) pairs -> ingest-classified events plus case_id."""
    from pyspark.sql import functions as F

    from jobs.ingest.transforms import classify_lines

    def build(cases: Sequence[tuple[str, Any]]) -> Any:
        rows = [
            ("c", "m", "e", 0, n, ev if isinstance(ev, str) else json.dumps(ev))
            for n, (_, ev) in enumerate(cases, start=1)
        ]
        schema = (
            "cluster string, master string, evidence_sha256 string, file_order int,"
            " line_no long, value string"
        )
        case_ids = F.array(*[F.lit(cid) for cid, _ in cases])
        classified = classify_lines(spark.createDataFrame(rows, schema), MAX_LINE_BYTES)
        return classified.withColumn("case_id", F.get(case_ids, (F.col("line_no") - 1).cast("int")))

    return build
