"""Pure Spark transforms of ingest: raw lines -> classified lines -> normalized events.

Input of ``classify_lines``: one row per physical line with ``value`` (the line as read by
Spark's text source, bytes unvalidated), ``evidence_sha256``, ``line_no``, ``master``,
``cluster``, ``file_order``; optionally ``check_bytes`` and ``check_joined``, false where
ingest's preflight found the whole file free of NUL/invalid UTF-8 bytes or of `}{` (then
no line of it can fail that check, and the line skips it). Every row leaves with exactly one
``bucket``:
``event`` | ``duplicate`` | ``quarantined`` | ``blank``; quarantined rows carry ``reason``.
No Python UDFs: Spark SQL built-ins only.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs.schemas import EVENT_COLUMNS, RAW_EVENT

CORRUPT = "_corrupt_record"
PARSE_SCHEMA = StructType([*RAW_EVENT.fields, StructField(CORRUPT, StringType())])
JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}

# quarantine reasons (stable identifiers, documented in README)
TOO_LONG = "line_too_long"
INVALID_UTF8 = "invalid_utf8"
NUL_BYTES = "nul_bytes"
NOT_JSON = "not_json"
NOT_OBJECT = "not_object"
BAD_TYPES = "bad_field_types"
NOT_EVENT = "kind_not_event"
NO_TIMESTAMP = "no_timestamp"
GZIP_TRUNCATED = "gzip_truncated"

RAW_KEEP_BYTES = 1 << 20  # quarantined raw text kept in the lake (the evidence has all of it)
_SPACE = " \t\r\f\u000b"
# Two top-level objects run together on one line ({...}{...}): from_json would silently keep
# the first. Outside strings, JSON never has `}{` or `} {`; inside strings it can, so a line
# that shows the pattern is tested again with its string literals removed.
_TWO_OBJECTS = ("}{", "} {")
# unrolled and possessive: no backtracking, no recursion (Java regex overflows its stack on
# `(a|b)*` over long strings)
_STRING_LITERAL = r'"[^"\\]*+(?:\\.[^"\\]*+)*+"'


def _ts(col: Column) -> Column:
    """Audit timestamps (RFC3339 with or without micros, or 'YYYY-MM-DD HH:MM:SS.fff') -> UTC.

    try_cast is several times faster than try_to_timestamp without a pattern, and accepts
    the same ISO-8601 forms; zone-less values are read in the session zone (UTC).
    """
    return col.try_cast("timestamp")


def _trim_value(how: str) -> Column:
    """``trim(BOTH|TRAILING whitespace FROM value)``.

    A byte-level operation on Spark's UTF8String, much cheaper than rlike, which converts
    every line to a Java string.
    """
    return F.expr(f"trim({how} '{_SPACE}' FROM value)")


def _ends_with_brace(value: Column) -> Column:
    """The line's last non-space character is ``}`` (the trimming copy only when needed)."""
    return F.endswith(value, F.lit("}")) | F.endswith(_trim_value("TRAILING"), F.lit("}"))


def _has_two_objects(text: Column) -> Column:
    return F.contains(text, F.lit(_TWO_OBJECTS[0])) | F.contains(text, F.lit(_TWO_OBJECTS[1]))


def _two_objects(col: Column, gate: Column) -> Column:
    """True for `{...}{...}` on one line; the regex runs only on lines showing the pattern.

    ``gate``: false for the lines of a file that has no `}{` or `} {` at all.
    """
    return F.when(
        gate & _has_two_objects(col),
        _has_two_objects(F.regexp_replace(col, _STRING_LITERAL, '""')),
    ).otherwise(F.lit(False))


def _flag(df: DataFrame, name: str) -> Column:
    """A per-file check flag column, or true (check every line) when the input has none."""
    return F.col(name) if name in df.columns else F.lit(True)


def with_line_checks(df: DataFrame, max_line_bytes: int) -> DataFrame:
    """Byte-level checks and the JSON parse (only for lines that pass them)."""
    value = F.col("value")
    size = F.octet_length(value)
    check = _flag(df, "check_bytes")  # `&` short-circuits: clean files skip both scans
    # contains() scans bytes; instr() steps through characters, several times slower
    byte_reason = (
        F.when(size > max_line_bytes, F.lit(TOO_LONG))
        .when(check & ~F.is_valid_utf8(value), F.lit(INVALID_UTF8))
        .when(check & F.contains(value, F.lit("\x00")), F.lit(NUL_BYTES))
    )
    # trim() with a character list costs two int arrays the size of the line: only lines that
    # do not start with "{" (rare) pay for it. A CASE, not `&`: subexpression elimination
    # evaluates every operand of `&` once per row up front (`blank` is used three times)
    blank = F.when(F.startswith(value, F.lit("{")), F.lit(False)).otherwise(
        F.octet_length(_trim_value("BOTH")) == 0
    )
    return (
        df.withColumn("raw_length", size.cast("long"))
        .withColumn("is_blank", blank)
        .withColumn("byte_reason", F.when(~blank, byte_reason))
        .withColumn(
            "j",
            F.when(
                ~blank & F.col("byte_reason").isNull(),
                F.from_json(value, PARSE_SCHEMA, JSON_OPTIONS),
            ),
        )
    )


