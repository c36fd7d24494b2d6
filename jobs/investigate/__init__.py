"""Retrospective investigations: every event of one identity, IP or object, with provenance.

Modules: ``query`` (the typed :class:`~jobs.investigate.query.Query` and its Spark filters),
``main`` (``run``: read only the partitions in range, filter, order, attach provenance) and
``export`` (terminal table, CSV, JSONL, PDF by the output file's extension).
"""
