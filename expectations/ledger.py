"""The ingest ledger suite: every line of every evidence file is accounted for, once.

Ledger entries (the JSON ``files`` of ``lake/_ledger/<run>.json``) become a small DataFrame
with two derived columns: ``unaccounted_lines`` (lines - events - duplicates - quarantined -
blank, which must be 0) and ``quarantined_share`` (quarantined / lines, a warning above the
configured threshold: a master writing garbage).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import great_expectations as gx
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from expectations._checks import (
    at_most_value,
    between,
    flatten,
    non_negative,
    not_null,
    unique,
)
from expectations.runner import WARNING
from jobs.frames import literal_frame

SUITE_NAME = "ledger_suite"
# Default share of a file's lines that may be quarantined before it is reported (warning): a
# healthy apiserver writes none; a few torn lines at a rotation are normal, 5% is not.
QUARANTINE_WARN_SHARE = 0.05
COUNT_COLUMNS = ("lines", "events", "duplicates", "quarantined", "blank")
LEDGER_SCHEMA = StructType(
    [
        StructField("evidence_sha256", StringType()),
        StructField("file", StringType()),
        StructField("master", StringType()),
        StructField("cluster", StringType()),
        *[StructField(c, LongType()) for c in COUNT_COLUMNS],
    ]
)


def build_ledger_suite(quarantine_warn_share: float = QUARANTINE_WARN_SHARE) -> gx.ExpectationSuite:
    """The ledger contract; validate the output of :func:`ledger_frame`."""
    return gx.ExpectationSuite(
        name=SUITE_NAME,
        expectations=flatten(
            not_null("evidence_sha256", *COUNT_COLUMNS),
            unique("evidence_sha256"),
            non_negative(*COUNT_COLUMNS),
            between(
                "unaccounted_lines",
                0,
                0,
                "lines = events + duplicates + quarantined + blank, per file",
            ),
            at_most_value(
                "quarantined_share",
                quarantine_warn_share,
                f"quarantined share of a file at most {quarantine_warn_share}",
                severity=WARNING,
            ),
        ),
    )


def ledger_frame(spark: SparkSession, entries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """LEDGER_SCHEMA rows plus ``unaccounted_lines`` and ``quarantined_share`` (one per file).

    Computed by Spark from literal rows (no Python worker), handed to GX as pandas: the ledger
    of a week is a row per evidence file.
    """
    names = [f.name for f in LEDGER_SCHEMA.fields]
    rows = [tuple(e.get(n) for n in names) for e in entries]
    df = literal_frame(spark, rows, LEDGER_SCHEMA)
    buckets = F.col("events") + F.col("duplicates") + F.col("quarantined") + F.col("blank")
    share = F.when(F.col("lines") > 0, F.col("quarantined") / F.col("lines")).otherwise(F.lit(0.0))
    return df.select(
        *names,
        (F.col("lines") - buckets).alias("unaccounted_lines"),
        share.alias("quarantined_share"),
    ).toPandas()