def _timestamps(j: Column) -> tuple[Column, Column]:
    received = F.coalesce(
        _ts(j["requestReceivedTimestamp"]),
        _ts(j["timestamp"]),
        _ts(j["stageTimestamp"]),
        _ts(j["metadata"]["creationTimestamp"]),
    )
    stage = F.coalesce(_ts(j["stageTimestamp"]), _ts(j["metadata"]["creationTimestamp"]), received)
    return received, stage


def with_reason(df: DataFrame) -> DataFrame:
    """The quarantine reason of each non-blank line (null = a candidate event)."""
    value, j = F.col("value"), F.col("j")
    joined = _flag(df, "check_joined")
    received, _ = _timestamps(j)
    corrupt = j[CORRUPT].isNotNull()
    json_value = F.try_parse_json(value)  # evaluated only for the rare corrupt lines
    reason = (
        F.when(F.col("is_blank"), F.lit(None))
        .when(F.col("byte_reason").isNotNull(), F.col("byte_reason"))
        .when(corrupt & json_value.isNull(), F.lit(NOT_JSON))
        .when(corrupt & ~F.ltrim(value).startswith("{"), F.lit(NOT_OBJECT))
        .when(~_ends_with_brace(value) | _two_objects(value, joined), F.lit(NOT_JSON))
        .when(corrupt, F.lit(BAD_TYPES))
        .when(F.coalesce(j["kind"], F.lit("")) != "Event", F.lit(NOT_EVENT))
        .when(received.isNull(), F.lit(NO_TIMESTAMP))
    )
    out = df.withColumn("reason", reason)
    r = F.col("reason")
    fixed = {
        INVALID_UTF8: "bytes that are not valid UTF-8",
        NUL_BYTES: "NUL bytes in the line",
        BAD_TYPES: "a field has the wrong JSON type for the audit schema",
        NO_TIMESTAMP: "no parseable requestReceivedTimestamp/timestamp",
    }
    detail = (
        F.when(
            r == NOT_JSON,
            F.when(_two_objects(value, joined), F.lit("more than one JSON value on the line"))
            .when(json_value.isNull(), F.lit("malformed JSON"))
            .otherwise(F.lit("trailing data after the JSON object")),
        )
        .when(
            r == NOT_OBJECT,
            F.concat(F.lit("top-level JSON "), F.lower(F.schema_of_variant(json_value))),
        )
        .when(r == NOT_EVENT, F.concat(F.lit("kind="), F.coalesce(j["kind"], F.lit("<missing>"))))
        .when(
            r == TOO_LONG,
            F.concat(F.lit("line of "), F.col("raw_length").cast("string"), F.lit(" bytes")),
        )
    )
    for code, text in fixed.items():
        detail = detail.when(r == code, F.lit(text))
    return out.withColumn("detail", detail)


def normalize_events(df: DataFrame) -> DataFrame:
    """Flat, typed, snake_case event columns from the parsed struct ``j``.

    Also used by ``kaudit policy match`` so that both see the same normalization.
    """
    j = F.col("j")
    received, stage_ts = _timestamps(j)
    obj = j["objectRef"]
    ann = j["annotations"]
    audit_id = F.nullif(j["auditID"], F.lit(""))
    dedup_key = F.when(
        audit_id.isNotNull(), F.concat(audit_id, F.lit("/"), F.coalesce(j["stage"], F.lit("")))
    ).otherwise(F.concat(F.lit("sha256:"), F.sha2(F.col("value").cast("binary"), 256)))
    return df.select(
        audit_id.alias("audit_id"),
        j["stage"].alias("stage"),
        j["level"].alias("level"),
        j["verb"].alias("verb"),
        j["requestURI"].alias("request_uri"),
        F.nullif(j["user"]["username"], F.lit("")).alias("user_name"),
        j["user"]["uid"].alias("user_uid"),
        j["user"]["groups"].alias("user_groups"),
        j["user"]["extra"].alias("user_extra"),
        j["impersonatedUser"]["username"].alias("impersonated_user"),
        j["impersonatedUser"]["groups"].alias("impersonated_groups"),
        j["sourceIPs"].alias("source_ips"),
        j["userAgent"].alias("user_agent"),
        obj.isNotNull().alias("object_ref_present"),
        F.when(
            obj.isNotNull(),
            F.coalesce(
                obj["apiGroup"],
                # v1alpha1 objectRef has no apiGroup: apiVersion is "group/version" (core: "v1")
                F.when(
                    F.contains(obj["apiVersion"], F.lit("/")),
                    F.regexp_extract(obj["apiVersion"], r"^(.*)/[^/]*$", 1),
                ),
                F.lit(""),
            ),
        ).alias("api_group"),
        obj["apiVersion"].alias("api_version"),
        obj["resource"].alias("resource"),
        obj["subresource"].alias("subresource"),
        obj["namespace"].alias("namespace"),
        obj["name"].alias("object_name"),
        obj["uid"].alias("object_uid"),
        F.expr("try_cast(j.responseStatus.code AS INT)").alias("response_code"),
        j["responseStatus"]["status"].alias("response_status"),
        j["responseStatus"]["reason"].alias("response_reason"),
        j["responseStatus"]["message"].alias("response_message"),
        received.alias("request_received_ts"),
        stage_ts.alias("stage_ts"),
        ann["authorization.k8s.io/decision"].alias("authz_decision"),
        ann["authorization.k8s.io/reason"].alias("authz_reason"),
        ann.alias("annotations"),
        j["requestObject"].alias("request_object"),
        j["responseObject"].alias("response_object"),
        j["apiVersion"].alias("source_api_version"),
        F.when(
            j["timestamp"].isNotNull() & j["requestReceivedTimestamp"].isNull(), F.lit("v1beta1")
        )
        .otherwise(F.lit("v1"))
        .alias("event_shape"),
        dedup_key.alias("dedup_key"),
        *[c for c in ("master", "evidence_sha256", "line_no", "cluster") if c in df.columns],
        F.to_date(received).alias("event_date"),
        *[
            c
            for c in ("file_order", "bucket", "reason", "detail", "raw", "raw_length")
            if c in df.columns
        ],
    )


