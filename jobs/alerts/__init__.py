"""Hourly alerts: the alerting detections on one ingest run's events, sent once per channel.

Modules: ``evaluate`` (which detections alert, and their findings in a run, with Spark),
``sent`` (the ledger of alert keys already delivered, under ``<home>/alerts/``), ``digest``
(title, escaped markdown, plain text and JSON payload) and ``main`` (one call per DAG task).
"""
