"""The events suite: the contract of every ingest batch of ``lake/events``.

Checks GX cannot express on the raw columns (timestamps against each evidence file's event
range, and against the clock) are computed with Spark built-ins by :func:`prepare_events`
into check columns that are null when the row is fine and say what is wrong otherwise; the
suite expects them null, so a failure lists the offending lines. The two keys that must be
unique are checked the same way (:func:`with_key_checks`), which costs far less than GX's
uniqueness expectation on Spark.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from functools import reduce
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
REPEATED_STAGE = "audit_id_stage_repeated"
REPEATED_LINE = "evidence_line_repeated"
# check column -> the key that must be unique (a row whose key columns are all null is left
# out, as GX's compound uniqueness leaves it out)
UNIQUE_KEYS: dict[str, tuple[str, ...]] = {
    REPEATED_STAGE: ("audit_id", "stage"),
    REPEATED_LINE: ("evidence_sha256", "line_no"),
}
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
            is_null(REPEATED_STAGE, "(audit_id, stage) unique: one event per stage of a request"),
            is_null(REPEATED_LINE, "(evidence_sha256, line_no) unique: one event per line"),
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


def _hash_repeats(prepared_df: DataFrame) -> set[str]:
    """The UNIQUE_KEYS check names whose key MAY repeat: a 64-bit hash of it repeats.

    One pass and one narrow shuffle of (check index, long) pairs for both keys, instead of a
    shuffle of each key's strings (audit IDs, 64-character file hashes). Equal keys always
    hash equal, so a name left out has no repeated key; a name returned may be a collision
    only, which the exact check then clears.
    """
    names = list(UNIQUE_KEYS)
    tagged = [
        F.when(
            reduce(Column.__or__, [F.col(k).isNotNull() for k in keys]),
            F.struct(F.lit(i).alias("_check"), F.xxhash64(*keys).alias("_hash")),
        )
        for i, keys in enumerate(UNIQUE_KEYS.values())
    ]
    repeated = (
        prepared_df.select(F.explode(F.array(*tagged)).alias("_k"))
        .filter(F.col("_k").isNotNull())
        .groupBy("_k._check", "_k._hash")
        .agg(F.count(F.lit(1)).alias("_times"))
        .filter(F.col("_times") > 1)
        .select("_check")
        .distinct()
    )
    return {names[row["_check"]] for row in repeated.collect()}


def with_key_checks(prepared_df: DataFrame) -> DataFrame:
    """``prepared_df`` plus the UNIQUE_KEYS check columns (null unless the row's key repeats).

    A first pass counts 64-bit hashes of both keys (:func:`_hash_repeats`); only a key whose
    hash repeats is then counted exactly, one narrow aggregation over the key itself. Persist
    ``prepared_df`` first. GX's own uniqueness expectation partitions every row with all its
    columns by the key, once per key (1.5 M events: 11-18 s of a weekly validation); the keys
    alone, counted, say the same, and a row of a repeated key still says where it is and how
    often it occurs. When no key repeats (the rule) the columns are null and nothing is joined.
    """
    checked = prepared_df
    maybe_repeated = _hash_repeats(prepared_df)
    for name, keys in UNIQUE_KEYS.items():
        present = reduce(Column.__or__, [F.col(k).isNotNull() for k in keys])
        repeated = (
            prepared_df.filter(present)
            .groupBy(*keys)
            .agg(F.count(F.lit(1)).alias("_times"))
            .filter(F.col("_times") > 1)
            .select(*[F.col(k).alias(f"_{k}") for k in keys], "_times")
        )
        if name not in maybe_repeated or repeated.isEmpty():
            checked = checked.withColumn(name, F.lit(None).cast("string"))
            continue
        same_key = reduce(Column.__and__, [F.col(k).eqNullSafe(F.col(f"_{k}")) for k in keys])
        text = [
            F.concat(F.lit(f"{k} "), F.coalesce(F.col(k).cast("string"), F.lit("null")))
            for k in keys
        ]
        message = F.concat(
            _where(), F.concat_ws(", ", *text), F.lit(" occurs "), F.col("_times"), F.lit(" times")
        )
        checked = (
            checked.join(repeated, same_key & present, how="left")
            .withColumn(name, F.when(F.col("_times").isNotNull(), message))
            .drop("_times", *[f"_{k}" for k in keys])
        )
    return checked


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
