"""Repeated keys are found over 64-bit hashes first, then checked on the keys themselves."""

from __future__ import annotations

from pyspark.sql import functions as F

from jobs.ingest.dedup import parquet_rows, suspect_hashes, suspect_keys, with_hash_in

KEYS = "cluster string, dedup_key string"


def _pairs(df):
    return sorted((r.cluster, r.dedup_key, r._known) for r in df.collect())


def test_hashes_then_keys_find_the_same_suspects(spark):
    keys = spark.createDataFrame(
        [("c1", "a/RC"), ("c1", "a/RC"), ("c2", "a/RC"), ("c1", "b/RC"), ("c1", "c/RC")], KEYS
    )
    known = spark.createDataFrame([("c1", "b/RC"), ("c2", "z/RC")], KEYS)
    hashes = suspect_hashes(keys, known)
    assert hashes.count() == 2  # a/RC in c1 (twice), b/RC in c1 (in the lake)
    narrowed = suspect_keys(with_hash_in(keys, hashes), with_hash_in(known, hashes))
    assert _pairs(narrowed) == _pairs(suspect_keys(keys, known))
    assert _pairs(narrowed) == [("c1", "a/RC", False), ("c1", "b/RC", True)]


def test_a_colliding_hash_finds_no_suspect(spark):
    """A flagged hash whose pairs do not repeat (as after a collision) yields no suspect."""
    keys = spark.createDataFrame([("c1", "a/RC"), ("c1", "b/RC")], KEYS)
    collided = keys.select(F.xxhash64("cluster", "dedup_key").alias("_h"))
    assert collided.count() == 2
    assert suspect_keys(with_hash_in(keys, collided), None).collect() == []


def test_parquet_rows_reads_the_footers(spark, tmp_path):
    spark.range(0).write.parquet(str(tmp_path / "empty"))
    spark.range(7).repartition(3).write.parquet(str(tmp_path / "seven"))
    assert parquet_rows(tmp_path / "empty") == 0
    assert parquet_rows(tmp_path / "seven") == 7
