"""denied-burst without sliding frames gives the rows the sliding-frame definition gives."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pytest
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.config import DetectionsConfig
from jobs.detections.catalogue import CATALOGUE
from jobs.detections.windows import denied_burst

SCHEMA = (
    "request_key string, attributed_user string, request_uri string, response_code int,"
    " request_received_ts timestamp"
)


def _by_definition(req_df: DataFrame, seconds: int, distinct_uris: int) -> DataFrame:
    """The catalogue's words as Spark frames (what the finder did before): O(rows x frame)."""
    t = F.unix_micros(F.col("request_received_ts"))
    span = seconds * 1_000_000
    by_user = Window.partitionBy("attributed_user").orderBy(t)
    trailing = F.size(F.collect_set("request_uri").over(by_user.rangeBetween(-span, 0)))
    denied = req_df.filter(
        (F.col("response_code") == 403) & F.col("attributed_user").isNotNull()
    ).withColumn("_trigger", (trailing > distinct_uris).cast("int"))
    in_burst = F.max("_trigger").over(by_user.rangeBetween(0, span))
    return denied.withColumn("_in", in_burst).filter(F.col("_in") == 1)


def _week(seed: int) -> list[tuple]:
    rng = random.Random(seed)
    start = dt.datetime(2026, 11, 16, 9, tzinfo=dt.UTC)
    rows = []
    for i in range(400):
        second = rng.choice([rng.randrange(0, 120), rng.randrange(0, 600), 30, 31, 45])
        micros = rng.choice([0, 0, 1, 999_999, rng.randrange(1_000_000)])
        rows.append(
            (
                f"r{i}",
                rng.choice(["ann", "bob", "bob", "eve", None]),
                rng.choice(["/a", "/b", "/c", "/d", "/e", "/f", "/g", None]),
                rng.choice([403, 403, 403, 401, 200]),
                start + dt.timedelta(seconds=second, microseconds=micros),
            )
        )
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("seconds", "distinct_uris"), [(10, 3), (60, 5), (1, 1)])
def test_denied_burst_matches_the_sliding_frame_definition(spark, seed, seconds, distinct_uris):
    req_df = spark.createDataFrame(_week(seed), SCHEMA)
    det = next(d for d in CATALOGUE if d.id == "denied-burst")
    det = dataclasses.replace(
        det, thresholds={**det.thresholds, "seconds": seconds, "distinct_uris": distinct_uris}
    )
    got = {r.request_key for r in denied_burst(req_df, det, DetectionsConfig()).collect()}
    want = {r.request_key for r in _by_definition(req_df, seconds, distinct_uris).collect()}
    assert got == want
    denials = req_df.filter("response_code = 403 AND attributed_user IS NOT NULL").count()
    assert 0 < len(want) < denials  # the data has denials both in and out of bursts
