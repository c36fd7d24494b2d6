"""The events suite: the contract of every ingest batch of ``lake/events``.

Checks GX cannot express on the raw columns (timestamps against each evidence file's event
range, and against the clock) are computed with Spark built-ins by :func:`prepare_events`
into check columns that are null when the row is fine and say what is wrong otherwise; the
suite expects them null, so a failure lists the offending lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import great_expectations as gx
from great_expectations.expectations.row_conditions import Column as GxColumn
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from expectations._checks import (
    between,
    flatten,
    in_set,
    is_null,
    not_null,
    not_null_where,
    unique,
)
from expectations.runner import WARNING
from jobs.frames import literal_frame

SUITE_NAME = "events_suite"
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
STAGE_WITHOUT_RESPONSE = "RequestReceived"
LEVELS = ("None", "Metadata", "Request", "RequestResponse")
# Resource verbs (k8s requestinfo) and, for non-resource requests, the lower-cased HTTP
# methods (docs/audit-policy-semantics.md). Anything else is a warning, not a failure: a new
# apiserver may add a verb, and the events are still evidence.
KNOWN_VERBS = (
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
    "post",
    "put",
    "head",
    "options",
)
RESPONSE_CODE_MIN, RESPONSE_CODE_MAX = 100, 599
# Masters' clocks drift; an event a few minutes "in the future" is skew, not forgery.
CLOCK_SKEW_TOLERANCE = dt.timedelta(minutes=5)

OUTSIDE_FILE_RANGE = "request_received_outside_file_range"
IN_FUTURE = "timestamp_in_future"
FILE_RANGES_SCHEMA = StructType(
    [
        StructField("evidence_sha256", StringType(), False),
        StructField("first_event", TimestampType()),
        StructField("last_event", TimestampType()),
    ]
)
_EVENT_COLUMNS = (
    "audit_id",
    "stage",
    "level",
    "verb",
    "response_code",
    "evidence_sha256",
    "line_no",
    "request_received_ts",
    "stage_ts",
)


def build_events_suite() -> gx.ExpectationSuite:
    """The events contract; validate the output of :func:`prepare_events`."""
    return gx.ExpectationSuite(
        name=SUITE_NAME,
        expectations=flatten(
            not_null("audit_id", "stage", "evidence_sha256", "line_no", "request_received_ts"),
            in_set("stage", STAGES),
            in_set("level", LEVELS),
            in_set("verb", KNOWN_VERBS, severity=WARNING),
            between("response_code", RESPONSE_CODE_MIN, RESPONSE_CODE_MAX),
            not_null_where(
                "response_code",
                GxColumn("stage") != STAGE_WITHOUT_RESPONSE,
                "every stage but RequestReceived has a response code",
            ),
            is_null(
                OUTSIDE_FILE_RANGE,
                "request_received_ts within its evidence file's first/last event (ingest ledger)",
            ),
            is_null(IN_FUTURE, "request_received_ts and stage_ts not in the future"),
            unique("audit_id", "stage"),
            unique("evidence_sha256", "line_no"),
        ),
    )


def _where() -> Column:
    # concat of a null is null: a null pointer must still say where (and fail the check)
    return F.concat(
        F.coalesce(F.substring("evidence_sha256", 1, 12), F.lit("?")),
        F.lit(":"),
        F.coalesce(F.col("line_no").cast("string"), F.lit("?")),
        F.lit(" "),
    )


def prepare_events(events_df: DataFrame, file_ranges_df: DataFrame) -> DataFrame:
    """The columns the suite reads, plus the two timestamp check columns.

    ``file_ranges_df``: FILE_RANGES_SCHEMA, one row per evidence file (the ledger's
    first_event/last_event, i.e. min/max request_received_ts of the file's events). An event
    whose file has no range fails the range check: it came from a file the ledger does not know.
    """
    ranges = F.broadcast(
        file_ranges_df.select(
            F.col("evidence_sha256").alias("_sha"),
            F.col("first_event").alias("_first"),
            F.col("last_event").alias("_last"),
        )
    )
    joined = events_df.select(*_EVENT_COLUMNS).join(
        ranges, F.col("evidence_sha256") == F.col("_sha"), how="left"
    )
    rrts, where = F.col("request_received_ts"), _where()
    outside = F.when(F.col("_sha").isNull(), F.concat(where, F.lit("file not in the ledger"))).when(
        ~F.coalesce(rrts.between(F.col("_first"), F.col("_last")), F.lit(False)),
        F.concat(
            where,
            F.coalesce(rrts.cast("string"), F.lit("null")),
            F.lit(" not in ["),
            F.col("_first").cast("string"),
            F.lit(", "),
            F.col("_last").cast("string"),
            F.lit("]"),
        ),
    )
    limit = F.current_timestamp() + F.make_dt_interval(
        secs=F.lit(CLOCK_SKEW_TOLERANCE.total_seconds())
    )
    latest = F.greatest(rrts, F.col("stage_ts"))
    future = F.when(latest > limit, F.concat(where, latest.cast("string")))
    return joined.select(
        *_EVENT_COLUMNS, outside.alias(OUTSIDE_FILE_RANGE), future.alias(IN_FUTURE)
    )


def file_ranges_from_ledger(spark: SparkSession, entries: Iterable[Mapping[str, Any]]) -> DataFrame:
    """FILE_RANGES_SCHEMA rows from ingest ledger entries (ISO-8601 UTC first/last_event)."""
    rows = [(e["evidence_sha256"], e.get("first_event"), e.get("last_event")) for e in entries]
    text = StructType(
        [StructField(f.name, StringType(), f.nullable) for f in FILE_RANGES_SCHEMA.fields]
    )
    df = literal_frame(spark, rows, text)  # no Python worker
    return df.select(
        "evidence_sha256",
        F.col("first_event").cast("timestamp"),
        F.col("last_event").cast("timestamp"),
    )
