"""Spark schema contracts, one per dataset.

RAW_EVENT is the explicit schema used to parse audit lines at ingest (no inference, ever).
EVENTS is the normalized, flat, snake_case contract of ``<home>/lake/events``; every later
job reads these columns and nothing else. Request/response bodies stay raw JSON text.
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DateType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

_STR = StringType()
_STRS = ArrayType(StringType())
_EXTRA = MapType(StringType(), ArrayType(StringType()))

_USER = StructType(
    [
        StructField("username", _STR),
        StructField("uid", _STR),
        StructField("groups", _STRS),
        StructField("extra", _EXTRA),
    ]
)

# Only the fields kaudit reads are declared; unknown fields are ignored by from_json.
# Timestamps are read as strings and parsed by ingest, so one odd format costs a
# quarantine reason ("no usable timestamp"), not a corrupt record.
# Object bodies are StringType: Spark keeps the raw JSON text (object or array).
RAW_EVENT = StructType(
    [
        StructField("kind", _STR),
        StructField("apiVersion", _STR),
        StructField("metadata", StructType([StructField("creationTimestamp", _STR)])),
        StructField("level", _STR),
        StructField("timestamp", _STR),
        StructField("auditID", _STR),
        StructField("stage", _STR),
        StructField("requestURI", _STR),
        StructField("verb", _STR),
        StructField("user", _USER),
        StructField("impersonatedUser", _USER),
        StructField("sourceIPs", _STRS),
        StructField("userAgent", _STR),
        StructField(
            "objectRef",
            StructType(
                [
                    StructField("resource", _STR),
                    StructField("namespace", _STR),
                    StructField("name", _STR),
                    StructField("uid", _STR),
                    StructField("apiGroup", _STR),
                    StructField("apiVersion", _STR),
                    StructField("resourceVersion", _STR),
                    StructField("subresource", _STR),
                ]
            ),
        ),
        StructField(
            "responseStatus",
            StructType(
                [
                    StructField("status", _STR),
                    StructField("message", _STR),
                    StructField("reason", _STR),
                    StructField("code", _STR),
                ]
            ),
        ),
        StructField("requestObject", _STR),
        StructField("responseObject", _STR),
        StructField("requestReceivedTimestamp", _STR),
        StructField("stageTimestamp", _STR),
        StructField("annotations", MapType(StringType(), StringType())),
    ]
)

# The lake's events dataset. Partition columns (cluster, event_date) come last.
EVENTS = StructType(
    [
        StructField("audit_id", _STR),
        StructField("stage", _STR),
        StructField("level", _STR),
        StructField("verb", _STR),
        StructField("request_uri", _STR),
        StructField("user_name", _STR),  # null: no authenticated user ("user": {})
        StructField("user_uid", _STR),
        StructField("user_groups", _STRS),
        StructField("user_extra", _EXTRA),
        StructField("impersonated_user", _STR),
        StructField("impersonated_groups", _STRS),
        StructField("source_ips", _STRS),
        StructField("user_agent", _STR),
        StructField("object_ref_present", BooleanType()),  # true = resource request
        StructField("api_group", _STR),  # "" = core group; null when no objectRef
        StructField("api_version", _STR),
        StructField("resource", _STR),
        StructField("subresource", _STR),
        StructField("namespace", _STR),
        StructField("object_name", _STR),
        StructField("object_uid", _STR),
        StructField("response_code", IntegerType()),
        StructField("response_status", _STR),
        StructField("response_reason", _STR),
        StructField("response_message", _STR),
        StructField("request_received_ts", TimestampType()),  # UTC, microseconds
        StructField("stage_ts", TimestampType()),
        StructField("authz_decision", _STR),
        StructField("authz_reason", _STR),
        StructField("annotations", MapType(StringType(), StringType())),
        StructField("request_object", _STR),  # raw JSON text, never printed in a report
        StructField("response_object", _STR),
        StructField("source_api_version", _STR),  # apiVersion as written (may be null)
        StructField("event_shape", _STR),  # "v1" or "v1beta1" (top-level timestamp, no rRT)
        StructField("dedup_key", _STR),  # auditID/stage, or sha256 of the line without auditID
        StructField("master", _STR),
        StructField("evidence_sha256", _STR),
        StructField("line_no", LongType()),  # 1-based line number in the evidence file
        StructField("cluster", _STR),
        StructField("event_date", DateType()),  # UTC date of request_received_ts
    ]
)

# Lines that are not events. raw keeps the exact bytes (up to a cap, see raw_length).
QUARANTINE = StructType(
    [
        StructField("evidence_sha256", _STR),
        StructField("line_no", LongType()),
        StructField("reason", _STR),
        StructField("detail", _STR),
        StructField("raw", BinaryType()),
        StructField("raw_length", LongType()),
        StructField("master", _STR),
        StructField("cluster", _STR),
    ]
)

# Lines counted as duplicates: where they are, and which key they repeat.
DUPLICATES = StructType(
    [
        StructField("evidence_sha256", _STR),
        StructField("line_no", LongType()),
        StructField("dedup_key", _STR),
        StructField("master", _STR),
        StructField("cluster", _STR),
    ]
)

EVENT_COLUMNS = [f.name for f in EVENTS.fields]
