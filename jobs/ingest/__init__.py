"""Ingest: evidence files -> the Parquet lake (JSON parsed once, here)."""
