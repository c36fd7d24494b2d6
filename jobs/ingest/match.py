"""``kaudit policy match``: which rule and level of a policy each raw audit line gets.

The lines go through ingest's own classification and normalization and then the very Column
expressions of the weekly job (``with_policy_evaluation``), so the answer is the job's answer.
It lives beside ingest because it reuses ingest's parsing (ingest may import policy, not the
other way round). Spark is imported only when there are lines to match.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import UsageError
from jobs.policy.model import Policy

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

STDIN = "-"
BUCKET_BLANK, BUCKET_QUARANTINED = "blank", "quarantined"
_RESULT_COLUMNS = (
    "file_order", "line_no", "bucket", "reason", "detail", "audit_id", "stage", "policy_rule",
    "policy_level",
)  # fmt: skip
Line = tuple[int, int, bytes]  # (input number, 1-based line number, raw bytes)


def _read_events_file(source: str) -> bytes:
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise UsageError(f"{source}: cannot read events file: {exc.strerror or exc}") from exc


def read_lines(sources: Sequence[str]) -> list[Line]:
    """Every line of every source (``-`` is stdin), numbered from 1 in each source.

    Raises:
        UsageError: naming the file, when one cannot be read (before Spark starts).
    """
    rows: list[Line] = []
    for input_no, source in enumerate(sources):
        data = sys.stdin.buffer.read() if source == STDIN else _read_events_file(source)
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()  # the newline that ends the last line does not start another one
        rows.extend((input_no, line_no, raw) for line_no, raw in enumerate(lines, start=1))
    return rows


def _line_error(bucket: str, reason: str | None, detail: str | None) -> str | None:
    if bucket == BUCKET_BLANK:
        return "blank line"
    if bucket == BUCKET_QUARANTINED:
        return f"{reason}: {detail}" if detail else str(reason)
    return None


def match_lines(spark: SparkSession, rows: list[Line], loaded: Policy) -> list[dict[str, Any]]:
    """Evaluate (input, line, bytes) rows as ingest + the weekly job would; in input order.

    Lines go through ingest's own classification and normalization (``classify_lines``), then
    ``with_policy_evaluation``: the same Columns as the weekly job. Unlike ingest, a line that
    repeats another is not a duplicate here: every line is matched on its own.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import BinaryType, IntegerType, LongType, StructField, StructType

    from jobs.ingest.transforms import classify_lines
    from jobs.policy.compile import with_policy_evaluation
    from jobs.settings import DEFAULT_MAX_LINE_BYTES

    schema = StructType(
        [
            StructField("file_order", IntegerType(), False),
            StructField("line_no", LongType(), False),
            StructField("raw_line", BinaryType(), False),
        ]
    )
    # Binary in, cast to string in Spark: like the text source, bytes are not validated here,
    # so ingest's own UTF-8 check still sees them.
    lines_df = spark.createDataFrame(rows, schema).select(
        F.col("raw_line").cast("string").alias("value"),
        "file_order",
        "line_no",
        # ingest deduplicates per cluster: one "cluster" per line, so that a line repeating
        # another is still matched and shows its own audit_id (never a null duplicate)
        F.format_string("cli:%d:%d", "file_order", "line_no").alias("cluster"),
        F.lit(None).cast("string").alias("master"),
        F.lit(None).cast("string").alias("evidence_sha256"),
    )
    result_df = with_policy_evaluation(
        classify_lines(lines_df, DEFAULT_MAX_LINE_BYTES), loaded
    ).select(*_RESULT_COLUMNS)
    results = []
    for row in sorted(result_df.collect(), key=lambda r: (r["file_order"], r["line_no"])):
        out: dict[str, Any] = {"input_no": row["file_order"], "line": row["line_no"]}
        error = _line_error(row["bucket"], row["reason"], row["detail"])
        if error is not None:
            out["error"] = error
        else:
            out.update(
                audit_id=row["audit_id"],
                stage=row["stage"],
                rule=row["policy_rule"],
                level=row["policy_level"],
            )
        results.append(out)
    return results


def run_match(
    spark_factory: Callable[[], SparkSession], policy: Policy, sources: Sequence[str]
) -> list[dict[str, Any]]:
    """One result per input line, in input order; each names its "file" when there are several.

    ``spark_factory`` is called only when there is at least one line (Spark starts lazily).
    """
    rows = read_lines(sources)
    if not rows:
        return []
    results = []
    for result in match_lines(spark_factory(), rows, policy):
        input_no = result.pop("input_no")
        if len(sources) > 1:
            result = {"file": sources[input_no], **result}
        results.append(result)
    return results