def with_bucket(df: DataFrame, known_keys: DataFrame | None) -> DataFrame:
    """Assign event / duplicate to candidates (the first copy wins, in evidence order).

    ``known_keys`` (cluster, dedup_key) are the keys already in the lake. One window over
    the batch ranks the copies of each key: for small inputs (``kaudit policy match``);
    ingest ranks only the repeated keys, over the staged columns (:mod:`jobs.ingest.dedup`).
    """
    # bucket in the partition: a quarantined line carrying the same auditID never outranks
    # the event
    order = Window.partitionBy("cluster", "dedup_key", "bucket").orderBy(
        "file_order", "evidence_sha256", "line_no"
    )
    candidate = F.col("bucket") == "candidate"
    ranked = df.withColumn("_rn", F.when(candidate, F.row_number().over(order)))
    if known_keys is not None:
        known = (
            known_keys.select("cluster", "dedup_key").distinct().withColumn("_known", F.lit(True))
        )
        ranked = ranked.join(known, on=["cluster", "dedup_key"], how="left")
    else:
        ranked = ranked.withColumn("_known", F.lit(None).cast("boolean"))
    bucket = (
        F.when(~candidate, F.col("bucket"))
        .when(F.col("_known") | (F.col("_rn") > 1), F.lit("duplicate"))
        .otherwise(F.lit("event"))
    )
    return ranked.withColumn("bucket", bucket).drop("_rn", "_known")


# event columns a row keeps whatever its bucket: where it is, and which key it repeats (the
# held copy has the rest); the others are nulled so that the Parquet files stay small
KEEP_ALWAYS = frozenset(
    {
        "master",
        "evidence_sha256",
        "line_no",
        "cluster",
        "file_order",
        "bucket",
        "reason",
        "detail",
        "raw",
        "raw_length",
        "dedup_key",
    }
)


def keep_for(df: DataFrame, keep: Column) -> list[Column]:
    """``df``'s columns, those outside :data:`KEEP_ALWAYS` nulled where ``keep`` is false."""
    return [F.col(c) if c in KEEP_ALWAYS else F.when(keep, F.col(c)).alias(c) for c in df.columns]


def classify_unranked(lines: DataFrame, max_line_bytes: int) -> DataFrame:
    """Lines -> one row per line: bucket ``candidate`` | ``quarantined`` | ``blank``, normalized.

    The one JSON parse of a line. Candidates still need ranking against their copies
    (:func:`with_bucket` here, or :mod:`jobs.ingest.dedup` over the staged keys).
    """
    checked = with_reason(with_line_checks(lines, max_line_bytes))
    pre_bucket = (
        F.when(F.col("is_blank"), F.lit("blank"))
        .when(F.col("reason").isNotNull(), F.lit("quarantined"))
        .otherwise(F.lit("candidate"))
    )
    staged = checked.withColumn("bucket", pre_bucket).withColumn(
        "raw",
        F.when(
            F.col("reason").isNotNull(),
            F.substring(F.col("value").cast("binary"), 1, RAW_KEEP_BYTES),
        ),
    )
    events = normalize_events(staged)
    return events.select(*keep_for(events, F.col("bucket") == "candidate"))


def classify_lines(
    lines: DataFrame, max_line_bytes: int, known_keys: DataFrame | None = None
) -> DataFrame:
    """Lines -> one row per line with bucket, reason and the normalized event columns."""
    bucketed = with_bucket(classify_unranked(lines, max_line_bytes), known_keys)
    return bucketed.select(*keep_for(bucketed, F.col("bucket") == "event"))


OUTPUT_COLUMNS = [*EVENT_COLUMNS, "bucket", "reason", "detail", "raw", "raw_length"]
